#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"
#include "outq/queue/admin.hpp"

using namespace outq;
using namespace outq::test_values;
namespace admin = queue::admin;
using strings = std::vector<std::string>;
using std::chrono::milliseconds;

namespace {

// What a cluster node answers for a key whose slot another node serves.
const std::string moved = "MOVED 3999 10.0.0.2:6379";

}  // namespace

TEST_CASE("enqueue is one plain XADD; its reply is the new entry id") {
    const queue::keys k("q");
    CHECK(admin::enqueue_command(k, R"({"a":1})").args() == strings{"XADD", "outq:{q}:jobs", "*", "job", R"({"a":1})"});
    CHECK(admin::read_enqueued(str("1700000000000-0")).value == "1700000000000-0");
    auto refused = admin::read_enqueued(error(moved));
    CHECK_FALSE(refused.ok());
    CHECK(refused.error == moved);
    CHECK(admin::read_enqueued(nil).error == "unexpected reply to XADD: nil instead of an entry id");
}

TEST_CASE("a hash reads as field/value pairs; an error or another shape is an error, not an empty hash") {
    const queue::keys k("q");
    auto fields = admin::read_hash(arr({str("status"), str("sent"), str("attempts"), str("1")}));
    REQUIRE(fields.ok());
    CHECK(*fields.value == admin::field_list{{"status", "sent"}, {"attempts", "1"}});
    auto none = admin::read_hash(arr({}));  // no such key
    REQUIRE(none.ok());
    CHECK(none.value->empty());
    CHECK(admin::read_hash(error("WRONGTYPE Operation against a key holding the wrong kind of value")).error ==
          "WRONGTYPE Operation against a key holding the wrong kind of value");
    CHECK(admin::read_hash(error(moved)).error == moved);
    CHECK_FALSE(admin::read_hash(arr({str("status")})).ok());  // odd
    CHECK_FALSE(admin::read_hash(arr({str("status"), num(1)})).ok());
    CHECK(admin::read_hash(num(0)).error ==
          "unexpected reply to HGETALL: an integer instead of an array of field/value pairs");
    CHECK(admin::replayed_command(k).args() == strings{"HGETALL", "outq:{q}:replayed"});
}

TEST_CASE("dead letters are read in XRANGE pages, each after the last entry of the one before") {
    const queue::keys k("q");
    CHECK(admin::dead_page_command(k, "").args() == strings{"XRANGE", "outq:{q}:dead", "-", "+", "COUNT", "500"});
    CHECK(admin::dead_page_command(k, "5-1", 2).args() ==
          strings{"XRANGE", "outq:{q}:dead", "(5-1", "+", "COUNT", "2"});
    auto reply = arr({arr({str("5-0"), arr({str("id"), str("a"), str("error_class"), str("permanent")})}),
                      arr({str("6-0"), arr({str("id"), str("b")})})});
    auto page = admin::read_dead_page(reply);
    REQUIRE(page.ok());
    REQUIRE(page.value->size() == 2);
    CHECK((*page.value)[0].entry_id == "5-0");
    CHECK((*page.value)[0].fields == admin::field_list{{"id", "a"}, {"error_class", "permanent"}});
    CHECK((*page.value)[1].entry_id == "6-0");
    auto empty = arr({});
    CHECK(admin::read_dead_page(empty).value->empty());
    auto refused = error(moved);
    CHECK(admin::read_dead_page(refused).error == moved);
    auto broken = arr({str("5-0")});
    CHECK_FALSE(admin::read_dead_page(broken).ok());
    auto number = num(3);
    CHECK_FALSE(admin::read_dead_page(number).ok());
}

TEST_CASE("replay runs the replay script on the dead letter's job; nil means replayed already") {
    const queue::keys k("q");
    const auto a = admin::replay_command(k, "job-1", R"({"id":"job-1"})", "9-0", false).args();
    CHECK(a == strings{"EVAL", queue::replay_script, "3", "outq:{q}:result:job-1", "outq:{q}:jobs", "outq:{q}:replayed",
                       R"({"id":"job-1"})", "9-0", ""});
    CHECK(admin::replay_command(k, "job-1", "{}", "9-0", true).args().back() == "force");
    auto fresh = admin::read_replay(str("12-0"));
    REQUIRE(fresh.ok());
    CHECK(*fresh.value == std::optional<std::string>("12-0"));
    auto again = admin::read_replay(nil);
    REQUIRE(again.ok());
    CHECK_FALSE(*again.value);
    CHECK(admin::read_replay(error("NOSCRIPT x")).error == "NOSCRIPT x");
    CHECK_FALSE(admin::read_replay(num(1)).ok());
}

