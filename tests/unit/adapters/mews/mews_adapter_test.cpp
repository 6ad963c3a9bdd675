// The Mews adapter: the document's example, validation, every documented answer,
// batching at scale (one answer split per Identifier), request-level answers for
// every job of a batch, and reconciliation paging through getAll.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "outq/adapter.hpp"
#include "outq/json_util.hpp"
#include "register_all.hpp"

using namespace outq;

namespace {

// Every answer is classified as if it came in at this time: adapters take the
// time as a value and never read the clock.
constexpr unix_ms test_now = 1795341600000;  // 2026-11-22T10:00:00Z

struct mews_fixture {
    adapter_registry registry;
    worker_config config;
    const adapter* mews = nullptr;
    std::vector<job> jobs;
    mews_fixture() {
        adapters::register_builtin_adapters(registry);
        config = parse_config(R"({"providers": {"mews": {"accounts": {"hotel": {
            "platform_address": "https://api.mews-demo.com/",
            "client_token": "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
            "access_token": "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
            "client": "Sample Client 1.0.0", "batch_size": 1000}}}}})",
                              registry);
        mews = registry.find("mews");
        jobs.reserve(4096);  // references handed out by add() stay valid
    }
    const account_settings& account() const { return *config.providers.at("mews").accounts.at("hotel"); }
    const job& add(std::string json) {
        auto r = parse_job(json, "1-0");
        REQUIRE(r.ok());
        jobs.push_back(std::move(*r.value));
        return jobs.back();
    }
};

const char* example_job = R"({"id":"job-1","provider":"mews","account":"hotel","message":{
    "Text":"Text of the message","MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba","Identifier":"Message 1"}})";

constexpr const char* thread_id = "8d02142f-31cf-4115-90bf-ae5200c7a1ba";

// Batches of generated jobs on an account with placeholder tokens.
struct batch_fixture {
    adapter_registry registry;
    worker_config config;
    const adapter* mews = nullptr;
    std::vector<job> jobs;
    explicit batch_fixture(const std::string& extra = R"(,"batch_size": 1000)") {
        adapters::register_builtin_adapters(registry);
        config = parse_config(R"({"providers": {"mews": {"accounts": {"hotel": {
            "platform_address": "https://api.mews-demo.com", "client_token": "CT", "access_token": "AT")" +
                                  extra + "}}}}}",
                              registry);
        mews = registry.find("mews");
        jobs.reserve(4096);  // references handed out by add() stay valid
    }
    const account_settings& account() const { return *config.providers.at("mews").accounts.at("hotel"); }
    const job& add(const std::string& id, const std::string& extra = "") {
        auto r = parse_job(R"({"id":")" + id + R"(","provider":"mews","account":"hotel","message":{"Text":"t )" + id +
                               R"(","MessageThreadId":")" + thread_id + "\"" + extra + "}}",
                           "1-0");
        REQUIRE(r.ok());
        jobs.push_back(std::move(*r.value));
        return jobs.back();
    }
};

// A 200 answer for `items`, leaving out the job whose id is `skip`.
std::string answer_for(const std::vector<batch_item>& items, const std::string& skip = "") {
    std::string body = R"({"Messages":[)";
    bool first = true;
    for (auto& item : items) {
        if (item.j->id == skip) continue;
        if (!first) body += ',';
        first = false;
        body += R"({"Identifier":")" + item.j->id + R"(","Message":{"Id":"id-)" + item.j->id +
                R"(","MessageThreadId":")" + thread_id + R"(","Text":"t","Sender":"Application",)" +
                R"("CreatedUtc":"2026-11-22T10:00:00Z"}})";
    }
    return body + "]}";
}

}  // namespace

