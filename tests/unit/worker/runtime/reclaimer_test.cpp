// The reclaimer, one step() at a time, against a scripted Redis peer. Its
// admission chain is the real one; the peer's claim replies make every job
// a duplicate, so nothing reaches the sender.
#include "runtime/reclaimer.hpp"

#include <doctest/doctest.h>

#include "runtime_fixture.hpp"

using namespace outq;
using namespace std::chrono_literals;
using test::array;
using test::bulk;
using test::scripted_redis;

namespace {

struct reclaimer_rig : test::rig {
    test::admission_chain chain{*this};
    runtime::reclaimer reclaim{ex(), ctx, ctx.queue_wide(), conn, held, chain.admit};

    reclaimer_rig() {
        // Every 20th step starts with the departed consumers: none here.
        peer.answer("XINFO CONSUMERS", "*0\r\n");
    }
    std::optional<bool> step() { return test::run(io, reclaim.step()); }

    // An XAUTOCLAIM reply (Redis 7: cursor, entries, deleted ids).
    static std::string autoclaim_reply(std::string_view cursor, std::initializer_list<std::string> entries) {
        return array({bulk(cursor), array(entries), "*0\r\n"});
    }
    // XPENDING jobs outq id id 1: [[id, consumer, idle, deliveries]].
    static std::string pending_row(std::string_view id, int deliveries) {
        return array({array({bulk(id), bulk("w0"), ":4000\r\n", ":" + std::to_string(deliveries) + "\r\n"})});
    }
};

}  // namespace

