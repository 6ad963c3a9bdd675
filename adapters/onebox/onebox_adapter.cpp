// Onebox `POST {host}/api/message`, per shared/seeds/onebox-message-create.md.
// The job's message is the documented body, forwarded as the producer wrote it;
// validate() enforces the channel rules the document gives.
#include "onebox/onebox_adapter.hpp"

#include <rapidjson/document.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "common/oauth2_client.hpp"
#include "outq/http_url.hpp"
#include "outq/json_util.hpp"

namespace outq::adapters {

namespace onebox {

std::optional<int> parse_clock_time(std::string_view t) {
    // "H:MM" or "HH:MM"
    const auto colon = t.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 2 || t.size() != colon + 3) return std::nullopt;
    int h = 0, m = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (i == colon) continue;
        if (t[i] < '0' || t[i] > '9') return std::nullopt;
        int& part = i < colon ? h : m;
        part = part * 10 + (t[i] - '0');
    }
    if (h > 23 || m > 59) return std::nullopt;
    return h * 60 + m;
}

std::optional<int> parse_utc_offset(std::string_view t) {
    if (t == "Z" || t == "UTC") return 0;
    if (t.size() != 6 && t.size() != 5) return std::nullopt;
    if (t[0] != '+' && t[0] != '-') return std::nullopt;
    const std::string_view hh = t.substr(1, 2), mm = t.size() == 6 ? t.substr(4, 2) : t.substr(3, 2);
    if (t.size() == 6 && t[3] != ':') return std::nullopt;
    for (char c : std::string(hh) + std::string(mm))
        if (c < '0' || c > '9') return std::nullopt;
    const int h = (hh[0] - '0') * 10 + (hh[1] - '0'), m = (mm[0] - '0') * 10 + (mm[1] - '0');
    if (h > 14 || m > 59) return std::nullopt;
    return (t[0] == '-' ? -1 : 1) * (h * 60 + m);
}

std::chrono::milliseconds quota_reopen_delay(unix_ms now, int reopen_minute, int offset_minutes) {
    constexpr std::int64_t day = 86400000;
    const std::int64_t local = now + offset_minutes * 60000LL;
    const std::int64_t into_day = ((local % day) + day) % day;
    std::int64_t wait = reopen_minute * 60000LL - into_day;
    if (wait <= 0) wait += day;
    // Reopened by our clock only moments ago: the provider's may lag; look again soon.
    if (day - wait < 5 * 60000) return std::chrono::milliseconds(60000);
    return std::chrono::milliseconds(wait);
}

namespace {

bool ascii_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// atext (RFC 5322 §3.2.3), with UTF-8 as RFC 6532 §3.2 allows.
bool atext(unsigned char c) {
    return ascii_alnum(c) || c >= 0x80 ||
           std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool dot_atom(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
    for (const char c : s)
        if (c != '.' && !atext(static_cast<unsigned char>(c))) return false;
    return true;
}

// quoted-string without folding whitespace: qtext, SP and quoted-pairs.
bool quoted_local(std::string_view s) {
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\\') {
            if (++i + 1 >= s.size() || static_cast<unsigned char>(s[i]) < 0x20 || s[i] == 0x7F) return false;
        } else if (c == '"' || c < 0x20 || c == 0x7F) {
            return false;
        }
    }
    return true;
}

bool domain_name(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    std::size_t labels = 0, start = 0;
    bool last_all_digits = false;
    while (start <= s.size()) {
        const auto end = std::min(s.find('.', start), s.size());
        const auto label = s.substr(start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        last_all_digits = true;
        for (const char ch : label) {
            const auto c = static_cast<unsigned char>(ch);
            if (!ascii_alnum(c) && c != '-' && c < 0x80) return false;
            last_all_digits = last_all_digits && c >= '0' && c <= '9';
        }
        ++labels;
        start = end + 1;
    }
    // "x@localhost" cannot be reached through a mail provider; "x@1.2.3.4" needs brackets.
    return labels >= 2 && !last_all_digits;
}

bool address_literal(std::string_view s) {
    if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
    for (const char ch : s.substr(1, s.size() - 2)) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\') return false;  // dtext
    }
    return true;
}

}  // namespace

