#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"
#include "outq/queue_protocol.hpp"

using namespace outq;
using namespace outq::test_values;
using namespace std::chrono_literals;

TEST_CASE("a queue's partition keys share one hash tag, each account's keys another") {
    queue::keys k("mail");
    CHECK(k.format == "outq:{mail}:format");
    CHECK(k.jobs == "outq:{mail}:jobs");
    CHECK(k.delayed == "outq:{mail}:delayed");
    CHECK(k.dead == "outq:{mail}:dead");
    CHECK(k.results == "outq:{mail}:results");
    CHECK(k.result("j1") == "outq:{mail}:result:j1");
    CHECK(k.scope("mews", "hotel-1") == "outq:{mail@mews/hotel-1}:");
    CHECK(k.pause_pattern() == "outq:{mail@*}:pause");
    CHECK(queue::group_name == "outq.v2");
}

TEST_CASE("XREADGROUP replies become envelopes with the worker's carried state") {
    auto reply = arr({arr({str("outq:{q}:jobs"),
                           arr({arr({str("1700000000000-0"), arr({str("job"), str("{}")})}),
                                arr({str("1700000000001-0"),
                                     arr({str("job"), str("{\"a\":1}"), str("attempts"), str("2"), str("rate_limited"),
                                          str("1"), str("history"), str("[]"), str("replay_of"), str("5-0"),
                                          str("enqueued_at"), str("1600000000000"), str("origin"), str("1-0")})})})})});
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
    CHECK(second.origin == "1-0");
    CHECK(queue::enqueue_entry(second) == "1-0");          // a copy: its enqueue's entry
    CHECK(queue::enqueue_entry(first) == first.entry_id);  // no copy: itself
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

TEST_CASE("claiming a batch is one MSETNX and one PTTL per account, read into verdicts") {
    queue::keys k("q");
    std::vector<redis::command> cmds;
    const auto x = k.scope("webhook", "x"), y = k.scope("webhook", "y");
    const std::vector<queue::claim_item> items{
        {"a", "1-0", x}, {"b", "2-0", x}, {"c", "3-0", y}, {"a", "4-0", x}};  // a second copy of a
    queue::append_claim_commands(k, items, 1000, cmds);
    REQUIRE(cmds.size() == 3);
    CHECK(cmds[0].args() ==
          std::vector<std::string>{"MSETNX", "outq:{q}:result:a", R"({"status":"sending","entry":"1-0","since":1000})",
                                   "outq:{q}:result:b", R"({"status":"sending","entry":"2-0","since":1000})",
                                   "outq:{q}:result:c", R"({"status":"sending","entry":"3-0","since":1000})"});
    CHECK(cmds[1].args() == std::vector<std::string>{"PTTL", "outq:{q@webhook/x}:pause"});
    CHECK(cmds[2].args() == std::vector<std::string>{"PTTL", "outq:{q@webhook/y}:pause"});
    auto n = [](long long v) {
        redis::value out;
        out.type = redis::value::kind::integer;
        out.integer = v;
        return out;
    };
    std::vector<queue::claim_result> v;
    // Every marker set; account y paused 1500 ms.
    REQUIRE(queue::parse_claim_replies({n(1), n(-2), n(1500)}, items, v));
    CHECK(v[0].verdict == queue::claim_verdict::go);
    CHECK(v[0].holds_marker);
    CHECK(v[1].verdict == queue::claim_verdict::go);
    CHECK(v[2].verdict == queue::claim_verdict::paused);
    CHECK(v[2].pause_ms == 1500);
    CHECK(v[2].holds_marker);                           // released by the delayed copy's write
    CHECK(v[3].verdict == queue::claim_verdict::busy);  // the batch's first copy of a goes
    CHECK_FALSE(v[3].holds_marker);
    // Nothing set: a key exists for one of them, each is claimed alone (round 2).
    REQUIRE(queue::parse_claim_replies({n(0), n(-2), n(-2)}, items, v));
    CHECK(v[0].claim_alone);
    CHECK_FALSE(v[0].holds_marker);
    CHECK(v[2].claim_alone);
    CHECK_FALSE(v[3].claim_alone);
    CHECK_FALSE(queue::parse_claim_replies({n(1), n(-2)}, items, v));            // a PTTL missing
    CHECK_FALSE(queue::parse_claim_replies({n(1), n(-2), str("x")}, items, v));  // PTTL not an integer
    CHECK_FALSE(queue::parse_claim_replies({n(2), n(-2), n(-2)}, items, v));     // MSETNX answers 0 or 1
}

TEST_CASE("a claim reads no pause the worker knows: those items take the known PTTL") {
    queue::keys k("q");
    std::vector<redis::command> cmds;
    const auto x = k.scope("webhook", "x"), y = k.scope("webhook", "y");
    std::vector<queue::claim_item> items{{"a", "1-0", x, -2}, {"b", "2-0", y, std::nullopt}, {"c", "3-0", x, 700}};
    queue::append_claim_commands(k, items, 1000, cmds);
    REQUIRE(cmds.size() == 2);  // MSETNX and y's PTTL only
    CHECK(cmds[1].args() == std::vector<std::string>{"PTTL", "outq:{q@webhook/y}:pause"});
    const auto n = num;
    std::vector<queue::claim_result> v;
    REQUIRE(queue::parse_claim_replies({n(1), n(-1)}, items, v));
    CHECK(v[0].verdict == queue::claim_verdict::go);
    CHECK_FALSE(v[0].pause_read);
    CHECK(v[1].verdict == queue::claim_verdict::paused);  // y: paused until resumed, as read
    CHECK(v[1].pause_read);
    CHECK(v[1].pttl == -1);
    CHECK(v[1].pause_ms == -1);
    CHECK(v[2].verdict == queue::claim_verdict::paused);  // the known pause of x
    CHECK(v[2].pause_ms == 700);
    CHECK_FALSE(queue::parse_claim_replies({n(1), n(-1), n(-2)}, items, v));  // a PTTL too many
    // Every pause known: MSETNX alone.
    items[1].known_pttl = -2;
    cmds.clear();
    queue::append_claim_commands(k, items, 1000, cmds);
    CHECK(cmds.size() == 1);
    REQUIRE(queue::parse_claim_replies({n(1)}, items, v));
    CHECK(v[1].verdict == queue::claim_verdict::go);
}

TEST_CASE("a job claimed alone reads what was there: nothing, an outcome, its own marker or another's") {
    queue::keys k("q");
    const queue::claim_item item{"a", "5-0", k.scope("webhook", "x")};
    CHECK(queue::claim_alone_command(k, item, 1000).args() ==
          std::vector<std::string>{"SET", "outq:{q}:result:a", R"({"status":"sending","entry":"5-0","since":1000})",
                                   "NX", "GET"});
    auto fresh = [] {
        queue::claim_result r;
        r.claim_alone = true;
        return r;
    };
    auto r = fresh();
    REQUIRE(queue::apply_claim_alone_reply(nil, item, r));
    CHECK(r.verdict == queue::claim_verdict::go);
    CHECK(r.holds_marker);
    CHECK_FALSE(r.claim_alone);
    r = fresh();
    REQUIRE(queue::apply_claim_alone_reply(str(R"({"status":"sent","id":"a","attempts":1})"), item, r));
    CHECK(r.verdict == queue::claim_verdict::done);
    CHECK(r.existing_status == "sent");
    CHECK_FALSE(r.holds_marker);
    CHECK_FALSE(r.own_outcome);  // a duplicate: another entry's result (or one that does not say)
    r = fresh();                 // sent by this very entry, whose acknowledgement was lost with its worker
    REQUIRE(queue::apply_claim_alone_reply(str(R"({"status":"sent","id":"a","entry":"5-0","attempts":1})"), item, r));
    CHECK(r.verdict == queue::claim_verdict::done);
    CHECK(r.own_outcome);
    r = fresh();
    REQUIRE(queue::apply_claim_alone_reply(str(R"({"status":"sent","id":"a","entry":"4-0","attempts":1})"), item, r));
    CHECK_FALSE(r.own_outcome);
    // A copy (retry) of entry 4-0 meets a result another delivery of its enqueue
    // sent: its own, no duplicate. A copy of another enqueue is a duplicate.
    queue::claim_item copy{"a", "6-0", k.scope("webhook", "x"), std::nullopt, "4-0"};
    r = fresh();
    REQUIRE(queue::apply_claim_alone_reply(str(R"({"status":"sent","id":"a","entry":"4-0","attempts":1})"), copy, r));
    CHECK(r.own_outcome);
    r = fresh();  // sent by an earlier copy of the same enqueue
    REQUIRE(queue::apply_claim_alone_reply(
        str(R"({"status":"sent","id":"a","entry":"5-0","origin":"4-0","attempts":1})"), copy, r));
    CHECK(r.own_outcome);
    r = fresh();
    REQUIRE(queue::apply_claim_alone_reply(
        str(R"({"status":"sent","id":"a","entry":"5-0","origin":"3-0","attempts":1})"), copy, r));
    CHECK_FALSE(r.own_outcome);
    r = fresh();
    REQUIRE(queue::apply_claim_alone_reply(str(R"({"status":"cancelled","id":"a"})"), item, r));
    CHECK(r.verdict == queue::claim_verdict::done);
    CHECK(r.existing_status == "cancelled");
    r = fresh();  // this very entry, taken over from a worker that died holding it
    REQUIRE(queue::apply_claim_alone_reply(str(R"({"status":"sending","entry":"5-0","since":1})"), item, r));
    CHECK(r.verdict == queue::claim_verdict::go);
    CHECK(r.holds_marker);
    r = fresh();  // another copy's: in flight, or left behind (round 3 asks)
    REQUIRE(queue::apply_claim_alone_reply(str(R"({"status":"sending","entry":"4-0","since":1})"), item, r));
    CHECK(r.verdict == queue::claim_verdict::busy);
    CHECK(r.check_owner);
    CHECK(r.owner_entry == "4-0");
    CHECK_FALSE(r.holds_marker);
    r = fresh();
    r.verdict = queue::claim_verdict::paused;  // paused anyway: no need to ask whose marker it is
    REQUIRE(queue::apply_claim_alone_reply(str(R"({"status":"sending","entry":"4-0","since":1})"), item, r));
    CHECK(r.verdict == queue::claim_verdict::paused);
    CHECK_FALSE(r.check_owner);
    r = fresh();
    CHECK_FALSE(queue::apply_claim_alone_reply(str("not json"), item, r));
    r = fresh();  // a key of another type (a format 1 hash): this job waits, the batch goes on
    REQUIRE(queue::apply_claim_alone_reply(error("WRONGTYPE Operation against a key"), item, r));
    CHECK(r.verdict == queue::claim_verdict::busy);
    CHECK(r.foreign_value);
    CHECK_FALSE(r.holds_marker);
    CHECK_FALSE(r.check_owner);
    r = fresh();
    CHECK_FALSE(queue::apply_claim_alone_reply(error("ERR something else"), item, r));
}

TEST_CASE("a marker left behind is taken over only while it is unchanged and its entry is not pending") {
    queue::keys k("q");
    const queue::claim_item item{"a", "5-0", ""};
    CHECK(queue::take_over_marker_command(k, item, "4-0", 1000).args() ==
          std::vector<std::string>{"EVAL", queue::take_over_marker_script, "2", "outq:{q}:jobs", "outq:{q}:result:a",
                                   "outq.v2", R"({"status":"sending","entry":"4-0",)", "4-0",
                                   R"({"status":"sending","entry":"5-0","since":1000})"});
    const std::string body = queue::take_over_marker_script;
    CHECK(body.find("string.sub(v, 1, #ARGV[2]) ~= ARGV[2]") < body.find("XPENDING"));
    CHECK(body.find("XPENDING") < body.find("'SET'"));
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
    CHECK(cmds[1].args() == std::vector<std::string>{"XPENDING", "outq:{q}:jobs", "outq.v2", "2-0", "2-0", "1"});
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

TEST_CASE("limiter replies: go and reserved hold the permit, the others say when to ask again") {
    queue::limit_decision d;
    REQUIRE(queue::parse_limit_reply(arr({num(0), str("go")}), d));
    CHECK(d.wait_ms == 0);
    CHECK(d.reason == "go");
    CHECK(d.reserved);
    REQUIRE(queue::parse_limit_reply(arr({num(340), str("reserved")}), d));
    CHECK(d.wait_ms == 340);
    CHECK(d.reason == "reserved");
    CHECK(d.reserved);
    REQUIRE(queue::parse_limit_reply(arr({num(7000), str("rate")}), d));
    CHECK(d.wait_ms == 7000);
    CHECK_FALSE(d.reserved);
    REQUIRE(queue::parse_limit_reply(arr({num(20), str("concurrency")}), d));
    CHECK_FALSE(d.reserved);
    REQUIRE(queue::parse_limit_reply(arr({num(-1), str("paused"), str("manual")}), d));
    CHECK(d.wait_ms == -1);
    CHECK(d.pause_reason == "manual");
    CHECK_FALSE(d.reserved);
    REQUIRE(queue::parse_limit_reply(arr({num(0), str("go")}), d));
    CHECK(d.pause_reason.empty());  // nothing left from the previous reply
    CHECK_FALSE(queue::parse_limit_reply(arr({str("0"), str("go")}), d));
    CHECK_FALSE(queue::parse_limit_reply(arr({num(0)}), d));
    CHECK_FALSE(queue::parse_limit_reply(error("NOSCRIPT"), d));
}

TEST_CASE("limiter and pause commands address one scope's keys") {
    queue::keys k("q");
    const auto scope = k.scope("mews", "hotel-1");
    CHECK(scope == "outq:{q@mews/hotel-1}:");
    auto c = queue::limit_command(scope, 200, 30000ms, 0, "lease-1", 60000ms, 12345);
    const auto a = c.args();
    CHECK(a[2] == "3");
    CHECK(a[3] == scope + "window");
    CHECK(a[4] == scope + "leases");
    CHECK(a[5] == scope + "pause");
    CHECK(a[6] == "200");
    CHECK(a[7] == "30000");
    CHECK(a[a.size() - 4] == "12345");  // the test clock
    CHECK(a[a.size() - 3] == "1");      // burst
    CHECK(a[a.size() - 2] == "0");      // horizon: no reservation ahead, by default
    CHECK(a.back() == "1");             // one request
    const auto r = queue::limit_command(scope, 200, 30000ms, 0, "lease-1", 60000ms, std::nullopt, 4, 1500ms, 16).args();
    CHECK(r[r.size() - 4] == "");
    CHECK(r[r.size() - 3] == "4");
    CHECK(r[r.size() - 2] == "1500");
    CHECK(r.back() == "16");
    const auto negative = queue::limit_command(scope, 200, 30000ms, 0, "l", 60000ms, std::nullopt, 1, -5ms, 0).args();
    CHECK(negative[negative.size() - 2] == "0");
    CHECK(negative.back() == "1");
    // A reply reserving several: the further waits, in order.
    redis::value reply;
    reply.type = redis::value::kind::array;
    for (auto v : {5, 0}) {
        redis::value e;
        e.type = redis::value::kind::integer;
        e.integer = v;
        reply.elements.push_back(e);
    }
    reply.elements[1].type = redis::value::kind::string;
    reply.elements[1].str = "reserved";
    redis::value empty;
    empty.type = redis::value::kind::string;
    reply.elements.push_back(empty);
    for (auto v : {10, 15}) {
        redis::value e;
        e.type = redis::value::kind::integer;
        e.integer = v;
        reply.elements.push_back(e);
    }
    queue::limit_decision d;
    REQUIRE(queue::parse_limit_reply(reply, d));
    CHECK(d.reserved);
    CHECK(d.wait_ms == 5);
    CHECK(d.more_waits == std::vector<std::int64_t>{10, 15});
    auto p = queue::pause_command(scope, 2000ms, "429");
    CHECK(p.args()[3] == scope + "pause");
    CHECK(p.args()[4] == "2000");
    CHECK(queue::pause_command(scope, std::nullopt, "manual").args()[4] == "0");
    CHECK(p.args().size() == 6);  // no channel: nothing to publish
    const auto announced = queue::pause_command(scope, 2000ms, "429", "outq:{q}:control", "msg").args();
    REQUIRE(announced.size() == 8);
    CHECK(announced[2] == "1");  // the channel is not a key
    CHECK(announced[6] == "outq:{q}:control");
    CHECK(announced[7] == "msg");
}

TEST_CASE("a delayed set's score beyond any time reads as the end of the range, never overflows") {
    // Found by the fuzz target redis_reply: a score of 5e83 was converted out of range.
    std::optional<unix_ms> next;
    REQUIRE(queue::parse_next_due(arr({str("tok"), str("5e83")}), next));
    CHECK(next == std::optional<unix_ms>(9000000000000000000));
    REQUIRE(queue::parse_next_due(arr({str("tok"), str("inf")}), next));
    CHECK(next == std::optional<unix_ms>(9000000000000000000));
    REQUIRE(queue::parse_next_due(arr({str("tok"), str("-inf")}), next));
    CHECK(next == std::optional<unix_ms>(-9000000000000000000));
    CHECK_FALSE(queue::parse_next_due(arr({str("tok"), str("nan")}), next));
    CHECK_FALSE(queue::parse_next_due(arr({str("tok"), str("soon")}), next));
    REQUIRE(queue::parse_next_due(arr({str("tok"), str("1.5e3")}), next));
    CHECK(next == std::optional<unix_ms>(1500));
}