TEST_CASE("stats are six commands read into counts; the consumers are the outq group's") {
    const queue::keys k("q");
    const auto cmds = admin::stats_commands(k);
    REQUIRE(cmds.size() == 6);
    CHECK(cmds[0].args() == strings{"XLEN", "outq:{q}:jobs"});
    CHECK(cmds[1].args() == strings{"XPENDING", "outq:{q}:jobs", "outq.v2"});
    CHECK(cmds[2].args() == strings{"ZCARD", "outq:{q}:delayed"});
    CHECK(cmds[3].args() == strings{"XLEN", "outq:{q}:dead"});
    CHECK(cmds[4].args() == strings{"XLEN", "outq:{q}:results"});
    CHECK(cmds[5].args() == strings{"XINFO", "GROUPS", "outq:{q}:jobs"});
    auto group = [](const char* name, long long consumers) {
        return arr({str("name"), str(name), str("consumers"), num(consumers), str("pending"), num(0),
                    str("last-delivered-id"), str("0-0"), str("entries-read"), nil, str("lag"), num(0)});
    };
    auto s = admin::read_stats({num(12), arr({num(5), str("1-0"), str("9-0"), arr({})}), num(3), num(2), num(40),
                                arr({group("other", 9), group("outq.v2", 4)})});
    REQUIRE(s.ok());
    CHECK(s.value->stream_length == 12);
    CHECK(s.value->pending == 5);
    CHECK(s.value->waiting() == 7);
    CHECK(s.value->delayed == 3);
    CHECK(s.value->dead == 2);
    CHECK(s.value->results_events == 40);
    CHECK(s.value->consumers == 4);
    CHECK(s.value->group);
    // A queue no worker has seen: no stream (XINFO: no such key), or a stream without the group (NOGROUP).
    auto fresh = admin::read_stats({num(0), error("NOGROUP No such key 'outq:{q}:jobs' or consumer group 'outq'"),
                                    num(0), num(0), num(0), error("ERR no such key")});
    REQUIRE(fresh.ok());
    CHECK(fresh.value->pending == 0);
    CHECK(fresh.value->consumers == 0);
    CHECK_FALSE(fresh.value->group);
    auto no_group = admin::read_stats({num(2), error("NOGROUP No such key 'outq:{q}:jobs' or consumer group 'outq'"),
                                       num(0), num(0), num(0), arr({})});
    REQUIRE(no_group.ok());
    CHECK(no_group.value->waiting() == 2);
    CHECK_FALSE(no_group.value->group);
    auto other_group = admin::read_stats({num(2), error("NOGROUP No such key 'outq:{q}:jobs' or consumer group 'outq'"),
                                          num(0), num(0), num(0), arr({group("other", 1)})});
    REQUIRE(other_group.ok());
    CHECK_FALSE(other_group.value->group);
    auto idle_group = admin::read_stats(
        {num(2), arr({num(0), nil, nil, arr({})}), num(0), num(0), num(0), arr({group("outq.v2", 0)})});
    REQUIRE(idle_group.ok());
    CHECK(idle_group.value->group);  // created, its workers gone
    CHECK(idle_group.value->consumers == 0);
}

TEST_CASE("whether the outq group exists: XINFO GROUPS of the stream") {
    CHECK(admin::groups_command(queue::keys("q")).args() == strings{"XINFO", "GROUPS", "outq:{q}:jobs"});
    auto ours = arr({arr({str("name"), str("outq.v2"), str("consumers"), num(2)})});
    auto theirs = arr({arr({str("name"), str("other"), str("consumers"), num(2)})});
    REQUIRE(admin::read_group(ours).ok());
    CHECK(*admin::read_group(ours).value == 2);
    REQUIRE(admin::read_group(theirs).ok());
    CHECK_FALSE(admin::read_group(theirs).value->has_value());
    REQUIRE(admin::read_group(error("ERR no such key")).ok());
    CHECK_FALSE(admin::read_group(error("ERR no such key")).value->has_value());
    CHECK(admin::read_group(error(moved)).error == moved);
    CHECK_FALSE(admin::read_group(num(1)).ok());
}