bool is_email_address(std::string_view s) {
    if (s.size() > 254) return false;
    const auto at = s.rfind('@');
    if (at == std::string_view::npos) return false;
    const auto local = s.substr(0, at), domain = s.substr(at + 1);
    if (local.empty() || local.size() > 64) return false;
    if (!(local.front() == '"' ? quoted_local(local) : dot_atom(local))) return false;
    return domain.front() == '[' ? address_literal(domain) : domain_name(domain);
}

}  // namespace onebox

namespace {

using namespace std::chrono_literals;

struct onebox_account : account_settings {
    std::string host;          // without a trailing slash
    std::string static_token;  // empty: fetched with `credentials`
    std::optional<oauth2::client_credentials> credentials;
    std::optional<int> quota_reopen_minute;  // unset: read from the answer, else an hour
    int quota_offset_minutes = 0;
    std::string quota_time_zone = "+00:00";
    std::chrono::milliseconds auth_pause{600000};
};

// The documented body fields (PrevRemoteId appears in its example).
constexpr std::array<std::string_view, 13> known_fields = {
    "ConnectionId",   "MethodId",   "Subject",      "From",        "To",    "Cc",     "Bcc",
    "ConversationId", "PreviousId", "PrevRemoteId", "Attachments", "Users", "Content"};

const rapidjson::Value* present(const rapidjson::Value& obj, const char* key) {
    auto* v = json::find(obj, key);
    return v && !v->IsNull() ? v : nullptr;
}

std::string_view string_member(const rapidjson::Value& obj, const char* key) {
    auto* v = json::find(obj, key);
    return v && v->IsString() ? json::view(*v) : std::string_view();
}

bool contains_nocase(std::string_view text, std::string_view needle) {
    if (needle.size() > text.size()) return false;
    for (std::size_t i = 0; i + needle.size() <= text.size(); ++i) {
        std::size_t k = 0;
        while (k < needle.size() && std::tolower(static_cast<unsigned char>(text[i + k])) ==
                                        std::tolower(static_cast<unsigned char>(needle[k])))
            ++k;
        if (k == needle.size()) return true;
    }
    return false;
}

// A positive integer: the document types ConnectionId and ConversationId as
// "number", and its examples never write them otherwise.
bool is_number_id(const rapidjson::Value& v) {
    return v.IsUint64() && v.GetUint64() > 0;
}

// PreviousId is a number in the document's table, but its own examples
// ("Twitter - Reply Tweet", "Reply Direct Message") write it as a numeric string.
bool is_id(const rapidjson::Value& v) {
    if (v.IsUint64()) return v.GetUint64() > 0;
    if (!v.IsString() || v.GetStringLength() == 0) return false;
    for (char c : json::view(v))
        if (c < '0' || c > '9') return false;
    return true;
}

bool is_base64(std::string_view s) {
    std::size_t n = 0, padding = 0;
    for (char c : s) {
        if (c == '\r' || c == '\n') continue;
        if (c == '=') {
            if (++padding > 2) return false;
        } else if (padding || !(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) {
            return false;
        }
        ++n;
    }
    return n > 0 && n % 4 == 0;
}

// An "@username" somewhere in the text.
bool mentions_someone(std::string_view text) {
    for (std::size_t i = 0; i + 1 < text.size(); ++i)
        if (text[i] == '@' && !std::isspace(static_cast<unsigned char>(text[i + 1]))) return true;
    return false;
}

std::optional<std::string> require_string(const rapidjson::Value& obj, const char* key, const std::string& path) {
    auto* v = present(obj, key);
    if (!v) return path + "." + key + ": missing";
    if (!v->IsString() || v->GetStringLength() == 0) return path + "." + key + ": must be a non-empty string";
    return std::nullopt;
}

// Cc/Bcc: "other message recipients": one address or several, separated by
// commas (or semicolons), spaces around them allowed.
bool address_list(std::string_view s) {
    std::size_t start = 0;
    while (start <= s.size()) {
        const auto end = std::min(s.find_first_of(",;", start), s.size());
        auto item = s.substr(start, end - start);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (!onebox::is_email_address(item)) return false;
        start = end + 1;
    }
    return true;
}

std::optional<std::string> check_attachment(const rapidjson::Value& a, const std::string& path) {
    if (!a.IsObject()) return path + ": must be an object";
    if (auto e = require_string(a, "Description", path)) return e;
    auto* file = present(a, "File");
    if (!file) return path + ".File: missing";
    if (!file->IsObject()) return path + ".File: must be an object";
    const std::string fp = path + ".File";
    if (auto e = require_string(*file, "Name", fp)) return e;
    if (auto e = require_string(*file, "Date", fp)) return e;
    auto* url = present(*file, "Path");
    auto* content = present(*file, "Content");
    if (!url && !content) return fp + ": needs Path (a public download URL) or Content (base64)";
    if (url && content) return fp + ": give either Path or Content, not both";
    if (url && (!url->IsString() || !parse_http_url(json::view(*url))))
        return fp + ".Path: must be an http:// or https:// URL";
    if (content && (!content->IsString() || !is_base64(json::view(*content)))) return fp + ".Content: must be base64";
    return std::nullopt;
}

std::optional<std::string> check_user(const rapidjson::Value& u, const std::string& path, bool email) {
    if (!u.IsObject()) return path + ": must be an object";
    if (email) {
        // For email every user attribute is mandatory, and the identity is "EMAIL: email addresses".
        if (auto e = require_string(u, "IdentityId", path)) return e;
        if (!onebox::is_email_address(string_member(u, "IdentityId")))
            return path + ".IdentityId: must be an email address for email (MethodId null)";
        if (auto e = require_string(u, "Name", path)) return e;
        if (auto e = require_string(u, "RoleId", path)) return e;
    }
    if (auto* role = present(u, "RoleId")) {
        const auto r = role->IsString() ? json::view(*role) : std::string_view();
        if (r != "MSR1" && r != "MSR2" && r != "MSR3" && r != "MSR4")
            return path + ".RoleId: must be MSR1 (sender), MSR2 (recipient), MSR3 (cc) or MSR4 (bcc)";
    }
    return std::nullopt;
}

struct envelope {
    bool error_status = false;  // _meta.status "ERROR"
    int error_code = 0;         // records.errorCode, a number or a numeric string
    std::string user_message;
    std::string id;  // data[0].Id of a success
};

envelope read_envelope(const std::string& body) {
    envelope e;
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    if (d.HasParseError() || !d.IsObject()) return e;
    if (auto* meta = json::find(d, "_meta")) e.error_status = string_member(*meta, "status") == "ERROR";
    const rapidjson::Value* records = json::find(d, "records");
    if (records && records->IsArray()) records = records->Empty() ? nullptr : &(*records)[0];
    if (records && records->IsObject()) {
        if (auto* code = json::find(*records, "errorCode")) {
            if (code->IsInt())
                e.error_code = code->GetInt();
            else if (code->IsString())
                e.error_code = std::atoi(std::string(json::view(*code)).c_str());
        }
        e.user_message = std::string(string_member(*records, "userMessage"));
    }
    const rapidjson::Value* data = json::find(d, "data");
    if (data && data->IsArray()) data = data->Empty() ? nullptr : &(*data)[0];
    if (data && data->IsObject()) {
        if (auto* id = json::find(*data, "Id")) {
            if (id->IsString())
                e.id = std::string(json::view(*id));
            else if (id->IsNumber())
                e.id = json::to_string(*id);
        }
    }
    return e;
}

// The status the answer means: a 2xx carrying the error envelope counts as its errorCode.
int effective_status(const inbound_response& r, const envelope& e) {
    if (r.status >= 200 && r.status < 300 && e.error_status)
        return e.error_code >= 400 && e.error_code <= 599 ? e.error_code : 400;
    return r.status;
}

// What the answer says, for matching the documented texts: userMessage, else the raw body.
std::string_view said(const inbound_response& r, const envelope& e) {
    return e.user_message.empty() ? std::string_view(r.body) : std::string_view(e.user_message);
}

bool is_quota_answer(std::string_view text) {
    return contains_nocase(text, "time limit reached");
}

// The first "H:MM"/"HH:MM" in a text ("...try again tomorrow at 18:00 - 06:00" → 18:00).
std::optional<int> first_clock_time(std::string_view s) {
    auto digit = [&](std::size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '9'; };
    for (std::size_t i = 1; i < s.size(); ++i) {
        if (s[i] != ':' || !digit(i - 1) || !digit(i + 1) || !digit(i + 2) || digit(i + 3)) continue;
        std::size_t b = i - 1;
        if (b > 0 && digit(b - 1)) --b;
        if (b > 0 && digit(b - 1)) continue;
        if (auto t = onebox::parse_clock_time(s.substr(b, i + 3 - b))) return t;
    }
    return std::nullopt;
}

std::string clock_text(int minute) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d:%02d", minute / 60 % 24, minute % 60);
    return buf;
}

class onebox_adapter final : public adapter {
  public:
    std::string_view name() const override { return "onebox"; }

