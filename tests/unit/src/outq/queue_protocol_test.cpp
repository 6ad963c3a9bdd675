#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"
#include "outq/queue_protocol.hpp"

using namespace outq;
using namespace outq::test_values;
using namespace std::chrono_literals;

TEST_CASE("all keys of a queue share one cluster hash tag") {
    queue::keys k("mail");
    CHECK(k.jobs == "outq:{mail}:jobs");
    CHECK(k.delayed == "outq:{mail}:delayed");
    CHECK(k.dead == "outq:{mail}:dead");
    CHECK(k.results == "outq:{mail}:results");
    CHECK(k.result("j1") == "outq:{mail}:result:j1");
    CHECK(k.inflight("j1") == "outq:{mail}:inflight:j1");
}

TEST_CASE("XREADGROUP replies become envelopes with the worker's carried state") {
    auto reply = arr({arr({str("outq:{q}:jobs"),
                           arr({arr({str("1700000000000-0"), arr({str("job"), str("{}")})}),
                                arr({str("1700000000001-0"),
                                     arr({str("job"), str("{\"a\":1}"), str("attempts"), str("2"), str("rate_limited"),
                                          str("1"), str("history"), str("[]"), str("replay_of"), str("5-0"),
                                          str("enqueued_at"), str("1600000000000")})})})})});
    std::vector<queue::stream_entry> entries;
    REQUIRE(queue::parse_xreadgroup(reply, entries));
    REQUIRE(entries.size() == 2);
    auto first = queue::to_envelope(std::move(entries[0]));
    CHECK(first.has_job_field);
    CHECK(first.attempts == 0);
    CHECK(first.enqueued_at == 1700000000000);
    auto second = queue::to_envelope(std::move(entries[1]));
    CHECK(second.job_json == "{\"a\":1}");
    CHECK(second.attempts == 2);
    CHECK(second.rate_limited == 1);
    CHECK(second.replay_of == "5-0");
    CHECK(second.enqueued_at == 1600000000000);  // the first enqueue, not the retry's
    entries.clear();
    redis::value timed_out;  // nil: the BLOCK ended without entries
    CHECK(queue::parse_xreadgroup(timed_out, entries));
    CHECK(entries.empty());
    auto junk = str("junk");
    CHECK_FALSE(queue::parse_xreadgroup(junk, entries));
}

TEST_CASE("XAUTOCLAIM replies give the cursor and the entries, deleted ones without fields") {
    auto reply = arr({str("0-0"), arr({arr({str("9-0"), nil})}), arr({})});
    std::string cursor;
    std::vector<queue::stream_entry> entries;
    REQUIRE(queue::parse_xautoclaim(reply, cursor, entries));
    CHECK(cursor == "0-0");
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].fields.empty());
    CHECK_FALSE(queue::to_envelope(std::move(entries[0])).has_job_field);
}

TEST_CASE("history is a JSON array that grows by one attempt") {
    auto h = queue::append_history("", 10, 500, outcome_class::retryable, "HTTP \"500\"");
    CHECK(h == R"([{"at":10,"status":500,"class":"retryable","error":"HTTP \"500\""}])");
    h = queue::append_history(h, 20, 0, outcome_class::ambiguous, "timeout");
    CHECK(h == R"([{"at":10,"status":500,"class":"retryable","error":"HTTP \"500\""},)"
               R"({"at":20,"status":0,"class":"ambiguous","error":"timeout"}])");
    CHECK(queue::append_history("[]", 1, 429, outcome_class::rate_limited, "") ==
          R"([{"at":1,"status":429,"class":"rate_limited","error":""}])");
}

