#include <doctest/doctest.h>

#include <algorithm>

#include "fakes/redis_values.hpp"
#include "outq/queue/migrate.hpp"
#include "outq/queue/result.hpp"

using namespace outq;
using namespace outq::test_values;
namespace mig = queue::migrate;
using strings = std::vector<std::string>;
using kind = mig::decision::kind;

namespace {

const std::string moved = "MOVED 3999 10.0.0.2:6379";

// One group of an XINFO GROUPS reply, as Redis 7.0 answers it.
redis::value group(std::string name, std::string last_delivered, long long pending = 0, long long consumers = 0) {
    return arr({str("name"), str(std::move(name)), str("consumers"), num(consumers), str("pending"), num(pending),
                str("last-delivered-id"), str(std::move(last_delivered)), str("entries-read"), nil, str("lag"), nil});
}

// One consumer of an XINFO CONSUMERS reply.
redis::value consumer(std::string name, long long pending, long long idle) {
    return arr({str("name"), str(std::move(name)), str("pending"), num(pending), str("idle"), num(idle)});
}

strings args_of(const std::vector<redis::command>& cmds) {
    strings out;
    for (auto& c : cmds) {
        for (auto& a : c.args()) out.push_back(a);
        out.push_back("|");
    }
    return out;
}

}  // namespace

TEST_CASE("SCAN patterns are the format 1 key names, with the queue name's glob characters escaped") {
    CHECK(mig::v1_result_pattern(queue::keys("q")) == "outq:{q}:result:*");
    CHECK(mig::v1_inflight_pattern(queue::keys("q")) == "outq:{q}:inflight:*");
    CHECK(mig::v1_limit_pattern(queue::keys("q")) == "outq:{q}:limit:*");
    CHECK(mig::v1_result_pattern(queue::keys("a*b?[c]\\")) == "outq:{a\\*b\\?\\[c\\]\\\\}:result:*");
    CHECK(mig::scan_command("0", "outq:{q}:result:*").args() ==
          strings{"SCAN", "0", "MATCH", "outq:{q}:result:*", "COUNT", "1000"});
    CHECK(mig::scan_command("1234", "p*").args() == strings{"SCAN", "1234", "MATCH", "p*", "COUNT", "1000"});
}

TEST_CASE("a SCAN page reads as its cursor and keys; anything else is an error") {
    auto page = mig::read_scan(arr({str("17"), arr({str("a"), str("b")})}));
    REQUIRE(page.ok());
    CHECK(page.value->cursor == "17");
    CHECK(page.value->keys == strings{"a", "b"});
    auto last = mig::read_scan(arr({str("0"), arr({})}));
    REQUIRE(last.ok());
    CHECK(last.value->cursor == "0");
    CHECK(last.value->keys.empty());
    CHECK(mig::read_scan(error(moved)).error == moved);
    CHECK(mig::read_scan(num(1)).error == "unexpected reply to SCAN: an integer instead of [cursor, keys]");
    CHECK_FALSE(mig::read_scan(arr({str("0"), arr({num(1)})})).ok());
}

TEST_CASE("the state is one GET of the format and one XINFO GROUPS") {
    const queue::keys k("q");
    CHECK(args_of(mig::state_commands(k)) ==
          strings{"GET", "outq:{q}:format", "|", "XINFO", "GROUPS", "outq:{q}:jobs", "|"});
}