    std::shared_ptr<account_settings> load_account(const config_node& node,
                                                   const std::string& account_name) const override {
        auto a = std::make_shared<onebox_account>();
        a->name = account_name;
        a->host = node.string("host");
        while (!a->host.empty() && a->host.back() == '/') a->host.pop_back();
        if (!parse_http_url(a->host))
            node.fail("host", "must be an absolute URL such as https://ocdev.ciptadrasoft.net");
        a->static_token = node.string("token", "");
        const bool fetched = node.has("token_url");
        if (!a->static_token.empty() && fetched)
            node.fail("token", "give either token or token_url (with client_id and client_secret), not both");
        if (a->static_token.empty() && !fetched)
            node.fail("token", "missing: give token, or token_url with client_id and client_secret");
        if (fetched) {
            // The document only says the token comes "from the token API": its
            // field names are configurable (token_api), OAuth 2.0's by default.
            a->credentials = oauth2::read_client_credentials(node, {}, /*shape_configurable=*/true);
        } else if (node.has("token_api")) {
            node.fail("token_api", "only used with token_url");
        }
        if (auto t = node.string("quota_reopens_at", ""); !t.empty()) {
            a->quota_reopen_minute = onebox::parse_clock_time(t);
            if (!a->quota_reopen_minute) node.fail("quota_reopens_at", "must be a 24-hour local time HH:MM");
        }
        a->quota_time_zone = node.string("quota_time_zone", a->quota_time_zone);
        auto offset = onebox::parse_utc_offset(a->quota_time_zone);
        if (!offset)
            node.fail("quota_time_zone",
                      "must be a fixed UTC offset such as +07:00 (IANA zone names are not supported)");
        a->quota_offset_minutes = *offset;
        a->auth_pause = node.millis("auth_pause_ms", a->auth_pause, 0, 7 * 86400000LL);
        return a;
    }

