// The snapshotter, one step() at a time, against a scripted Redis peer.
#include "runtime/snapshotter.hpp"

#include <doctest/doctest.h>

#include "runtime_fixture.hpp"

using namespace outq;

namespace {

struct snapshot_rig : test::rig {
    runtime::snapshotter snap{ex(), ctx, conn, stats, [this] {
                                  queue::activity::worker_snapshot s;
                                  s.in_flight = in_flight;
                                  return s;
                              }};
    std::int64_t in_flight = 0;
    std::optional<bool> step() { return test::run(io, snap.step()); }
    snapshot_rig() { stats.allow_scope("webhook", "a"); }
    void sent(double n) {
        std::string l;
        stats.append_scope_labels(l, "webhook", "a");
        append_label(l, "outcome", "sent");
        stats.inc("outq_jobs_total", l, n);
    }
};

}  // namespace

TEST_CASE("snapshotter: idle, the snapshot alone; busy, what grew since the last write that landed") {
    snapshot_rig r;
    r.peer.answer("SET", "+OK\r\n");
    CHECK(r.step() == std::optional<bool>(true));
    REQUIRE(r.peer.received().size() == 1);
    const auto set = r.peer.received("SET").at(0);
    CHECK(set.at(1) == "outq:{q}:worker:w1");
    auto snapshot = queue::activity::parse_snapshot(set.at(2));
    REQUIRE(snapshot);
    CHECK(snapshot->consumer == "w1");
    REQUIRE(snapshot->limits.size() == 1);
    CHECK(snapshot->limits[0].account == "webhook/a");
    CHECK(set.at(4) == std::to_string((3 * r.config.snapshot_interval + std::chrono::milliseconds(1000)).count()));

    r.sent(4);
    r.in_flight = 2;
    r.peer.answer("HINCRBY", ":4\r\n").answer("PEXPIRE", ":1\r\n").answer("SET", "+OK\r\n");
    CHECK(r.step() == std::optional<bool>(true));
    auto incr = r.peer.received("HINCRBY");
    REQUIRE(incr.size() == 1);
    CHECK(incr[0].at(1).rfind("outq:{q}:activity:", 0) == 0);
    CHECK(incr[0].at(2) == "sent::webhook/a");
    CHECK(incr[0].at(3) == "4");
    CHECK(queue::activity::parse_snapshot(r.peer.received("SET").back().at(2))->in_flight == 2);

    // A failed write: its counts go with the next one.
    r.sent(1);
    r.peer.answer("HINCRBY", "-LOADING Redis is loading\r\n").answer("PEXPIRE", ":1\r\n").answer("SET", "+OK\r\n");
    CHECK(r.step() == std::optional<bool>(false));
    r.sent(2);
    r.peer.answer("HINCRBY", ":7\r\n").answer("PEXPIRE", ":1\r\n").answer("SET", "+OK\r\n");
    CHECK(r.step() == std::optional<bool>(true));
    incr = r.peer.received("HINCRBY");
    REQUIRE(incr.size() == 3);
    CHECK(incr[2].at(3) == "3");
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("snapshotter: at stop, the last counts and the snapshot removed") {
    snapshot_rig r;
    r.sent(1);
    r.peer.answer("HINCRBY", ":1\r\n").answer("PEXPIRE", ":1\r\n").answer("SET", "+OK\r\n").answer("DEL", ":1\r\n");
    auto finish = [](runtime::snapshotter& s) -> boost::asio::awaitable<bool> {
        co_await s.finish();
        co_return true;
    };
    CHECK(test::run(r.io, finish(r.snap)) == std::optional<bool>(true));
    CHECK(r.peer.received("HINCRBY").size() == 1);
    REQUIRE(r.peer.received("DEL").size() == 1);
    CHECK(r.peer.received("DEL")[0].at(1) == "outq:{q}:worker:w1");
    CHECK(r.peer.unexpected().empty());
}