TEST_CASE("the state says the format, whether the stream and each group exist, and outq's last delivered id") {
    auto v1 = mig::read_state({nil, arr({group("outq", "5-1", 2, 3)})});
    REQUIRE(v1.ok());
    CHECK_FALSE(v1.value->format);
    CHECK(v1.value->stream);
    REQUIRE(v1.value->v1);
    CHECK(v1.value->v1->last_delivered == "5-1");
    CHECK(v1.value->v1->pending == 2);
    CHECK(v1.value->v1->consumers == 3);
    CHECK_FALSE(v1.value->v1->fenced());
    CHECK_FALSE(v1.value->v2);

    auto resumed =
        mig::read_state({str("migrating"), arr({group("outq.v2", "0-0"), group("outq", std::string(mig::fence_id))})});
    REQUIRE(resumed.ok());
    CHECK(resumed.value->format == "migrating");
    CHECK(resumed.value->v2);
    REQUIRE(resumed.value->v1);
    CHECK(resumed.value->v1->fenced());

    auto none = mig::read_state({nil, error("ERR no such key")});
    REQUIRE(none.ok());
    CHECK_FALSE(none.value->stream);
    CHECK_FALSE(none.value->v1);
    CHECK_FALSE(none.value->v2);

    CHECK(mig::read_state({error(moved), arr({})}).error == moved);
    CHECK(mig::read_state({nil, error(moved)}).error == moved);
    CHECK(mig::read_state({num(2), arr({})}).error ==
          "unexpected reply to GET: an integer instead of the format or nil");
    CHECK_FALSE(mig::read_state({nil}).ok());
    CHECK_FALSE(mig::read_state({nil, arr({arr({str("name")})})}).ok());
    CHECK_FALSE(mig::read_state({nil, arr({arr({str("name"), str("outq")})})}).ok());  // no last-delivered-id
}

TEST_CASE("format 2 is left alone, a new queue gets format 2, format 1 and migrating are migrated, others refused") {
    const queue::keys k("q");
    mig::queue_state s;
    s.format = "2";
    auto already = mig::decide(k, s);
    CHECK(already.what == kind::already);
    CHECK(already.message == "queue q is already in format 2");
    s.format = "3";
    auto other = mig::decide(k, s);
    CHECK(other.what == kind::refuse);
    CHECK(other.message.find("'3'") != std::string::npos);
    s.format.reset();
    CHECK(mig::decide(k, s).what == kind::new_queue);
    s.v2 = true;  // a stream a format 2 worker created, its format key deleted
    CHECK(mig::decide(k, s).what == kind::new_queue);
    s.v1 = mig::group_state{"7-0"};
    CHECK(mig::decide(k, s).what == kind::migrate);
    s.format = "migrating";
    CHECK(mig::decide(k, s).what == kind::migrate);
    s.v1.reset();
    CHECK(mig::decide(k, s).what == kind::migrate);  // resumed whatever is left
}

TEST_CASE("the consumers of outq are read from XINFO CONSUMERS; those idle less than 60 s are active") {
    const queue::keys k("q");
    CHECK(mig::consumers_command(k).args() == strings{"XINFO", "CONSUMERS", "outq:{q}:jobs", "outq"});
    auto all = mig::read_consumers(arr({consumer("w1", 3, 1200), consumer("ghost", 5, 3600000)}));
    REQUIRE(all.ok());
    REQUIRE(all.value->size() == 2);
    CHECK((*all.value)[0].name == "w1");
    CHECK((*all.value)[0].pending == 3);
    CHECK((*all.value)[0].idle_ms == 1200);
    const auto active = mig::active_consumers(*all.value);
    REQUIRE(active.size() == 1);
    CHECK(active[0].name == "w1");
    CHECK(mig::active_consumers({{"edge", 0, 59999}}).size() == 1);
    CHECK(mig::active_consumers({{"edge", 0, 60000}}).empty());
    const auto refusal = mig::active_refusal(k, active);
    CHECK(refusal.find("w1 (idle 1 s, 3 pending)") != std::string::npos);
    CHECK(refusal.find("--force") != std::string::npos);
    // A 7.2 reply has `inactive` too; no group or no stream: no consumers.
    auto newer = mig::read_consumers(
        arr({arr({str("name"), str("c"), str("pending"), num(0), str("idle"), num(5), str("inactive"), num(5)})}));
    REQUIRE(newer.ok());
    CHECK(newer.value->size() == 1);
    CHECK(mig::read_consumers(error("NOGROUP No such consumer group 'outq' for key name 'x'")).value->empty());
    CHECK(mig::read_consumers(error("ERR no such key")).value->empty());
    CHECK(mig::read_consumers(error(moved)).error == moved);
    CHECK_FALSE(mig::read_consumers(arr({arr({str("name"), str("c")})})).ok());  // no idle
    CHECK_FALSE(mig::read_consumers(str("x")).ok());
}