TEST_CASE("mews: the request is the document's example") {
    mews_fixture f;
    const job& j = f.add(example_job);
    REQUIRE_FALSE(f.mews->validate(j));
    auto req = f.mews->build_request(j, f.account(), attempt_context{1, 0, {}});
    CHECK(req.method == "POST");
    CHECK(req.url == "https://api.mews-demo.com/api/connector/v1/messages/add");
    rapidjson::Document got, want;
    got.Parse(req.body.c_str());
    want.Parse(R"({"ClientToken": "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
        "AccessToken": "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
        "Client": "Sample Client 1.0.0",
        "Messages": [{"Text": "Text of the message", "MessageThreadId": "8d02142f-31cf-4115-90bf-ae5200c7a1ba",
                      "Identifier": "Message 1"}]})");
    CHECK(got == want);
    CHECK(f.mews->default_rate_limit().requests == 200);
    CHECK(f.mews->default_rate_limit().window.count() == 30000);
}

TEST_CASE("mews: validation names the field") {
    mews_fixture f;
    auto error = [&](const char* message) {
        const job& j = f.add(std::string(R"({"provider":"mews","account":"hotel","message":)") + message + "}");
        auto e = f.mews->validate(j);
        return e ? *e : std::string();
    };
    CHECK(error(R"({"Text":"x"})") == "job.message.MessageThreadId: missing");
    CHECK(error(R"({"Text":"x","MessageThreadId":"not-a-uuid"})") == "job.message.MessageThreadId: must be a UUID");
    CHECK(error(R"({"MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba"})") == "job.message.Text: missing");
    CHECK(error(R"({"MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba","Text":""})") ==
          "job.message.Text: must be a non-empty string");
    CHECK(error(R"({"MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba","Text":"x","Identifier":5})") ==
          "job.message.Identifier: must be a string");
}

TEST_CASE("mews: 2,500 jobs at batch size 1000 are three requests, each job its own result") {
    mews_fixture f;
    f.jobs.reserve(2500);
    for (int i = 0; i < 2500; ++i)
        f.add(
            R"({"id":"j)" + std::to_string(i) +
            R"(","provider":"mews","account":"hotel","message":{"Text":"t","MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba"}})");
    CHECK(f.mews->max_batch(f.account()) == 1000);
    std::vector<std::size_t> sizes;
    for (std::size_t start = 0; start < f.jobs.size(); start += f.mews->max_batch(f.account())) {
        std::vector<batch_item> items;
        for (std::size_t i = start; i < std::min(f.jobs.size(), start + 1000); ++i) items.push_back({&f.jobs[i], 1});
        auto req = f.mews->build_batch_request(items, f.account(), {});
        rapidjson::Document d;
        d.Parse(req.body.c_str());
        REQUIRE(d["Messages"].IsArray());
        sizes.push_back(d["Messages"].Size());
        CHECK(d["Messages"][0]["Identifier"].GetString() == f.jobs[start].id);  // defaults to the job id
    }
    CHECK(sizes == std::vector<std::size_t>{1000, 1000, 500});
}

TEST_CASE("mews: a 200 is split per Identifier; a missing message is in doubt alone") {
    mews_fixture f;
    const job& a = f.add(
        R"({"id":"a","provider":"mews","account":"hotel","message":{"Text":"t","MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba"}})");
    const job& b = f.add(
        R"({"id":"b","provider":"mews","account":"hotel","message":{"Text":"t","MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba"}})");
    inbound_response ok{
        200,
        {{"Request-Id", "r-1"}},
        R"({"Messages":[{"Identifier":"b","Message":{"Id":"3fa85f64-5717-4562-b3fc-2c963f66afa6","MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba","Text":"t","Sender":"Application","CreatedUtc":"2024-04-11T08:54:47.193Z"}}]})"};
    bool halve = true;
    auto out = f.mews->classify_batch(ok, {{&a, 1}, {&b, 1}}, f.account(), test_now, halve);
    CHECK_FALSE(halve);
    REQUIRE(out.size() == 2);
    CHECK(out[0].cls == outcome_class::ambiguous);
    CHECK(out[0].error.find("Identifier a") != std::string::npos);
    CHECK(out[1].cls == outcome_class::success);
    CHECK(out[1].provider_message_id == "3fa85f64-5717-4562-b3fc-2c963f66afa6");
    CHECK(out[1].request_id == "r-1");
}

