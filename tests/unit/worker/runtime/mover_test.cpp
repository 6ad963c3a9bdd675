// The mover, one step() at a time, against a scripted Redis peer.
#include "runtime/mover.hpp"

#include <doctest/doctest.h>

#include "outq/clock.hpp"
#include "runtime_fixture.hpp"

using namespace outq;

namespace {

struct mover_rig : test::rig {
    runtime::mover move{ex(), ctx, conn};
    std::optional<int> step() { return test::run(io, move.step()); }
};

}  // namespace

TEST_CASE("mover: the script's integer reply is the number moved") {
    mover_rig r;
    r.peer.answer("EVAL", ":3\r\n").answer("EVAL", ":0\r\n");
    const auto before = wall_now_ms();
    CHECK(r.step() == std::optional<int>(3));
    const auto after = wall_now_ms();
    CHECK(r.step() == std::optional<int>(0));
    auto calls = r.peer.received("EVAL");
    REQUIRE(calls.size() == 2);
    auto& c = calls[0];
    REQUIRE(c.size() == 8);
    CHECK(c[1] == queue::move_due_script);
    CHECK(c[2] == "2");
    CHECK(c[3] == r.ctx.keys.delayed);
    CHECK(c[4] == r.ctx.keys.jobs);
    const auto now = std::stoll(c[5]);
    CHECK(now >= before);
    CHECK(now <= after);
    CHECK(c[6] == "500");
    CHECK(c[7] == r.ctx.keys.delayed_item_prefix);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("mover: an error, a reply of another shape or no reply is -1") {
    mover_rig r;
    r.peer.answer("EVAL", "-BUSY Redis is busy running a script\r\n")
        .answer("EVAL", "$1\r\n3\r\n")
        .hang_on("EVAL")
        .close_on("EVAL");
    for (int i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(r.step() == std::optional<int>(-1));
    }
    CHECK(r.peer.steps_left() == 0);
    CHECK(r.peer.unexpected().empty());
}
