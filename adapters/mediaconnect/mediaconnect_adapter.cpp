// MediaConnect `POST {base_url}/v1/client/message` ("Send message - client mode"),
// per shared/seeds/mediaconnect-send-message-client-mode.txt: only the client is
// logged in, with an OAuth 2.0 client credentials Bearer token.
#include "mediaconnect/mediaconnect_adapter.hpp"

#include <rapidjson/document.h>

#include <array>
#include <limits>

#include "common/oauth2_client.hpp"
#include "outq/http_url.hpp"
#include "outq/json_util.hpp"

namespace outq::adapters {

namespace {

struct mediaconnect_account : account_settings {
    std::string base_url;  // without a trailing slash
    oauth2::client_credentials credentials;
    std::chrono::milliseconds auth_pause{600000};
};

// The documented body fields, in the order they are sent.
constexpr std::array<const char*, 4> body_fields = {"product", "caseType", "messageSubject", "messageContent"};

std::string_view string_member(const rapidjson::Value& obj, const char* key) {
    auto* v = json::find(obj, key);
    return v && v->IsString() ? json::view(*v) : std::string_view();
}

// Length as the API counts it: UTF-16 code units (a character outside the BMP
// counts twice), never fewer than the code points, so a message that passes
// here is not too long there.
std::size_t utf16_length(std::string_view s) {
    std::size_t n = 0;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte
        n += c >= 0xF0 ? 2 : 1;
    }
    return n;
}

// nullopt when the optional string field is absent (or null) or fits `limit`.
std::optional<std::string> check_optional_string(const rapidjson::Value& message, const char* field,
                                                 std::size_t limit) {
    auto* v = json::find(message, field);
    if (!v || v->IsNull()) return std::nullopt;
    const std::string name = std::string("job.message.") + field;
    if (!v->IsString() || v->GetStringLength() == 0) return name + ": must be a non-empty string";
    if (const auto n = utf16_length(json::view(*v)); n > limit)
        return name + ": at most " + std::to_string(limit) + " characters (got " + std::to_string(n) + ")";
    return std::nullopt;
}

// The first error text a JSON error body offers; MediaConnect documents no error shape.
std::string error_detail(const std::string& body) {
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    if (d.HasParseError() || !d.IsObject()) return {};
    for (const char* key : {"message", "error_description", "errorMessage", "error"})
        if (auto s = string_member(d, key); !s.empty()) return std::string(s);
    return {};
}

// The id of the IN message (the one sent to customer service) in a 200 answer's
// `messages` list. The list can hold the thread's earlier messages too: prefer
// an IN message with the job's messageContent, then the newest IN message.
std::string in_message_id(const std::string& body, const job* j) {
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    auto* messages = d.HasParseError() ? nullptr : json::find(d, "messages");
    if (!messages || !messages->IsArray()) return {};
    const std::string_view content = j ? string_member(*j->message, "messageContent") : std::string_view();
    const rapidjson::Value* best = nullptr;
    bool best_matches = false;
    std::int64_t best_date = std::numeric_limits<std::int64_t>::min();
    for (auto& m : messages->GetArray()) {
        if (string_member(m, "direction") != "IN") continue;
        const bool matches = j && string_member(m, "messageContent") == content;
        auto* date_value = json::find(m, "date");
        const std::int64_t date = date_value && date_value->IsInt64() ? date_value->GetInt64() : 0;
        if (!best || (matches && !best_matches) || (matches == best_matches && date >= best_date)) {
            best = &m;
            best_matches = matches;
            best_date = date;
        }
    }
    auto* id = best ? json::find(*best, "id") : nullptr;
    if (!id) return {};
    if (id->IsString()) return std::string(json::view(*id));
    if (id->IsNumber()) return json::to_string(*id);
    return {};
}

class mediaconnect_adapter final : public adapter {
  public:
    std::string_view name() const override { return "mediaconnect"; }

    std::shared_ptr<account_settings> load_account(const config_node& node,
                                                   const std::string& account_name) const override {
        auto a = std::make_shared<mediaconnect_account>();
        a->name = account_name;
        a->base_url = node.string("base_url");
        while (!a->base_url.empty() && a->base_url.back() == '/') a->base_url.pop_back();
        if (!parse_http_url(a->base_url))
            node.fail("base_url", "must be an absolute URL such as https://api.mediaconnect.no/capi");
        a->credentials = oauth2::read_client_credentials(node);
        a->auth_pause = node.millis("auth_pause_ms", a->auth_pause, 0, 7 * 86400000LL);
        return a;
    }