TEST_CASE("the format is set with a plain SET") {
    const queue::keys k("q");
    CHECK(mig::set_format_command(k, "migrating").args() == strings{"SET", "outq:{q}:format", "migrating"});
    CHECK(mig::set_format_command(k, "2").args() == strings{"SET", "outq:{q}:format", "2"});
}

TEST_CASE("outq's pending entries are read in XPENDING pages, each after the last id of the one before") {
    const queue::keys k("q");
    CHECK(mig::pending_page_command(k, "").args() == strings{"XPENDING", "outq:{q}:jobs", "outq", "-", "+", "1000"});
    CHECK(mig::pending_page_command(k, "5-1", 2).args() ==
          strings{"XPENDING", "outq:{q}:jobs", "outq", "(5-1", "+", "2"});
    auto page = mig::read_pending_page(
        arr({arr({str("5-0"), str("ghost"), num(100), num(1)}), arr({str("6-0"), str("w"), num(5), num(2)})}));
    REQUIRE(page.ok());
    CHECK(*page.value == strings{"5-0", "6-0"});
    CHECK(mig::read_pending_page(arr({})).value->empty());
    CHECK(mig::read_pending_page(error("NOGROUP No such key 'x' or consumer group 'outq'")).value->empty());
    CHECK(mig::read_pending_page(error(moved)).error == moved);
    CHECK_FALSE(mig::read_pending_page(arr({str("5-0")})).ok());
}

TEST_CASE("the delivered entries are read in XRANGE pages up to outq's last delivered id") {
    const queue::keys k("q");
    CHECK(mig::delivered_page_command(k, "", "9-0").args() ==
          strings{"XRANGE", "outq:{q}:jobs", "-", "9-0", "COUNT", "1000"});
    CHECK(mig::delivered_page_command(k, "3-0", "9-0", 5).args() ==
          strings{"XRANGE", "outq:{q}:jobs", "(3-0", "9-0", "COUNT", "5"});
    auto page = mig::read_entry_ids(arr({arr({str("3-0"), arr({str("job"), str("{}")})}), arr({str("4-0"), nil})}));
    REQUIRE(page.ok());
    CHECK(*page.value == strings{"3-0", "4-0"});
    CHECK(mig::read_entry_ids(error(moved)).error == moved);
    CHECK_FALSE(mig::read_entry_ids(arr({str("3-0")})).ok());
}

TEST_CASE("the delivered entries that are not pending are finished, and deleted with one XDEL") {
    const queue::keys k("q");
    CHECK(mig::finished_entries({"1-0", "2-0", "3-0"}, {"2-0", "9-0"}) == strings{"1-0", "3-0"});
    CHECK(mig::finished_entries({"2-0"}, {"2-0"}).empty());
    CHECK(mig::delete_entries_command(k, {"1-0", "3-0"}).args() == strings{"XDEL", "outq:{q}:jobs", "1-0", "3-0"});
    CHECK(*mig::read_count(num(2), "XDEL").value == 2);
    CHECK(mig::read_count(error(moved), "XDEL").error == moved);
    CHECK(mig::read_count(nil, "XDEL").error == "unexpected reply to XDEL: nil instead of an integer");
}