TEST_CASE("mews: every documented error status") {
    mews_fixture f;
    const job& j = f.add(example_job);
    auto classify = [&](int status, std::vector<http_header> headers = {}) {
        inbound_response r{status, std::move(headers),
                           R"({"Message":"Reason here","RequestId":"req-7","Details":null})"};
        bool halve = false;
        auto out = f.mews->classify_batch(r, {{&j, 1}}, f.account(), test_now, halve);
        out[0].error += halve ? " [halve]" : "";
        return out[0];
    };
    CHECK(classify(400).cls == outcome_class::permanent);
    CHECK(classify(400).request_id == "req-7");
    auto unauthorized = classify(401);
    CHECK(unauthorized.cls == outcome_class::auth);
    REQUIRE(unauthorized.pause_account_for);
    CHECK(unauthorized.pause_account_for->count() == 600000);
    auto forbidden = classify(403);
    CHECK(forbidden.cls == outcome_class::permanent);
    CHECK(forbidden.error.find("Reason here") != std::string::npos);  // keeps Mews' Message
    auto heavy = classify(408);
    CHECK(heavy.cls == outcome_class::retryable);
    CHECK(heavy.error.find("[halve]") != std::string::npos);
    auto limited = classify(429, {{"Retry-After", "12"}});
    CHECK(limited.cls == outcome_class::rate_limited);
    CHECK(limited.retry_after == std::chrono::milliseconds(12000));
    CHECK(classify(500).cls == outcome_class::retryable);
    CHECK(classify(503).cls == outcome_class::retryable);
}

TEST_CASE("mews: reconciliation lists, per job, the messages with its Text from the Application after its attempt") {
    mews_fixture f;
    const job& j = f.add(example_job);
    const std::vector<const job*> jobs{&j};
    const unix_ms since = *parse_rfc3339("2026-11-22T10:00:00Z");
    CHECK(f.mews->reconcile_key(j) == "8d02142f-31cf-4115-90bf-ae5200c7a1ba");  // one walk per thread
    auto req = f.mews->reconcile_request(jobs, f.account(), since, "");
    REQUIRE(req);
    CHECK(req->url == "https://api.mews-demo.com/api/connector/v1/messages/getAll");
    rapidjson::Document d;
    d.Parse(req->body.c_str());
    CHECK(d["MessageThreadIds"][0].GetString() == std::string("8d02142f-31cf-4115-90bf-ae5200c7a1ba"));
    CHECK(d["Limitation"]["Count"].GetInt() == 100);
    CHECK_FALSE(d["Limitation"].HasMember("Cursor"));
    auto page = [&](const char* body, int status = 200, std::vector<http_header> h = {}) {
        return f.mews->parse_reconcile(inbound_response{status, std::move(h), body}, jobs, f.account(), {since}, 0);
    };
    auto found = page(R"({"Messages":[{"Id":"m-1","Text":"Text of the message","CreatedUtc":"2026-11-22T10:00:01Z",
                          "Sender":{"Discriminator":"Application"}},
                         {"Id":"m-0","Text":"Text of the message","CreatedUtc":"2026-11-22T10:00:02Z",
                          "Sender":"Application"}],"Cursor":"m-0"})");
    CHECK(found.what == reconcile_page::kind::page);
    REQUIRE(found.candidates.size() == 1);
    CHECK(found.candidates[0] == std::vector<std::string>{"m-1", "m-0"});  // two: the runtime cannot tell
    CHECK(found.cursor.empty());                                           // not a full page: nothing older to ask for
    CHECK(page(R"({"Messages":[{"Id":"m-2","Text":"Text of the message","CreatedUtc":"2026-11-22T10:00:01Z",
                   "Sender":"Enterprise"}],"Cursor":"m-2"})")
              .candidates[0]
              .empty());
    CHECK(page(R"({"Messages":[{"Id":"m-3","Text":"Text of the message","CreatedUtc":"2026-11-21T10:00:00Z",
                   "Sender":"Application"}]})")
              .candidates[0]
              .empty());  // older than the attempt
    auto failed = page("{}", 500);
    CHECK(failed.what == reconcile_page::kind::failed);
    CHECK(failed.failure.cls == outcome_class::retryable);
    auto limited = page(R"({"Message":"slow down"})", 429, {{"Retry-After", "7"}});
    CHECK(limited.what == reconcile_page::kind::failed);
    CHECK(limited.failure.cls == outcome_class::rate_limited);  // honoured like a send's 429
    CHECK(limited.failure.retry_after == std::chrono::milliseconds(7000));
    CHECK(limited.failure.error.rfind("messages/getAll: ", 0) == 0);
    CHECK(page("not json").what == reconcile_page::kind::failed);
    auto next = f.mews->reconcile_request(jobs, f.account(), since, "m-9");
    d.Parse(next->body.c_str());
    CHECK(d["Limitation"]["Cursor"].GetString() == std::string("m-9"));
}