TEST_CASE("reclaimer: an entry this worker holds already is not taken over again") {
    reclaimer_rig r;
    auto mine = r.held.open({"1-0"}, runtime::ledger::clock::now() - 5s);
    mine.state().job_id = "j-1";
    const auto entries =
        reclaimer_rig::autoclaim_reply("0-0", {test::stream_entry("1-0", {"job", test::webhook_job("j-1")}),
                                               test::stream_entry("2-0", {"job", test::webhook_job("j-2")})});
    r.peer.answer("XAUTOCLAIM", entries);
    // Only 2-0: its delivery count, then its claim (a duplicate).
    r.peer.answer("XPENDING", reclaimer_rig::pending_row("2-0", 2));
    r.peer.answer("MSETNX", ":0\r\n").answer("PTTL", ":-2\r\n");
    r.peer.answer("SET", test::bulk(R"({"status":"sent","id":"j-2"})"));
    auto ok = r.step();
    REQUIRE(ok);
    CHECK(*ok);

    auto& got = r.peer.received();
    REQUIRE(got.size() == 6);  // MSETNX, PTTL, then SET NX GET of j-2 alone
    CHECK(got[1] ==
          scripted_redis::args{"XAUTOCLAIM", r.ctx.queue_wide().jobs, "outq.v2", "w1", "3000", "0-0", "COUNT", "3"});
    CHECK(got[2] == scripted_redis::args{"XPENDING", r.ctx.queue_wide().jobs, "outq.v2", "2-0", "2-0", "1"});
    CHECK(got[3].at(0) == "MSETNX");
    CHECK(got[3].at(1) == r.ctx.queue_wide().result("j-2"));
    for (std::size_t i = 2; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK_FALSE(test::mentions(got[i], "1-0"));
        CHECK_FALSE(test::mentions(got[i], r.ctx.queue_wide().result("j-1")));
    }
    CHECK(r.reclaim.reclaimed() == 1);
    CHECK(r.held.held() == 2);
    CHECK(r.chain.out.queued() == 1);  // the duplicate 2-0; 1-0 is still the sender's
    CHECK(r.held.abandoned() == 0);
    auto out = test::write_all(r, r.chain.out.at(0));
    REQUIRE(out.size() == 1);
    CHECK(out[0].entry_id == "2-0");
    CHECK(out[0].action == "ack");
    CHECK(r.held.holds({"1-0"}));
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("reclaimer: when every entry returned is held already, nothing follows the XAUTOCLAIM") {
    reclaimer_rig r;
    auto mine = r.held.open({"1-0"}, runtime::ledger::clock::now());
    r.peer.answer("XAUTOCLAIM", reclaimer_rig::autoclaim_reply(
                                    "0-0", {test::stream_entry("1-0", {"job", test::webhook_job("j-1")})}));
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.peer.received().size() == 2);
    CHECK(r.reclaim.reclaimed() == 0);
    CHECK(r.held.held() == 1);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("reclaimer: a delivery count past max_deliveries makes a dead letter, without a claim") {
    reclaimer_rig r;
    r.peer.answer("XAUTOCLAIM", reclaimer_rig::autoclaim_reply(
                                    "0-0", {test::stream_entry("3-0", {"job", test::webhook_job("j-3")})}));
    r.peer.answer("XPENDING", reclaimer_rig::pending_row("3-0", 11));  // max_deliveries 10
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.peer.received().size() == 3);  // no SET, EXISTS, PTTL
    CHECK(r.chain.out.queued() == 1);
    CHECK(r.held.holds({"3-0"}));
    auto out = test::write_all(r, r.chain.out.at(0));
    REQUIRE(out.size() == 1);
    CHECK(out[0].action == "dead");
    CHECK(out[0].release_marker == "0");
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("reclaimer: follows the cursor until it comes back to 0-0") {
    reclaimer_rig r;
    r.peer.answer("XAUTOCLAIM", reclaimer_rig::autoclaim_reply("5-0", {}))
        .answer("XAUTOCLAIM", reclaimer_rig::autoclaim_reply("0-0", {}));
    CHECK(r.step() == std::optional<bool>(true));
    auto calls = r.peer.received("XAUTOCLAIM");
    REQUIRE(calls.size() == 2);
    CHECK(calls[0][5] == "0-0");
    CHECK(calls[1][5] == "5-0");
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("reclaimer: NOGROUP is left to the fetcher; other errors are trouble") {
    reclaimer_rig r;
    r.peer.answer("XAUTOCLAIM", "-NOGROUP No such key 'outq:{q}:jobs' or consumer group 'outq'\r\n");
    CHECK(r.step() == std::optional<bool>(true));
    r.peer.answer("XAUTOCLAIM", "-NOPERM this user has no permissions to run the 'xautoclaim' command\r\n");
    CHECK(r.step() == std::optional<bool>(false));
    r.peer.answer("XAUTOCLAIM", ":1\r\n");
    CHECK(r.step() == std::optional<bool>(false));
    CHECK(r.peer.received("XGROUP").empty());
    CHECK(r.peer.received("XINFO").size() == 1);  // once every 20 steps
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("reclaimer: departed consumers (idle long, nothing pending) are removed from the group") {
    struct rig2 : test::rig {
        test::admission_chain chain{*this};
        runtime::reclaimer reclaim{ex(), ctx, ctx.queue_wide(), conn, held, chain.admit};
    } r;  // a rig of its own: its XINFO reply lists consumers
    auto consumer = [](std::string_view name, int pending, long long idle) {
        return array({bulk("name"), bulk(name), bulk("pending"), ":" + std::to_string(pending) + "\r\n", bulk("idle"),
                      ":" + std::to_string(idle) + "\r\n"});
    };
    r.peer.answer("XINFO CONSUMERS", array({consumer("gone", 0, 7200000), consumer("busy", 3, 7200000),
                                            consumer("recent", 0, 1000), consumer("w1", 0, 7200000)}));
    r.peer.answer("XGROUP DELCONSUMER", ":0\r\n");
    r.peer.answer("XAUTOCLAIM", reclaimer_rig::autoclaim_reply("0-0", {}));
    CHECK(test::run(r.io, r.reclaim.step()) == std::optional<bool>(true));
    auto del = r.peer.received("XGROUP DELCONSUMER");
    REQUIRE(del.size() == 1);
    CHECK(del[0] == scripted_redis::args{"XGROUP", "DELCONSUMER", r.ctx.queue_wide().jobs, "outq.v2", "gone"});
    CHECK(r.peer.unexpected().empty());
}
