#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "outq/adapter.hpp"
#include "outq/encoding.hpp"
#include "register_all.hpp"

using namespace outq;

namespace {

// Every answer is classified as if it came in at this time: adapters take the
// time as a value and never read the clock.
constexpr unix_ms test_now = 1795341600000;  // 2026-11-22T10:00:00Z

struct mediaconnect_fixture {
    adapter_registry registry;
    worker_config config;
    const adapter* mc = nullptr;
    std::vector<job> jobs;
    // credentials_in: nullptr leaves the key out (the default).
    explicit mediaconnect_fixture(const char* credentials_in = nullptr) {
        adapters::register_builtin_adapters(registry);
        config = parse_config(
            std::string(R"({"providers": {"mediaconnect": {"accounts": {"paper": {
            "base_url": "https://api.mediaconnect.no/capi/", "token_url": "https://connectid.no/user/oauth/token",
            "client_id": "outq client", "client_secret": "s3cr:t/+=", "scope": "read")") +
                (credentials_in ? std::string(R"(, "credentials_in": ")") + credentials_in + "\"" : "") + "}}}}}",
            registry);
        mc = registry.find("mediaconnect");
        jobs.reserve(64);
    }
    const account_settings& account() const { return *config.providers.at("mediaconnect").accounts.at("paper"); }
    const job& add(const std::string& message) {
        auto r =
            parse_job(R"({"id":"job-1","provider":"mediaconnect","account":"paper","message":)" + message + "}", "1-0");
        REQUIRE(r.ok());
        jobs.push_back(std::move(*r.value));
        return jobs.back();
    }
    std::string error(const std::string& message) {
        auto e = mc->validate(add(message));
        return e ? *e : std::string();
    }
};

std::string header(const outbound_request& r, std::string_view name) {
    for (auto& h : r.headers)
        if (h.name == name) return h.value;
    return "<absent>";
}

// The seed's request example and 200 answer.
const char* example_message = R"({
    "product": "CO27409",
    "caseType": "B",
    "messageSubject": "cancel",
    "messageContent": "Cancel my subscription"
})";
const char* example_answer = R"({"messages": [
    {"id": 6, "date": 1560763683000, "direction": "IN", "messageSubject": "cancel",
     "messageContent": "Cancel my subscription"},
    {"id": 6, "date": 1560855204000, "direction": "OUT", "messageSubject": "creditcard",
     "messageContent": "Your subscription is canceled."}]})";

}  // namespace

TEST_CASE("mediaconnect: the request is the document's example, with the Bearer token") {
    mediaconnect_fixture f;
    const job& j = f.add(example_message);
    REQUIRE_FALSE(f.mc->validate(j));
    auto req = f.mc->build_request(j, f.account(), attempt_context{1, 0, "tok-123"});
    CHECK(req.method == "POST");
    CHECK(req.url == "https://api.mediaconnect.no/capi/v1/client/message");
    CHECK(header(req, "Authorization") == "Bearer tok-123");
    CHECK(header(req, "Content-Type") == "application/json");
    CHECK(req.body == R"({"product":"CO27409","caseType":"B","messageSubject":"cancel",)"
                      R"("messageContent":"Cancel my subscription"})");
    rapidjson::Document got, want;
    got.Parse(req.body.c_str());
    want.Parse(example_message);
    CHECK(got == want);

    // Optional fields left out (or null) are not sent.
    const job& only = f.add(R"({"messageContent": "Hei", "caseType": null})");
    REQUIRE_FALSE(f.mc->validate(only));
    CHECK(f.mc->build_request(only, f.account(), attempt_context{1, 0, "t"}).body == R"({"messageContent":"Hei"})");
}

TEST_CASE("mediaconnect: validation names the field and the documented limits") {
    mediaconnect_fixture f;
    CHECK(f.error(R"({"product": "CO27409"})") == "job.message.messageContent: missing");
    CHECK(f.error(R"({"messageContent": ""})") == "job.message.messageContent: must be a non-empty string");
    CHECK(f.error(R"({"messageContent": "x", "product": "CO27409000000"})") ==
          "job.message.product: at most 12 characters (got 13)");
    CHECK(f.error(R"({"messageContent": "x", "product": 27409})") == "job.message.product: must be a non-empty string");
    CHECK(f.error(R"({"messageContent": "x", "caseType": "C"})") ==
          "job.message.caseType: must be \"A\" (follow up complaint) or \"B\" (cancellation)");
    CHECK(f.error(R"({"messageContent": "x", "caseType": "A"})").empty());
    CHECK(f.error(R"({"messageContent": "x", "messageSubject": ")" + std::string(41, 's') + "\"}") ==
          "job.message.messageSubject: at most 40 characters (got 41)");
    CHECK(f.error(R"({"messageContent": ")" + std::string(32000, 'c') + "\"}").empty());
    CHECK(f.error(R"({"messageContent": ")" + std::string(32001, 'c') + "\"}") ==
          "job.message.messageContent: at most 32000 characters (got 32001)");
    CHECK(f.error(R"({"MessageContent": "x"})").rfind("job.message.MessageContent: unknown field", 0) == 0);
    // Characters, not bytes: 40 × "ø" (2 bytes each) fit; a character outside the BMP counts twice.
    std::string forty_oe;
    for (int i = 0; i < 40; ++i) forty_oe += "\xC3\xB8";
    CHECK(f.error(R"({"messageContent": "x", "messageSubject": ")" + forty_oe + "\"}").empty());
    CHECK(f.error(R"({"messageContent": "x", "messageSubject": ")" + std::string(39, 's') + "\xF0\x9F\x93\xB0\"}") ==
          "job.message.messageSubject: at most 40 characters (got 41)");
}

