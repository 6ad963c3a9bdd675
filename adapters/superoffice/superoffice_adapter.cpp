// SuperOffice `POST {base_url}/api/v1/ChatSession/{chatSessionId}/Messages`,
// per shared/seeds/superoffice-chatsession-add-message.txt. base_url is the
// tenant's own endpoint including its path prefix (https://online3.superoffice.com/Cust12345).
#include "superoffice/superoffice_adapter.hpp"

#include <rapidjson/document.h>

#include <array>

#include "outq/encoding.hpp"
#include "outq/http_url.hpp"
#include "outq/json_util.hpp"

namespace outq::adapters {

namespace {

struct superoffice_account : account_settings {
    std::string base_url;       // without a trailing slash
    std::string authorization;  // the whole Authorization header value
    std::string app_token;      // SO-AppToken; empty: not sent
    std::string language;       // SO-Language
    std::string time_zone;      // SO-TimeZone
    std::chrono::milliseconds auth_pause{600000};
};

constexpr std::array<std::string_view, 8> known_fields = {
    "ChatSessionId", "Type", "Message", "Author", "ReadByCustomer", "SpecialType", "SpecialParam", "WhenPosted"};

constexpr std::array<std::string_view, 4> message_types = {"Invalid", "ToCustomer", "ToUser", "Special"};

// ChatMessageSpecialType. The seed shows only "Block"; the names are those of
// SuperOffice's published enum (CRMScript NSChatMessageSpecialType, same names
// as the WebAPI's string enum).
constexpr std::array<std::string_view, 18> special_types = {"None",
                                                            "Welcome",
                                                            "Url",
                                                            "Block",
                                                            "NewSession",
                                                            "TransferedSession",
                                                            "Error",
                                                            "SessionDeleted",
                                                            "FaqSuccessQuestion",
                                                            "ClosedByUser",
                                                            "ClosedByCustomer",
                                                            "ClosedByIdle",
                                                            "TransferRejected",
                                                            "ReopenedByCustomer",
                                                            "ClickedOption",
                                                            "BotMessage",
                                                            "Options",
                                                            "IllegalFileType"};

template <std::size_t N>
bool one_of(std::string_view v, const std::array<std::string_view, N>& names) {
    for (auto n : names)
        if (v == n) return true;
    return false;
}

template <std::size_t N>
std::string list(const std::array<std::string_view, N>& names) {
    std::string out;
    for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
    return out;
}

const rapidjson::Value* present(const rapidjson::Value& obj, const char* key) {
    auto* v = json::find(obj, key);
    return v && !v->IsNull() ? v : nullptr;
}

std::string_view string_member(const rapidjson::Value& obj, const char* key) {
    auto* v = json::find(obj, key);
    return v && v->IsString() ? json::view(*v) : std::string_view();
}

// A value that goes into a header: non-empty, on one line.
std::string header_value(const config_node& node, const char* key) {
    auto v = node.string(key);
    if (v.empty()) node.fail(key, "must not be empty");
    if (v.find_first_of("\r\n") != std::string::npos) node.fail(key, "must not contain line breaks");
    return v;
}

std::string error_detail(const std::string& body) {
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    if (d.HasParseError() || !d.IsObject()) return {};
    for (const char* key : {"Message", "Error", "error_description", "error"})
        if (auto s = string_member(d, key); !s.empty()) return std::string(s);
    return {};
}

class superoffice_adapter final : public adapter {
  public:
    std::string_view name() const override { return "superoffice"; }

