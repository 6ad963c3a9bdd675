// The writer, one step() at a time, against a scripted Redis peer.
#include "runtime/writer.hpp"

#include <doctest/doctest.h>

#include <thread>

#include "outq/queue/completion.hpp"
#include "runtime_fixture.hpp"

using namespace outq;
using namespace std::chrono_literals;
using test::scripted_redis;

namespace {

constexpr const char* sha = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

struct writer_rig : test::rig {
    runtime::writer out{ex(), ctx, ctx.queue_wide(), conn, stats};

    explicit writer_rig(test::rig_settings s = {}) : test::rig(s) {
        ctx.scripts.completion = {queue::completion_script, sha};
    }

    // A sent outcome for entry `entry_id`, held through a slot of the ledger.
    void push_sent(const std::string& entry_id) {
        auto s = held.open({entry_id}, runtime::ledger::clock::now());
        REQUIRE(s);
        queue::completion c;
        c.what = queue::completion::kind::sent;
        c.job_id = "job-" + entry_id;
        c.env.entry_id = entry_id;
        c.provider = "webhook";
        c.account = "a";
        c.http_status = 200;
        c.completed_at = 1700000000000;
        out.push(std::move(s), std::move(c));
    }

    std::optional<bool> step() { return test::run(io, out.step()); }
};

// The arguments after "EVALSHA sha" / "EVAL body": the keys and the batch.
std::vector<std::string> after_script(const scripted_redis::args& a) {
    return {a.begin() + 2, a.end()};
}

}  // namespace

