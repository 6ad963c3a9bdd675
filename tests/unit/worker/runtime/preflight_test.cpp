// The start-up checks against a scripted Redis peer.
#include "runtime/preflight.hpp"

#include <doctest/doctest.h>

#include <map>

#include "outq/queue/completion.hpp"
#include "outq/queue/group.hpp"
#include "outq/queue/ownership.hpp"
#include "runtime_fixture.hpp"

using namespace outq;
using runtime::preflight_result;
using test::bulk;

namespace {

constexpr const char* completion_sha = "1111111111111111111111111111111111111111";
constexpr const char* refresh_sha = "2222222222222222222222222222222222222222";

struct preflight_rig : test::rig {
    std::optional<preflight_result> run() { return test::run(io, runtime::run_preflight(ctx, conn)); }

    // The format check first: a queue of format 2.
    preflight_rig() { test::answer_partition_check(peer).answer("GET", bulk("2")).answer("XINFO GROUPS", "*0\r\n"); }

    // The pipeline after the group: one harmless call per command the worker
    // needs, answered as a Redis that allows it would (unless `replies` says
    // otherwise), the two SCRIPT LOADs, INFO memory.
    void script_checks(const std::map<std::string, std::string>& replies, std::string completion_load,
                       std::string refresh_load, std::string info) {
        for (auto& c : queue::preflight_checks(ctx.queue_wide(), ctx.consumer)) {
            const std::string name(c.command);
            std::string reply = ":0\r\n";
            if (name == "XREADGROUP" || name == "XPENDING" || name == "XINFO") reply = "*0\r\n";
            if (name == "XAUTOCLAIM") reply = "*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n";
            if (name == "EVALSHA") reply = "-NOSCRIPT No matching script. Please use EVAL.\r\n";
            if (name == "GET" || name == "SET") reply = "$-1\r\n";
            if (name == "PTTL") reply = ":-2\r\n";
            if (auto it = replies.find(name); it != replies.end()) reply = it->second;
            peer.answer(name, reply);
        }
        peer.answer("SCRIPT LOAD", std::move(completion_load))
            .answer("SCRIPT LOAD", std::move(refresh_load))
            .answer("INFO", std::move(info));
    }
};

const std::string memory_info = bulk("# Memory\r\nused_memory:1000000\r\nmaxmemory_policy:allkeys-lru\r\n");

}  // namespace