TEST_CASE("mediaconnect: a 200 gives the IN message's id") {
    mediaconnect_fixture f;
    const job& j = f.add(example_message);
    inbound_response ok{200, {}, example_answer};
    auto o = f.mc->classify(ok, f.account(), test_now);
    CHECK(o.cls == outcome_class::success);
    CHECK(o.provider_message_id == "6");
    // With earlier messages in the thread, the IN message with the job's content wins.
    inbound_response thread{200, {}, R"({"messages": [
        {"id": 9, "date": 1700000000000, "direction": "IN", "messageContent": "Something newer"},
        {"id": 7, "date": 1600000000000, "direction": "IN", "messageContent": "Cancel my subscription"},
        {"id": 5, "date": 1500000000000, "direction": "IN", "messageContent": "Older"}]})"};
    bool halve = true;
    auto out = f.mc->classify_batch(thread, {{&j, 1}}, f.account(), test_now, halve);
    CHECK_FALSE(halve);
    REQUIRE(out.size() == 1);
    CHECK(out[0].provider_message_id == "7");
    CHECK(f.mc->classify(thread, f.account(), test_now).provider_message_id == "9");  // no job: the newest IN
    CHECK(f.mc->classify(inbound_response{200, {}, "{}"}, f.account(), test_now).cls == outcome_class::success);
}

TEST_CASE("mediaconnect: every documented error status") {
    mediaconnect_fixture f;
    auto classify = [&](int status, std::vector<http_header> headers = {}, std::string body = "") {
        return f.mc->classify(inbound_response{status, std::move(headers), std::move(body)}, f.account(), test_now);
    };
    auto bad = classify(400, {}, R"({"message": "messageContent is required"})");
    CHECK(bad.cls == outcome_class::permanent);
    CHECK(bad.error == "MediaConnect 400 (bad request): messageContent is required");
    auto unauthorized = classify(401);
    CHECK(unauthorized.cls == outcome_class::auth);
    REQUIRE(unauthorized.pause_account_for);
    CHECK(unauthorized.pause_account_for->count() == 600000);
    auto limited = classify(429, {{"Retry-After", "30"}});
    CHECK(limited.cls == outcome_class::rate_limited);
    CHECK(limited.retry_after == std::chrono::milliseconds(30000));
    CHECK(classify(429).cls == outcome_class::rate_limited);
    CHECK(classify(500).cls == outcome_class::retryable);
    CHECK(classify(503).cls == outcome_class::retryable);
    // A 401 from the message endpoint first means "fetch a new token".
    CHECK(f.mc->token_rejected(inbound_response{401, {}, ""}, f.account()));
    CHECK_FALSE(f.mc->token_rejected(inbound_response{400, {}, ""}, f.account()));
    CHECK_FALSE(f.mc->token_rejected(inbound_response{200, {}, ""}, f.account()));
}

TEST_CASE("mediaconnect: client credentials token request, in HTTP Basic (the default) or the form body") {
    SUBCASE("default: Basic, as RFC 6749 2.3.1 recommends") {
        mediaconnect_fixture f;
        auto req = f.mc->token_request(f.account());
        REQUIRE(req);
        CHECK(req->body == "grant_type=client_credentials&scope=read");
        CHECK(header(*req, "Authorization") == "Basic " + base64_encode("outq+client:s3cr%3At%2F%2B%3D"));
    }
    SUBCASE("body") {
        mediaconnect_fixture f("body");
        auto req = f.mc->token_request(f.account());
        REQUIRE(req);
        CHECK(req->method == "POST");
        CHECK(req->url == "https://connectid.no/user/oauth/token");
        CHECK(header(*req, "Content-Type") == "application/x-www-form-urlencoded");
        CHECK(header(*req, "Authorization") == "<absent>");
        CHECK(req->body ==
              "grant_type=client_credentials&scope=read&client_id=outq+client&client_secret=s3cr%3At%2F%2B%3D");
    }
    SUBCASE("basic") {
        mediaconnect_fixture f("basic");
        auto req = f.mc->token_request(f.account());
        REQUIRE(req);
        CHECK(req->body == "grant_type=client_credentials&scope=read");
        // RFC 6749 §2.3.1: form-encoded id and secret, then Basic.
        CHECK(header(*req, "Authorization") == "Basic " + base64_encode("outq+client:s3cr%3At%2F%2B%3D"));
    }
}

