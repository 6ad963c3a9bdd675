// The sentinel watch one step() at a time against a scripted peer standing in
// for a sentinel.
#include "runtime/sentinel_watch.hpp"

#include <doctest/doctest.h>

#include "runtime_fixture.hpp"

using namespace outq;
using namespace std::chrono_literals;
using test::bulk;

namespace {

std::string subscribed(std::string_view channel) {
    return "*3\r\n" + bulk("subscribe") + bulk(channel) + ":1\r\n";
}
std::string message(std::string_view channel, std::string_view payload) {
    return "*3\r\n" + bulk("message") + bulk(channel) + bulk(payload);
}

struct watch_rig : test::rig {
    std::vector<std::string> switched;
    std::unique_ptr<runtime::sentinel_watch> watch;
    watch_rig() {
        redis::sentinel_options s;
        s.master = "mymaster";
        s.nodes.push_back(peer.options(200ms).where);
        watch = std::make_unique<runtime::sentinel_watch>(ex(), ctx, s, peer.options(200ms), 50ms);
        watch->on_switch([this](const std::string& primary) { switched.push_back(primary); });
    }
    std::optional<bool> step() { return test::run(io, watch->step()); }
};

}  // namespace

TEST_CASE("sentinel watch: a +switch-master of this master calls the hook with the new primary; others do not") {
    watch_rig r;
    r.peer.answer("SUBSCRIBE", subscribed("+switch-master") +
                                   message("+switch-master", "othermaster 127.0.0.1 7000 127.0.0.1 7001") +
                                   message("+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 6380"));
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.peer.received("SUBSCRIBE").at(0) == test::scripted_redis::args{"SUBSCRIBE", "+switch-master"});
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.switched.empty());
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.switched == std::vector<std::string>{"127.0.0.1:6380"});
    CHECK(r.watch->switches() == 1);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("sentinel watch: a quiet link is pinged; a failed subscribe is trouble, and the next step subscribes again") {
    watch_rig r;
    r.peer.answer("SUBSCRIBE", "-NOPERM this user has no permissions to access one of the channels\r\n");
    CHECK(r.step() == std::optional<bool>(false));
    r.peer.answer("SUBSCRIBE", subscribed("+switch-master"));
    CHECK(r.step() == std::optional<bool>(true));
    r.peer.answer("PING", "*2\r\n" + bulk("pong") + bulk(""));
    CHECK(r.step() == std::optional<bool>(true));  // no message within 50 ms: a PING, answered
    CHECK(r.peer.received("PING").size() == 1);
    CHECK(r.switched.empty());
}

TEST_CASE("a connection told to redial fails the call in flight and dials again on the next") {
    test::rig r;
    r.peer.answer("PING", "+PONG\r\n");
    auto first = test::run(r.io, r.conn.exec(redis::command("PING")));
    REQUIRE(first);
    CHECK(first->ok());
    CHECK(r.conn.is_connected());
    r.conn.redial();
    CHECK_FALSE(r.conn.is_connected());
    r.peer.answer("PING", "+PONG\r\n");
    auto second = test::run(r.io, r.conn.exec(redis::command("PING")));
    REQUIRE(second);
    CHECK(second->ok());
}
