#include <doctest/doctest.h>

#include <cstdlib>

#include "outq/adapter.hpp"
#include "outq/encoding.hpp"
#include "outq/sha256.hpp"
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

namespace {

struct signing_fixture {
    adapter_registry registry;
    worker_config config;
    const adapter* webhook = nullptr;
    explicit signing_fixture(const std::string& secrets) {
        adapters::register_builtin_adapters(registry);
        config = parse_config(R"({"providers": {"webhook": {"accounts": {"a": {"url": "https://hooks.example/in",
            "signing_secrets": )" +
                                  secrets + "}}}}}",
                              registry);
        webhook = registry.find("webhook");
    }
    outbound_request request(const std::string& job_json, unix_ms now) {
        auto parsed = parse_job(job_json, "1-0");
        REQUIRE(parsed.ok());
        return webhook->build_request(*parsed.value, *config.providers.at("webhook").accounts.at("a"),
                                      attempt_context{1, now, {}});
    }
};

std::string header_of(const outbound_request& r, std::string_view name) {
    for (auto& h : r.headers)
        if (h.name == name) return h.value;
    return "<absent>";
}

std::string config_error_of(const std::string& account) {
    adapter_registry registry;
    adapters::register_builtin_adapters(registry);
    try {
        parse_config(R"({"providers": {"webhook": {"accounts": {"a": )" + account + "}}}}", registry);
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("webhook signing: the Standard Webhooks reference vector") {
    // standard-webhooks/standard-webhooks libraries/python/tests/test_webhooks.py,
    // test_sign_function (the same vector as svix-webhooks' TestWebhookSign).
    signing_fixture f(R"(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])");
    auto r = f.request(
        R"({"id":"msg_p5jXN8AQM9LWM0D4loKWxJek","provider":"webhook","account":"a","message":{"test": 2432232314}})",
        1614265330000);
    CHECK(r.body == R"({"test": 2432232314})");  // signed exactly as sent
    CHECK(header_of(r, "webhook-id") == "msg_p5jXN8AQM9LWM0D4loKWxJek");
    CHECK(header_of(r, "webhook-timestamp") == "1614265330");
    CHECK(header_of(r, "webhook-signature") == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    CHECK(header_of(r, "Idempotency-Key") == "msg_p5jXN8AQM9LWM0D4loKWxJek");
    // The prefix may be left out, as in the reference libraries; the timestamp is the attempt's, in seconds.
    signing_fixture bare(R"(["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])");
    auto later = bare.request(
        R"({"id":"msg_p5jXN8AQM9LWM0D4loKWxJek","provider":"webhook","account":"a","message":{"test": 2432232314}})",
        1614265330999);
    CHECK(header_of(later, "webhook-timestamp") == "1614265330");
    CHECK(header_of(later, "webhook-signature") == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST_CASE("webhook signing: one signature per secret, for rotation; an id without dots") {
    setenv("OUTQ_TEST_OLD_SECRET", "whsec_b3V0cS1yb3RhdGlvbi10ZXN0LWtleS0wMDAx", 1);
    unsetenv("OUTQ_TEST_UNSET_SECRET");
    signing_fixture f(
        R"(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", {"env": "OUTQ_TEST_OLD_SECRET"},
            {"env": "OUTQ_TEST_UNSET_SECRET", "default": ""}])");
    auto r = f.request(
        R"({"id":"msg_p5jXN8AQM9LWM0D4loKWxJek","provider":"webhook","account":"a","message":{"test": 2432232314}})",
        1614265330000);
    const auto signatures = header_of(r, "webhook-signature");
    CHECK(signatures.rfind("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,", 0) == 0);
    // The second: HMAC with the decoded old secret (computed here with the same primitives).
    const auto old_key = *base64_decode("b3V0cS1yb3RhdGlvbi10ZXN0LWtleS0wMDAx");
    const auto mac = hmac_sha256(old_key, {"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.", R"({"test": 2432232314})"});
    CHECK(signatures.substr(signatures.find(' ') + 1) ==
          "v1," + base64_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size())));
    // A '.' separates the signed parts: the id carries none, percent-encoded
    // (so is every byte but letters, digits, '-' and '_'); it is the same on every attempt.
    auto dotted = f.request(R"({"id":"order.42/é","provider":"webhook","account":"a","message":{}})", 5000);
    CHECK(header_of(dotted, "webhook-id") == "order%2E42%2F%C3%A9");
    CHECK(header_of(dotted, "Idempotency-Key") == "order.42/é");
    const auto dotted_mac =
        hmac_sha256(*base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), {"order%2E42%2F%C3%A9.5.{}"});
    CHECK(header_of(dotted, "webhook-signature").substr(0, 47) ==
          "v1," + base64_encode(std::string_view(reinterpret_cast<const char*>(dotted_mac.data()), dotted_mac.size())));
    unsetenv("OUTQ_TEST_OLD_SECRET");
}

TEST_CASE("webhook signing: without signing_secrets nothing is signed") {
    fixture f;
    auto parsed = parse_job(R"({"id":"j-1","provider":"webhook","account":"a","message":{}})", "1-0");
    REQUIRE(parsed.ok());
    auto r = f.webhook->build_request(*parsed.value, f.account(), attempt_context{1, 1614265330000, {}});
    CHECK(header_of(r, "webhook-signature") == "<absent>");
    CHECK(header_of(r, "webhook-id") == "<absent>");
    CHECK(header_of(r, "webhook-timestamp") == "<absent>");
}

TEST_CASE("webhook signing: config errors name the secret") {
    const std::string url = R"("url": "https://hooks.example/in", )";
    CHECK(config_error_of("{" + url + R"("signing_secrets": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})") ==
          "config: providers.webhook.accounts.a.signing_secrets: must be an array of strings");
    CHECK(config_error_of("{" + url + R"("signing_secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 5]})") ==
          "config: providers.webhook.accounts.a.signing_secrets[1]: must be a string");
    CHECK(config_error_of("{" + url + R"("signing_secrets": ["whsec_not base64!"]})") ==
          "config: providers.webhook.accounts.a.signing_secrets[0]: must be whsec_ followed by base64 (a Standard "
          "Webhooks secret)");
    CHECK(config_error_of("{" + url + R"("signing_secrets": ["whsec_c2hvcnQ="]})") ==
          "config: providers.webhook.accounts.a.signing_secrets[0]: must hold 24 to 64 bytes (Standard Webhooks), not "
          "5");
    CHECK(config_error_of("{" + url + R"("signing_secrets": ["whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]})")
              .find("signing_secrets[0]: asymmetric (ed25519, v1a) signing keys are not supported") !=
          std::string::npos);
    CHECK(config_error_of("{" + url + R"("signing_secrets": []})") ==
          "config: providers.webhook.accounts.a.signing_secrets: no secret is set (every value is empty)");
    CHECK(config_error_of("{" + url +
                          R"("signing_secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                              "headers": {"Webhook-Signature": "x"}})") ==
          "config: providers.webhook.accounts.a.headers: Webhook-Signature is written by the signature "
          "(signing_secrets)");
    CHECK(
        config_error_of("{" + url + R"("signing_secrets": [{"env": "OUTQ_TEST_NEVER_SET"}]})") ==
        "config: providers.webhook.accounts.a.signing_secrets[0]: environment variable OUTQ_TEST_NEVER_SET is not set");
}