TEST_CASE("stats against a wrong Redis Cluster node, or with a broken reply, are an error, not zeros") {
    std::vector<redis::value> refused(6, error(moved));
    auto s = admin::read_stats(refused);
    CHECK_FALSE(s.ok());
    CHECK(s.error == moved);
    // Each reply on its own.
    const std::vector<redis::value> good = {num(1), arr({num(0), nil, nil, nil}), num(0), num(0), num(0), arr({})};
    REQUIRE(admin::read_stats(good).ok());
    for (std::size_t i = 0; i < good.size(); ++i) {
        auto one = good;
        one[i] = error(moved);
        CAPTURE(i);
        CHECK(admin::read_stats(one).error == moved);
    }
    auto wrong_type = good;
    wrong_type[2] = error("WRONGTYPE Operation against a key holding the wrong kind of value");
    CHECK(admin::read_stats(wrong_type).error == "WRONGTYPE Operation against a key holding the wrong kind of value");
    auto text = good;
    text[0] = str("12");
    CHECK(admin::read_stats(text).error == "unexpected reply to XLEN: a string instead of an integer");
    auto no_summary = good;
    no_summary[1] = arr({});
    CHECK_FALSE(admin::read_stats(no_summary).ok());
    auto bad_group = good;
    bad_group[5] = arr({arr({str("name"), str("outq.v2"), str("consumers")})});
    CHECK_FALSE(admin::read_stats(bad_group).ok());
    auto no_count = good;
    no_count[5] = arr({arr({str("name"), str("outq.v2")})});
    CHECK_FALSE(admin::read_stats(no_count).ok());
    CHECK_FALSE(admin::read_stats({num(1), num(2)}).ok());  // replies missing
}

TEST_CASE("limit scopes are found with SCAN; each scope's pause and window are read, errors included") {
    const queue::keys k("q");
    CHECK(admin::scan_scopes_command(k, "0").args() == strings{"SCAN", "0", "MATCH", "outq:{q@*", "COUNT", "1000"});
    CHECK(admin::scan_scopes_command(queue::keys("a*b?"), "0").args()[3] == "outq:{a\\*b\\?@*");
    auto page = admin::read_scan_scopes(
        k, arr({str("17"), arr({str("outq:{q@webhook/a}:pause"), str("outq:{q@webhook/a}:window"),
                                str("outq:{q@mews/hotel:1}:leases"), str("outq:{q@junk")})}));
    REQUIRE(page.ok());
    CHECK(page.value->cursor == "17");
    CHECK(page.value->scopes == strings{"webhook/a", "webhook/a", "mews/hotel:1"});
    CHECK(admin::read_scan_scopes(k, error(moved)).error == moved);
    CHECK_FALSE(admin::read_scan_scopes(k, arr({str("0")})).ok());
    CHECK_FALSE(admin::read_scan_scopes(k, arr({str("0"), arr({num(1)})})).ok());

    const auto cmds = admin::scope_state_commands(k, "webhook/a");
    REQUIRE(cmds.size() == 4);
    CHECK(cmds[0].args() == strings{"PTTL", "outq:{q@webhook/a}:pause"});
    CHECK(cmds[1].args() == strings{"GET", "outq:{q@webhook/a}:pause"});
    CHECK(cmds[2].args() == strings{"ZCARD", "outq:{q@webhook/a}:window"});
    CHECK(cmds[3].args() == strings{"HGETALL", "outq:{q@webhook/a}:circuit"});
    auto paused = admin::read_scope_state("webhook:a", {num(1500), str("maintenance"), num(7), arr({})});
    REQUIRE(paused.ok());
    CHECK(paused.value->provider_account == "webhook:a");
    CHECK(paused.value->pause_ms == 1500);
    CHECK(paused.value->pause_reason == "maintenance");
    CHECK(paused.value->in_window == 7);
    CHECK_FALSE(paused.value->circuit);
    auto flowing = admin::read_scope_state("webhook:a", {num(-2), nil, num(0), arr({})});
    REQUIRE(flowing.ok());
    CHECK(flowing.value->pause_ms == -2);
    CHECK(flowing.value->pause_reason.empty());
    CHECK(admin::read_scope_state("webhook:a", {error(moved), error(moved), error(moved), error(moved)}).error ==
          moved);
    CHECK(admin::read_scope_state("webhook:a", {num(-2), nil, error("WRONGTYPE x"), arr({})}).error == "WRONGTYPE x");
    CHECK(admin::read_scope_state("webhook:a", {num(-2), nil, num(0), error("WRONGTYPE y")}).error == "WRONGTYPE y");
    CHECK_FALSE(admin::read_scope_state("webhook:a", {num(-2), num(1), num(0), arr({})}).ok());
    CHECK_FALSE(admin::read_scope_state("webhook:a", {num(-2)}).ok());
    CHECK_FALSE(admin::read_scope_state("webhook:a", {num(-2), nil, num(0)}).ok());
}

