// Mews Connector `POST {PlatformAddress}/api/connector/v1/messages/add` and
// `messages/getAll`, per shared/seeds/mews-connector-messages-*.txt.
#include "mews/mews_adapter.hpp"

#include <rapidjson/document.h>

#include <cstdint>
#include <unordered_map>

#include "outq/http_url.hpp"
#include "outq/json_util.hpp"

namespace outq::adapters {

namespace {

using namespace std::chrono_literals;

struct mews_account : account_settings {
    std::string platform_address;  // without a trailing slash
    std::string client_token;
    std::string access_token;
    std::string client;
    std::size_t batch_size = 100;
    std::chrono::milliseconds batch_wait{5};
    std::chrono::milliseconds auth_pause{600000};
};

bool is_uuid(std::string_view s) {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

std::string_view string_member(const rapidjson::Value& obj, const char* key) {
    auto* v = json::find(obj, key);
    return v && v->IsString() ? json::view(*v) : std::string_view();
}

// Whether an answer body holds a Messages array (what was added).
bool has_messages(const inbound_response& response) {
    rapidjson::Document d;
    d.Parse(response.body.data(), response.body.size());
    if (d.HasParseError() || !d.IsObject()) return false;
    auto* m = json::find(d, "Messages");
    return m && m->IsArray();
}

// The Identifier a job's message goes out with: its own, or the job id.
std::string_view identifier_of(const job& j) {
    auto id = string_member(*j.message, "Identifier");
    return id.empty() ? std::string_view(j.id) : id;
}

void append_credentials(std::string& body, const mews_account& a) {
    body += "{\"ClientToken\":";
    json::append_quoted(body, a.client_token);
    body += ",\"AccessToken\":";
    json::append_quoted(body, a.access_token);
    body += ",\"Client\":";
    json::append_quoted(body, a.client);
}

// The ConnectorApiExceptionResult envelope of an error answer.
void read_error_envelope(const inbound_response& r, send_outcome& o) {
    rapidjson::Document d;
    d.Parse(r.body.data(), r.body.size());
    if (!d.HasParseError() && d.IsObject()) {
        if (auto m = string_member(d, "Message"); !m.empty()) o.error += ": " + std::string(m);
        if (o.request_id.empty()) o.request_id = std::string(string_member(d, "RequestId"));
    }
}

class mews_adapter final : public adapter {
  public:
    std::string_view name() const override { return "mews"; }

    std::shared_ptr<account_settings> load_account(const config_node& node,
                                                   const std::string& account_name) const override {
        auto a = std::make_shared<mews_account>();
        a->name = account_name;
        a->platform_address = node.string("platform_address");
        while (!a->platform_address.empty() && a->platform_address.back() == '/') a->platform_address.pop_back();
        if (!parse_http_url(a->platform_address))
            node.fail("platform_address", "must be an absolute https:// URL such as https://api.mews.com");
        a->client_token = node.string("client_token");
        a->access_token = node.string("access_token");
        a->client = node.string("client", std::string("outq/") + OUTQ_VERSION);
        for (auto [key, value] : {std::pair{"client_token", &a->client_token},
                                  std::pair{"access_token", &a->access_token}, std::pair{"client", &a->client}})
            if (value->empty()) node.fail(key, "must not be empty");
        a->batch_size = static_cast<std::size_t>(node.integer("batch_size", 100, 1, 1000));
        a->batch_wait = node.millis("batch_wait_ms", 5ms, 0, 10000);
        a->auth_pause = node.millis("auth_pause_ms", a->auth_pause, 0, 7 * 86400000LL);
        return a;
    }

    std::optional<std::string> validate(const job& j) const override {
        auto* thread = json::find(*j.message, "MessageThreadId");
        if (!thread) return "job.message.MessageThreadId: missing";
        if (!thread->IsString() || !is_uuid(json::view(*thread))) return "job.message.MessageThreadId: must be a UUID";
        auto* text = json::find(*j.message, "Text");
        if (!text) return "job.message.Text: missing";
        if (!text->IsString() || text->GetStringLength() == 0) return "job.message.Text: must be a non-empty string";
        if (auto* id = json::find(*j.message, "Identifier"); id && !id->IsNull() && !id->IsString())
            return "job.message.Identifier: must be a string";
        return std::nullopt;
    }

    rate_limit_settings default_rate_limit() const override {
        rate_limit_settings l;  // documented: 200 requests per AccessToken per 30 s
        l.requests = 200;
        l.window = 30000ms;
        return l;
    }

    std::size_t max_batch(const account_settings& account) const override {
        return static_cast<const mews_account&>(account).batch_size;
    }
    std::chrono::milliseconds batch_wait(const account_settings& account) const override {
        return static_cast<const mews_account&>(account).batch_wait;
    }

    outbound_request build_request(const job& j, const account_settings& account,
                                   const attempt_context& attempt) const override {
        return build_batch_request({batch_item{&j, attempt.attempt_number}}, account, attempt);
    }

    outbound_request build_batch_request(const std::vector<batch_item>& items, const account_settings& account,
                                         const attempt_context&) const override {
        auto& a = static_cast<const mews_account&>(account);
        outbound_request r;
        r.url = a.platform_address + "/api/connector/v1/messages/add";
        r.headers.push_back({"Content-Type", "application/json"});
        r.body.reserve(200 + items.size() * 160);
        append_credentials(r.body, a);
        r.body += ",\"Messages\":[";
        for (std::size_t i = 0; i < items.size(); ++i) {
            const job& j = *items[i].j;
            if (i) r.body += ',';
            r.body += "{\"MessageThreadId\":";
            json::append_quoted(r.body, string_member(*j.message, "MessageThreadId"));
            r.body += ",\"Text\":";
            json::append_quoted(r.body, string_member(*j.message, "Text"));
            r.body += ",\"Identifier\":";
            json::append_quoted(r.body, identifier_of(j));
            r.body += '}';
        }
        r.body += "]}";
        return r;
    }

    // Request-level classification (the same for every job of the request).
    send_outcome classify(const inbound_response& response, const account_settings& account,
                          unix_ms now) const override {
        auto& a = static_cast<const mews_account&>(account);
        send_outcome o;
        o.http_status = response.status;
        o.response_excerpt = excerpt(response.body);
        o.request_id = std::string(response.header("Request-Id"));
        switch (response.status) {
            case 200:
                o.cls = outcome_class::success;
                return o;
            case 400:
                o.cls = outcome_class::permanent;
                o.error = "Mews 400 (bad request)";
                break;
            case 401:
                o.cls = outcome_class::auth;
                o.error = "Mews 401: ClientToken or AccessToken invalid, or the integration is disabled";
                o.pause_account_for = a.auth_pause;
                o.pause_reason = "Mews 401: token invalid or integration disabled";
                break;
            case 403:
                o.cls = outcome_class::permanent;
                o.error = "Mews 403 (refused by business rules)";
                break;
            case 408:
                o.cls = outcome_class::retryable;
                o.error = "Mews 408: request too heavy";
                break;
            case 429:
                o.cls = outcome_class::rate_limited;
                o.error = "Mews 429: too many requests";
                if (auto ra = response.header("Retry-After"); !ra.empty()) o.retry_after = parse_retry_after(ra, now);
                break;
            default:
                o.cls = classify_http_status(response.status);
                o.error = "Mews HTTP " + std::to_string(response.status);
        }
        read_error_envelope(response, o);
        return o;
    }

    std::vector<send_outcome> classify_batch(const inbound_response& response, const std::vector<batch_item>& items,
                                             const account_settings& account, unix_ms now,
                                             bool& halve_batch) const override {
        const send_outcome common = classify(response, account, now);
        // 408: too heavy. 400/403 for a batch: Mews refused the request as a
        // whole (its error envelope, no Messages: nothing was added), maybe
        // for one message in it (a thread the integration did not create):
        // the halves find which, and the others are sent.
        const bool refused_whole =
            (response.status == 400 || response.status == 403) && items.size() > 1 && !has_messages(response);
        halve_batch = response.status == 408 || refused_whole;
        if (common.cls != outcome_class::success) return std::vector<send_outcome>(items.size(), common);
        // 200: split the answer per Identifier, so each job gets its own result. Jobs
        // sharing an Identifier take the answer's messages with it in order.
        std::vector<std::string_view> message_ids;
        std::vector<std::size_t> next_same;                       // the next answer with the same Identifier
        std::unordered_map<std::string_view, std::size_t> first;  // Identifier → its next unused answer
        constexpr std::size_t none = SIZE_MAX;
        rapidjson::Document d;
        d.Parse(response.body.data(), response.body.size());
        if (!d.HasParseError() && d.IsObject()) {
            if (auto* messages = json::find(d, "Messages"); messages && messages->IsArray()) {
                std::vector<std::string_view> identifiers;
                for (auto& m : messages->GetArray()) {
                    auto* message = json::find(m, "Message");
                    if (!message) continue;
                    identifiers.push_back(string_member(m, "Identifier"));
                    message_ids.push_back(string_member(*message, "Id"));
                }
                next_same.assign(message_ids.size(), none);
                first.reserve(message_ids.size());
                for (std::size_t i = message_ids.size(); i-- > 0;) {
                    auto [it, fresh] = first.try_emplace(identifiers[i], i);
                    if (!fresh) {
                        next_same[i] = it->second;
                        it->second = i;
                    }
                }
            }
        }
        std::vector<send_outcome> out;
        out.reserve(items.size());
        for (auto& item : items) {
            send_outcome o;
            o.http_status = response.status;
            o.request_id = common.request_id;
            auto it = first.find(identifier_of(*item.j));
            if (it != first.end() && it->second != none && !message_ids[it->second].empty()) {
                o.cls = outcome_class::success;
                o.provider_message_id = std::string(message_ids[it->second]);
                it->second = next_same[it->second];
                o.response_excerpt = "{\"Id\":\"" + o.provider_message_id + "\"}";
            } else {
                // Only this job is in doubt: Mews answered for the others.
                o.cls = outcome_class::ambiguous;
                o.error =
                    "Mews answered 200 without this message (Identifier " + std::string(identifier_of(*item.j)) + ")";
                o.response_excerpt = common.response_excerpt;
            }
            out.push_back(std::move(o));
        }
        return out;
    }

    bool batch_too_heavy(const inbound_response& response) const override { return response.status == 408; }

    std::string batch_key(const job& j) const override {
        return std::string(string_member(*j.message, "MessageThreadId"));
    }

    std::string reconcile_key(const job& j) const override {
        return std::string(string_member(*j.message, "MessageThreadId"));
    }

    std::optional<outbound_request> reconcile_request(const std::vector<const job*>& jobs,
                                                      const account_settings& account, unix_ms,
                                                      std::string_view cursor) const override {
        if (jobs.empty()) return std::nullopt;
        auto& a = static_cast<const mews_account&>(account);
        outbound_request r;
        r.url = a.platform_address + "/api/connector/v1/messages/getAll";
        r.headers.push_back({"Content-Type", "application/json"});
        append_credentials(r.body, a);
        r.body += ",\"MessageThreadIds\":[";
        json::append_quoted(r.body, string_member(*jobs.front()->message, "MessageThreadId"));
        r.body += "],\"Limitation\":{\"Count\":" + std::to_string(reconcile_page_size);
        if (!cursor.empty()) {
            r.body += ",\"Cursor\":";
            json::append_quoted(r.body, cursor);
        }
        r.body += "}}";
        return r;
    }

    reconcile_page parse_reconcile(const inbound_response& response, const std::vector<const job*>& jobs,
                                   const account_settings& account, const std::vector<unix_ms>& since,
                                   unix_ms now) const override {
        reconcile_page page;
        if (response.status != 200) {
            // As a send's answer would be: a 429 pauses the account, a 401 is auth…
            page.failure = classify(response, account, now);
            page.failure.error = "messages/getAll: " + page.failure.error;
            return page;
        }
        rapidjson::Document d;
        d.Parse(response.body.data(), response.body.size());
        auto* messages = d.HasParseError() ? nullptr : json::find(d, "Messages");
        if (!messages || !messages->IsArray()) {
            page.failure.cls = outcome_class::retryable;
            page.failure.http_status = response.status;
            page.failure.error = "messages/getAll answer has no Messages array";
            return page;
        }
        page.what = reconcile_page::kind::page;
        page.candidates.resize(jobs.size());
        // Allow the provider's clock to run a little behind ours.
        constexpr unix_ms clock_slack = 5000;
        unix_ms earliest = INT64_MAX;
        for (auto t : since) earliest = std::min(earliest, t - clock_slack);
        unix_ms oldest_seen = INT64_MAX;
        for (auto& m : messages->GetArray()) {
            const auto created = parse_rfc3339(string_member(m, "CreatedUtc")).value_or(0);
            oldest_seen = std::min(oldest_seen, created);
            std::string_view sender;
            if (auto* s = json::find(m, "Sender")) {
                if (s->IsString())
                    sender = json::view(*s);
                else if (s->IsObject())
                    sender = string_member(*s, "Discriminator");
            }
            const auto id = string_member(m, "Id");
            if (sender != "Application" || id.empty()) continue;
            const auto text = string_member(m, "Text");
            for (std::size_t i = 0; i < jobs.size(); ++i)
                if (created >= since[i] - clock_slack && text == string_member(*jobs[i]->message, "Text"))
                    page.candidates[i].emplace_back(id);
        }
        const auto cursor = string_member(d, "Cursor");
        if (!cursor.empty() && messages->Size() >= reconcile_page_size && oldest_seen >= earliest)
            page.cursor = std::string(cursor);
        return page;
    }

  private:
    static constexpr unsigned reconcile_page_size = 100;
};

}  // namespace

std::unique_ptr<adapter> make_mews_adapter() {
    return std::make_unique<mews_adapter>();
}

}  // namespace outq::adapters
