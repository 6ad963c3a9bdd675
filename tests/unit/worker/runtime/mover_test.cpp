// The mover, one step() at a time, against a scripted Redis peer.
#include "runtime/mover.hpp"

#include <doctest/doctest.h>

#include "outq/clock.hpp"
#include "runtime_fixture.hpp"

using namespace outq;
using test::bulk;

namespace {

struct mover_rig : test::rig {
    runtime::mover move{ex(), ctx, ctx.queue_wide(), conn};
    std::optional<int> step() { return test::run(io, move.step()); }
};

}  // namespace

TEST_CASE("mover: nothing due is one read, no script") {
    mover_rig r;
    r.peer.answer("ZRANGE", "*0\r\n");
    CHECK(r.step() == std::optional<int>(0));
    CHECK_FALSE(r.move.next_due());
    const auto later = wall_now_ms() + 60000;
    r.peer.answer("ZRANGE", "*2\r\n" + bulk("tok") + bulk(std::to_string(later)));
    CHECK(r.step() == std::optional<int>(0));
    CHECK(r.move.next_due() == std::optional<unix_ms>(later));
    CHECK(r.peer.received("EVAL").empty());
    CHECK(r.peer.received("ZRANGE").at(0) ==
          test::scripted_redis::args{"ZRANGE", r.ctx.queue_wide().delayed, "0", "0", "WITHSCORES"});
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("mover: something due reads the due tokens and moves them with every key declared") {
    mover_rig r;
    r.peer.answer("ZRANGE", "*2\r\n" + bulk("tok") + bulk("1.5e3"));  // a score in exponent form
    r.peer.answer("ZRANGEBYSCORE", "*2\r\n" + bulk("1-0") + bulk("2-0"));
    r.peer.answer("EVAL", "*2\r\n:2\r\n" + bulk("9000000000000"));
    const auto before = wall_now_ms();
    CHECK(r.step() == std::optional<int>(2));
    const auto after = wall_now_ms();
    CHECK(r.move.next_due() == std::optional<unix_ms>(9000000000000));
    auto range = r.peer.received("ZRANGEBYSCORE");
    REQUIRE(range.size() == 1);
    REQUIRE(range[0].size() == 7);
    CHECK(range[0][1] == r.ctx.queue_wide().delayed);
    CHECK(range[0][2] == "-inf");
    const auto now = std::stoll(range[0][3]);
    CHECK(now >= before);
    CHECK(now <= after);
    CHECK(std::vector<std::string>(range[0].begin() + 4, range[0].end()) ==
          std::vector<std::string>{"LIMIT", "0", "500"});
    auto calls = r.peer.received("EVAL");
    REQUIRE(calls.size() == 1);
    // KEYS: the delayed set, the stream and each token's item; ARGV: the tokens.
    CHECK(calls[0] == test::scripted_redis::args{"EVAL", queue::move_due_script, "4", r.ctx.queue_wide().delayed,
                                                 r.ctx.queue_wide().jobs,
                                                 r.ctx.queue_wide().delayed_item_prefix + "1-0",
                                                 r.ctx.queue_wide().delayed_item_prefix + "2-0", "1-0", "2-0"});
    r.peer.answer("ZRANGE", "*2\r\n" + bulk("tok") + bulk("1"))
        .answer("ZRANGEBYSCORE", "*1\r\n" + bulk("tok"))
        .answer("EVAL", "*2\r\n:1\r\n" + bulk("-1"));
    CHECK(r.step() == std::optional<int>(1));
    CHECK_FALSE(r.move.next_due());  // the set is empty now
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("mover: due tokens another worker moved first leave nothing to run") {
    mover_rig r;
    r.peer.answer("ZRANGE", "*2\r\n" + bulk("tok") + bulk("1")).answer("ZRANGEBYSCORE", "*0\r\n");
    CHECK(r.step() == std::optional<int>(0));
    CHECK_FALSE(r.move.next_due());
    CHECK(r.peer.received("EVAL").empty());
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("mover: a delayed copy written here brings the next round forward, never back") {
    mover_rig r;
    r.move.expect(5000);
    CHECK(r.move.next_due() == std::optional<unix_ms>(5000));
    r.move.expect(9000);
    CHECK(r.move.next_due() == std::optional<unix_ms>(5000));
    r.move.expect(100);
    CHECK(r.move.next_due() == std::optional<unix_ms>(100));
}

TEST_CASE("mover: an error, a reply of another shape or no reply is -1") {
    mover_rig r;
    r.peer.answer("ZRANGE", "-BUSY Redis is busy running a script\r\n")
        .answer("ZRANGE", "$1\r\n3\r\n")
        .answer("ZRANGE", "*2\r\n" + bulk("tok") + bulk("1"))
        .answer("ZRANGEBYSCORE", "*1\r\n:3\r\n")  // not a token
        .answer("ZRANGE", "*2\r\n" + bulk("tok") + bulk("1"))
        .answer("ZRANGEBYSCORE", "*1\r\n" + bulk("tok"))
        .answer("EVAL", ":3\r\n")
        .hang_on("ZRANGE")
        .close_on("ZRANGE");
    for (int i = 0; i < 6; ++i) {
        CAPTURE(i);
        CHECK(r.step() == std::optional<int>(-1));
    }
    CHECK(r.peer.steps_left() == 0);
    CHECK(r.peer.unexpected().empty());
}