TEST_CASE("stats reads an account's circuit from its hash") {
    auto open = admin::read_scope_state(
        "webhook/a",
        {num(4000), str("circuit: HTTP 503 from webhook"), num(0),
         arr({str("failures"), str("5"), str("state"), str("open"), str("opens"), str("2"), str("opened_at"),
              str("1000"), str("open_ms"), str("10000"), str("reason"), str("HTTP 503 from webhook")})});
    REQUIRE(open.ok());
    REQUIRE(open.value->circuit);
    const auto& c = *open.value->circuit;
    CHECK(c.state == "open");
    CHECK(c.failures == 5);
    CHECK(c.opens == 2);
    CHECK(c.opened_at == 1000);
    CHECK(c.open_ms == 10000);
    CHECK(c.reason == "HTTP 503 from webhook");
    CHECK(c.phase(5000) == "open");
    CHECK(c.remaining_ms(5000) == 6000);
    CHECK(c.phase(11000) == "half_open");
    CHECK(c.remaining_ms(11000) == 0);
    auto bad = admin::read_scope_state("webhook/a", {num(-2), nil, num(0), arr({str("failures"), str("x")})});
    CHECK_FALSE(bad.ok());
    CHECK(bad.error == "unexpected circuit field failures: 'x' is not an integer");
}

TEST_CASE("a result is one GET; cancel is one script that writes only a job without a value") {
    const queue::keys k("q");
    CHECK(admin::result_command(k, "job-7").args() == strings{"GET", "outq:{q}:result:job-7"});
    CHECK_FALSE(admin::read_result_reply(nil).value->has_value());
    CHECK(admin::read_result_reply(str(R"({"status":"sent"})")).value->value() == R"({"status":"sent"})");
    CHECK(admin::read_result_reply(error("WRONGTYPE x")).error == "WRONGTYPE x");
    queue::write_settings w;
    w.result_ttl_seconds = 60;
    w.results_stream_maxlen = 10;
    CHECK(admin::cancel_command(k, "job-7", "withdrawn", 5, w).args() ==
          strings{"EVAL", admin::cancel_script, "2", "outq:{q}:result:job-7", "outq:{q}:results",
                  R"({"status":"cancelled","id":"job-7","reason":"withdrawn","cancelled_at":5})", "60", "job-7", "5",
                  "10"});
    CHECK(std::string(admin::cancel_script).find("'NX', 'EX', ARGV[2], 'GET'") != std::string::npos);
    CHECK_FALSE(admin::read_cancel(status("OK")).value->has_value());
    CHECK(admin::read_cancel(str(R"({"status":"sending"})")).value->value() == R"({"status":"sending"})");
    CHECK(admin::read_cancel(error(moved)).error == moved);
}

TEST_CASE("result --wait follows the results stream from its last entry before the first read") {
    const queue::keys k("q");
    CHECK(admin::last_event_command(k).args() == strings{"XREVRANGE", "outq:{q}:results", "+", "-", "COUNT", "1"});
    CHECK(admin::read_last_event(arr({})).value == "0-0");
    CHECK(admin::read_last_event(arr({arr({str("7-1"), arr({str("id"), str("a")})})})).value == "7-1");
    CHECK(admin::read_last_event(error(moved)).error == moved);
    CHECK(admin::follow_events_command(k, "7-1", std::chrono::milliseconds(1000)).args() ==
          strings{"XREAD", "COUNT", "1000", "BLOCK", "1000", "STREAMS", "outq:{q}:results", "7-1"});
    std::string after = "7-1";
    auto none = nil;
    CHECK(admin::read_followed_events(none, "a", after).value == false);
    CHECK(after == "7-1");
    auto reply = arr({arr({str("outq:{q}:results"), arr({arr({str("8-0"), arr({str("id"), str("b")})}),
                                                         arr({str("9-0"), arr({str("id"), str("a")})})})})});
    CHECK(admin::read_followed_events(reply, "a", after).value == true);
    CHECK(after == "9-0");
    auto bad = error(moved);
    CHECK(admin::read_followed_events(bad, "a", after).error == moved);
}

