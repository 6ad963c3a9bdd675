// The control channel: what a message does to the pause board (pure), and
// the component one step() at a time against a scripted Redis peer.
#include "runtime/control_channel.hpp"

#include <doctest/doctest.h>

#include <boost/asio/steady_timer.hpp>

#include "runtime_fixture.hpp"

using namespace outq;
using namespace std::chrono_literals;
using test::bulk;
using clock_type = runtime::pause_board::clock;

TEST_CASE("control channel: a pause heard replaces what the board knew, a resume clears it") {
    runtime::pause_board board;
    const auto now = clock_type::now();
    board.note("webhook", "a", 60000, now);  // a pause this worker met
    runtime::apply_to_board(board, queue::pause_message("webhook", "a", 1000ms, "ops"), now);
    CHECK(board.paused("webhook", "a", now + 500ms));
    CHECK_FALSE(board.paused("webhook", "a", now + 1500ms));  // an operator's shorter pause wins
    runtime::apply_to_board(board, queue::pause_message("webhook", "a", std::nullopt, "ops"), now);
    CHECK(board.paused("webhook", "a", now + 24h));
    CHECK_FALSE(board.paused("webhook", "b", now));
    runtime::apply_to_board(board, queue::resume_message("webhook", "a"), now);
    CHECK_FALSE(board.paused("webhook", "a", now));
    runtime::apply_to_board(board, queue::resume_message("webhook", "a"), now);  // twice: the same
    CHECK_FALSE(board.paused("webhook", "a", now));
    board.note("webhook", "a", 1000, now);
    runtime::apply_to_board(board, queue::circuit_message("webhook", "a", "open"), now);
    runtime::apply_to_board(board, queue::limit_message("webhook", "a"), now);
    CHECK(board.paused("webhook", "a", now));  // neither touches a pause
}

namespace {

std::string subscribed(std::string_view channel) {
    return "*3\r\n" + bulk("subscribe") + bulk(channel) + ":1\r\n";
}
std::string message(std::string_view channel, std::string_view payload) {
    return "*3\r\n" + bulk("message") + bulk(channel) + bulk(payload);
}

struct channel_rig : test::rig {
    runtime::control_channel control{ex(), ctx, conn, 50ms};
    std::vector<queue::control_message> heard;
    int resyncs = 0;
    channel_rig() {
        control.on_message([this](const queue::control_message& m) { heard.push_back(m); });
        control.on_resync([this] { ++resyncs; });
    }
    std::optional<bool> step() { return test::run(io, control.step()); }
};

}  // namespace

TEST_CASE("control channel: subscribe, then resync; a message updates the board and calls the hook") {
    channel_rig r;
    const std::string ch = "outq:{q}:control";
    CHECK(r.control.channel() == ch);
    r.peer.answer("SUBSCRIBE", subscribed(ch) + message(ch, "v1\tpause\twebhook\ta\t-1\tby hand") +
                                   message(ch, "v1\tresume\twebhook\ta"));
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.resyncs == 1);
    CHECK(r.control.subscribes() == 1);
    CHECK(r.peer.received("SUBSCRIBE").at(0) == test::scripted_redis::args{"SUBSCRIBE", ch});
    CHECK(r.step() == std::optional<bool>(true));
    REQUIRE(r.heard.size() == 1);
    CHECK(r.heard[0] == queue::pause_message("webhook", "a", std::nullopt, "by hand"));
    CHECK(r.ctx.pauses.paused("webhook", "a", clock_type::now() + 24h));
    CHECK(r.step() == std::optional<bool>(true));
    REQUIRE(r.heard.size() == 2);
    CHECK(r.heard[1].what == queue::control_message::kind::resume);
    CHECK_FALSE(r.ctx.pauses.paused("webhook", "a", clock_type::now()));
    CHECK(r.control.heard() == 2);
    CHECK(r.resyncs == 1);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("control channel: a due message is about no account: it reaches the hook, the board untouched") {
    channel_rig r;
    const std::string ch = "outq:{q}:control";
    r.peer.answer("SUBSCRIBE", subscribed(ch) + message(ch, "v1\tdue\t0\t1700000000000"));
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.step() == std::optional<bool>(true));
    REQUIRE(r.heard.size() == 1);
    CHECK(r.heard[0] == queue::due_message(0, 1700000000000));
    CHECK(r.control.ignored() == 0);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("control channel: unreadable messages and accounts not configured are ignored") {
    channel_rig r;
    const std::string ch = "outq:{q}:control";
    r.peer.answer("SUBSCRIBE", subscribed(ch) + message(ch, "garbage") +
                                   message(ch, "v1\tpause\twebhook\tnot-configured\t-1\tx") +
                                   message(ch, "v1\tpause\tnope\ta\t-1\tx") + message(ch, "v9\tresume\twebhook\ta"));
    CHECK(r.step() == std::optional<bool>(true));
    for (int i = 0; i < 4; ++i) CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.heard.empty());
    CHECK(r.control.ignored() == 4);
    CHECK_FALSE(r.ctx.pauses.paused("webhook", "not-configured", clock_type::now()));
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("control channel: a quiet interval ends in a PING; a lost connection is a failed step, then a resync") {
    channel_rig r;
    const std::string ch = "outq:{q}:control";
    r.peer.answer("SUBSCRIBE", subscribed(ch)).answer("PING", "*2\r\n" + bulk("pong") + bulk("")).close_on("PING");
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.step() == std::optional<bool>(true));   // quiet: PING, pong
    CHECK(r.step() == std::optional<bool>(false));  // quiet: PING, the connection closed
    CHECK(r.resyncs == 1);
    r.peer.answer("SUBSCRIBE", subscribed(ch) + message(ch, "v1\tresume\twebhook\ta"));
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.resyncs == 2);  // messages sent while it was down are lost: read the pauses again
    CHECK(r.control.subscribes() == 2);
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.heard.size() == 1);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("control channel: stop() ends a blocked read at once, and run() returns") {
    test::rig base;
    runtime::control_channel control{base.ex(), base.ctx, base.conn, 10s};
    base.peer.answer("SUBSCRIBE", subscribed("outq:{q}:control"));
    boost::asio::steady_timer later(base.io);
    later.expires_after(100ms);
    later.async_wait([&](boost::system::error_code) { control.stop(); });
    const auto t0 = std::chrono::steady_clock::now();
    auto done = test::run(base.io, [](runtime::control_channel& c) -> boost::asio::awaitable<bool> {
        co_await c.run();
        co_return true;
    }(control));
    CHECK(done == std::optional<bool>(true));
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    CHECK(control.subscribes() == 1);
    CHECK_FALSE(base.conn.is_connected());
}