    std::shared_ptr<account_settings> load_account(const config_node& node,
                                                   const std::string& account_name) const override {
        auto a = std::make_shared<superoffice_account>();
        a->name = account_name;
        a->base_url = node.string("base_url");
        while (!a->base_url.empty() && a->base_url.back() == '/') a->base_url.pop_back();
        if (!parse_http_url(a->base_url))
            node.fail("base_url", "must be the tenant's URL, such as https://online3.superoffice.com/Cust12345");
        const auto auth = node.string("auth");
        // Keys of the other schemes are named, not left to "unknown key".
        auto only_with = [&](const char* key, const char* scheme) {
            if (node.has(key)) node.fail(key, std::string("only used with \"auth\": \"") + scheme + "\"");
        };
        if (auth == "basic") {
            const auto user = header_value(node, "username");
            if (user.find(':') != std::string::npos) node.fail("username", "cannot contain ':' (RFC 7617)");
            const auto password = node.string("password");
            a->authorization = "Basic " + base64_encode(user + ":" + password);
            only_with("ticket", "soticket");
            only_with("token", "bearer");
            only_with("app_token", "soticket\" or \"bearer");
        } else if (auth == "soticket") {
            a->authorization = "SOTicket " + header_value(node, "ticket");
            a->app_token = header_value(node, "app_token");
            only_with("username", "basic");
            only_with("password", "basic");
            only_with("token", "bearer");
        } else if (auth == "bearer") {
            a->authorization = "Bearer " + header_value(node, "token");
            if (node.has("app_token")) a->app_token = header_value(node, "app_token");
            only_with("username", "basic");
            only_with("password", "basic");
            only_with("ticket", "soticket");
        } else {
            node.fail("auth", "must be \"basic\", \"soticket\" or \"bearer\"");
        }
        if (node.has("language")) a->language = header_value(node, "language");
        if (node.has("time_zone")) a->time_zone = header_value(node, "time_zone");
        a->auth_pause = node.millis("auth_pause_ms", a->auth_pause, 0, 7 * 86400000LL);
        return a;
    }

    std::optional<std::string> validate(const job& j) const override {
        const auto& m = *j.message;
        const std::string p = "job.message.";
        for (auto& member : m.GetObject()) {
            const auto key = json::view(member.name);
            if (key == "ChatMessageId") {
                // The document's sample request carries one; SuperOffice assigns the
                // key itself, so it is accepted and not sent.
                if (!member.value.IsNull() && !member.value.IsInt()) return p + "ChatMessageId: must be an integer";
                continue;
            }
            if (!one_of(key, known_fields))
                return p + std::string(key) + ": unknown field (known: " + list(known_fields) + ")";
        }
        auto* session = present(m, "ChatSessionId");
        if (!session) return p + "ChatSessionId: missing";
        if (!session->IsInt() || session->GetInt() <= 0) return p + "ChatSessionId: must be a positive integer";

        std::string_view type = "ToCustomer";
        if (auto* t = present(m, "Type")) {
            type = t->IsString() ? json::view(*t) : std::string_view();
            if (!one_of(type, message_types)) return p + "Type: must be one of " + list(message_types);
        }
        auto* text = present(m, "Message");
        if (!text) return p + "Message: missing";
        if (!text->IsString()) return p + "Message: must be a string";
        if (text->GetStringLength() == 0 && type != "Special") return p + "Message: must not be empty";
        for (const char* key : {"Author", "SpecialParam"})
            if (auto* v = present(m, key); v && !v->IsString()) return p + key + ": must be a string";
        if (auto* v = present(m, "SpecialType")) {
            if (!v->IsString() || !one_of(json::view(*v), special_types))
                return p + "SpecialType: must be one of " + list(special_types);
        }
        // "ReadByCustomer Integer" in the request, int32 in the response (the seed).
        if (auto* v = present(m, "ReadByCustomer")) {
            if (!v->IsInt64() && !v->IsUint64())  // a string, a bool, 1.5, 1e3
                return p + "ReadByCustomer: must be an integer (0: not read)";
            if (!v->IsInt()) return p + "ReadByCustomer: must be an int32, -2147483648 to 2147483647";
        }
        if (auto* v = present(m, "WhenPosted"); v && !(v->IsString() && parse_rfc3339(json::view(*v))))
            return p + "WhenPosted: must be an ISO 8601 time with its zone, such as 2007-12-18T17:54:08.0543344+01:00";
        return std::nullopt;
    }