TEST_CASE("mews: a full page newer than the earliest attempt asks for the next one, for every job of the thread") {
    mews_fixture f;
    const job& a = f.add(example_job);
    const unix_ms since = *parse_rfc3339("2026-11-22T10:00:00Z");
    std::string body = R"({"Messages":[)";
    for (int i = 0; i < 100; ++i) {
        if (i) body += ",";
        body += R"({"Id":"m-)" + std::to_string(i) +
                R"(","Text":"other","CreatedUtc":"2026-11-22T10:00:05Z","Sender":"Application"})";
    }
    body += R"(],"Cursor":"m-99"})";
    const std::vector<const job*> jobs{&a, &a};
    auto p = f.mews->parse_reconcile(inbound_response{200, {}, body}, jobs, f.account(), {since + 60000, since}, 0);
    CHECK(p.cursor == "m-99");  // the second job's attempt is older than the page
    REQUIRE(p.candidates.size() == 2);
    auto q =
        f.mews->parse_reconcile(inbound_response{200, {}, body}, jobs, f.account(), {since + 60000, since + 60000}, 0);
    CHECK(q.cursor.empty());  // every message on it is older than both attempts (less the clock slack)
}

TEST_CASE("mews: account config errors name the key") {
    adapter_registry registry;
    adapters::register_builtin_adapters(registry);
    auto error = [&](const char* account) {
        try {
            parse_config(std::string(R"({"providers": {"mews": {"accounts": {"h": )") + account + "}}}}", registry);
        } catch (const config_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(error(R"({"client_token":"c","access_token":"a"})") ==
          "config: providers.mews.accounts.h.platform_address: missing");
    CHECK(error(R"({"platform_address":"https://x","client_token":"c","access_token":"a","batch_size":1001})")
              .find("batch_size") != std::string::npos);
    CHECK(error(R"({"platform_address":"https://x","client_token":"","access_token":"a"})") ==
          "config: providers.mews.accounts.h.client_token: must not be empty");
}

TEST_CASE("mews adapter: account defaults") {
    batch_fixture f("");
    CHECK(f.mews->max_batch(f.account()) == 100);
    CHECK(f.mews->batch_wait(f.account()) == std::chrono::milliseconds(5));
    const job& j = f.add("a");
    auto req = f.mews->build_request(j, f.account(), attempt_context{1, 0, {}});
    rapidjson::Document d;
    d.Parse(req.body.c_str());
    CHECK(d["ClientToken"].GetString() == std::string("CT"));
    CHECK(d["AccessToken"].GetString() == std::string("AT"));
    CHECK(d["Client"].GetString() == std::string("outq/") + OUTQ_VERSION);
    CHECK(d["Messages"][0]["Identifier"].GetString() == std::string("a"));  // the job id
    bool json_content = false;
    for (auto& h : req.headers) json_content |= h.name == "Content-Type" && h.value == "application/json";
    CHECK(json_content);
}

TEST_CASE("mews adapter: 2,500 jobs at batch size 1000 are 3 requests; one missing answer fails that job alone") {
    batch_fixture f;
    for (int i = 0; i < 2500; ++i) f.add("j" + std::to_string(i));
    const std::size_t size = f.mews->max_batch(f.account());
    REQUIRE(size == 1000);
    std::vector<std::vector<batch_item>> batches;
    for (std::size_t start = 0; start < f.jobs.size(); start += size) {
        batches.emplace_back();
        for (std::size_t i = start; i < std::min(f.jobs.size(), start + size); ++i)
            batches.back().push_back({&f.jobs[i], 1});
    }
    REQUIRE(batches.size() == 3);
    std::size_t sent = 0, in_doubt = 0;
    for (std::size_t b = 0; b < batches.size(); ++b) {
        auto req = f.mews->build_batch_request(batches[b], f.account(), attempt_context{1, 0, {}});
        CHECK(req.url == "https://api.mews-demo.com/api/connector/v1/messages/add");
        rapidjson::Document d;
        d.Parse(req.body.c_str());
        REQUIRE(d["Messages"].IsArray());
        CHECK(d["Messages"].Size() == (b < 2 ? 1000u : 500u));
        for (rapidjson::SizeType i = 0; i < d["Messages"].Size(); ++i)
            REQUIRE(d["Messages"][i]["Identifier"].GetString() == batches[b][i].j->id);
        // The middle batch's answer lacks j1234.
        inbound_response ok{200, {{"Request-Id", "r-" + std::to_string(b)}}, answer_for(batches[b], "j1234")};
        bool halve = true;
        auto out = f.mews->classify_batch(ok, batches[b], f.account(), test_now, halve);
        CHECK_FALSE(halve);
        REQUIRE(out.size() == batches[b].size());
        for (std::size_t i = 0; i < out.size(); ++i) {
            const auto& id = batches[b][i].j->id;
            if (id == "j1234") {
                ++in_doubt;
                CHECK(out[i].cls == outcome_class::ambiguous);  // reconciled before it is sent again
                CHECK(out[i].error.find("Identifier j1234") != std::string::npos);
            } else {
                sent += out[i].cls == outcome_class::success && out[i].provider_message_id == "id-" + id;
            }
            CHECK(out[i].request_id == "r-" + std::to_string(b));
        }
    }
    CHECK(sent == 2499);
    CHECK(in_doubt == 1);
}

TEST_CASE("mews adapter: jobs sharing an Identifier each take one message of the answer") {
    batch_fixture f;
    const job& a = f.add("a", R"(,"Identifier":"same")");
    const job& b = f.add("b", R"(,"Identifier":"same")");
    const job& c = f.add("c", R"(,"Identifier":"same")");
    inbound_response ok{200, {}, R"({"Messages":[{"Identifier":"same","Message":{"Id":"m-1"}},
                                                  {"Identifier":"same","Message":{"Id":"m-2"}}]})"};
    bool halve = false;
    auto out = f.mews->classify_batch(ok, {{&a, 1}, {&b, 1}, {&c, 1}}, f.account(), test_now, halve);
    REQUIRE(out.size() == 3);
    CHECK(out[0].provider_message_id == "m-1");
    CHECK(out[1].provider_message_id == "m-2");
    CHECK(out[2].cls == outcome_class::ambiguous);
}

TEST_CASE("mews adapter: a request-level answer is every job's answer") {
    batch_fixture f;
    std::vector<batch_item> items;
    for (int i = 0; i < 3; ++i) items.push_back({&f.add("k" + std::to_string(i)), 1});
    auto classify = [&](int status, std::vector<http_header> headers, std::string body, bool& halve) {
        auto out = f.mews->classify_batch(inbound_response{status, std::move(headers), std::move(body)}, items,
                                          f.account(), test_now, halve);
        REQUIRE(out.size() == 3);
        for (auto& o : out) {
            CHECK(o.cls == out[0].cls);
            CHECK(o.error == out[0].error);
        }
        return out[0];
    };
    bool halve = false;
    auto unauthorized = classify(401, {}, R"({"Message":"Invalid AccessToken","RequestId":"rq-1"})", halve);
    CHECK(unauthorized.cls == outcome_class::auth);
    CHECK(unauthorized.pause_reason == "Mews 401: token invalid or integration disabled");
    CHECK(unauthorized.pause_account_for == std::chrono::milliseconds(600000));
    CHECK(unauthorized.request_id == "rq-1");  // from the body when there is no Request-Id header
    auto forbidden =
        classify(403, {{"Request-Id", "hdr-1"}}, R"({"Message":"Thread closed","RequestId":"rq-2"})", halve);
    CHECK(forbidden.cls == outcome_class::permanent);
    CHECK(forbidden.error.find("Thread closed") != std::string::npos);
    CHECK(forbidden.request_id == "hdr-1");
    CHECK(halve);  // refused as a whole, nothing added: the halves find the message at fault
    CHECK_FALSE(f.mews->batch_too_heavy(inbound_response{403, {}, ""}));
    halve = false;
    classify(401, {}, "{}", halve);
    CHECK_FALSE(halve);  // never split on an auth answer
    classify(429, {}, "{}", halve);
    CHECK_FALSE(halve);  // nor on a rate-limit answer
    auto heavy = classify(408, {}, "", halve);
    CHECK(heavy.cls == outcome_class::retryable);
    CHECK(halve);
    CHECK(f.mews->batch_too_heavy(inbound_response{408, {}, ""}));
    CHECK(f.mews->batch_key(*items[0].j) == thread_id);
    auto limited = classify(429, {{"Retry-After", "Sun, 22 Nov 2026 10:01:00 GMT"}}, "", halve);
    CHECK(limited.cls == outcome_class::rate_limited);
    CHECK(limited.retry_after == std::chrono::milliseconds(60000));  // from test_now, 10:00:00
    CHECK(classify(502, {}, "<html>bad gateway</html>", halve).cls == outcome_class::retryable);
    halve = false;
    CHECK(classify(400, {}, R"({"Message":"Invalid MessageThreadId"})", halve).cls == outcome_class::permanent);
    CHECK(halve);
    // One message alone: its 400 is its own (nothing left to split).
    items.resize(1);
    bool alone = false;
    auto single =
        f.mews->classify_batch(inbound_response{400, {}, R"({"Message":"x"})"}, items, f.account(), test_now, alone);
    CHECK(single[0].cls == outcome_class::permanent);
    CHECK_FALSE(alone);
}

TEST_CASE("mews adapter: reconciliation pages through getAll") {
    batch_fixture f;
    const job& j = f.add("r");  // Text "t r"
    const std::vector<const job*> jobs{&j};
    const unix_ms since = *parse_rfc3339("2026-11-22T10:00:00Z");
    auto parse = [&](std::string body, int status = 200) {
        return f.mews->parse_reconcile(inbound_response{status, {}, std::move(body)}, jobs, f.account(), {since}, 0);
    };
    // A full page of newer messages from the enterprise, with a cursor: look further.
    std::string page = R"({"Messages":[)";
    for (int i = 0; i < 100; ++i)
        page += std::string(i ? "," : "") + R"({"Id":"e-)" + std::to_string(i) +
                R"(","Text":"hello","CreatedUtc":"2026-11-22T10:05:00Z","Sender":{"Discriminator":"Enterprise"}})";
    auto next = parse(page + R"(],"Cursor":"e-99"})");
    CHECK(next.what == reconcile_page::kind::page);
    CHECK(next.candidates[0].empty());
    CHECK(next.cursor == "e-99");
    auto req = f.mews->reconcile_request(jobs, f.account(), since, next.cursor);
    REQUIRE(req);
    rapidjson::Document d;
    d.Parse(req->body.c_str());
    CHECK(d["ClientToken"].GetString() == std::string("CT"));
    CHECK(d["MessageThreadIds"][0].GetString() == std::string(thread_id));
    CHECK(d["Limitation"]["Count"].GetInt() == 100);
    CHECK(d["Limitation"]["Cursor"].GetString() == std::string("e-99"));

    // A candidate: same Text, sent by the Application (plain string form), after the attempt.
    auto found = parse(R"({"Messages":[{"Id":"m-7","Text":"t r","CreatedUtc":"2026-11-22T10:00:02.500Z",
                           "Sender":"Application"}],"Cursor":"m-7"})");
    CHECK(found.candidates[0] == std::vector<std::string>{"m-7"});
    // A page that is not full is the last one.
    auto last = parse(R"({"Messages":[{"Id":"x","Text":"other","CreatedUtc":"2026-11-22T10:01:00Z",
                    "Sender":"Application"}],"Cursor":"x"})");
    CHECK(last.candidates[0].empty());
    CHECK(last.cursor.empty());
    // A full page reaching back before the attempt: nothing older can match.
    std::string old_page = R"({"Messages":[)";
    for (int i = 0; i < 100; ++i)
        old_page += std::string(i ? "," : "") + R"({"Id":"o-)" + std::to_string(i) +
                    R"(","Text":"t r","CreatedUtc":"2026-11-21T09:00:00Z","Sender":"Application"})";
    auto old = parse(old_page + R"(],"Cursor":"o-99"})");
    CHECK(old.candidates[0].empty());
    CHECK(old.cursor.empty());
    CHECK(parse(R"({"Messages":[]})").candidates[0].empty());
    CHECK(parse("not json").what == reconcile_page::kind::failed);
    auto refused = parse(R"({"Message":"Invalid AccessToken"})", 401);
    CHECK(refused.what == reconcile_page::kind::failed);
    CHECK(refused.failure.cls == outcome_class::auth);
}