    std::optional<std::string> validate(const job& j) const override {
        const auto& m = *j.message;
        const std::string p = "job.message";
        for (auto& member : m.GetObject()) {
            const auto key = json::view(member.name);
            bool known = false;
            for (auto f : known_fields) known = known || key == f;
            if (!known) return p + "." + std::string(key) + ": unknown field (Onebox field names are case-sensitive)";
        }
        auto* connection = present(m, "ConnectionId");
        if (!connection) return p + ".ConnectionId: missing";
        if (!is_number_id(*connection))
            return p + ".ConnectionId: must be a number (the id of a preregistered connection), not a string";

        // MethodId is the sub channel; null (or absent) is email.
        std::string_view method;
        if (auto* v = present(m, "MethodId")) {
            method = v->IsString() ? json::view(*v) : std::string_view("?");
            if (method != "DIRECT" && method != "POST" && method != "MENTION" && method != "COMMENT")
                return p + ".MethodId: must be null (email), \"DIRECT\", \"POST\", \"MENTION\" or \"COMMENT\"";
        }
        const bool email = method.empty();
        for (const char* key : {"Subject", "From", "To"})
            if (auto e = require_string(m, key, p)) return e;
        // "From"/"To": "Email: email address" (the other channels use ids and names).
        if (email) {
            for (const char* key : {"From", "To"})
                if (!onebox::is_email_address(string_member(m, key)))
                    return p + "." + key +
                           ": must be an email address for email (MethodId null), such as "
                           "test1@onebox.co.id";
        }
        for (const char* key : {"Cc", "Bcc"}) {
            auto* v = present(m, key);
            if (!v) continue;
            if (!v->IsString()) return p + "." + key + ": must be a string";
            if (!email && v->GetStringLength() > 0) return p + "." + key + ": used only for email (MethodId null)";
            if (email && v->GetStringLength() > 0 && !address_list(json::view(*v)))
                return p + "." + key + ": must be email addresses, separated by commas";
        }
        if (auto* v = present(m, "ConversationId"); v && !is_number_id(*v))
            return p + ".ConversationId: must be a number";
        if (auto* v = present(m, "PreviousId"); v && !is_id(*v)) return p + ".PreviousId: must be a number";
        if (auto* v = present(m, "PrevRemoteId"); v && !v->IsString()) return p + ".PrevRemoteId: must be a string";

        auto* content = present(m, "Content");
        if (!content) return p + ".Content: missing";
        if (!content->IsObject()) return p + ".Content: must be an object";
        for (const char* key : {"Body", "BodyText", "ContentType", "Encoding"})
            if (auto e = require_string(*content, key, p + ".Content")) return e;
        if (auto type = string_member(*content, "ContentType"); type != "text/html" && type != "text/plain")
            return p + ".Content.ContentType: must be \"text/html\" or \"text/plain\"";

        const bool has_previous = present(m, "PreviousId") != nullptr;
        if (method == "DIRECT" && !present(m, "ConversationId") && !has_previous)
            return p + ".ConversationId: required for DIRECT messages (or PreviousId, replying to a received one)";
        if (method == "COMMENT" && !has_previous)
            return p + ".PreviousId: required for COMMENT (the id of the message replied to)";
        if (method == "MENTION" && has_previous) {
            // A reply to a mention must name the customer it answers.
            for (const char* key : {"Body", "BodyText"})
                if (!mentions_someone(string_member(*content, key)))
                    return p + ".Content." + key + ": a MENTION reply must include the customer's @username";
        }

        if (auto* attachments = present(m, "Attachments")) {
            if (!attachments->IsArray()) return p + ".Attachments: must be an array";
            for (rapidjson::SizeType i = 0; i < attachments->Size(); ++i)
                if (auto e = check_attachment((*attachments)[i], p + ".Attachments[" + std::to_string(i) + "]"))
                    return e;
        }
        auto* users = present(m, "Users");
        if (users && !users->IsArray()) return p + ".Users: must be an array";
        if (email && (!users || users->Empty()))
            return p + ".Users: required for email (MethodId null): IdentityId, Name and RoleId of each contact";
        if (users) {
            for (rapidjson::SizeType i = 0; i < users->Size(); ++i)
                if (auto e = check_user((*users)[i], p + ".Users[" + std::to_string(i) + "]", email)) return e;
        }
        return std::nullopt;
    }

