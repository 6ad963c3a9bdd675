#pragma once
// OAuth 2.0 client credentials grant (RFC 6749 §4.4) for adapters whose provider
// hands out access tokens from a token endpoint. Pure: builds the token request
// and reads the answer; the runtime's token cache does the fetching.
// Lives with mediaconnect, its first user; onebox uses it too.
#include <chrono>
#include <string>
#include <string_view>

#include "outq/adapter.hpp"

namespace outq::adapters::oauth2 {

// The shape of a token endpoint: the names of the request's and the answer's
// fields. The default is OAuth 2.0 client credentials (RFC 6749 §4.4: a form
// with grant_type, client_id, client_secret; access_token and expires_in back).
struct token_api {
    bool json_request = false;                      // the request body as JSON instead of a form
    std::string grant_type = "client_credentials";  // empty: no grant_type field
    std::string user_field = "client_id";           // where client_id goes (in the body)
    std::string password_field = "client_secret";   // where client_secret goes (in the body)
    std::string token_field = "access_token";       // the token in the answer; "a.b" is member b of member a
    std::string expires_in_field = "expires_in";    // seconds from now (number or numeric string); empty: none
    std::string expires_at_field;                   // or when it expires: unix seconds (ms from 10^12) or RFC 3339
    // The credentials' field names are OAuth 2.0's: Basic then form-encodes
    // them first (RFC 6749 §2.3.1).
    bool oauth2_fields() const { return user_field == "client_id" && password_field == "client_secret"; }
};

struct client_credentials {
    std::string token_url;
    std::string client_id;
    std::string client_secret;
    std::string scope;   // empty: no scope parameter
    bool basic = false;  // credentials in an HTTP Basic header instead of the body
    token_api api;
};

// Reads `token_url` (required unless `default_token_url` is given), `client_id`,
// `client_secret`, `scope` and `credentials_in` ("body" or "basic"), and, when
// `shape_configurable`, the optional `token_api` object (field names; see
// docs/providers/onebox.md). credentials_in defaults to "basic" (RFC 6749
// §2.3.1), or "body" when token_api renames the credentials' fields.
client_credentials read_client_credentials(const config_node& node, std::string_view default_token_url = {},
                                           bool shape_configurable = false);

// application/x-www-form-urlencoded encoding of one name or value: unreserved
// characters as they are, space as '+', everything else as %XX.
std::string form_urlencode(std::string_view s);

outbound_request token_request(const client_credentials& c);

// 200 with the token (`access_token`, and `expires_in` seconds, or the fields
// `api` names) is a token. 400/401 are
// `auth` (the OAuth `error` and `error_description` in the error) and pause the
// account for `auth_pause` (when set); 429 is rate_limited with Retry-After;
// 408/5xx retryable. `provider` names the provider in errors ("MediaConnect");
// a Retry-After date is measured from `now`.
token_result parse_token_response(const inbound_response& response, const token_api& api, std::string_view provider,
                                  std::optional<std::chrono::milliseconds> auth_pause, unix_ms now);

}  // namespace outq::adapters::oauth2
