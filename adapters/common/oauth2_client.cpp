#include "common/oauth2_client.hpp"

#include <rapidjson/document.h>

#include <charconv>

#include "outq/encoding.hpp"
#include "outq/http_url.hpp"
#include "outq/json_util.hpp"

namespace outq::adapters::oauth2 {

namespace {

std::string_view string_member(const rapidjson::Value& obj, const char* key) {
    auto* v = json::find(obj, key);
    return v && v->IsString() ? json::view(*v) : std::string_view();
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
    return true;
}

// `expires_in` is a number of seconds; some servers send it as a string.
std::chrono::milliseconds read_expires_in(const rapidjson::Value& d) {
    auto* v = json::find(d, "expires_in");
    if (!v) return std::chrono::milliseconds(0);
    double seconds = 0;
    if (v->IsNumber()) {
        seconds = v->GetDouble();
    } else if (v->IsString()) {
        std::int64_t n = 0;
        auto s = json::view(*v);
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec != std::errc{} || p != s.data() + s.size()) return std::chrono::milliseconds(0);
        seconds = static_cast<double>(n);
    }
    if (!(seconds > 0) || seconds > 10.0 * 365 * 86400) return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

}  // namespace

client_credentials read_client_credentials(const config_node& node, std::string_view default_token_url) {
    client_credentials c;
    c.token_url =
        default_token_url.empty() ? node.string("token_url") : node.string("token_url", std::string(default_token_url));
    if (!parse_http_url(c.token_url)) node.fail("token_url", "must be an absolute http:// or https:// URL");
    c.client_id = node.string("client_id");
    if (c.client_id.empty()) node.fail("client_id", "must not be empty");
    c.client_secret = node.string("client_secret");
    if (c.client_secret.empty()) node.fail("client_secret", "must not be empty");
    c.scope = node.string("scope", "");
    const auto where = node.string("credentials_in", "body");
    if (where != "body" && where != "basic") node.fail("credentials_in", "must be \"body\" or \"basic\"");
    c.basic = where == "basic";
    return c;
}

std::string form_urlencode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            out += ch;
        } else if (c == ' ') {
            out += '+';
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

outbound_request token_request(const client_credentials& c) {
    outbound_request r;
    r.url = c.token_url;
    r.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    r.headers.push_back({"Accept", "application/json"});
    r.body = "grant_type=client_credentials";
    if (!c.scope.empty()) r.body += "&scope=" + form_urlencode(c.scope);
    if (c.basic) {
        // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined for Basic.
        const auto user_pass = form_urlencode(c.client_id) + ":" + form_urlencode(c.client_secret);
        r.headers.push_back({"Authorization", "Basic " + base64_encode(user_pass)});
    } else {
        r.body += "&client_id=" + form_urlencode(c.client_id);
        r.body += "&client_secret=" + form_urlencode(c.client_secret);
    }
    return r;
}

token_result parse_token_response(const inbound_response& response, std::string_view provider,
                                  std::optional<std::chrono::milliseconds> auth_pause, unix_ms now) {
    token_result out;
    send_outcome& f = out.failure;
    f.http_status = response.status;
    f.response_excerpt = excerpt(response.body);
    const std::string who = std::string(provider) + " token endpoint";
    rapidjson::Document d;
    d.Parse(response.body.data(), response.body.size());
    const bool object = !d.HasParseError() && d.IsObject();

    if (response.status >= 200 && response.status < 300) {
        const auto token = object ? string_member(d, "access_token") : std::string_view();
        if (token.empty()) {
            // The endpoint misbehaves; nothing is wrong with the job. Retried, bounded by attempts.
            f.cls = outcome_class::retryable;
            f.error = who + " answered HTTP " + std::to_string(response.status) + " without an access_token";
            return out;
        }
        if (auto type = string_member(d, "token_type"); !type.empty() && !iequals(type, "bearer")) {
            f.cls = outcome_class::auth;
            f.error = who + " issued a \"" + std::string(type) + "\" token; only Bearer tokens are supported";
            return out;
        }
        out.token = access_token{std::string(token), read_expires_in(d)};
        return out;
    }

    std::string detail;
    if (object) {
        detail = std::string(string_member(d, "error"));
        if (auto description = string_member(d, "error_description"); !description.empty())
            detail += (detail.empty() ? "" : ": ") + std::string(description);
    }
    f.error = who + " HTTP " + std::to_string(response.status) + (detail.empty() ? "" : ": " + detail);
    switch (response.status) {
        case 400:  // invalid_client, invalid_scope, unauthorized_client… (RFC 6749 §5.2)
        case 401:
            f.cls = outcome_class::auth;
            if (auth_pause) {
                f.pause_account_for = *auth_pause;
                f.pause_reason = who + " rejected the client credentials" + (detail.empty() ? "" : " (" + detail + ")");
            }
            break;
        case 429:
            f.cls = outcome_class::rate_limited;
            if (auto ra = response.header("Retry-After"); !ra.empty()) f.retry_after = parse_retry_after(ra, now);
            break;
        default:
            f.cls = classify_http_status(response.status);
    }
    return out;
}

}  // namespace outq::adapters::oauth2