TEST_CASE("mews adapter: validation accepts what the document allows") {
    batch_fixture f;
    auto error = [&](const std::string& message) {
        auto r = parse_job(R"({"provider":"mews","account":"hotel","message":)" + message + "}", "1-0");
        REQUIRE(r.ok());
        f.jobs.push_back(std::move(*r.value));
        auto e = f.mews->validate(f.jobs.back());
        return e ? *e : std::string();
    };
    CHECK(error(R"({"MessageThreadId":"8D02142F-31CF-4115-90BF-AE5200C7A1BA","Text":"x","Identifier":null})").empty());
    CHECK(error(R"({"MessageThreadId":"8d02142f31cf411590bfae5200c7a1ba","Text":"x"})") ==
          "job.message.MessageThreadId: must be a UUID");
    CHECK(error(R"({"MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba","Text":7})") ==
          "job.message.Text: must be a non-empty string");
}

TEST_CASE("mews adapter: a Retry-After date is measured from the answer's time, not the clock") {
    batch_fixture f;
    using std::chrono::milliseconds;
    const job& j = f.add("r-1");
    const inbound_response limited{429, {{"Retry-After", "Sun, 22 Nov 2026 10:00:30 GMT"}}, ""};
    bool halve = false;
    CHECK(f.mews->classify(limited, f.account(), test_now).retry_after == milliseconds(30000));
    CHECK(f.mews->classify_batch(limited, {{&j, 1}}, f.account(), test_now + 10000, halve)[0].retry_after ==
          milliseconds(20000));
    CHECK(f.mews->classify(limited, f.account(), test_now + 60000).retry_after == milliseconds(0));
}