TEST_CASE("an operator's pause is a plain SET, which may shorten a pause; resume is a DEL") {
    const queue::keys k("q");
    CHECK(admin::operator_pause_command(k, "webhook", "a", "by hand", std::nullopt).args() ==
          strings{"SET", "outq:{q@webhook/a}:pause", "by hand"});
    CHECK(admin::operator_pause_command(k, "webhook", "a", "by hand", milliseconds(30000)).args() ==
          strings{"SET", "outq:{q@webhook/a}:pause", "by hand", "PX", "30000"});
    CHECK(admin::read_ok(status("OK"), "SET").ok());
    CHECK(admin::read_ok(error(moved), "SET").error == moved);
    CHECK_FALSE(admin::read_ok(nil, "SET").ok());
    CHECK(admin::resume_command(k, "webhook", "a").args() == strings{"DEL", "outq:{q@webhook/a}:pause"});
    CHECK(admin::read_resumed(num(1)).value == true);
    CHECK(admin::read_resumed(num(0)).value == false);
    CHECK(admin::read_resumed(error(moved)).error == moved);
    CHECK_FALSE(admin::read_resumed(status("OK")).ok());
}

TEST_CASE("outq pause and outq resume publish on the control channel in the same pipeline") {
    const queue::keys k("q");
    const auto pause = admin::operator_pause_commands(k, "webhook", "a", "by hand", milliseconds(30000));
    REQUIRE(pause.size() == 2);
    CHECK(pause[0].args() == strings{"SET", "outq:{q@webhook/a}:pause", "by hand", "PX", "30000"});
    CHECK(pause[1].args() == strings{"PUBLISH", "outq:{q}:control", "v1\tpause\twebhook\ta\t30000\tby hand"});
    const auto forever = admin::operator_pause_commands(k, "webhook", "a", "by hand", std::nullopt);
    CHECK(forever[1].args()[2] == "v1\tpause\twebhook\ta\t-1\tby hand");
    const auto resume = admin::resume_commands(k, "webhook", "a");
    REQUIRE(resume.size() == 2);
    CHECK(resume[0].args() == strings{"DEL", "outq:{q@webhook/a}:pause"});
    CHECK(resume[1].args() == strings{"PUBLISH", "outq:{q}:control", "v1\tresume\twebhook\ta"});
    CHECK(admin::read_published(num(3)).value == 3);
    CHECK(admin::read_published(num(0)).value == 0);  // no worker listening: still done
    CHECK(admin::read_published(error("NOPERM this user has no permissions to access the channel")).error ==
          "NOPERM this user has no permissions to access the channel");
    CHECK_FALSE(admin::read_published(nil).ok());
}

TEST_CASE("resume pages through the held jobs and makes that account's due now") {
    const queue::keys k("q");
    CHECK(admin::held_page_command(k, 1700000000000, 0).args() ==
          strings{"ZRANGEBYSCORE", "outq:{q}:delayed", "(1700000000000", "+inf", "LIMIT", "0", "1000"});
    CHECK(admin::held_page_command(k, 5, 2000, 10).args()[5] == "2000");
    auto tokens = admin::read_held_page(arr({str("1-0"), str("2-0"), str("3-0"), str("4-0")}));
    REQUIRE(tokens.ok());
    CHECK(*tokens.value == strings{"1-0", "2-0", "3-0", "4-0"});
    CHECK(admin::read_held_page(error(moved)).error == moved);
    CHECK_FALSE(admin::read_held_page(arr({num(1)})).ok());

    const auto gets = admin::held_job_commands(k, *tokens.value);
    REQUIRE(gets.size() == 4);
    CHECK(gets[0].args() == strings{"HGET", "outq:{q}:delayed:1-0", "job"});
    const std::vector<redis::value> jobs = {str(R"({"provider":"webhook","account":"a","message":{}})"),
                                            str(R"({"provider":"webhook","account":"b","message":{}})"), nil,
                                            str(R"({"account":"a","provider":"webhook"})")};
    auto held = admin::read_held_jobs_of(jobs, *tokens.value, "webhook", "a");
    REQUIRE(held.ok());
    CHECK(*held.value == strings{"1-0", "4-0"});  // b's is not this account's; 3-0 is gone
    auto refused = jobs;
    refused[1] = error(moved);
    CHECK(admin::read_held_jobs_of(refused, *tokens.value, "webhook", "a").error == moved);
    CHECK_FALSE(admin::read_held_jobs_of({jobs[0]}, *tokens.value, "webhook", "a").ok());

    const auto bumps = admin::due_now_commands(k, *held.value, 1700000000000);
    REQUIRE(bumps.size() == 2);
    CHECK(bumps[1].args() == strings{"ZADD", "outq:{q}:delayed", "XX", "1700000000000", "4-0"});
}

