#include "webhook/webhook_adapter.hpp"

#include <rapidjson/document.h>

#include "outq/http_url.hpp"
#include "outq/json_util.hpp"

namespace outq::adapters {

namespace {

struct webhook_account : account_settings {
    std::string url;
    std::string method = "POST";
    std::vector<http_header> headers;
    std::string id_field = "id";
};

class webhook_adapter final : public adapter {
  public:
    std::string_view name() const override { return "webhook"; }

    std::shared_ptr<account_settings> load_account(const config_node& node,
                                                   const std::string& account_name) const override {
        auto a = std::make_shared<webhook_account>();
        a->name = account_name;
        a->url = node.string("url");
        if (!parse_http_url(a->url)) node.fail("url", "must be an absolute http:// or https:// URL");
        a->method = node.string("method", "POST");
        if (a->method != "POST" && a->method != "PUT" && a->method != "PATCH")
            node.fail("method", "must be POST, PUT or PATCH");
        if (auto headers = node.object("headers")) {
            for (auto& [name, value] : headers->string_members()) {
                if (name.empty() || name.find_first_of(" :\r\n") != std::string::npos)
                    headers->fail(name.c_str(), "is not a valid header name");
                if (value.find_first_of("\r\n") != std::string::npos)
                    headers->fail(name.c_str(), "header values cannot contain line breaks");
                if (!value.empty()) a->headers.push_back({name, value});  // empty: optional secret unset
            }
        }
        a->id_field = node.string("id_field", "id");
        return a;
    }

    std::optional<std::string> validate(const job&) const override {
        return std::nullopt;  // any JSON object is a valid webhook payload
    }

    outbound_request build_request(const job& j, const account_settings& account,
                                   const attempt_context& attempt) const override {
        auto& a = static_cast<const webhook_account&>(account);
        outbound_request r;
        r.method = a.method;
        r.url = a.url;
        r.body = j.message_json;  // as the producer wrote it: no re-serialisation
        r.headers.reserve(a.headers.size() + 3);
        r.headers.push_back({"Content-Type", "application/json"});
        r.headers.push_back({"Idempotency-Key", j.id});
        r.headers.push_back({"X-Outq-Attempt", std::to_string(attempt.attempt_number)});
        for (auto& h : a.headers) r.headers.push_back(h);
        return r;
    }

    send_outcome classify(const inbound_response& response, const account_settings& account,
                          unix_ms now) const override {
        auto& a = static_cast<const webhook_account&>(account);
        send_outcome o;
        o.http_status = response.status;
        o.cls = classify_http_status(response.status);
        o.response_excerpt = excerpt(response.body);
        if (auto rid = response.header("Request-Id"); !rid.empty())
            o.request_id = std::string(rid);
        else if (auto xrid = response.header("X-Request-Id"); !xrid.empty())
            o.request_id = std::string(xrid);
        if (response.status == 429 || response.status == 503) {
            if (auto ra = response.header("Retry-After"); !ra.empty()) o.retry_after = parse_retry_after(ra, now);
        }
        if (o.cls == outcome_class::success) {
            // Only the id member is read, not a DOM of the whole answer.
            o.provider_message_id = json::scalar_member(response.body, a.id_field).value_or("");
        } else {
            o.error = "HTTP " + std::to_string(response.status) + " from webhook";
        }
        return o;
    }
};

}  // namespace

std::unique_ptr<adapter> make_webhook_adapter() {
    return std::make_unique<webhook_adapter>();
}

}  // namespace outq::adapters
