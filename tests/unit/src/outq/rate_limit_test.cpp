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

TEST_CASE("a limit lowered under a full window waits for the limit-th latest request to leave it") {
    std::vector<std::int64_t> sent = {100, 200, 300, 400};  // recorded under a limit of 4
    CHECK(sliding_window_reserve(sent, 500, 3, 1000ms) == 200 + 1000 + 1);
    CHECK(sliding_window_wait(sent, 500, 3, 1000ms) == 200 + 1000 + 1 - 500);
}

TEST_CASE("reservations ahead of now count like requests that went") {
    std::vector<std::int64_t> recorded = {1000, 1020};  // 1020 is reserved
    CHECK(sliding_window_reserve(recorded, 1005, 50, 1000ms) == 1040);
    CHECK(sliding_window_reserve(recorded, 1100, 50, 1000ms) == 1100);
    // never before the latest reservation, even with a burst that would allow it
    recorded = {1000, 1300};
    CHECK(sliding_window_reserve(recorded, 1000, 50, 1000ms, 5) == 1300);
    // an old entry out of the window does not count; the reservation does
    recorded = {0, 1500};
    CHECK(sliding_window_reserve(recorded, 1100, 2, 1000ms) == 2000);
    // a full window of reservations: the limit-th latest + window + 1
    recorded = {1000, 1100, 1200};
    CHECK(sliding_window_reserve(recorded, 1000, 3, 1000ms) == 2001);
    CHECK(sliding_window_reserve(recorded, 1000, 0, 1000ms) == 1000);  // no limit
}

TEST_CASE("many reservations at one instant follow the paced schedule exactly") {
    const std::int64_t now = 5000;
    std::vector<std::int64_t> recorded;
    for (int i = 0; i < 150; ++i) {
        const auto at = sliding_window_reserve(recorded, now, 50, 1000ms);
        // 20 ms apart; each window of 50 starts 1001 ms after the previous one
        CHECK(at == now + (i / 50) * 1001 + (i % 50) * 20);
        recorded.push_back(at);
    }
}

TEST_CASE("many reservations at one instant with a burst go in groups of the burst") {
    const std::int64_t now = 5000;
    std::vector<std::int64_t> recorded;
    for (int i = 0; i < 150; ++i) {
        const auto at = sliding_window_reserve(recorded, now, 50, 1000ms, 5);
        CHECK(at == now + (i / 50) * 1001 + (i % 50) / 5 * 100);  // 5 per 5·20 ms
        recorded.push_back(at);
    }
    recorded.clear();
    for (int i = 0; i < 100; ++i) {  // a burst clamped to the limit: the whole window at once
        const auto at = sliding_window_reserve(recorded, now, 50, 1000ms, 500);
        CHECK(at == now + (i / 50) * 1001);
        recorded.push_back(at);
    }
}

TEST_CASE("reservations never put more than the limit in any window nor more than the burst in a pacing span") {
    struct case_t {
        int limit;
        std::int64_t window;
        int burst;
    };
    const case_t cases[] = {{3, 1000, 1},  {3, 1000, 2}, {3, 1000, 3},   {7, 1000, 3},
                            {50, 1000, 5}, {1, 500, 1},  {10, 60000, 4}, {4, 10, 1}};
    for (const auto& c : cases) {
        CAPTURE(c.limit);
        CAPTURE(c.window);
        CAPTURE(c.burst);
        std::vector<std::int64_t> recorded;
        std::uint32_t seed = 12345;
        std::int64_t now = 1000000;
        for (int i = 0; i < 400; ++i) {
            seed = seed * 1103515245u + 12345u;
            // callers ask in clumps: often at the same instant, sometimes after a pause
            const auto step = (seed >> 16) % 8 == 0 ? static_cast<std::int64_t>((seed >> 8) % (2 * c.window)) : 0;
            now += step;
            const auto at =
                sliding_window_reserve(recorded, now, c.limit, std::chrono::milliseconds(c.window), c.burst);
            REQUIRE(at >= now);
            if (!recorded.empty()) REQUIRE(at >= recorded.back());
            // the earliest: one ms sooner breaks a rule
            if (at > now && (recorded.empty() || at > recorded.back())) {
                auto sooner = recorded;
                sooner.push_back(at - 1);
                const auto n = sooner.size();
                const auto burst = static_cast<std::size_t>(std::min(c.burst, c.limit));
                const bool breaks_window =
                    n > static_cast<std::size_t>(c.limit) && sooner[n - 1] - sooner[n - 1 - c.limit] <= c.window;
                const bool breaks_pacing =
                    n > burst && sooner[n - 1] - sooner[n - 1 - burst] < c.window / c.limit * static_cast<int>(burst);
                CHECK((breaks_window || breaks_pacing));
            }
            recorded.push_back(at);
        }
        const auto span = c.window / c.limit * std::min(c.burst, c.limit);
        for (std::size_t i = 0; i < recorded.size(); ++i) {
            std::size_t j = i;
            while (j < recorded.size() && recorded[j] < recorded[i] + c.window) ++j;
            CHECK(j - i <= static_cast<std::size_t>(c.limit));  // the window [t, t + window)
            j = i;
            while (j < recorded.size() && recorded[j] < recorded[i] + span) ++j;
            CHECK(j - i <= static_cast<std::size_t>(std::min(c.burst, c.limit)));
        }
    }
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