TEST_CASE("outq.v2 is created and outq fenced in one transaction") {
    const queue::keys k("q");
    CHECK(args_of(mig::switch_groups_commands(k, true)) == strings{"MULTI",
                                                                   "|",
                                                                   "XGROUP",
                                                                   "CREATE",
                                                                   "outq:{q}:jobs",
                                                                   "outq.v2",
                                                                   "0",
                                                                   "MKSTREAM",
                                                                   "|",
                                                                   "XGROUP",
                                                                   "DESTROY",
                                                                   "outq:{q}:jobs",
                                                                   "outq",
                                                                   "|",
                                                                   "XGROUP",
                                                                   "CREATE",
                                                                   "outq:{q}:jobs",
                                                                   "outq",
                                                                   "18446744073709551615-18446744073709551615",
                                                                   "MKSTREAM",
                                                                   "|",
                                                                   "EXEC",
                                                                   "|"});
    CHECK(args_of(mig::switch_groups_commands(k, false)) ==
          strings{"MULTI", "|", "XGROUP", "DESTROY", "outq:{q}:jobs", "outq", "|", "XGROUP", "CREATE", "outq:{q}:jobs",
                  "outq", "18446744073709551615-18446744073709551615", "MKSTREAM", "|", "EXEC", "|"});
    const auto queued = status("QUEUED");
    CHECK(
        mig::read_switch_groups({status("OK"), queued, queued, queued, arr({status("OK"), num(1), status("OK")})}, true)
            .ok());
    CHECK(mig::read_switch_groups({status("OK"), queued, queued, arr({num(0), status("OK")})}, false).ok());
    // outq.v2 created meanwhile: fine.
    CHECK(mig::read_switch_groups({status("OK"), queued, queued, queued,
                                   arr({error("BUSYGROUP Consumer Group name already exists"), num(1), status("OK")})},
                                  true)
              .ok());
    auto fence_refused =
        mig::read_switch_groups({status("OK"), queued, queued,
                                 arr({num(1), error("ERR Invalid stream ID specified as stream command argument")})},
                                false);
    CHECK_FALSE(fence_refused.ok());
    CHECK(fence_refused.error.find("Invalid stream ID") != std::string::npos);
    auto refused_queueing = mig::read_switch_groups(
        {status("OK"), error("NOPERM this user has no permissions to run the 'xgroup|destroy' command"), queued,
         error("EXECABORT Transaction discarded because of previous errors.")},
        false);
    CHECK(refused_queueing.error.find("NOPERM") == 0);
    CHECK(mig::read_switch_groups({error(moved), error(moved), error(moved), error(moved)}, false).error == moved);
    CHECK_FALSE(mig::read_switch_groups({status("OK"), queued, queued, nil}, false).ok());
    CHECK_FALSE(mig::read_switch_groups({status("OK"), queued, queued, arr({num(1)})}, false).ok());
    CHECK_FALSE(mig::read_switch_groups({status("OK"), queued}, false).ok());
}

TEST_CASE("result keys are sorted by TYPE; hashes are read with HGETALL and PTTL") {
    CHECK(args_of(mig::type_commands({"a", "b"})) == strings{"TYPE", "a", "|", "TYPE", "b", "|"});
    auto types = mig::read_types({status("hash"), status("string"), status("none")});
    REQUIRE(types.ok());
    CHECK(*types.value == strings{"hash", "string", "none"});
    CHECK(mig::read_types({status("hash"), error(moved)}).error == moved);
    CHECK(args_of(mig::hash_read_commands({"a", "b"})) ==
          strings{"HGETALL", "a", "|", "PTTL", "a", "|", "HGETALL", "b", "|", "PTTL", "b", "|"});
    auto hashes = mig::read_hashes({"a", "b", "c"}, {arr({str("status"), str("sent")}), num(5000), arr({}), num(-2),
                                                     arr({str("status"), str("dead")}), num(-1)});
    REQUIRE(hashes.ok());
    REQUIRE(hashes.value->size() == 3);
    CHECK((*hashes.value)[0].key == "a");
    CHECK((*hashes.value)[0].fields == mig::field_list{{"status", "sent"}});
    CHECK((*hashes.value)[0].pttl == 5000);
    CHECK((*hashes.value)[0].convertible());
    CHECK_FALSE((*hashes.value)[1].convertible());  // expired meanwhile
    CHECK((*hashes.value)[2].convertible());        // no TTL
    CHECK_FALSE(mig::read_hashes({"a"}, {arr({}), num(0)}).value->front().convertible());
    CHECK(mig::read_hashes({"a"}, {error("WRONGTYPE x"), num(5)}).error == "WRONGTYPE x (a)");
    CHECK(mig::read_hashes({"a"}, {arr({}), error(moved)}).error == moved + " (a)");
    CHECK_FALSE(mig::read_hashes({"a"}, {arr({})}).ok());
}

