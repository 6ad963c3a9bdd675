#include "common/oauth2_client.hpp"

#include <rapidjson/document.h>

#include <charconv>
#include <optional>
#include <utility>
#include <vector>

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

// A member by path: "data.token" is member "token" of member "data".
const rapidjson::Value* member_at(const rapidjson::Value& root, std::string_view path) {
    const rapidjson::Value* v = &root;
    while (v) {
        const auto dot = path.find('.');
        const auto key = path.substr(0, dot);
        if (!v->IsObject()) return nullptr;
        auto it = v->FindMember(
            rapidjson::Value(rapidjson::StringRef(key.data(), static_cast<rapidjson::SizeType>(key.size()))));
        v = it == v->MemberEnd() ? nullptr : &it->value;
        if (dot == std::string_view::npos) return v;
        path.remove_prefix(dot + 1);
    }
    return nullptr;
}

// A number, or a string of digits, as a double; nullopt otherwise.
std::optional<double> number_of(const rapidjson::Value* v) {
    if (!v) return std::nullopt;
    if (v->IsNumber()) return v->GetDouble();
    if (!v->IsString()) return std::nullopt;
    std::int64_t n = 0;
    auto s = json::view(*v);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return static_cast<double>(n);
}

// How long the token lasts: `expires_in` seconds (a number; some servers send
// a numeric string), or the time to an `expires_at`. 0: unknown (kept until refused).
std::chrono::milliseconds read_expiry(const rapidjson::Value& d, const token_api& api, unix_ms now) {
    constexpr double ten_years_s = 10.0 * 365 * 86400;
    double seconds = 0;
    if (!api.expires_at_field.empty()) {
        auto* v = member_at(d, api.expires_at_field);
        std::optional<unix_ms> at;
        if (auto n = number_of(v)) {
            at = *n >= 1e12 ? static_cast<unix_ms>(*n) : static_cast<unix_ms>(*n * 1000);  // ms, else seconds
        } else if (v && v->IsString()) {
            at = parse_rfc3339(json::view(*v));
        }
        if (at) seconds = static_cast<double>(*at - now) / 1000.0;
    } else if (!api.expires_in_field.empty()) {
        seconds = number_of(member_at(d, api.expires_in_field)).value_or(0);
    }
    if (!(seconds > 0) || seconds > ten_years_s) return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

// A field name of the token_api object: non-empty, unless `may_be_empty`.
std::string field_name(const config_node& node, const char* key, const std::string& fallback, bool may_be_empty) {
    auto v = node.string(key, fallback);
    if (v.empty() && !may_be_empty) node.fail(key, "must not be empty");
    return v;
}

token_api read_token_api(const config_node& node) {
    token_api api;
    auto shape = node.object("token_api");
    if (!shape) return api;
    const auto preset = shape->string("preset", "oauth2_client_credentials");
    if (preset != "oauth2_client_credentials")
        shape->fail("preset", "must be \"oauth2_client_credentials\" (the only preset; set the fields to change it)");
    const auto request = shape->string("request", "form");
    if (request != "form" && request != "json") shape->fail("request", "must be \"form\" or \"json\"");
    api.json_request = request == "json";
    api.grant_type = field_name(*shape, "grant_type", api.grant_type, true);
    api.user_field = field_name(*shape, "user_field", api.user_field, false);
    api.password_field = field_name(*shape, "password_field", api.password_field, false);
    if (api.user_field == api.password_field) shape->fail("password_field", "must differ from user_field");
    api.token_field = field_name(*shape, "token_field", api.token_field, false);
    api.expires_at_field = field_name(*shape, "expires_at_field", "", true);
    if (!api.expires_at_field.empty() && shape->has("expires_in_field"))
        shape->fail("expires_at_field", "give expires_in_field or expires_at_field, not both");
    api.expires_in_field =
        api.expires_at_field.empty() ? field_name(*shape, "expires_in_field", api.expires_in_field, true) : "";
    shape->reject_unknown();
    return api;
}

void append_json_field(std::string& body, std::string_view name, std::string_view value) {
    if (body.size() > 1) body += ',';
    json::append_quoted(body, name);
    body += ':';
    json::append_quoted(body, value);
}

}  // namespace

