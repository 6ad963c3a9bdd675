#include <doctest/doctest.h>

#include "outq/log_throttle.hpp"

using namespace outq;
using namespace std::chrono_literals;

TEST_CASE("an ongoing condition is logged once per interval with the count held back") {
    log::throttle t(10s);
    const auto t0 = log::throttle::clock::time_point{} + 1h;
    auto first = t.admit(t0);
    REQUIRE(first);
    CHECK(*first == 0);
    int logged = 0;
    for (int i = 1; i <= 1000; ++i)
        if (t.admit(t0 + std::chrono::milliseconds(i))) ++logged;
    CHECK(logged == 0);
    auto next = t.admit(t0 + 10s);
    REQUIRE(next);
    CHECK(*next == 1000);
    std::uint64_t held = 99;
    CHECK(t.clear(&held));
    CHECK(held == 0);
    CHECK_FALSE(t.active());
    CHECK_FALSE(t.clear());
    // A new occurrence after the condition ended is logged at once.
    auto again = t.admit(t0 + 10s + 1ms);
    REQUIRE(again);
    CHECK(*again == 0);
}

TEST_CASE("a repeated periodic line is written when it changes, and every Nth time it does not") {
    log::repeat_filter f(3);
    CHECK(f.pass("sent=1"));
    CHECK_FALSE(f.pass("sent=1"));
    CHECK_FALSE(f.pass("sent=1"));
    CHECK(f.pass("sent=1"));  // the third repeat: a sign of life
    CHECK_FALSE(f.pass("sent=1"));
    CHECK(f.pass("sent=2"));  // something changed
    CHECK_FALSE(f.pass("sent=2"));
    CHECK(f.pass("sent=1"));
}
