#include <doctest/doctest.h>

#include "outq/retry_policy.hpp"

using namespace outq;
using namespace std::chrono_literals;

namespace {
send_outcome outcome(outcome_class c, int status = 0) {
    send_outcome o;
    o.cls = c;
    o.http_status = status;
    return o;
}
constexpr unix_ms now = 1'000'000;
}  // namespace

TEST_CASE("full-jitter backoff grows exponentially up to the cap") {
    retry_settings s;
    s.base = 100ms;
    s.cap = 1000ms;
    CHECK(backoff_delay(s, 1, 0.999999).count() == 99);
    CHECK(backoff_delay(s, 2, 0.5).count() == 100);
    CHECK(backoff_delay(s, 3, 0.5).count() == 200);
    CHECK(backoff_delay(s, 4, 1.0).count() == 800);
    CHECK(backoff_delay(s, 5, 1.0).count() == 1000);   // capped
    CHECK(backoff_delay(s, 60, 1.0).count() == 1000);  // no overflow
    CHECK(backoff_delay(s, 3, 0.0).count() == 0);      // full jitter reaches zero
}

TEST_CASE("success, permanent, auth and validation end at once") {
    retry_settings s;
    CHECK(decide_next(outcome(outcome_class::success, 200), {1, 0}, s, {}, {}, now, 0.5).step == next_step::done_sent);
    auto p = decide_next(outcome(outcome_class::permanent, 400), {1, 0}, s, {}, {}, now, 0.5);
    CHECK(p.step == next_step::dead);
    CHECK(p.dead_class == "permanent");
    CHECK(decide_next(outcome(outcome_class::auth, 401), {1, 0}, s, {}, {}, now, 0.5).dead_class == "auth");
    CHECK(decide_next(outcome(outcome_class::validation), {0, 0}, s, {}, {}, now, 0.5).dead_class == "validation");
}

TEST_CASE("retryable failures back off until the attempts are spent") {
    retry_settings s;
    s.base = 1000ms;
    s.cap = 60000ms;
    s.max_attempts = 3;
    auto d1 = decide_next(outcome(outcome_class::retryable, 500), {1, 0}, s, {}, {}, now, 0.5);
    CHECK(d1.step == next_step::retry);
    CHECK(d1.retry_at == now + 500);
    auto d2 = decide_next(outcome(outcome_class::ambiguous), {2, 0}, s, {}, {}, now, 0.5);
    CHECK(d2.step == next_step::retry);
    CHECK(d2.retry_at == now + 1000);
    auto d3 = decide_next(outcome(outcome_class::retryable, 503), {3, 0}, s, {}, {}, now, 0.5);
    CHECK(d3.step == next_step::dead);
    CHECK(d3.dead_class == "attempts_exhausted");
}

TEST_CASE("a job's max_attempts overrides the provider's") {
    retry_settings s;
    s.max_attempts = 8;
    CHECK(decide_next(outcome(outcome_class::retryable, 500), {1, 0}, s, 1, {}, now, 0.5).step == next_step::dead);
    CHECK(decide_next(outcome(outcome_class::retryable, 500), {1, 0}, s, 2, {}, now, 0.5).step == next_step::retry);
}

TEST_CASE("rate-limited answers use Retry-After and their own cap, not failure attempts") {
    retry_settings s;
    s.max_attempts = 2;
    s.max_rate_limited = 30;
    s.max_retry_after = 60000ms;
    auto o = outcome(outcome_class::rate_limited, 429);
    o.retry_after = 2000ms;
    // 10 attempts of which 9 rate-limited: one failure, still under max_attempts.
    auto d = decide_next(o, {10, 9}, s, {}, {}, now, 0.5);
    CHECK(d.step == next_step::retry);
    CHECK(d.retry_at == now + 2000);
    o.retry_after = 3600000ms;  // clamped
    CHECK(decide_next(o, {1, 1}, s, {}, {}, now, 0.5).retry_at == now + 60000);
    CHECK(decide_next(o, {30, 30}, s, {}, {}, now, 0.5).dead_class == "attempts_exhausted");
    o.retry_after.reset();  // no header: backoff
    s.base = 100ms;
    CHECK(decide_next(o, {1, 1}, s, {}, {}, now, 1.0).retry_at == now + 100);
}

TEST_CASE("a retry that would land after expires_at is an expired dead letter") {
    retry_settings s;
    s.base = 1000ms;
    auto o = outcome(outcome_class::rate_limited, 429);
    o.retry_after = 5000ms;
    auto d = decide_next(o, {1, 1}, s, {}, now + 4000, now, 0.5);
    CHECK(d.step == next_step::dead);
    CHECK(d.dead_class == "expired");
    CHECK(decide_next(o, {1, 1}, s, {}, now + 6000, now, 0.5).step == next_step::retry);
}

TEST_CASE("excerpts never split a UTF-8 sequence") {
    std::string s =
        "ab\xC3\xA9"
        "cd";  // é at bytes 2-3
    CHECK(excerpt(s, 3) == "ab");
    CHECK(excerpt(s, 4) == "ab\xC3\xA9");
    CHECK(excerpt("short", 1024) == "short");
}