client_credentials read_client_credentials(const config_node& node, std::string_view default_token_url,
                                           bool shape_configurable) {
    client_credentials c;
    c.token_url =
        default_token_url.empty() ? node.string("token_url") : node.string("token_url", std::string(default_token_url));
    if (!parse_http_url(c.token_url)) node.fail("token_url", "must be an absolute http:// or https:// URL");
    c.client_id = node.string("client_id");
    if (c.client_id.empty()) node.fail("client_id", "must not be empty");
    c.client_secret = node.string("client_secret");
    if (c.client_secret.empty()) node.fail("client_secret", "must not be empty");
    c.scope = node.string("scope", "");
    if (shape_configurable) c.api = read_token_api(node);
    // RFC 6749 §2.3.1: an authorization server MUST support HTTP Basic for
    // client passwords, and the credentials in the body are NOT RECOMMENDED:
    // Basic is the default for OAuth's fields. Fields a token_api renames are
    // the body's (that is why they are named).
    const auto where = node.string("credentials_in", c.api.oauth2_fields() ? "basic" : "body");
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
    const token_api& api = c.api;
    outbound_request r;
    r.url = c.token_url;
    r.headers.push_back({"Content-Type", api.json_request ? "application/json" : "application/x-www-form-urlencoded"});
    r.headers.push_back({"Accept", "application/json"});
    std::vector<std::pair<std::string_view, std::string_view>> fields;
    if (!api.grant_type.empty()) fields.emplace_back("grant_type", api.grant_type);
    if (!c.scope.empty()) fields.emplace_back("scope", c.scope);
    if (c.basic) {
        // RFC 6749 §2.3.1: OAuth 2.0 form-encodes id and secret before they are
        // joined for Basic; another API gets plain RFC 7617 Basic.
        const auto user_pass = api.oauth2_fields() ? form_urlencode(c.client_id) + ":" + form_urlencode(c.client_secret)
                                                   : c.client_id + ":" + c.client_secret;
        r.headers.push_back({"Authorization", "Basic " + base64_encode(user_pass)});
    } else {
        fields.emplace_back(api.user_field, c.client_id);
        fields.emplace_back(api.password_field, c.client_secret);
    }
    if (api.json_request) {
        r.body = "{";
        for (auto& [name, value] : fields) append_json_field(r.body, name, value);
        r.body += '}';
    } else {
        for (auto& [name, value] : fields)
            r.body += (r.body.empty() ? "" : "&") + form_urlencode(name) + "=" + form_urlencode(value);
    }
    return r;
}

token_result parse_token_response(const inbound_response& response, const token_api& api, std::string_view provider,
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
        auto* token_value = object ? member_at(d, api.token_field) : nullptr;
        const auto token = token_value && token_value->IsString() ? json::view(*token_value) : std::string_view();
        if (token.empty()) {
            // The endpoint misbehaves; nothing is wrong with the job. Retried, bounded by attempts.
            f.cls = outcome_class::retryable;
            f.error = who + " answered HTTP " + std::to_string(response.status) + " without " +
                      (api.token_field == "access_token" ? "an access_token" : "a token in " + api.token_field);
            return out;
        }
        if (auto type = string_member(d, "token_type"); !type.empty() && !iequals(type, "bearer")) {
            f.cls = outcome_class::auth;
            f.error = who + " issued a \"" + std::string(type) + "\" token; only Bearer tokens are supported";
            return out;
        }
        out.token = access_token{std::string(token), read_expiry(d, api, now)};
        return out;
    }

    std::string detail;
    if (object) {
        detail = std::string(string_member(d, "error"));
        if (auto description = string_member(d, "error_description"); !description.empty())
            detail += (detail.empty() ? "" : ": ") + std::string(description);
        if (detail.empty()) detail = std::string(string_member(d, "message"));  // APIs other than OAuth's
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