    outbound_request build_request(const job& j, const account_settings& account,
                                   const attempt_context& attempt) const override {
        auto& a = static_cast<const onebox_account&>(account);
        outbound_request r;
        r.url = a.host + "/api/message";
        r.headers.push_back(
            {"Authorization", "Bearer " + (a.credentials ? std::string(attempt.token) : a.static_token)});
        r.headers.push_back({"Content-Type", "application/json"});
        r.headers.push_back({"Accept", "application/json"});
        r.body = j.message_json;  // the documented body, exactly as the producer wrote it
        return r;
    }

    send_outcome classify(const inbound_response& response, const account_settings& account,
                          unix_ms now) const override {
        auto& a = static_cast<const onebox_account&>(account);
        const envelope env = read_envelope(response.body);
        const int status = effective_status(response, env);
        const std::string_view text = said(response, env);
        send_outcome o;
        o.http_status = response.status;
        o.response_excerpt = excerpt(response.body);
        if (auto rid = response.header("Request-Id"); !rid.empty())
            o.request_id = std::string(rid);
        else
            o.request_id = std::string(response.header("X-Request-Id"));
        if (status >= 200 && status < 300) {
            o.cls = outcome_class::success;
            o.provider_message_id = env.id;
            return o;
        }
        o.error = "Onebox " + std::to_string(status) + (env.user_message.empty() ? "" : ": " + env.user_message);
        if (status >= 400 && status < 500 && is_quota_answer(text)) {
            // The daily quota, answered as a 401: not a credentials problem. The whole
            // account holds off until the window reopens.
            o.cls = outcome_class::rate_limited;
            auto minute = a.quota_reopen_minute ? a.quota_reopen_minute : first_clock_time(text);
            const auto wait = minute ? onebox::quota_reopen_delay(now, *minute, a.quota_offset_minutes)
                                     : std::chrono::milliseconds(3600000);
            o.retry_after = wait;
            o.pause_account_for = wait;
            o.pause_reason = minute ? "Onebox quota: time limit reached; the window reopens at " + clock_text(*minute) +
                                          " " + a.quota_time_zone
                                    : "Onebox quota: time limit reached; trying again in an hour";
            return o;
        }
        switch (status) {
            case 401:
                o.cls = outcome_class::auth;
                o.pause_account_for = a.auth_pause;
                o.pause_reason =
                    contains_nocase(text, "expired token") ? "Onebox 401: token expired" : "Onebox 401: token rejected";
                break;
            case 429:
                o.cls = outcome_class::rate_limited;
                if (auto ra = response.header("Retry-After"); !ra.empty()) o.retry_after = parse_retry_after(ra, now);
                break;
            default:
                o.cls = classify_http_status(status);
        }
        return o;
    }

