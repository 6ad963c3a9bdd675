#include <doctest/doctest.h>

#include "outq/backoff.hpp"

using namespace outq;
using namespace std::chrono_literals;

TEST_CASE("backoff doubles from its first delay to its bound, with jitter of at most a fifth") {
    backoff b(100ms, 1000ms);
    CHECK(b.next(0.5) == 100ms);
    CHECK(b.next(0.5) == 200ms);
    CHECK(b.next(0.5) == 400ms);
    CHECK(b.next(0.5) == 800ms);
    CHECK(b.next(0.5) == 1000ms);
    CHECK(b.next(0.5) == 1000ms);
    CHECK(b.failures() == 6);
    CHECK(b.next(0.0) == 800ms);    // bound × 0.8
    CHECK(b.next(0.999) < 1200ms);  // bound × 1.2, exclusive
    b.reset();
    CHECK(b.failures() == 0);
    CHECK(b.next(0.5) == 100ms);
}

TEST_CASE("two backoffs never share state") {
    backoff a, c;
    a.next(0.5);
    a.next(0.5);
    CHECK(c.next(0.5) == 100ms);
}