TEST_CASE("preflight: a NOPERM on the XAUTOCLAIM probe refuses to start, naming XAUTOCLAIM") {
    preflight_rig r;
    r.peer.answer("XGROUP CREATE", "+OK\r\n");
    r.script_checks({{"XAUTOCLAIM", "-NOPERM User outq has no permissions to run the 'xautoclaim' command\r\n"}},
                    bulk(completion_sha), bulk(refresh_sha), memory_info);
    auto res = r.run();
    REQUIRE(res);
    CHECK(res->what == preflight_result::kind::refuse);
    CHECK(res->error.find("XAUTOCLAIM") != std::string::npos);
    CHECK(res->error.find("XREADGROUP") == std::string::npos);
    CHECK(r.ctx.scripts.completion.sha.empty());  // not started: nothing taken from the replies
    CHECK(r.peer.steps_left() == 0);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("preflight: LOADING means retry, on the group as on a check") {
    SUBCASE("creating the group") {
        preflight_rig r;
        r.peer.answer("XGROUP CREATE", "-LOADING Redis is loading the dataset in memory\r\n");
        auto res = r.run();
        REQUIRE(res);
        CHECK(res->what == preflight_result::kind::retry);
        CHECK(res->error.find("LOADING") != std::string::npos);
        CHECK(r.peer.received().size() == 6);  // the partition count, the format check, the group
    }
    SUBCASE("a check") {
        preflight_rig r;
        r.peer.answer("XGROUP CREATE", "+OK\r\n");
        r.script_checks({{"XPENDING", "-LOADING Redis is loading the dataset in memory\r\n"}}, bulk(completion_sha),
                        bulk(refresh_sha), memory_info);
        auto res = r.run();
        REQUIRE(res);
        CHECK(res->what == preflight_result::kind::retry);
        CHECK(res->error.rfind("XPENDING: LOADING", 0) == 0);
        CHECK(r.peer.unexpected().empty());
    }
    SUBCASE("Redis unreachable") {
        preflight_rig r;
        r.peer.close_on("XGROUP CREATE");
        auto res = r.run();
        REQUIRE(res);
        CHECK(res->what == preflight_result::kind::retry);
        CHECK_FALSE(res->error.empty());
    }
}

TEST_CASE("preflight: a NOPERM on creating the group refuses") {
    preflight_rig r;
    r.peer.answer("XGROUP CREATE", "-NOPERM User outq has no permissions to run the 'xgroup|create' command\r\n");
    auto res = r.run();
    REQUIRE(res);
    CHECK(res->what == preflight_result::kind::refuse);
    CHECK(res->error.find(r.ctx.queue_wide().jobs) != std::string::npos);
}

TEST_CASE("preflight: all allowed: ready, and the shas SCRIPT LOAD returned are the context's scripts") {
    preflight_rig r;
    r.peer.answer("XGROUP CREATE", "-BUSYGROUP Consumer Group name already exists\r\n");
    r.script_checks({}, bulk(completion_sha), bulk(refresh_sha), memory_info);
    auto res = r.run();
    REQUIRE(res);
    CHECK(res->what == preflight_result::kind::ready);
    CHECK(r.ctx.scripts.completion.sha == completion_sha);
    CHECK(r.ctx.scripts.completion.body == queue::completion_script);
    CHECK(r.ctx.scripts.refresh.sha == refresh_sha);
    CHECK(r.ctx.scripts.refresh.body == queue::refresh_script);

    auto& got = r.peer.received();
    REQUIRE(got.size() == 6 + queue::preflight_checks(r.ctx.queue_wide(), r.ctx.consumer).size() + 3);
    CHECK(got[0] == test::scripted_redis::args{"GET", "outq:{q}:partitions"});
    CHECK(got[1] == test::scripted_redis::args{"XLEN", "outq:{q}:jobs"});
    CHECK(got[2] == test::scripted_redis::args{"ZCARD", "outq:{q}:delayed"});
    CHECK(got[3] == test::scripted_redis::args{"GET", r.ctx.queue_wide().format});
    CHECK(got[4] == test::scripted_redis::args{"XINFO", "GROUPS", r.ctx.queue_wide().jobs});
    CHECK(got[5] ==
          test::scripted_redis::args{"XGROUP", "CREATE", r.ctx.queue_wide().jobs, "outq.v2", "0", "MKSTREAM"});
    auto loads = r.peer.received("SCRIPT LOAD");
    REQUIRE(loads.size() == 2);
    CHECK(loads[0].at(2) == queue::completion_script);
    CHECK(loads[1].at(2) == queue::refresh_script);
    CHECK(r.peer.received("INFO").at(0) == test::scripted_redis::args{"INFO", "memory"});
    CHECK(r.peer.steps_left() == 0);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("preflight: SCRIPT LOAD refused: ready, the scripts go with EVAL") {
    preflight_rig r;
    r.peer.answer("XGROUP CREATE", "+OK\r\n");
    const std::string refused = "-NOPERM User outq has no permissions to run the 'script|load' command\r\n";
    r.script_checks({}, refused, refused, bulk("# Memory\r\nmaxmemory_policy:noeviction\r\n"));
    auto res = r.run();
    REQUIRE(res);
    CHECK(res->what == preflight_result::kind::ready);
    CHECK(r.ctx.scripts.completion.sha.empty());
    CHECK(r.ctx.scripts.refresh.sha.empty());
    CHECK(queue::script_call(r.ctx.scripts.completion, 0).args().at(0) == "EVAL");
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("preflight: a format 1 queue is refused before anything is touched") {
    test::rig r;
    test::answer_partition_check(r.peer)
        .answer("GET", "$-1\r\n")
        .answer("XINFO GROUPS", "*1\r\n*4\r\n$4\r\nname\r\n$4\r\noutq\r\n$9\r\nconsumers\r\n:2\r\n");
    auto res = test::run(r.io, runtime::run_preflight(r.ctx, r.conn));
    REQUIRE(res);
    CHECK(res->what == preflight_result::kind::refuse);
    CHECK(res->error.find("format 1") != std::string::npos);
    CHECK(res->error.find("outq migrate") != std::string::npos);
    CHECK(r.peer.received().size() == 5);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("preflight: an unknown format is refused, naming it") {
    test::rig r;
    test::answer_partition_check(r.peer).answer("GET", bulk("3")).answer("XINFO GROUPS", "*0\r\n");
    auto res = test::run(r.io, runtime::run_preflight(r.ctx, r.conn));
    REQUIRE(res);
    CHECK(res->what == preflight_result::kind::refuse);
    CHECK(res->error.find("has format 3") != std::string::npos);
}

TEST_CASE("preflight: a new queue gets format 2 written, then the group") {
    test::rig r;
    test::answer_partition_check(r.peer).answer("GET", "$-1\r\n").answer("XINFO GROUPS", "-ERR no such key\r\n");
    r.peer.answer("SET", "+OK\r\n").answer("GET", bulk("2"));
    r.peer.answer("XGROUP CREATE", "-NOPERM no\r\n");  // stops the preflight here
    auto res = test::run(r.io, runtime::run_preflight(r.ctx, r.conn));
    REQUIRE(res);
    CHECK(res->what == preflight_result::kind::refuse);
    CHECK(r.peer.received("SET").at(0) == test::scripted_redis::args{"SET", r.ctx.queue_wide().format, "2", "NX"});
    CHECK(r.peer.received("XGROUP CREATE").size() == 1);
}

TEST_CASE(
    "preflight: a cluster node that does not own the queue's slot refuses at the first read, saying what to set") {
    test::rig r;
    r.peer.answer("GET", "-MOVED 15891 127.0.0.1:7001\r\n").answer("XLEN", ":0\r\n").answer("ZCARD", ":0\r\n");
    auto res = test::run(r.io, runtime::run_preflight(r.ctx, r.conn));
    REQUIRE(res);
    CHECK(res->what == preflight_result::kind::refuse);
    CHECK(res->error.find("MOVED 15891") != std::string::npos);
    CHECK(res->error.find("redis.cluster.nodes") != std::string::npos);
}

TEST_CASE("preflight: a worker of another partition count is refused before anything is written") {
    test::rig r;
    r.peer.answer("GET", bulk("6")).answer("XLEN", ":0\r\n").answer("ZCARD", ":0\r\n");
    auto res = test::run(r.io, runtime::run_preflight(r.ctx, r.conn));
    REQUIRE(res);
    CHECK(res->what == preflight_result::kind::refuse);
    CHECK(res->error.find("has 6 partitions") != std::string::npos);
    CHECK(r.peer.received().size() == 3);
}
