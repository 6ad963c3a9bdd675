#include <doctest/doctest.h>

#include "outq/rate_limit.hpp"

using namespace outq;
using namespace std::chrono_literals;

TEST_CASE("pacing spreads requests window/limit apart") {
    std::vector<std::int64_t> sent = {1000};
    CHECK(sliding_window_wait(sent, 1005, 50, 1000ms) == 15);
    CHECK(sliding_window_wait(sent, 1020, 50, 1000ms) == 0);
    CHECK(sliding_window_wait(sent, 5000, 50, 1000ms) == 0);
}

TEST_CASE("a burst lets that many requests go back to back, then paces") {
    std::vector<std::int64_t> sent = {1000, 1000, 1000};
    CHECK(sliding_window_wait(sent, 1000, 50, 1000ms, 5) == 0);  // 3 of a burst of 5
    sent = {1000, 1000, 1000, 1000, 1000};
    CHECK(sliding_window_wait(sent, 1000, 50, 1000ms, 5) == 100);  // 5 per 5·20 ms
    CHECK(sliding_window_wait(sent, 1100, 50, 1000ms, 5) == 0);
    CHECK(sliding_window_wait(sent, 1000, 50, 1000ms, 500) == 0);  // clamped to the limit
}

TEST_CASE("sliding window: go under the limit, wait for the oldest to leave at it") {
    std::vector<std::int64_t> sent;
    CHECK(sliding_window_wait(sent, 1000, 3, 1000ms) == 0);
    sent = {100, 200, 300};
    CHECK(sliding_window_wait(sent, 500, 3, 1000ms) == 100 + 1000 - 500 + 1);
    CHECK(sliding_window_wait(sent, 1099, 3, 1000ms) == 2);
    CHECK(sliding_window_wait(sent, 1100, 3, 1000ms) == 0);  // 100 is out at now - window
    CHECK(sliding_window_wait(sent, 500, 4, 1000ms) == 50);  // room in the window, but paced 250 ms
    CHECK(sliding_window_wait(sent, 600, 4, 1000ms) == 0);
    CHECK(sliding_window_wait(sent, 500, 0, 1000ms) == 0);  // no limit
}

TEST_CASE("sliding window simulated with a fake clock never exceeds the limit in any window") {
    // 50 requests per second, a caller that asks every 3 ms for 10 s.
    std::vector<std::int64_t> sent;
    for (std::int64_t now = 0; now < 10000; now += 3)
        if (sliding_window_wait(sent, now, 50, 1000ms) == 0) sent.push_back(now);
    for (std::size_t i = 0; i < sent.size(); ++i) {
        std::size_t j = i;
        while (j < sent.size() && sent[j] < sent[i] + 1000) ++j;
        CHECK(j - i <= 50);
    }
    CHECK(sent.size() >= 470);  // paced every 20 ms, quantised to the caller's 3 ms: the limit is used
    CHECK(sent.size() <= 500);
}

TEST_CASE("durations") {
    CHECK(parse_duration("30s") == 30000ms);
    CHECK(parse_duration("5m") == 300000ms);
    CHECK(parse_duration("2h") == 7200000ms);
    CHECK(parse_duration("1500ms") == 1500ms);
    CHECK(parse_duration("1d") == 86400000ms);
    CHECK(parse_duration("45") == 45000ms);
    CHECK_FALSE(parse_duration("-5s"));
    CHECK_FALSE(parse_duration("5 s"));
    CHECK_FALSE(parse_duration("soon"));
    CHECK_FALSE(parse_duration(""));
}

TEST_CASE("durations of several parts, largest unit first") {
    CHECK(parse_duration("1h30m") == 5400000ms);
    CHECK(parse_duration("90s") == 90000ms);
    CHECK(parse_duration("2d12h") == 216000000ms);
    CHECK(parse_duration("1m30s500ms") == 90500ms);
    CHECK(parse_duration("0s") == 0ms);
    CHECK_FALSE(parse_duration("30m1h"));  // out of order
    CHECK_FALSE(parse_duration("1h1h"));   // a unit twice
    CHECK_FALSE(parse_duration("1h30"));   // a bare number only alone
    CHECK_FALSE(parse_duration("h"));
    CHECK_FALSE(parse_duration("1h-30m"));
    CHECK_FALSE(parse_duration("1w"));
    CHECK_FALSE(parse_duration("99999999999999999d"));  // overflows
    CHECK_FALSE(parse_duration("106751991167d8h"));     // the sum overflows
}