TEST_CASE("claiming a batch is two plain commands per job and one PTTL per account, read into verdicts") {
    queue::keys k("q");
    std::vector<redis::command> cmds;
    const auto x = k.scope("webhook", "x"), y = k.scope("webhook", "y");
    const std::vector<queue::claim_item> items{{"a", "1-0", x}, {"b", "2-0", x}, {"c", "3-0", y}, {"d", "4-0", x}};
    queue::append_claim_commands(k, items, std::chrono::milliseconds(60000), cmds);
    REQUIRE(cmds.size() == 10);
    CHECK(cmds[0].args() == std::vector<std::string>{"SET", "outq:{q}:inflight:a", "1-0", "NX", "PX", "60000"});
    CHECK(cmds[1].args() == std::vector<std::string>{"EXISTS", "outq:{q}:result:a"});
    CHECK(cmds[6].args()[1] == "outq:{q}:inflight:d");
    CHECK(cmds[8].args() == std::vector<std::string>{"PTTL", "outq:{q}:limit:webhook:x:pause"});
    CHECK(cmds[9].args() == std::vector<std::string>{"PTTL", "outq:{q}:limit:webhook:y:pause"});
    auto ok = str("OK");
    ok.type = redis::value::kind::status;
    auto n = [](long long v) {
        redis::value out;
        out.type = redis::value::kind::integer;
        out.integer = v;
        return out;
    };
    std::vector<queue::claim_result> v;
    // a: go; b: done (marker taken, must be released); c: its account y paused 1500 ms; d: held by someone
    REQUIRE(queue::parse_claim_replies({ok, n(0), ok, n(1), ok, n(0), nil, n(0), n(-2), n(1500)}, items, v));
    CHECK(v[0].verdict == queue::claim_verdict::go);
    CHECK(v[0].holds_marker);
    CHECK(v[1].verdict == queue::claim_verdict::done);
    CHECK(v[1].holds_marker);
    CHECK(v[2].verdict == queue::claim_verdict::paused);
    CHECK(v[2].pause_ms == 1500);
    CHECK(v[3].verdict == queue::claim_verdict::busy);
    CHECK(v[3].check_owner);
    CHECK_FALSE(v[3].holds_marker);
    CHECK_FALSE(queue::parse_claim_replies({ok, n(0)}, {{"a", "1-0", x}}, v));      // PTTL missing
    CHECK_FALSE(queue::parse_claim_replies({ok, n(0), ok}, {{"a", "1-0", x}}, v));  // PTTL not an integer
    CHECK(queue::take_over_marker_command(k, {"a", "1-0", ""}, std::chrono::milliseconds(5)).args() ==
          std::vector<std::string>{"SET", "outq:{q}:inflight:a", "1-0", "PX", "5"});
}

TEST_CASE("delivery counts of taken-over entries come from one XPENDING per entry") {
    queue::keys k("q");
    std::vector<queue::stream_entry> entries(3);
    entries[0].id = "1-0";
    entries[1].id = "2-0";
    entries[2].id = "3-0";
    std::vector<redis::command> cmds;
    queue::append_delivery_count_commands(k, entries, cmds);
    REQUIRE(cmds.size() == 3);
    CHECK(cmds[1].args() == std::vector<std::string>{"XPENDING", "outq:{q}:jobs", "outq", "2-0", "2-0", "1"});
    auto n = [](long long v) {
        redis::value out;
        out.type = redis::value::kind::integer;
        out.integer = v;
        return out;
    };
    // 3-0 was acknowledged meanwhile: an empty list.
    std::vector<redis::value> replies{arr({arr({str("1-0"), str("c"), n(900), n(12)})}),
                                      arr({arr({str("2-0"), str("c"), n(900), n(2)})}), arr({})};
    REQUIRE(queue::parse_delivery_counts(replies, entries));
    CHECK(entries[0].deliveries == 12);
    CHECK(entries[1].deliveries == 2);
    CHECK(entries[2].deliveries == 0);
    CHECK(queue::to_envelope(std::move(entries[0])).deliveries == 12);
    CHECK_FALSE(queue::parse_delivery_counts({arr({})}, entries));                                     // count mismatch
    CHECK_FALSE(queue::parse_delivery_counts({str("x"), arr({}), arr({})}, entries));                  // not an array
    CHECK_FALSE(queue::parse_delivery_counts({arr({arr({str("1-0")})}), arr({}), arr({})}, entries));  // short row
}

TEST_CASE("limiter and pause commands address one scope's keys") {
    queue::keys k("q");
    const auto scope = k.scope("mews", "hotel-1");
    CHECK(scope == "outq:{q}:limit:mews:hotel-1:");
    auto c = queue::limit_command(scope, 200, 30000ms, 0, "lease-1", 60000ms, 12345);
    const auto a = c.args();
    CHECK(a[2] == "3");
    CHECK(a[3] == scope + "window");
    CHECK(a[4] == scope + "leases");
    CHECK(a[5] == scope + "pause");
    CHECK(a[6] == "200");
    CHECK(a[7] == "30000");
    CHECK(a[a.size() - 2] == "12345");  // the test clock
    CHECK(a.back() == "1");             // burst
    auto p = queue::pause_command(scope, 2000ms, "429");
    CHECK(p.args()[3] == scope + "pause");
    CHECK(p.args()[4] == "2000");
    CHECK(queue::pause_command(scope, std::nullopt, "manual").args()[4] == "0");
}
