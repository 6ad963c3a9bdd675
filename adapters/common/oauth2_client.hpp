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

struct client_credentials {
    std::string token_url;
    std::string client_id;
    std::string client_secret;
    std::string scope;   // empty: no scope parameter
    bool basic = false;  // credentials in an HTTP Basic header instead of the form body
};

// Reads `token_url` (required unless `default_token_url` is given), `client_id`,
// `client_secret`, `scope` and `credentials_in` ("body" or "basic").
client_credentials read_client_credentials(const config_node& node, std::string_view default_token_url = {});

// application/x-www-form-urlencoded encoding of one name or value: unreserved
// characters as they are, space as '+', everything else as %XX.
std::string form_urlencode(std::string_view s);

outbound_request token_request(const client_credentials& c);

// 200 with `access_token` (and `expires_in` seconds) is a token. 400/401 are
// `auth` (the OAuth `error` and `error_description` in the error) and pause the
// account for `auth_pause` (when set); 429 is rate_limited with Retry-After;
// 408/5xx retryable. `provider` names the provider in errors ("MediaConnect");
// a Retry-After date is measured from `now`.
token_result parse_token_response(const inbound_response& response, std::string_view provider,
                                  std::optional<std::chrono::milliseconds> auth_pause, unix_ms now);

}  // namespace outq::adapters::oauth2
