#include <doctest/doctest.h>

#include "outq/adapter.hpp"

using namespace outq;
using namespace std::chrono_literals;

TEST_CASE("HTTP statuses map to outcome classes") {
    CHECK(classify_http_status(200) == outcome_class::success);
    CHECK(classify_http_status(204) == outcome_class::success);
    CHECK(classify_http_status(429) == outcome_class::rate_limited);
    CHECK(classify_http_status(408) == outcome_class::retryable);
    CHECK(classify_http_status(500) == outcome_class::retryable);
    CHECK(classify_http_status(503) == outcome_class::retryable);
    CHECK(classify_http_status(401) == outcome_class::auth);
    CHECK(classify_http_status(403) == outcome_class::auth);
    CHECK(classify_http_status(400) == outcome_class::permanent);
    CHECK(classify_http_status(404) == outcome_class::permanent);
    CHECK(classify_http_status(422) == outcome_class::permanent);
    CHECK(classify_http_status(302) == outcome_class::permanent);
}

TEST_CASE("Retry-After: delay-seconds and the three HTTP-date forms") {
    const unix_ms t = *parse_rfc3339("1994-11-06T08:49:30Z");
    CHECK(parse_retry_after("120", t) == 120000ms);
    CHECK(parse_retry_after(" 0 ", t) == 0ms);
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t) == 7000ms);
    CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", t) == 7000ms);
    CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", t) == 7000ms);
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", t) == 0ms);  // past: no wait
    CHECK_FALSE(parse_retry_after("-5", t));
    CHECK_FALSE(parse_retry_after("1.5", t));
    CHECK_FALSE(parse_retry_after("soon", t));
    CHECK_FALSE(parse_retry_after("", t));
    CHECK_FALSE(parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", t));
}

TEST_CASE("RateLimit headers saying none remain give the time to the window's reset") {
    const unix_ms now = 1'700'000'000'000;
    auto hold = [&](std::vector<http_header> headers) {
        return rate_limit_exhausted_for(inbound_response{200, std::move(headers), ""}, now);
    };
    using ms = std::chrono::milliseconds;
    // IETF httpapi draft: one structured field, policies separated by commas; the longest exhausted wins.
    CHECK(hold({{"RateLimit", R"("default";r=0;t=30)"}}) == ms(30000));
    CHECK(hold({{"RateLimit", R"("burst";r=5;t=1, "day";r=0;t=3600)"}}) == ms(3600000));
    CHECK_FALSE(hold({{"RateLimit", R"("default";r=3;t=30)"}}));
    CHECK_FALSE(hold({{"RateLimit", R"("default";r=0)"}}));
    // Earlier drafts: separate fields, delta-seconds.
    CHECK(hold({{"ratelimit-remaining", "0"}, {"RateLimit-Reset", "2"}}) == ms(2000));
    CHECK_FALSE(hold({{"RateLimit-Remaining", "1"}, {"RateLimit-Reset", "2"}}));
    CHECK_FALSE(hold({{"RateLimit-Remaining", "0"}}));
    // X- forms: reset as seconds, as a unix time, or Reset-After with fractions.
    CHECK(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "7"}}) == ms(7000));
    CHECK(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "1700000012"}}) == ms(12000));
    CHECK(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "1699999990"}}) == ms(0));  // past
    CHECK(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset-After", "1.25"}}) == ms(1250));
    // Invalid values are ignored, never a crash.
    for (const char* bad : {"", "-1", "abc", "1e3", "1.2.3", "99999999999999999999", " ", "0x10"}) {
        CHECK_FALSE(hold({{"RateLimit-Remaining", "0"}, {"RateLimit-Reset", bad}}));
        CHECK_FALSE(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", bad}}));
    }
    CHECK_FALSE(hold({{"X-RateLimit-Remaining", "none"}, {"X-RateLimit-Reset", "5"}}));
    CHECK_FALSE(hold({}));
}