TEST_CASE("writer: an OOM reply keeps the outcomes queued and their slots open; the next good reply writes them") {
    writer_rig r;
    r.push_sent("1-0");
    r.push_sent("2-0");
    r.peer.answer("EVALSHA", "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    auto first = r.step();
    REQUIRE(first);
    CHECK_FALSE(*first);
    CHECK(r.out.queued() == 2);
    CHECK(r.held.held() == 2);
    CHECK(r.held.written() == 0);
    CHECK(r.held.abandoned() == 0);
    CHECK(r.out.written().sent == 0);

    // Entry 1 written now, entry 2 acknowledged before: by another worker,
    // since the earlier attempt had a reply (it changed nothing).
    r.peer.answer("EVALSHA", "*2\r\n:1\r\n:0\r\n");
    auto second = r.step();
    REQUIRE(second);
    CHECK(*second);
    CHECK(r.out.queued() == 0);
    CHECK(r.held.held() == 0);
    CHECK(r.held.written() == 2);
    CHECK(r.out.written().sent == 1);
    CHECK(r.out.written().already_done == 1);

    auto calls = r.peer.received("EVALSHA");
    REQUIRE(calls.size() == 2);
    CHECK(calls[0][1] == sha);
    CHECK(calls[0][2] == "8");  // numkeys: 4 + 2 per entry
    // The same batch, sent again, now gated: every entry acknowledged first
    // (not gated, the script leaves sent entries for a later XACK: "d").
    CHECK(calls[0][17] == "d");
    CHECK(calls[1][17] == "1");
    auto ungated = calls[1];
    ungated[17] = "d";
    CHECK(calls[0] == ungated);
    CHECK(test::mentions(calls[0], "1-0"));
    CHECK(test::mentions(calls[0], "2-0"));
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("writer: NOSCRIPT sends the same batch again with EVAL and the script body") {
    writer_rig r;
    r.push_sent("1-0");
    r.peer.answer("EVALSHA", "-NOSCRIPT No matching script. Please use EVAL.\r\n").answer("EVAL", "*1\r\n:1\r\n");
    auto landed = r.step();
    REQUIRE(landed);
    CHECK(*landed);
    CHECK(r.out.written().sent == 1);
    CHECK(r.held.written() == 1);
    auto& got = r.peer.received();
    REQUIRE(got.size() == 2);
    CHECK(got[0][0] == "EVALSHA");
    CHECK(got[1][0] == "EVAL");
    CHECK(got[1][1] == queue::completion_script);
    CHECK(after_script(got[1]) == after_script(got[0]));
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("writer: after a reply that never came, entries found acknowledged count as written by that attempt") {
    writer_rig r;
    r.push_sent("1-0");
    r.push_sent("2-0");
    r.peer.hang_on("EVALSHA");
    const auto started = std::chrono::steady_clock::now();
    auto first = r.step();
    REQUIRE(first);
    CHECK_FALSE(*first);
    CHECK(std::chrono::steady_clock::now() - started >= 200ms);  // the command timeout of the config
    CHECK(r.out.queued() == 2);
    CHECK(r.held.held() == 2);

    // The deadline closed the connection; the next step dials again. The
    // earlier attempt applied the script: both entries answer 0 now.
    r.peer.answer("EVALSHA", "*2\r\n:0\r\n:0\r\n");
    auto second = r.step();
    REQUIRE(second);
    CHECK(*second);
    CHECK(r.peer.connections() == 2);
    CHECK(r.out.written().sent == 2);
    CHECK(r.out.written().already_done == 0);
    CHECK(r.held.written() == 2);

    // The next batch had its reply: a 0 there is another worker's doing again.
    r.push_sent("3-0");
    r.peer.answer("EVALSHA", "*1\r\n:0\r\n");
    auto third = r.step();
    REQUIRE(third);
    CHECK(*third);
    CHECK(r.out.written().sent == 2);
    CHECK(r.out.written().already_done == 1);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("writer: a connection the peer closed while idle is dialled again once, in the same step") {
    writer_rig r;
    r.push_sent("1-0");
    r.peer.answer("EVALSHA", "*1\r\n:1\r\n");
    REQUIRE(r.step() == std::optional<bool>(true));
    r.push_sent("2-0");
    r.peer.close_on("EVALSHA").answer("EVALSHA", "*1\r\n:1\r\n");
    auto landed = r.step();
    REQUIRE(landed);
    CHECK(*landed);
    CHECK(r.peer.connections() == 2);
    CHECK(r.out.written().sent == 2);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("writer: a reply of the wrong shape writes nothing and keeps the batch") {
    writer_rig r;
    r.push_sent("1-0");
    r.push_sent("2-0");
    r.peer.answer("EVALSHA", "*1\r\n:1\r\n");  // one verdict for two entries
    auto landed = r.step();
    REQUIRE(landed);
    CHECK_FALSE(*landed);
    CHECK(r.out.queued() == 2);
    CHECK(r.held.held() == 2);
    CHECK(r.out.written().sent == 0);

    r.peer.answer("EVALSHA", "-ERR Error running script (call to f_1): @user_script:1: WRONGTYPE\r\n");
    CHECK(r.step() == std::optional<bool>(false));
    CHECK(r.out.queued() == 2);
    CHECK(r.held.held() == 2);
}

TEST_CASE("writer: at most 512 outcomes per script call") {
    writer_rig r;
    for (int i = 1; i <= 513; ++i) r.push_sent(std::to_string(i) + "-0");
    std::string all_written = "*512\r\n";
    for (int i = 0; i < 512; ++i) all_written += ":1\r\n";
    r.peer.answer("EVALSHA", all_written)
        .answer("EVALSHA", "*1\r\n:1\r\n")
        .answer("XACK", ":512\r\n")
        .answer("XDEL", ":512\r\n");
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.out.queued() == 1);
    CHECK(r.held.held() == 1);
    CHECK(r.out.acks_pending() == 512);
    // 512 sent entries to acknowledge: they ride on the next batch at once.
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.out.written().sent == 513);
    CHECK(r.out.acks_pending() == 1);
    auto calls = r.peer.received("EVALSHA");
    REQUIRE(calls.size() == 2);
    CHECK(calls[0][2] == std::to_string(4 + 2 * 512));
    CHECK(calls[1][2] == "6");
    CHECK(test::mentions(calls[1], "513-0"));
    auto acks = r.peer.received("XACK");
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].size() == 3 + 512);
    CHECK(test::mentions(acks[0], "512-0"));
    CHECK_FALSE(test::mentions(acks[0], "513-0"));
    CHECK(r.peer.received("XDEL").at(0).size() == 2 + 512);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("writer: sent entries are acknowledged a moment later, many at once: with a batch when due, else alone") {
    test::rig_settings s;
    s.visibility_timeout_ms = 400;  // ack_delay() 100 ms
    writer_rig r(s);
    CHECK(r.out.ack_delay() == 100ms);
    r.push_sent("1-0");
    r.push_sent("2-0");
    r.peer.answer("EVALSHA", "*2\r\n:1\r\n:1\r\n").answer("EVALSHA", "*1\r\n:1\r\n");
    REQUIRE(r.step() == std::optional<bool>(true));
    CHECK(r.out.written().sent == 2);
    CHECK(r.held.held() == 0);  // the slots end when the outcome is written
    CHECK(r.out.acks_pending() == 2);
    CHECK(r.peer.received("XACK").empty());
    // Not due yet: the next batch goes alone.
    r.push_sent("3-0");
    REQUIRE(r.step() == std::optional<bool>(true));
    CHECK(r.out.acks_pending() == 3);
    CHECK(r.peer.received("XACK").empty());
    // Due: the next batch carries XACK and XDEL of the three, in one round trip.
    std::this_thread::sleep_for(120ms);
    r.push_sent("4-0");
    r.peer.answer("EVALSHA", "*1\r\n:1\r\n").answer("XACK", ":3\r\n").answer("XDEL", ":3\r\n");
    REQUIRE(r.step() == std::optional<bool>(true));
    CHECK(r.out.acks_pending() == 1);  // 4-0, written now
    auto acks = r.peer.received("XACK");
    REQUIRE(acks.size() == 1);
    CHECK(acks[0] == scripted_redis::args{"XACK", "outq:{q}:jobs", "outq.v2", "1-0", "2-0", "3-0"});
    CHECK(r.peer.received("XDEL").at(0) == scripted_redis::args{"XDEL", "outq:{q}:jobs", "1-0", "2-0", "3-0"});
    // Alone: a failed XACK keeps them (safe to repeat); the next one clears them.
    r.peer.answer("XACK", "-LOADING Redis is loading the dataset in memory\r\n").answer("XDEL", ":0\r\n");
    CHECK(test::run(r.io, r.out.flush_acks()) == std::optional<bool>(false));
    CHECK(r.out.acks_pending() == 1);
    r.peer.answer("XACK", ":1\r\n").answer("XDEL", ":1\r\n");
    CHECK(test::run(r.io, r.out.flush_acks()) == std::optional<bool>(true));
    CHECK(r.out.acks_pending() == 0);
    CHECK(r.peer.received("XACK").back() == scripted_redis::args{"XACK", "outq:{q}:jobs", "outq.v2", "4-0"});
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("writer: a batch written again after a failure acknowledges its sent entries itself") {
    writer_rig r;
    r.push_sent("1-0");
    r.peer.answer("EVALSHA", "-OOM command not allowed when used memory > 'maxmemory'.\r\n")
        .answer("EVALSHA", "*1\r\n:1\r\n");
    CHECK(r.step() == std::optional<bool>(false));
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.out.acks_pending() == 0);  // gated: the script acknowledged it
    CHECK(r.peer.received("EVALSHA").at(0)[15] == "d");
    CHECK(r.peer.received("EVALSHA").at(1)[15] == "1");
}

TEST_CASE("writer: past the final deadline it gives up: nothing is sent, the slots are abandoned") {
    writer_rig r;
    r.push_sent("1-0");
    r.push_sent("2-0");
    r.out.set_final_deadline(std::chrono::steady_clock::now() - 1ms);
    auto done = r.step();
    REQUIRE(done);
    CHECK(*done);
    CHECK(r.peer.received().empty());
    CHECK(r.out.queued() == 0);
    CHECK(r.held.held() == 0);
    CHECK(r.held.abandoned() == 2);
    CHECK(r.held.written() == 0);
    CHECK(r.out.written().sent == 0);
}

TEST_CASE("writer: before the final deadline, a write waits no longer than the deadline") {
    writer_rig r({.command_timeout_ms = 5000});
    r.push_sent("1-0");
    r.peer.hang_on("EVALSHA");
    const auto deadline = std::chrono::steady_clock::now() + 150ms;
    r.out.set_final_deadline(deadline);
    auto first = r.step();
    REQUIRE(first);
    CHECK_FALSE(*first);
    CHECK(std::chrono::steady_clock::now() - deadline < 1000ms);  // not the 5 s command timeout
    CHECK(r.held.held() == 1);                                    // not given up before the deadline
    // As run() does after a failed write: wait for the deadline, then step.
    std::this_thread::sleep_until(deadline + 1ms);
    auto second = r.step();
    REQUIRE(second);
    CHECK(*second);
    CHECK(r.held.abandoned() == 1);
    CHECK(r.peer.received("EVALSHA").size() == 1);
    CHECK(r.peer.unexpected().empty());
}

// Only the entries of the attempt whose reply was lost are credited to it: an
// outcome queued after it and found acknowledged was another worker's.
TEST_CASE("writer: an outcome queued after an attempt without reply is not credited to that attempt") {
    writer_rig r;
    r.push_sent("1-0");
    r.peer.hang_on("EVALSHA");
    REQUIRE(r.step() == std::optional<bool>(false));
    r.push_sent("2-0");  // not part of the attempt whose reply was lost
    r.peer.answer("EVALSHA", "*2\r\n:0\r\n:0\r\n");
    REQUIRE(r.step() == std::optional<bool>(true));
    CHECK(r.out.written().sent == 1);          // 1-0: written by the lost attempt
    CHECK(r.out.written().already_done == 1);  // 2-0: by another worker
}

TEST_CASE("writer: an entry the script reports taken over is left pending, neither written nor counted") {
    writer_rig r;
    r.push_sent("1-0");
    r.push_sent("2-0");
    r.peer.answer("EVALSHA", "*2\r\n:1\r\n:2\r\n");
    REQUIRE(r.step() == std::optional<bool>(true));
    CHECK(r.out.written().sent == 1);
    CHECK(r.out.written().taken_over == 1);
    CHECK(r.out.written().already_done == 0);
    CHECK(r.out.queued() == 0);
    CHECK(r.held.held() == 0);
    CHECK(r.held.written() == 1);
    CHECK(r.held.abandoned() == 1);
    CHECK(r.peer.unexpected().empty());
}