    std::optional<std::string> validate(const job& j) const override {
        const auto& m = *j.message;
        for (auto& member : m.GetObject()) {
            const auto key = json::view(member.name);
            bool known = false;
            for (const char* f : body_fields) known = known || key == f;
            if (!known)
                return "job.message." + std::string(key) +
                       ": unknown field (MediaConnect takes product, caseType, messageSubject, messageContent)";
        }
        if (auto e = check_optional_string(m, "product", 12)) return e;
        if (auto* t = json::find(m, "caseType"); t && !t->IsNull()) {
            if (!t->IsString() || (json::view(*t) != "A" && json::view(*t) != "B"))
                return "job.message.caseType: must be \"A\" (follow up complaint) or \"B\" (cancellation)";
        }
        if (auto e = check_optional_string(m, "messageSubject", 40)) return e;
        auto* content = json::find(m, "messageContent");
        if (!content || content->IsNull()) return "job.message.messageContent: missing";
        if (auto e = check_optional_string(m, "messageContent", 32000)) return e;
        return std::nullopt;
    }

    outbound_request build_request(const job& j, const account_settings& account,
                                   const attempt_context& attempt) const override {
        auto& a = static_cast<const mediaconnect_account&>(account);
        outbound_request r;
        r.url = a.base_url + "/v1/client/message";
        r.headers.push_back({"Authorization", "Bearer " + std::string(attempt.token)});
        r.headers.push_back({"Content-Type", "application/json"});
        r.headers.push_back({"Accept", "application/json"});
        r.body = "{";
        for (const char* field : body_fields) {
            auto* v = json::find(*j.message, field);
            if (!v || !v->IsString()) continue;  // validated: absent or null
            if (r.body.size() > 1) r.body += ',';
            json::append_quoted(r.body, field);
            r.body += ':';
            json::append_quoted(r.body, json::view(*v));
        }
        r.body += '}';
        return r;
    }

    send_outcome classify(const inbound_response& response, const account_settings& account,
                          unix_ms now) const override {
        return classify_for(response, account, nullptr, now);
    }

    // Single sends come here too: with the job at hand, the IN message is the one
    // with its content.
    std::vector<send_outcome> classify_batch(const inbound_response& response, const std::vector<batch_item>& items,
                                             const account_settings& account, unix_ms now,
                                             bool& halve_batch) const override {
        halve_batch = false;
        std::vector<send_outcome> out;
        out.reserve(items.size());
        for (auto& item : items)
            out.push_back(classify_for(response, account, items.size() == 1 ? item.j : nullptr, now));
        return out;
    }

    std::optional<outbound_request> token_request(const account_settings& account) const override {
        return oauth2::token_request(static_cast<const mediaconnect_account&>(account).credentials);
    }

    token_result parse_token_response(const inbound_response& response, const account_settings& account,
                                      unix_ms now) const override {
        auto& a = static_cast<const mediaconnect_account&>(account);
        return oauth2::parse_token_response(response, a.credentials.api, "MediaConnect", a.auth_pause, now);
    }

    // A 401 from the message endpoint: the token expired or was revoked early.
    bool token_rejected(const inbound_response& response, const account_settings&) const override {
        return response.status == 401;
    }

  private:
    send_outcome classify_for(const inbound_response& response, const account_settings& account, const job* j,
                              unix_ms now) const {
        auto& a = static_cast<const mediaconnect_account&>(account);
        send_outcome o;
        o.http_status = response.status;
        o.response_excerpt = excerpt(response.body);
        if (auto rid = response.header("Request-Id"); !rid.empty())
            o.request_id = std::string(rid);
        else
            o.request_id = std::string(response.header("X-Request-Id"));
        if (response.status >= 200 && response.status < 300) {
            o.cls = outcome_class::success;
            o.provider_message_id = in_message_id(response.body, j);
            return o;
        }
        o.cls = classify_http_status(response.status);
        o.error = "MediaConnect HTTP " + std::to_string(response.status);
        switch (response.status) {
            case 400:
                o.error = "MediaConnect 400 (bad request)";
                break;
            case 401:
                // Still 401 with a freshly fetched token: the client may not send messages.
                o.error = "MediaConnect 401: the access token was refused";
                o.pause_account_for = a.auth_pause;
                o.pause_reason = "MediaConnect 401 with a fresh token: client not allowed";
                break;
            case 429:
                o.error = "MediaConnect 429: too many requests";
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

std::unique_ptr<adapter> make_mediaconnect_adapter() {
    return std::make_unique<mediaconnect_adapter>();
}

}  // namespace outq::adapters
