#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "outq/adapter.hpp"
#include "register_all.hpp"

using namespace outq;

namespace {

// Every answer is classified as if it came in at this time: adapters take the
// time as a value and never read the clock.
constexpr unix_ms test_now = 1795341600000;  // 2026-11-22T10:00:00Z

struct superoffice_fixture {
    adapter_registry registry;
    worker_config config;
    const adapter* so = nullptr;
    std::vector<job> jobs;
    superoffice_fixture() {
        adapters::register_builtin_adapters(registry);
        config = parse_config(R"({"providers": {"superoffice": {"accounts": {
            "basic": {"base_url": "https://online3.superoffice.com/Cust12345/", "auth": "basic",
                      "username": "tje0", "password": "Tje0"},
            "ticket": {"base_url": "https://online3.superoffice.com/Cust12345", "auth": "soticket",
                       "ticket": "7T:abc123==", "app_token": "app-secret", "language": "en", "time_zone": "UTC"},
            "bearer": {"base_url": "https://sod2.superoffice.com/Cust00000", "auth": "bearer",
                       "token": "eyJ.x.y"}}}}})",
                              registry);
        so = registry.find("superoffice");
        jobs.reserve(64);
    }
    const account_settings& account(const char* name = "basic") const {
        return *config.providers.at("superoffice").accounts.at(name);
    }
    const job& add(const std::string& message) {
        auto r =
            parse_job(R"({"id":"job-1","provider":"superoffice","account":"basic","message":)" + message + "}", "1-0");
        REQUIRE(r.ok());
        jobs.push_back(std::move(*r.value));
        return jobs.back();
    }
    std::string error(const std::string& message) {
        auto e = so->validate(add(message));
        return e ? *e : std::string();
    }
};

std::string header(const outbound_request& r, std::string_view name) {
    for (auto& h : r.headers)
        if (h.name == name) return h.value;
    return "<absent>";
}

// The document's sample request body, less ChatMessageId (SuperOffice assigns it).
const char* sample_message = R"({
  "ChatSessionId": 103,
  "Type": "Invalid",
  "Message": "officia",
  "Author": "voluptatem",
  "ReadByCustomer": 973,
  "SpecialType": "Block",
  "SpecialParam": "quo",
  "WhenPosted": "2007-12-18T17:54:08.0543344+01:00"
})";

}  // namespace

TEST_CASE("superoffice: the document's sample request as a job, ChatMessageId included, is valid") {
    superoffice_fixture f;
    const char* whole_sample = R"({"ChatMessageId": 664, "ChatSessionId": 103, "Type": "Invalid",
        "Message": "officia", "Author": "voluptatem", "ReadByCustomer": 973, "SpecialType": "Block",
        "SpecialParam": "quo", "WhenPosted": "2007-12-18T17:54:08.0543344+01:00"})";
    REQUIRE(f.error(whole_sample).empty());
    auto req = f.so->build_request(f.add(whole_sample), f.account(), attempt_context{1, 0, {}});
    CHECK(req.body.find("ChatMessageId") == std::string::npos);  // SuperOffice assigns it
}

TEST_CASE("superoffice: the request is the document's sample") {
    superoffice_fixture f;
    const job& j = f.add(sample_message);
    REQUIRE(f.error(sample_message).empty());
    auto req = f.so->build_request(j, f.account(), attempt_context{1, 0, {}});
    CHECK(req.method == "POST");
    CHECK(req.url == "https://online3.superoffice.com/Cust12345/api/v1/ChatSession/103/Messages");
    CHECK(header(req, "Authorization") == "Basic dGplMDpUamUw");  // the sample's own header
    CHECK(header(req, "Accept") == "application/json; charset=utf-8");
    CHECK(header(req, "Content-Type") == "application/json; charset=utf-8");
    CHECK(header(req, "SO-AppToken") == "<absent>");
    CHECK(req.body == R"({"ChatSessionId":103,"Type":"Invalid","Message":"officia","Author":"voluptatem",)"
                      R"("ReadByCustomer":973,"SpecialType":"Block","SpecialParam":"quo",)"
                      R"("WhenPosted":"2007-12-18T17:54:08.0543344+01:00"})");
    rapidjson::Document got, want;
    got.Parse(req.body.c_str());
    want.Parse(sample_message);
    CHECK(got == want);
}