TEST_CASE("the first error of a pipeline's replies") {
    CHECK_FALSE(admin::first_error({num(1), str("x"), nil}));
    CHECK(admin::first_error({num(1), error(moved), error("ERR later")}) == moved);
}

TEST_CASE("dead letter filters: --status matches a status or a class of them, --grep the error or the job") {
    CHECK(admin::valid_status_pattern("422"));
    CHECK(admin::valid_status_pattern("4xx"));
    CHECK(admin::valid_status_pattern("42x"));
    CHECK_FALSE(admin::valid_status_pattern("x22"));
    CHECK_FALSE(admin::valid_status_pattern("4x"));
    CHECK_FALSE(admin::valid_status_pattern("4xxx"));
    CHECK_FALSE(admin::valid_status_pattern("abc"));
    CHECK(admin::status_matches("4xx", "422"));
    CHECK(admin::status_matches("422", "422"));
    CHECK(admin::status_matches("42x", "429"));
    CHECK_FALSE(admin::status_matches("4xx", "503"));
    CHECK_FALSE(admin::status_matches("422", "429"));
    CHECK_FALSE(admin::status_matches("4xx", ""));  // no response came
    CHECK_FALSE(admin::status_matches("4xx", "4a2"));
    const admin::dead_letter d{"5-0",
                               {{"error", "HTTP 400: bad phone"}, {"job", R"({"id":"x","message":{"to":"+41"}})"}}};
    CHECK(admin::dead_letter_contains(d, "bad phone"));
    CHECK(admin::dead_letter_contains(d, "+41"));
    CHECK_FALSE(admin::dead_letter_contains(d, "BAD PHONE"));
    CHECK_FALSE(admin::dead_letter_contains(d, "5-0"));
}

TEST_CASE("deleting dead letters is XDEL of the letters and HDEL of their replay links") {
    const queue::keys k("q");
    const auto cmds = admin::dead_delete_commands(k, {"5-0", "6-1"});
    REQUIRE(cmds.size() == 2);
    CHECK(cmds[0].args() == strings{"XDEL", "outq:{q}:dead", "5-0", "6-1"});
    CHECK(cmds[1].args() == strings{"HDEL", "outq:{q}:replayed", "5-0", "6-1"});
    CHECK(admin::dead_delete_commands(k, {}).empty());
    auto n = admin::read_dead_deleted({num(2), num(0)});
    REQUIRE(n.ok());
    CHECK(*n.value == 2);
    CHECK(admin::read_dead_deleted({error(moved), num(0)}).error == moved);
    CHECK(admin::read_dead_deleted({num(2), error(moved)}).error == moved);
    CHECK_FALSE(admin::read_dead_deleted({num(2)}).ok());
}

TEST_CASE("a replay is found in the replayed hash; its entry id says when; the result says how it ended") {
    const admin::field_list replayed{{"5-0", "1764583200042-3"}};
    auto r = admin::replay_info_of(replayed, "5-0", "sent");
    REQUIRE(r);
    CHECK(r->entry == "1764583200042-3");
    CHECK(r->at == 1764583200042);
    CHECK(r->result == "sent");
    CHECK_FALSE(admin::replay_info_of(replayed, "6-0", "sent"));
    const queue::keys k("q");
    const auto cmds = admin::result_commands(k, {"a", "b"});
    REQUIRE(cmds.size() == 2);
    CHECK(cmds[1].args() == strings{"GET", "outq:{q}:result:b"});
    auto statuses =
        admin::read_result_statuses({str(R"({"status":"sent","id":"a"})"), nil,
                                     str(R"({"status":"sending","entry":"1-0","since":1})"), str("not json")});
    REQUIRE(statuses.ok());
    CHECK(*statuses.value == strings{"sent", "", "sending", "unreadable"});
    CHECK(admin::read_result_statuses({error(moved)}).error == moved);
}

