#include <doctest/doctest.h>

#include "outq/adapter.hpp"
#include "register_all.hpp"

using namespace outq;

namespace {

// Every answer is classified as if it came in at this time: adapters take the
// time as a value and never read the clock.
constexpr unix_ms test_now = 1795341600000;  // 2026-11-22T10:00:00Z

struct fixture {
    adapter_registry registry;
    worker_config config;
    const adapter* webhook = nullptr;
    fixture() {
        adapters::register_builtin_adapters(registry);
        config = parse_config(R"({"providers": {"webhook": {"accounts": {"a": {
            "url": "https://hooks.example:8443/in?x=1", "headers": {"Authorization": "Bearer t", "X-Empty": ""},
            "id_field": "messageId"}}}}})",
                              registry);
        webhook = registry.find("webhook");
    }
    const account_settings& account() const { return *config.providers.at("webhook").accounts.at("a"); }
};

}  // namespace

TEST_CASE("webhook builds a JSON POST with idempotency key and configured headers") {
    fixture f;
    auto parsed = parse_job(R"({"id":"j-1","provider":"webhook","account":"a","message":{"text":"hi","n":1}})", "1-0");
    REQUIRE(parsed.ok());
    auto req = f.webhook->build_request(*parsed.value, f.account(), attempt_context{2, 0, {}});
    CHECK(req.method == "POST");
    CHECK(req.url == "https://hooks.example:8443/in?x=1");
    CHECK(req.body == R"({"text":"hi","n":1})");
    auto header = [&](std::string_view name) -> std::string {
        for (auto& h : req.headers)
            if (h.name == name) return h.value;
        return "<absent>";
    };
    CHECK(header("Content-Type") == "application/json");
    CHECK(header("Idempotency-Key") == "j-1");
    CHECK(header("X-Outq-Attempt") == "2");
    CHECK(header("Authorization") == "Bearer t");
    CHECK(header("X-Empty") == "<absent>");
}

TEST_CASE("webhook classifies answers and reads the provider's id") {
    fixture f;
    inbound_response ok{200, {{"X-Request-Id", "req-9"}}, R"({"messageId":"m-77"})"};
    auto o = f.webhook->classify(ok, f.account(), test_now);
    CHECK(o.cls == outcome_class::success);
    CHECK(o.provider_message_id == "m-77");
    CHECK(o.request_id == "req-9");
    inbound_response limited{429, {{"Retry-After", "7"}}, ""};
    auto l = f.webhook->classify(limited, f.account(), test_now);
    CHECK(l.cls == outcome_class::rate_limited);
    CHECK(l.retry_after == std::chrono::milliseconds(7000));
    inbound_response bad{400, {}, R"({"error":"bad field x"})"};
    auto b = f.webhook->classify(bad, f.account(), test_now);
    CHECK(b.cls == outcome_class::permanent);
    CHECK(b.response_excerpt == R"({"error":"bad field x"})");
    CHECK(b.error.find("400") != std::string::npos);
    inbound_response garbage{200, {}, "not json"};
    CHECK(f.webhook->classify(garbage, f.account(), test_now).cls == outcome_class::success);
    CHECK(f.webhook->classify(garbage, f.account(), test_now).provider_message_id.empty());
}

TEST_CASE("webhook: a Retry-After date is measured from the answer's time, not the clock") {
    fixture f;
    using std::chrono::milliseconds;
    for (int status : {429, 503}) {
        const inbound_response r{status, {{"Retry-After", "Sun, 22 Nov 2026 10:00:30 GMT"}}, ""};
        CHECK(f.webhook->classify(r, f.account(), test_now).retry_after == milliseconds(30000));
        CHECK(f.webhook->classify(r, f.account(), test_now + 10000).retry_after == milliseconds(20000));
        CHECK(f.webhook->classify(r, f.account(), test_now + 60000).retry_after == milliseconds(0));
    }
}

TEST_CASE("webhook reads only a top-level string or number id, whatever else the answer holds") {
    fixture f;
    auto id = [&](std::string body) {
        return f.webhook->classify(inbound_response{200, {}, std::move(body)}, f.account(), test_now)
            .provider_message_id;
    };
    CHECK(id(R"({"data":{"messageId":"nested"},"messageId":"top"})") == "top");
    CHECK(id(R"( { "x" : [1, {"messageId": "no"}], "messageId" : 42 } )") == "42");
    CHECK(id(R"({"messageId":"a\"b\u00e9"})") == "a\"b\xc3\xa9");  // escapes decoded
    CHECK(id(R"({"messageId":null})").empty());
    CHECK(id(R"({"messageId":{"v":1}})").empty());
    CHECK(id(R"({"messageId":})").empty());
    CHECK(id(R"({"messageId":"unterminated)").empty());
    CHECK(id(R"(["messageId","x"])").empty());
    CHECK(id(R"({"other":"x"})").empty());
    CHECK(id("").empty());
}