TEST_CASE("superoffice: defaults: Type ToCustomer, WhenPosted the attempt's time in UTC") {
    superoffice_fixture f;
    const job& j = f.add(R"({"ChatSessionId": 7, "Message": "Your order has shipped"})");
    REQUIRE_FALSE(f.so->validate(j));
    const unix_ms now = *parse_rfc3339("2026-11-22T10:00:00.250Z");
    auto req = f.so->build_request(j, f.account(), attempt_context{1, now, {}});
    CHECK(req.url == "https://online3.superoffice.com/Cust12345/api/v1/ChatSession/7/Messages");
    CHECK(req.body == R"({"ChatSessionId":7,"Type":"ToCustomer","Message":"Your order has shipped",)"
                      R"("WhenPosted":"2026-11-22T10:00:00.250Z"})");
}

TEST_CASE("superoffice: SOTicket and Bearer schemes, SO-AppToken, SO-Language and SO-TimeZone") {
    superoffice_fixture f;
    const job& j = f.add(R"({"ChatSessionId": 7, "Message": "hi"})");
    auto ticket = f.so->build_request(j, f.account("ticket"), attempt_context{1, 0, {}});
    CHECK(header(ticket, "Authorization") == "SOTicket 7T:abc123==");
    CHECK(header(ticket, "SO-AppToken") == "app-secret");
    CHECK(header(ticket, "SO-Language") == "en");
    CHECK(header(ticket, "SO-TimeZone") == "UTC");
    auto bearer = f.so->build_request(j, f.account("bearer"), attempt_context{1, 0, {}});
    CHECK(bearer.url == "https://sod2.superoffice.com/Cust00000/api/v1/ChatSession/7/Messages");
    CHECK(header(bearer, "Authorization") == "Bearer eyJ.x.y");
    CHECK(header(bearer, "SO-AppToken") == "<absent>");
    CHECK(header(bearer, "SO-Language") == "<absent>");
    CHECK_FALSE(f.so->token_request(f.account("bearer")));
}

TEST_CASE("superoffice: validation names the field") {
    superoffice_fixture f;
    CHECK(f.error(R"({"Message": "x"})") == "job.message.ChatSessionId: missing");
    CHECK(f.error(R"({"ChatSessionId": "103", "Message": "x"})") ==
          "job.message.ChatSessionId: must be a positive integer");
    CHECK(f.error(R"({"ChatSessionId": 0, "Message": "x"})") ==
          "job.message.ChatSessionId: must be a positive integer");
    CHECK(f.error(R"({"ChatSessionId": 1})") == "job.message.Message: missing");
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": ""})") == "job.message.Message: must not be empty");
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": "", "Type": "Special", "SpecialType": "Url",
                      "SpecialParam": "https://example.com/track"})")
              .empty());
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": "x", "Type": "ToAgent"})") ==
          "job.message.Type: must be one of Invalid, ToCustomer, ToUser, Special");
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": "x", "SpecialType": "Redirect"})")
              .rfind("job.message.SpecialType: must be one of None, Welcome, Url, Block,", 0) == 0);
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": "x", "WhenPosted": "yesterday"})")
              .rfind("job.message.WhenPosted: must be an ISO 8601 time", 0) == 0);
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": "x", "ReadByCustomer": true})") ==
          "job.message.ReadByCustomer: must be an integer (0: not read)");
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": "x", "ReadByCustomer": 1.5})") ==
          "job.message.ReadByCustomer: must be an integer (0: not read)");
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": "x", "ReadByCustomer": 1e3})") ==
          "job.message.ReadByCustomer: must be an integer (0: not read)");
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": "x", "ReadByCustomer": "1"})") ==
          "job.message.ReadByCustomer: must be an integer (0: not read)");
    // The seed types it Integer, int32 in the answer: not a short.
    for (const char* n : {"40000", "32768", "-32769", "2147483647", "-2147483648", "973"})
        CHECK(f.error(std::string(R"({"ChatSessionId": 1, "Message": "x", "ReadByCustomer": )") + n + "}").empty());
    for (const char* n : {"2147483648", "-2147483649", "9223372036854775808", "18446744073709551615"})
        CHECK(f.error(std::string(R"({"ChatSessionId": 1, "Message": "x", "ReadByCustomer": )") + n + "}") ==
              "job.message.ReadByCustomer: must be an int32, -2147483648 to 2147483647");
    CHECK(f.error(R"({"ChatSessionId": 1, "Message": "x", "Author": 5})") == "job.message.Author: must be a string");
    CHECK(f.error(R"({"ChatMessageId": "x", "ChatSessionId": 1, "Message": "x"})") ==
          "job.message.ChatMessageId: must be an integer");
    CHECK(f.error(R"({"ChatSessionId": 1, "message": "x"})").rfind("job.message.message: unknown field", 0) == 0);
}