    outbound_request build_request(const job& j, const account_settings& account,
                                   const attempt_context& attempt) const override {
        auto& a = static_cast<const superoffice_account&>(account);
        const auto& m = *j.message;
        auto* id = json::find(m, "ChatSessionId");  // validated: a positive int
        const int session = id && id->IsInt() ? id->GetInt() : 0;
        outbound_request r;
        r.url = a.base_url + "/api/v1/ChatSession/" + std::to_string(session) + "/Messages";
        r.headers.push_back({"Authorization", a.authorization});
        if (!a.app_token.empty()) r.headers.push_back({"SO-AppToken", a.app_token});
        r.headers.push_back({"Accept", "application/json; charset=utf-8"});
        r.headers.push_back({"Content-Type", "application/json; charset=utf-8"});
        if (!a.language.empty()) r.headers.push_back({"SO-Language", a.language});
        if (!a.time_zone.empty()) r.headers.push_back({"SO-TimeZone", a.time_zone});

        // The ChatMessage carrier, in the document's order; ChatMessageId is SuperOffice's to assign.
        r.body = "{\"ChatSessionId\":" + std::to_string(session) + ",\"Type\":";
        auto* type = present(m, "Type");
        json::append_quoted(r.body, type && type->IsString() ? json::view(*type) : std::string_view("ToCustomer"));
        auto add_string = [&](const char* key) {
            if (auto* v = present(m, key); v && v->IsString()) {
                r.body += ",\"" + std::string(key) + "\":";
                json::append_quoted(r.body, json::view(*v));
            }
        };
        add_string("Message");
        add_string("Author");
        if (auto* v = present(m, "ReadByCustomer"); v && v->IsInt())
            r.body += ",\"ReadByCustomer\":" + std::to_string(v->GetInt());
        add_string("SpecialType");
        add_string("SpecialParam");
        r.body += ",\"WhenPosted\":";
        auto* when = present(m, "WhenPosted");
        json::append_quoted(r.body,
                            when && when->IsString() ? std::string(json::view(*when)) : format_rfc3339(attempt.now));
        r.body += '}';
        return r;
    }

    send_outcome classify(const inbound_response& response, const account_settings& account,
                          unix_ms now) const override {
        auto& a = static_cast<const superoffice_account&>(account);
        send_outcome o;
        o.http_status = response.status;
        o.response_excerpt = excerpt(response.body);
        if (auto rid = response.header("Request-Id"); !rid.empty())
            o.request_id = std::string(rid);
        else
            o.request_id = std::string(response.header("X-Request-Id"));
        if (response.status >= 200 && response.status < 300) {
            o.cls = outcome_class::success;
            rapidjson::Document d;
            d.Parse(response.body.data(), response.body.size());
            if (auto* id = d.HasParseError() ? nullptr : json::find(d, "ChatMessageId")) {
                if (id->IsNumber())
                    o.provider_message_id = json::to_string(*id);
                else if (id->IsString())
                    o.provider_message_id = std::string(json::view(*id));
            }
            return o;
        }
        o.cls = classify_http_status(response.status);
        o.error = "SuperOffice HTTP " + std::to_string(response.status);
        switch (response.status) {
            case 401:
                o.error = "SuperOffice 401: credentials rejected";
                o.pause_account_for = a.auth_pause;
                o.pause_reason = "SuperOffice 401: credentials rejected";
                break;
            case 421:
                // Since November 2023 a tenant answers only on its own numbered
                // subdomain (sod2., online3.…); sod./online. are for authentication.
                o.cls = outcome_class::permanent;
                o.error =
                    "SuperOffice 421 Misdirected Request: wrong subdomain for this tenant; set base_url to "
                    "the tenant's endpoint from the tenant status API (e.g. "
                    "https://online3.superoffice.com/Cust12345)";
                o.pause_account_for = a.auth_pause;
                o.pause_reason = "SuperOffice 421: base_url uses the wrong subdomain for the tenant";
                break;
            case 429:
                o.error = "SuperOffice 429: too many requests";
                if (auto ra = response.header("Retry-After"); !ra.empty()) o.retry_after = parse_retry_after(ra, now);
                break;
            default:
                break;
        }
        if (auto detail = error_detail(response.body); !detail.empty()) o.error += ": " + detail;
        return o;
    }
};

}  // namespace

std::unique_ptr<adapter> make_superoffice_adapter() {
    return std::make_unique<superoffice_adapter>();
}

}  // namespace outq::adapters
