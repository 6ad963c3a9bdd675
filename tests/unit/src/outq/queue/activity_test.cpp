#include "outq/queue/activity.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "fakes/redis_values.hpp"
#include "outq/queue/partitions.hpp"

using namespace outq;
using namespace outq::test_values;
namespace activity = outq::queue::activity;

namespace {

metrics scoped() {
    metrics m;
    m.allow_scope("mews", "a1");
    return m;
}

std::string scope(const metrics& m, std::string_view provider, std::string_view account) {
    std::string l;
    m.append_scope_labels(l, provider, account);
    return l;
}

}  // namespace

TEST_CASE("activity: the metrics' outcomes and exchange durations become fields; unknown names are _unknown_") {
    auto m = scoped();
    auto sent = scope(m, "mews", "a1");
    append_label(sent, "outcome", "sent");
    m.inc("outq_jobs_total", sent, 3);
    auto dead = scope(m, "mews", "a1");
    append_label(dead, "outcome", "dead");
    append_label(dead, "class", "http_4xx");
    m.inc("outq_jobs_total", dead);
    auto stranger = scope(m, "mews", "someone else");
    append_label(stranger, "outcome", "retry");
    m.inc("outq_jobs_total", stranger, 2);
    m.observe("outq_send_duration_seconds", scope(m, "mews", "a1"), 0.004);
    m.observe("outq_send_duration_seconds", scope(m, "mews", "a1"), 0.02);
    m.observe("outq_send_duration_seconds", scope(m, "mews", "a1"), 0.02);
    m.observe("outq_send_duration_seconds", scope(m, "mews", "a1"), 99);

    const auto t = activity::totals_of(m);
    CHECK(t == activity::totals{{"sent::mews/a1", 3},
                                {"dead:http_4xx:mews/a1", 1},
                                {"retry::mews/_unknown_", 2},
                                {"lat:5:mews/a1", 1},
                                {"lat:25:mews/a1", 2},
                                {"lat:inf:mews/a1", 1}});
}

TEST_CASE("activity: only what grew since the last write is added, each field once") {
    activity::totals before{{"sent::mews/a1", 3}, {"lat:5:mews/a1", 1}};
    activity::totals now{{"sent::mews/a1", 5}, {"lat:5:mews/a1", 1}, {"dead:expired:mews/a1", 2}};
    const auto g = activity::growth(before, now);
    CHECK(g == std::vector<std::pair<std::string, std::uint64_t>>{{"dead:expired:mews/a1", 2}, {"sent::mews/a1", 2}});
    CHECK(activity::growth(now, now).empty());
}

TEST_CASE("activity: one pipeline of HINCRBY into the minute's bucket, its expiry, the snapshot with a TTL") {
    const auto k = queue::partition_keys("q", 3).at(2);  // any partition: the queue's own slot
    activity::worker_snapshot s;
    s.consumer = "w1";
    s.at = 1000;
    const auto cmds =
        activity::write_commands(k, 29000000, {{"sent::mews/a1", 2}}, s, std::chrono::milliseconds(16000));
    REQUIRE(cmds.size() == 3);
    CHECK(cmds[0].args() == std::vector<std::string>{"HINCRBY", "outq:{q}:activity:29000000", "sent::mews/a1", "2"});
    CHECK(cmds[1].args() == std::vector<std::string>{"PEXPIRE", "outq:{q}:activity:29000000", "7200000"});
    const auto set = cmds[2].args();
    REQUIRE(set.size() == 5);
    CHECK(set[0] == "SET");
    CHECK(set[1] == "outq:{q}:worker:w1");
    CHECK(set[3] == "PX");
    CHECK(set[4] == "16000");
    // Idle: the snapshot alone.
    CHECK(activity::write_commands(k, 1, {}, s, std::chrono::milliseconds(1)).size() == 1);
    std::string why;
    CHECK(activity::written({status("OK")}, why));
    CHECK_FALSE(activity::written({num(1), error("OOM command not allowed")}, why));
    CHECK(why == "OOM command not allowed");
}