TEST_CASE("superoffice: answers") {
    superoffice_fixture f;
    auto classify = [&](int status, std::string body = "", std::vector<http_header> headers = {}) {
        return f.so->classify(inbound_response{status, std::move(headers), std::move(body)}, f.account(), test_now);
    };
    auto ok = classify(200, R"({"ChatMessageId": 568, "ChatSessionId": 571, "Type": "Invalid", "Message": "velit",
        "Author": "ipsa", "ReadByCustomer": 620, "SpecialType": "Block", "SpecialParam": "ipsa",
        "WhenPosted": "2009-05-24T17:54:08.0543344+02:00"})");
    CHECK(ok.cls == outcome_class::success);
    CHECK(ok.provider_message_id == "568");
    auto unauthorized = classify(401);
    CHECK(unauthorized.cls == outcome_class::auth);
    CHECK(unauthorized.pause_account_for);
    auto misdirected = classify(421, R"({"Error":"Wrong subdomain used to access tenant"})");
    CHECK(misdirected.cls == outcome_class::permanent);
    CHECK(misdirected.error.find("wrong subdomain for this tenant") != std::string::npos);
    CHECK(misdirected.error.find("base_url") != std::string::npos);
    CHECK(misdirected.error.find("Wrong subdomain used to access tenant") != std::string::npos);
    auto limited = classify(429, "", {{"Retry-After", "20"}});
    CHECK(limited.cls == outcome_class::rate_limited);
    CHECK(limited.retry_after == std::chrono::milliseconds(20000));
    CHECK(classify(500).cls == outcome_class::retryable);
    CHECK(classify(503).cls == outcome_class::retryable);
    auto bad = classify(400, R"({"Message":"Chat session 103 is closed"})");
    CHECK(bad.cls == outcome_class::permanent);
    CHECK(bad.error == "SuperOffice HTTP 400: Chat session 103 is closed");
    CHECK(classify(404).cls == outcome_class::permanent);
}

TEST_CASE("superoffice: account config errors name the key") {
    adapter_registry registry;
    adapters::register_builtin_adapters(registry);
    auto error = [&](const char* account) {
        try {
            parse_config(std::string(R"({"providers": {"superoffice": {"accounts": {"a": )") + account + "}}}}",
                         registry);
        } catch (const config_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(error(R"({"base_url": "https://online3.superoffice.com/Cust1", "auth": "ntlm"})") ==
          "config: providers.superoffice.accounts.a.auth: must be \"basic\", \"soticket\" or \"bearer\"");
    CHECK(error(R"({"base_url": "https://online3.superoffice.com/Cust1", "auth": "soticket", "ticket": "t"})") ==
          "config: providers.superoffice.accounts.a.app_token: missing");
    CHECK(error(R"({"base_url": "https://online3.superoffice.com/Cust1", "auth": "bearer", "token": "t",
                   "password": "p"})") ==
          "config: providers.superoffice.accounts.a.password: only used with \"auth\": \"basic\"");
    CHECK(error(R"({"base_url": "https://online3.superoffice.com/Cust1", "auth": "basic", "username": "a:b",
                   "password": "p"})") ==
          "config: providers.superoffice.accounts.a.username: cannot contain ':' (RFC 7617)");
    CHECK(error(R"({"base_url": "https://online3.superoffice.com/Cust1", "auth": "bearer", "token": "t",
                   "app_token": "x"})")
              .empty());
}

TEST_CASE("superoffice: a Retry-After date is measured from the answer's time, not the clock") {
    superoffice_fixture f;
    using std::chrono::milliseconds;
    const inbound_response limited{429, {{"Retry-After", "Sun, 22 Nov 2026 10:00:30 GMT"}}, ""};
    CHECK(f.so->classify(limited, f.account(), test_now).retry_after == milliseconds(30000));
    CHECK(f.so->classify(limited, f.account(), test_now + 10000).retry_after == milliseconds(20000));
    CHECK(f.so->classify(limited, f.account(), test_now + 60000).retry_after == milliseconds(0));
}