    // The quota answer waits up to a day: let its retry_after through unclamped.
    retry_settings default_retry() const override {
        retry_settings r;
        r.max_retry_after = 25h;
        return r;
    }

    std::optional<outbound_request> token_request(const account_settings& account) const override {
        auto& a = static_cast<const onebox_account&>(account);
        if (!a.credentials) return std::nullopt;  // static token
        return oauth2::token_request(*a.credentials);
    }

    token_result parse_token_response(const inbound_response& response, const account_settings& account,
                                      unix_ms now) const override {
        auto& a = static_cast<const onebox_account&>(account);
        if (!a.credentials) return adapter::parse_token_response(response, account, now);  // static token
        return oauth2::parse_token_response(response, a.credentials->api, "Onebox", a.auth_pause, now);
    }

    // Only the documented "Expired token" 401 means fetch a new one; the quota 401 does not.
    bool token_rejected(const inbound_response& response, const account_settings&) const override {
        const envelope env = read_envelope(response.body);
        const std::string_view text = said(response, env);
        return effective_status(response, env) == 401 && contains_nocase(text, "expired token") &&
               !is_quota_answer(text);
    }
};

}  // namespace

std::unique_ptr<adapter> make_onebox_adapter() {
    return std::make_unique<onebox_adapter>();
}

}  // namespace outq::adapters