TEST_CASE("activity: a worker snapshot survives JSON; a malformed one is nothing") {
    activity::worker_snapshot s;
    s.consumer = "pod \"7\"";
    s.at = 1700000000123;
    s.started = 1700000000000;
    s.in_flight = 12;
    s.waiting_for_permit = 3;
    s.concurrency = 256;
    s.sent = 99;
    s.dead = 1;
    s.retried = 4;
    s.limits.push_back({"mews/a1", 100, 1000, 5, 10});
    const auto back = activity::parse_snapshot(activity::to_json(s));
    REQUIRE(back);
    CHECK(back->consumer == s.consumer);
    CHECK(back->at == s.at);
    CHECK(back->in_flight == 12);
    CHECK(back->waiting_for_permit == 3);
    CHECK(back->sent == 99);
    REQUIRE(back->limits.size() == 1);
    CHECK(back->limits[0].account == "mews/a1");
    CHECK(back->limits[0].requests == 100);
    CHECK(back->limits[0].window_ms == 1000);
    CHECK(back->limits[0].max_in_flight == 10);
    CHECK_FALSE(activity::parse_snapshot("{\"at\": 1}"));
    CHECK_FALSE(activity::parse_snapshot("[1]"));
    CHECK_FALSE(activity::parse_snapshot("{nope"));

    std::vector<activity::worker_snapshot> out;
    std::string why;
    CHECK(activity::read_snapshots(arr({str(activity::to_json(s)), nil, str("garbage")}), out, why));
    CHECK(out.size() == 1);
    CHECK_FALSE(activity::read_snapshots(error("WRONGTYPE"), out, why));
    const auto mget = activity::snapshots_command(queue::keys("q"), {"w1", "w2"});
    CHECK(mget.args() == std::vector<std::string>{"MGET", "outq:{q}:worker:w1", "outq:{q}:worker:w2"});
}

TEST_CASE("activity: the last hour read back, per minute for the queue and per account") {
    const queue::keys k("q");
    const auto cmds = activity::history_commands(k, 100, 3);
    REQUIRE(cmds.size() == 3);
    CHECK(cmds[0].args() == std::vector<std::string>{"HGETALL", "outq:{q}:activity:98"});
    CHECK(cmds[2].args() == std::vector<std::string>{"HGETALL", "outq:{q}:activity:100"});

    std::vector<redis::value> replies;
    replies.push_back(arr({str("sent::mews/a1"), str("5"), str("dead:http_4xx:mews/a1"), str("2"), str("lat:5:mews/a1"),
                           str("4"), str("stranger"), str("x")}));
    replies.push_back(arr({}));
    replies.push_back(arr({str("sent::mews/a:b/c"), str("1"), str("retry::mews/a1"), str("3"), str("lat:25:mews/a1"),
                           str("4"), str("lat:inf:mews/a1"), str("2")}));
    std::vector<activity::minute_counts> history;
    std::string why;
    REQUIRE(activity::read_history(replies, 100, history, why));
    REQUIRE(history.size() == 3);
    CHECK(history[0].minute == 98);

    const auto series = activity::queue_series(history);
    REQUIRE(series.size() == 3);
    CHECK(series[0].start == 98 * 60000);
    CHECK(series[0].sent == 5);
    CHECK(series[0].dead == 2);
    CHECK(series[1].sent == 0);
    CHECK(series[2].sent == 1);
    CHECK(series[2].retried == 3);

    const auto accounts = activity::account_series(history, 99);
    REQUIRE(accounts.count("mews/a1"));
    const auto& a = accounts.at("mews/a1");
    CHECK(a.sent == 5);
    CHECK(a.retried == 3);
    CHECK(a.dead == 2);
    CHECK(a.dead_by_class.at("http_4xx") == 2);
    CHECK(a.exchanges() == 6);  // minute 98's are before `since`
    CHECK(accounts.at("mews/a:b/c").sent == 1);

    replies[1] = error("WRONGTYPE Operation against a key holding the wrong kind of value");
    CHECK_FALSE(activity::read_history(replies, 100, history, why));
    CHECK(why.find("WRONGTYPE") != std::string::npos);
}

TEST_CASE("activity: quantiles interpolate inside the bucket, as histogram_quantile does") {
    const double inf = std::numeric_limits<double>::infinity();
    CHECK_FALSE(activity::quantile_ms({}, 0.5));
    CHECK_FALSE(activity::quantile_ms({{5, 0}, {inf, 0}}, 0.5));
    // 10 at most 5 ms, 10 in (5, 25]: the median is 5, p75 halfway into (5, 25].
    const std::map<double, std::int64_t> b{{5, 10}, {25, 10}};
    CHECK(*activity::quantile_ms(b, 0.5) == doctest::Approx(5));
    CHECK(*activity::quantile_ms(b, 0.75) == doctest::Approx(15));
    CHECK(*activity::quantile_ms(b, 0.25) == doctest::Approx(2.5));
    // In the last (+Inf) bucket: the highest finite bound.
    CHECK(*activity::quantile_ms({{5, 1}, {inf, 99}}, 0.99) == doctest::Approx(5));
}

TEST_CASE("activity: field names split at the first two colons; the account keeps the rest") {
    auto f = activity::split_field("dead:http_4xx:mews/a:1");
    REQUIRE(f);
    CHECK(f->kind == "dead");
    CHECK(f->qualifier == "http_4xx");
    CHECK(f->account == "mews/a:1");
    CHECK_FALSE(activity::split_field("sent:mews"));
    CHECK_FALSE(activity::split_field("sent::noslash"));
}