namespace {

// The fields a format 1 worker wrote for an outcome (8398284, completion.cpp add_result_fields).
mig::field_list v1_fields(const queue::completion& d, std::string_view status) {
    mig::field_list f{{"id", d.job_id}, {"status", std::string(status)}, {"attempts", std::to_string(d.env.attempts)}};
    auto add_if = [&](std::string name, const std::string& value) {
        if (!value.empty()) f.emplace_back(std::move(name), value);
    };
    if (d.http_status) f.emplace_back("http_status", std::to_string(d.http_status));
    add_if("provider_message_id", d.provider_message_id);
    add_if("request_id", d.request_id);
    add_if("response", d.response_excerpt);
    add_if("error_class", d.dead_class);
    add_if("error", d.error);
    add_if("provider", d.provider);
    add_if("account", d.account);
    f.emplace_back("enqueued_at", std::to_string(d.env.enqueued_at));
    f.emplace_back("completed_at", std::to_string(d.completed_at));
    add_if("meta", d.meta_json);
    add_if("replay_of", d.env.replay_of);
    return f;
}

queue::completion full_completion() {
    queue::completion c;
    c.what = queue::completion::kind::sent;
    c.job_id = "order \"42\"";
    c.env.attempts = 2;
    c.env.enqueued_at = 1764583200000;
    c.completed_at = 1764583200042;
    c.http_status = 202;
    c.provider_message_id = "pm-1";
    c.request_id = "rq-1";
    c.response_excerpt = "bad \xff byte\n";
    c.provider = "webhook";
    c.account = "a:b";
    c.meta_json = R"({"order":42,"tags":["x"]})";
    c.env.replay_of = "5-0";
    return c;
}

}  // namespace

TEST_CASE("a format 1 result converts to exactly what a format 2 worker writes for the same outcome") {
    auto c = full_completion();
    CHECK(mig::result_json(v1_fields(c, "sent")) == queue::outcome_json(c));
    // Dead: the completion script closes the outcome with the dead letter's entry id.
    c.what = queue::completion::kind::dead;
    c.dead_class = "permanent";
    c.error = "HTTP 400: no";
    auto dead = v1_fields(c, "dead");
    dead.insert(dead.begin(), {"dead_entry", "77-0"});  // HSET dead_entry first, then the others
    CHECK(mig::result_json(dead) == queue::outcome_json(c) + R"(,"dead_entry":"77-0"})");
    // The fewest members a worker writes.
    queue::completion bare;
    bare.job_id = "j";
    bare.env.attempts = 1;
    bare.env.enqueued_at = 5;
    bare.completed_at = 6;
    CHECK(mig::result_json(v1_fields(bare, "sent")) == queue::outcome_json(bare));
    // The hash's own order does not matter.
    auto shuffled = v1_fields(c, "dead");
    std::reverse(shuffled.begin(), shuffled.end());
    shuffled.emplace_back("dead_entry", "77-0");
    CHECK(mig::result_json(shuffled) == queue::outcome_json(c) + R"(,"dead_entry":"77-0"})");
}