TEST_CASE("stats: the oldest dead letter is XRANGE dead - + COUNT 1, its age from its entry id") {
    const queue::keys k("q");
    CHECK(admin::oldest_dead_command(k).args() == strings{"XRANGE", "outq:{q}:dead", "-", "+", "COUNT", "1"});
    auto one = arr({arr({str("1764583200000-0"), arr({str("id"), str("a")})})});
    auto oldest = admin::read_oldest_dead(one);
    REQUIRE(oldest.ok());
    CHECK(*oldest.value == std::optional<unix_ms>(1764583200000));
    auto none = arr({});
    auto empty = admin::read_oldest_dead(none);
    REQUIRE(empty.ok());
    CHECK_FALSE(*empty.value);
    auto refused = error(moved);
    CHECK(admin::read_oldest_dead(refused).error == moved);
}

TEST_CASE("finding a job: stream pages, the job id of an entry, entry id order, the group's last delivered id") {
    const queue::keys k("q");
    CHECK(admin::jobs_page_command(k, "").args() == strings{"XRANGE", "outq:{q}:jobs", "-", "+", "COUNT", "1000"});
    CHECK(admin::jobs_page_command(k, "7-1", 5).args() ==
          strings{"XRANGE", "outq:{q}:jobs", "(7-1", "+", "COUNT", "5"});
    CHECK(admin::job_id_of({{"job", R"({"v":1,"id":"order-42"})"}}, "9-0") == "order-42");
    CHECK(admin::job_id_of({{"job", R"({"v":1})"}, {"first_entry", "3-0"}}, "9-0") == "3-0");
    CHECK(admin::job_id_of({{"job", R"({"v":1})"}}, "9-0") == "9-0");
    CHECK(admin::job_id_of({{"job", "not json"}}, "9-0") == "9-0");
    const std::string base = R"({"v":1,"id":"x","provider":"webhook","account":"a","message":{})";
    CHECK(admin::own_not_before_of({{"job", base + R"(,"not_before":1700000000000})"}}) ==
          std::optional<unix_ms>(1700000000000));
    CHECK(admin::own_not_before_of({{"job", base + R"(,"not_before":"2023-11-14T22:13:20Z"})"}}) ==
          std::optional<unix_ms>(1700000000000));
    CHECK_FALSE(admin::own_not_before_of({{"job", base + "}"}}));
    CHECK_FALSE(admin::own_not_before_of({{"job", "not json"}}));
    CHECK_FALSE(admin::own_not_before_of({{"attempts", "2"}}));
    CHECK(admin::entry_before("1-2", "10-0"));
    CHECK(admin::entry_before("10-0", "10-1"));
    CHECK_FALSE(admin::entry_before("10-1", "10-1"));
    CHECK_FALSE(admin::entry_before("11-0", "10-9"));
    CHECK(admin::entry_before("9", "9-1"));
    auto groups = arr({arr({str("name"), str("outq"), str("last-delivered-id"), str("99-0")}),
                       arr({str("name"), str(std::string(queue::group_name)), str("consumers"), num(2),
                            str("last-delivered-id"), str("5-0")})});
    auto last = admin::read_last_delivered(groups);
    REQUIRE(last.ok());
    CHECK(*last.value == std::optional<std::string>("5-0"));
    auto none = admin::read_last_delivered(arr({}));
    REQUIRE(none.ok());
    CHECK_FALSE(*none.value);
    auto no_stream = admin::read_last_delivered(error("ERR no such key"));
    REQUIRE(no_stream.ok());
    CHECK_FALSE(*no_stream.value);
    CHECK(admin::read_last_delivered(error(moved)).error == moved);
}