TEST_CASE("mediaconnect: token endpoint answers") {
    mediaconnect_fixture f;
    auto parse = [&](int status, std::string body, std::vector<http_header> headers = {}) {
        return f.mc->parse_token_response(inbound_response{status, std::move(headers), std::move(body)}, f.account(),
                                          test_now);
    };
    auto ok = parse(200, R"({"access_token":"abc.def","token_type":"Bearer","expires_in":3600})");
    REQUIRE(ok.token);
    CHECK(ok.token->value == "abc.def");
    CHECK(ok.token->expires_in == std::chrono::milliseconds(3600000));
    auto no_expiry = parse(200, R"({"access_token":"abc","token_type":"bearer"})");
    REQUIRE(no_expiry.token);
    CHECK(no_expiry.token->expires_in.count() == 0);

    auto invalid = parse(400, R"({"error":"invalid_client","error_description":"Client authentication failed"})");
    CHECK_FALSE(invalid.token);
    CHECK(invalid.failure.cls == outcome_class::auth);
    CHECK(invalid.failure.error ==
          "MediaConnect token endpoint HTTP 400: invalid_client: Client authentication failed");
    CHECK(invalid.failure.pause_account_for);
    auto unauthorized = parse(401, R"({"error":"invalid_client"})");
    CHECK(unauthorized.failure.cls == outcome_class::auth);
    CHECK(unauthorized.failure.http_status == 401);
    auto limited = parse(429, "", {{"Retry-After", "5"}});
    CHECK(limited.failure.cls == outcome_class::rate_limited);
    CHECK(limited.failure.retry_after == std::chrono::milliseconds(5000));
    CHECK(parse(503, "").failure.cls == outcome_class::retryable);
    CHECK(parse(200, R"({"token_type":"Bearer"})").failure.cls == outcome_class::retryable);
    CHECK(parse(200, R"({"access_token":"x","token_type":"mac"})").failure.cls == outcome_class::auth);
}

TEST_CASE("mediaconnect: account config errors name the key") {
    adapter_registry registry;
    adapters::register_builtin_adapters(registry);
    auto error = [&](const char* account) {
        try {
            parse_config(std::string(R"({"providers": {"mediaconnect": {"accounts": {"a": )") + account + "}}}}",
                         registry);
        } catch (const config_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    const std::string base = R"("base_url":"https://api.mediaconnect.no/capi","token_url":"https://connectid.no/t")";
    CHECK(error(("{" + base + R"(,"client_id":"c","client_secret":"s"})").c_str()).empty());
    CHECK(error(("{" + base + R"(,"client_id":"c"})").c_str()) ==
          "config: providers.mediaconnect.accounts.a.client_secret: missing");
    CHECK(error(("{" + base + R"(,"client_id":"c","client_secret":"s","credentials_in":"header"})").c_str()) ==
          "config: providers.mediaconnect.accounts.a.credentials_in: must be \"body\" or \"basic\"");
    CHECK(error(R"({"token_url":"https://connectid.no/t","client_id":"c","client_secret":"s"})") ==
          "config: providers.mediaconnect.accounts.a.base_url: missing");
}

TEST_CASE("mediaconnect: a Retry-After date is measured from the answer's time, not the clock") {
    mediaconnect_fixture f;
    using std::chrono::milliseconds;
    const inbound_response limited{429, {{"Retry-After", "Sun, 22 Nov 2026 10:00:30 GMT"}}, ""};
    CHECK(f.mc->classify(limited, f.account(), test_now).retry_after == milliseconds(30000));
    CHECK(f.mc->classify(limited, f.account(), test_now + 10000).retry_after == milliseconds(20000));
    CHECK(f.mc->classify(limited, f.account(), test_now + 60000).retry_after == milliseconds(0));
    // The token endpoint's 429 (oauth2_client) too.
    CHECK(f.mc->parse_token_response(limited, f.account(), test_now).failure.retry_after == milliseconds(30000));
    CHECK(f.mc->parse_token_response(limited, f.account(), test_now + 5000).failure.retry_after == milliseconds(25000));
}
