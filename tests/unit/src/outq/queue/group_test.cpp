#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"
#include "outq/queue/group.hpp"

using namespace outq;
using namespace outq::test_values;
using namespace std::chrono_literals;

TEST_CASE("group commands") {
    queue::keys k("q");
    CHECK(queue::create_group_command(k).args() ==
          std::vector<std::string>{"XGROUP", "CREATE", "outq:{q}:jobs", "outq.v2", "0", "MKSTREAM"});
    CHECK(queue::parse_create_group(str("OK")));
    CHECK(queue::parse_create_group(error("BUSYGROUP Consumer Group name already exists")));
    CHECK_FALSE(queue::parse_create_group(error("MOVED 1 127.0.0.1:7000")));
    CHECK(queue::read_group_command(k, "me", 16, 2000ms).args() ==
          std::vector<std::string>{"XREADGROUP", "GROUP", "outq.v2", "me", "COUNT", "16", "BLOCK", "2000", "STREAMS",
                                   "outq:{q}:jobs", ">"});
    CHECK(queue::autoclaim_command(k, "me", 60000ms, "0-0", 8).args() ==
          std::vector<std::string>{"XAUTOCLAIM", "outq:{q}:jobs", "outq.v2", "me", "60000", "0-0", "COUNT", "8"});
    CHECK(queue::unblock_command(42).args() == std::vector<std::string>{"CLIENT", "UNBLOCK", "42"});
}

TEST_CASE("departed consumers: others, nothing pending, idle for long") {
    auto consumer = [](std::string name, long long pending, long long idle) {
        return arr({str("name"), str(std::move(name)), str("pending"), num(pending), str("idle"), num(idle)});
    };
    auto reply = arr({consumer("me", 0, 9999999), consumer("old", 0, 9999999), consumer("busy", 3, 9999999),
                      consumer("recent", 0, 10)});
    std::vector<std::string> out;
    REQUIRE(queue::parse_departed_consumers(reply, "me", 3600000, out));
    CHECK(out == std::vector<std::string>{"old"});
    CHECK_FALSE(queue::parse_departed_consumers(error("NOPERM"), "me", 1, out));
    std::vector<queue::consumer_row> rows;
    REQUIRE(queue::parse_consumers(reply, rows));
    REQUIRE(rows.size() == 4);
    CHECK(rows[2].name == "busy");
    CHECK(rows[2].pending == 3);
    CHECK(rows[3].idle_ms == 10);
    CHECK_FALSE(queue::parse_consumers(arr({str("not a row")}), rows));
}

TEST_CASE("the pending count of one consumer from the XPENDING summary") {
    auto reply = arr({num(5), str("1-0"), str("9-0"), arr({arr({str("a"), str("2")}), arr({str("me"), str("3")})})});
    std::int64_t n = -1;
    REQUIRE(queue::parse_pending_of(reply, "me", n));
    CHECK(n == 3);
    REQUIRE(queue::parse_pending_of(reply, "nobody", n));
    CHECK(n == 0);
    auto empty = arr({num(0), nil, nil, nil});
    REQUIRE(queue::parse_pending_of(empty, "me", n));
    CHECK(n == 0);
    CHECK_FALSE(queue::parse_pending_of(error("NOGROUP"), "me", n));
}

TEST_CASE("preflight names every command refused for want of permission, and nothing else") {
    queue::keys k("q");
    auto checks = queue::preflight_checks(k, "me");
    std::vector<redis::value> replies;
    for (auto& c : checks) {
        if (c.command == "XAUTOCLAIM" || c.command == "EVAL")
            replies.push_back(
                error("NOPERM this user has no permissions to run the '" + std::string(c.command) + "' command"));
        else if (c.command == "EVALSHA")
            replies.push_back(error("NOSCRIPT No matching script."));
        else
            replies.push_back(num(0));
    }
    CHECK(queue::missing_permissions(checks, replies) == std::vector<std::string>{"XAUTOCLAIM", "EVAL"});
    // Every probe stays inside the queue's keys (its partition or an account of it) and touches no job.
    for (auto& c : checks) {
        CAPTURE(c.command);
        bool tagged = false;
        for (auto& a : c.call.args()) tagged = tagged || a.find("{q}") != std::string::npos || a.find("{q@") == 5;
        CHECK(tagged);
    }
}

TEST_CASE("maxmemory-policy from INFO memory") {
    CHECK(queue::parse_maxmemory_policy(str("# Memory\r\nused_memory:1\r\nmaxmemory_policy:allkeys-lru\r\n")) ==
          "allkeys-lru");
    CHECK(queue::parse_maxmemory_policy(str("# Memory\r\n")).empty());
    CHECK(queue::parse_maxmemory_policy(error("NOPERM")).empty());
}
