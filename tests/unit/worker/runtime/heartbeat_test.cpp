// The heartbeat, one step() at a time, against a scripted Redis peer.
#include "runtime/heartbeat.hpp"

#include <doctest/doctest.h>

#include <set>

#include "outq/queue/ownership.hpp"
#include "runtime_fixture.hpp"

using namespace outq;
using namespace std::chrono_literals;
using runtime::ledger;
using test::scripted_redis;

namespace {

constexpr const char* sha = "feedbeeffeedbeeffeedbeeffeedbeeffeedbeef";

struct heartbeat_rig : test::rig {
    runtime::heartbeat beat{ex(), ctx, conn, held};
    // Delivered long ago: a refresh moves `confirmed` forward.
    const ledger::clock::time_point delivered = ledger::clock::now() - 10s;

    heartbeat_rig() { ctx.scripts.refresh = {queue::refresh_script, sha}; }

    std::optional<bool> step() { return test::run(io, beat.step()); }
};

// A refresh script call, read back: its keys and its (entry id, holds marker) pairs.
struct refresh_call {
    std::vector<std::string> keys;
    std::set<std::string> entries;
};

refresh_call read_refresh(const scripted_redis::args& a) {
    refresh_call out;
    const std::size_t numkeys = std::stoul(a.at(2));
    out.keys.assign(a.begin() + 3, a.begin() + 3 + static_cast<std::ptrdiff_t>(numkeys));
    // Then group, consumer, and the entry ids.
    for (std::size_t i = 3 + numkeys + 2; i < a.size(); ++i) out.entries.insert(a[i]);
    return out;
}

}  // namespace

TEST_CASE(
    "heartbeat: the refresh carries only the entries held and not lost; a lost one is marked, the rest confirmed") {
    heartbeat_rig r;
    auto one = r.held.open({"1-0"}, r.delivered);
    one.state().job_id = "j-1";
    one.state().holds_marker = true;
    auto two = r.held.open({"2-0"}, r.delivered);
    two.state().job_id = "j-2";
    auto three = r.held.open({"3-0"}, r.delivered);
    r.held.mark_lost({"3-0"});
    auto four = r.held.open({"4-0"}, r.delivered);
    four.written();  // closed: no longer held

    r.peer.answer("EVALSHA", "*1\r\n$3\r\n2-0\r\n");
    const auto before = ledger::clock::now();
    auto ok = r.step();
    REQUIRE(ok);
    CHECK(*ok);

    auto calls = r.peer.received("EVALSHA");
    REQUIRE(calls.size() == 1);
    CHECK(calls[0][1] == sha);
    auto call = read_refresh(calls[0]);
    CHECK(call.entries == std::set<std::string>{"1-0", "2-0"});
    REQUIRE(call.keys.size() == 1);  // markers have no TTL to extend in format 2
    CHECK(call.keys[0] == r.ctx.queue_wide().jobs);
    CHECK(test::mentions(calls[0], "w1"));

    auto& e = r.held.entries();
    CHECK_FALSE(e.at({"1-0"}).lost);
    CHECK(e.at({"1-0"}).confirmed >= before);
    CHECK(e.at({"2-0"}).lost);
    CHECK(e.at({"2-0"}).confirmed == r.delivered);
    CHECK(e.at({"3-0"}).lost);
    CHECK(e.at({"3-0"}).confirmed == r.delivered);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("heartbeat: an error reply confirms nothing and marks nothing lost") {
    heartbeat_rig r;
    auto one = r.held.open({"1-0"}, r.delivered);
    auto two = r.held.open({"2-0"}, r.delivered);
    r.peer.answer("EVALSHA", "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    auto ok = r.step();
    REQUIRE(ok);
    CHECK_FALSE(*ok);
    for (auto& [id, e] : r.held.entries()) {
        CHECK(e.confirmed == r.delivered);
        CHECK_FALSE(e.lost);
    }
    // A reply of another shape is no answer either.
    r.peer.answer("EVALSHA", ":1\r\n");
    CHECK(r.step() == std::optional<bool>(false));
    for (auto& [id, e] : r.held.entries()) CHECK(e.confirmed == r.delivered);
    // Nor is a reply that never comes.
    r.peer.hang_on("EVALSHA");
    CHECK(r.step() == std::optional<bool>(false));
    for (auto& [id, e] : r.held.entries()) CHECK(e.confirmed == r.delivered);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("heartbeat: NOSCRIPT sends the refresh again with EVAL and the body") {
    heartbeat_rig r;
    auto one = r.held.open({"1-0"}, r.delivered);
    r.peer.answer("EVALSHA", "-NOSCRIPT No matching script. Please use EVAL.\r\n").answer("EVAL", "*0\r\n");
    auto ok = r.step();
    REQUIRE(ok);
    CHECK(*ok);
    auto& got = r.peer.received();
    REQUIRE(got.size() == 2);
    CHECK(got[1][0] == "EVAL");
    CHECK(got[1][1] == queue::refresh_script);
    CHECK(std::vector<std::string>(got[1].begin() + 2, got[1].end()) ==
          std::vector<std::string>(got[0].begin() + 2, got[0].end()));
    CHECK(r.held.entries().at({"1-0"}).confirmed > r.delivered);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("heartbeat: with nothing held, no command") {
    heartbeat_rig r;
    auto ok = r.step();
    REQUIRE(ok);
    CHECK(*ok);
    auto lost = r.held.open({"1-0"}, r.delivered);
    r.held.mark_lost({"1-0"});
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.peer.received().empty());
}