TEST_CASE("in flight: XPENDING's extended form, by page or for one entry; NOGROUP is none") {
    const queue::keys k("q");
    const std::string g(queue::group_name);
    CHECK(admin::pending_page_command(k, "").args() == strings{"XPENDING", "outq:{q}:jobs", g, "-", "+", "1000"});
    CHECK(admin::pending_page_command(k, "4-0", 10).args() ==
          strings{"XPENDING", "outq:{q}:jobs", g, "(4-0", "+", "10"});
    CHECK(admin::pending_entry_command(k, "4-0").args() == strings{"XPENDING", "outq:{q}:jobs", g, "4-0", "4-0", "1"});
    auto rows = admin::read_pending_rows(arr({arr({str("4-0"), str("pod-a"), num(1500), num(2)})}));
    REQUIRE(rows.ok());
    REQUIRE(rows.value->size() == 1);
    CHECK((*rows.value)[0].entry_id == "4-0");
    CHECK((*rows.value)[0].consumer == "pod-a");
    CHECK((*rows.value)[0].idle_ms == 1500);
    CHECK((*rows.value)[0].deliveries == 2);
    auto nogroup = admin::read_pending_rows(error("NOGROUP No such key 'outq:{q}:jobs' or consumer group"));
    REQUIRE(nogroup.ok());
    CHECK(nogroup.value->empty());
    CHECK(admin::read_pending_rows(error(moved)).error == moved);
    CHECK_FALSE(admin::read_pending_rows(arr({arr({str("4-0"), str("pod-a")})})).ok());
    CHECK(admin::entry_commands(k, {"4-0"})[0].args() == strings{"XRANGE", "outq:{q}:jobs", "4-0", "4-0"});
}

TEST_CASE("delayed jobs: ZRANGE pages with scores, each item's hash, why it waits, retry-now is ZADD XX CH") {
    const queue::keys k("q");
    CHECK(admin::delayed_page_command(k, 0).args() == strings{"ZRANGE", "outq:{q}:delayed", "0", "999", "WITHSCORES"});
    CHECK(admin::delayed_page_command(k, 1000, 10).args() ==
          strings{"ZRANGE", "outq:{q}:delayed", "1000", "1009", "WITHSCORES"});
    auto page = admin::read_delayed_page(arr({str("7-0"), str("1764583200000"), str("8-0"), str("1.7645832e+12")}));
    REQUIRE(page.ok());
    REQUIRE(page.value->size() == 2);
    CHECK((*page.value)[0].token == "7-0");
    CHECK((*page.value)[0].due == 1764583200000);
    CHECK((*page.value)[1].due == 1764583200000);
    CHECK_FALSE(admin::read_delayed_page(arr({str("7-0")})).ok());
    CHECK_FALSE(admin::read_delayed_page(arr({str("7-0"), str("soon")})).ok());
    CHECK(admin::read_delayed_page(error(moved)).error == moved);
    const auto items = admin::delayed_item_commands(k, *page.value);
    REQUIRE(items.size() == 2);
    CHECK(items[0].args() == strings{"HGETALL", "outq:{q}:delayed:7-0"});
    auto read = admin::read_delayed_items({arr({str("job"), str("{}")}), arr({})});
    REQUIRE(read.ok());
    CHECK((*read.value)[0] == admin::field_list{{"job", "{}"}});
    CHECK((*read.value)[1].empty());
    CHECK(admin::read_delayed_items({error(moved)}).error == moved);

    CHECK(admin::delay_reason({{"job", "{}"}}) == "not_before (or put back by a worker)");
    CHECK(admin::delay_reason({{"history", "[]"}}) == "not_before (or put back by a worker)");
    CHECK(admin::delay_reason({{"history", R"([{"at":1,"status":503,"class":"retryable","error":"HTTP 503"},)"
                                           R"({"at":2,"status":429,"class":"rate_limited","error":"slow down"}])"}}) ==
          "retry after rate_limited (HTTP 429): slow down (attempt 2)");
    CHECK(admin::delay_reason({{"history", R"([{"at":1,"status":0,"class":"retryable","error":"refused"}])"}}) ==
          "retry after retryable: refused (attempt 1)");

    CHECK(admin::retry_now_command(k, "7-0", 1764583200000).args() ==
          strings{"ZADD", "outq:{q}:delayed", "XX", "CH", "1764583200000", "7-0"});
    CHECK(*admin::read_retry_now(num(1)).value);
    CHECK_FALSE(*admin::read_retry_now(num(0)).value);
    CHECK(admin::read_retry_now(error(moved)).error == moved);
}