TEST_CASE("a result that no worker wrote still converts to JSON: text for what is not a number or JSON") {
    CHECK(mig::result_json({{"status", "sent"}, {"attempts", "x1"}, {"enqueued_at", "007"}, {"meta", "{not json"}}) ==
          R"({"status":"sent","attempts":"x1","enqueued_at":7,"meta":"{not json"})");
    CHECK(mig::result_json({{"status", "sent"}, {"meta", "\"caf\xc3\xa9\""}}) ==
          "{\"status\":\"sent\",\"meta\":\"caf\xc3\xa9\"}");  // a JSON string
    CHECK(mig::result_json({{"status", "sent"}, {"meta", "\"\xff\""}}) ==
          "{\"status\":\"sent\",\"meta\":\"\\\"\xef\xbf\xbd\\\"\"}");  // JSON, but not UTF-8: a string
    CHECK(mig::result_json({{"status", "sent"}, {"meta", "1 2"}}) == R"({"status":"sent","meta":"1 2"})");
    CHECK(mig::result_json({{"status", "sent"}, {"meta", ""}, {"error", ""}}) == R"({"status":"sent"})");
    // Other fields follow as strings, in the hash's order; no status: "unknown".
    CHECK(mig::result_json({{"note", "x"}, {"id", "j"}, {"k\xff", "v\x01"}}) ==
          "{\"status\":\"unknown\",\"id\":\"j\",\"note\":\"x\",\"k\xef\xbf\xbd\":\"v\\u0001\"}");
    CHECK(mig::result_json({}) == R"({"status":"unknown"})");
    CHECK(queue::read_result_value(mig::result_json({{"id", "j"}})).what == queue::result_state::kind::final);
}

TEST_CASE("each convertible hash becomes one SET with its remaining TTL, or none when it had none") {
    std::vector<mig::v1_result> hashes{{"outq:{q}:result:a", {{"status", "sent"}}, 5000},
                                       {"outq:{q}:result:gone", {}, -2},
                                       {"outq:{q}:result:expiring", {{"status", "sent"}}, 0},
                                       {"outq:{q}:result:b", {{"status", "dead"}, {"id", "b"}}, -1}};
    CHECK(args_of(mig::convert_commands(hashes)) == strings{"SET", "outq:{q}:result:a", R"({"status":"sent"})", "PX",
                                                            "5000", "|", "SET", "outq:{q}:result:b",
                                                            R"({"status":"dead","id":"b"})", "|"});
    CHECK(*mig::read_oks({status("OK"), status("OK")}, "SET").value == 2);
    CHECK(*mig::read_oks({}, "SET").value == 0);
    CHECK(mig::read_oks({status("OK"), error("OOM command not allowed")}, "SET").error == "OOM command not allowed");
    CHECK(mig::read_oks({nil}, "SET").error == "unexpected reply to SET: nil instead of OK");
}

TEST_CASE("in-flight markers are deleted with one DEL per page") {
    CHECK(mig::delete_keys_command({"outq:{q}:inflight:a", "outq:{q}:inflight:b"}).args() ==
          strings{"DEL", "outq:{q}:inflight:a", "outq:{q}:inflight:b"});
    CHECK(*mig::read_count(num(2), "DEL").value == 2);
    CHECK(mig::read_count(error(moved), "DEL").error == moved);
}

TEST_CASE("a format 1 limit key names its provider and account; the account may hold ':'") {
    const queue::keys k("q");
    auto window = mig::parse_limit_key(k, "outq:{q}:limit:webhook:demo:window");
    REQUIRE(window);
    CHECK(window->provider == "webhook");
    CHECK(window->account == "demo");
    auto colons = mig::parse_limit_key(k, "outq:{q}:limit:mews:hotel:7:pause");
    REQUIRE(colons);
    CHECK(colons->provider == "mews");
    CHECK(colons->account == "hotel:7");
    auto tricky = mig::parse_limit_key(k, "outq:{q}:limit:p:x:pause:leases");  // account "x:pause"
    REQUIRE(tricky);
    CHECK(tricky->account == "x:pause");
    CHECK(*mig::parse_limit_key(k, "outq:{q}:limit:p:a:leases") == mig::v1_scope{"p", "a"});
    CHECK_FALSE(mig::parse_limit_key(k, "outq:{q}:limit:p:a:other"));
    CHECK_FALSE(mig::parse_limit_key(k, "outq:{q}:limit:pa:window"));  // no account
    CHECK_FALSE(mig::parse_limit_key(k, "outq:{q}:limit::a:window"));  // no provider
    CHECK_FALSE(mig::parse_limit_key(k, "outq:{q}:limit:p::window"));
    CHECK_FALSE(mig::parse_limit_key(k, "outq:{other}:limit:p:a:window"));
    CHECK_FALSE(mig::parse_limit_key(k, "outq:{q}:limit:window"));
}

TEST_CASE("an account's format 1 pause and window are read with GET, PTTL, ZRANGE WITHSCORES and PTTL") {
    const queue::keys k("q");
    const mig::v1_scope s{"mews", "hotel:7"};
    CHECK(args_of(mig::scope_read_commands(k, s)) ==
          strings{"GET", "outq:{q}:limit:mews:hotel:7:pause", "|", "PTTL", "outq:{q}:limit:mews:hotel:7:pause", "|",
                  "ZRANGE", "outq:{q}:limit:mews:hotel:7:window", "0", "-1", "WITHSCORES", "|", "PTTL",
                  "outq:{q}:limit:mews:hotel:7:window", "|"});
    auto snap = mig::read_scope(
        s, {str("429 from mews"), num(30000), arr({str("r1"), str("100"), str("r2"), str("101")}), num(900)});
    REQUIRE(snap.ok());
    CHECK(snap.value->pause == "429 from mews");
    CHECK(snap.value->pause_pttl == 30000);
    CHECK(snap.value->window == std::vector<std::pair<std::string, std::string>>{{"r1", "100"}, {"r2", "101"}});
    CHECK(snap.value->window_pttl == 900);
    CHECK(snap.value->moves_pause());
    CHECK(snap.value->moves_window());
    auto empty = mig::read_scope(s, {nil, num(-2), arr({}), num(-2)});
    REQUIRE(empty.ok());
    CHECK_FALSE(empty.value->pause);
    CHECK_FALSE(empty.value->moves_pause());
    CHECK_FALSE(empty.value->moves_window());
    CHECK(mig::read_scope(s, {error("WRONGTYPE x"), num(1), arr({}), num(1)}).error == "WRONGTYPE x");
    CHECK(mig::read_scope(s, {nil, nil, arr({}), num(1)}).error ==
          "unexpected reply to PTTL: nil instead of an integer");
    CHECK_FALSE(mig::read_scope(s, {nil, num(1), arr({str("r1")}), num(1)}).ok());
    CHECK_FALSE(mig::read_scope(s, {nil, num(1), arr({}), error(moved)}).ok());
    CHECK_FALSE(mig::read_scope(s, {nil, num(1), arr({})}).ok());
}

TEST_CASE(
    "an account's pause and window are copied to its account keys with their TTLs, then the format 1 keys deleted") {
    const queue::keys k("q");
    mig::scope_snapshot snap;
    snap.scope = {"mews", "hotel:7"};
    snap.pause = "429 from mews";
    snap.pause_pttl = 30000;
    snap.window = {{"r1", "100"}, {"r2", "101"}};
    snap.window_pttl = 900;
    CHECK(args_of(mig::scope_copy_commands(k, snap)) ==
          strings{"SET", "outq:{q@mews/hotel:7}:pause", "429 from mews", "PX", "30000", "|", "ZADD",
                  "outq:{q@mews/hotel:7}:window", "100", "r1", "101", "r2", "|", "PEXPIRE",
                  "outq:{q@mews/hotel:7}:window", "900", "|"});
    CHECK(mig::scope_delete_command(k, snap.scope).args() == strings{"DEL", "outq:{q}:limit:mews:hotel:7:window",
                                                                     "outq:{q}:limit:mews:hotel:7:leases",
                                                                     "outq:{q}:limit:mews:hotel:7:pause"});
    // Until resumed, and a window without a TTL: none is set.
    snap.pause_pttl = -1;
    snap.window_pttl = -1;
    CHECK(args_of(mig::scope_copy_commands(k, snap)) == strings{"SET", "outq:{q@mews/hotel:7}:pause", "429 from mews",
                                                                "|", "ZADD", "outq:{q@mews/hotel:7}:window", "100",
                                                                "r1", "101", "r2", "|"});
    // Nothing to copy (only leases, or a pause that just ended).
    snap.pause.reset();
    snap.window.clear();
    CHECK(mig::scope_copy_commands(k, snap).empty());
    snap.pause = "x";
    snap.pause_pttl = -2;
    CHECK(mig::scope_copy_commands(k, snap).empty());
    snap.pause_pttl = 0;
    CHECK(mig::scope_copy_commands(k, snap).empty());
}
