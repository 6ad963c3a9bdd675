#include "outq/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace outq {

std::string_view to_string(outcome_class c) {
    switch (c) {
        case outcome_class::success:
            return "success";
        case outcome_class::retryable:
            return "retryable";
        case outcome_class::ambiguous:
            return "ambiguous";
        case outcome_class::rate_limited:
            return "rate_limited";
        case outcome_class::permanent:
            return "permanent";
        case outcome_class::auth:
            return "auth";
        case outcome_class::validation:
            return "validation";
    }
    return "unknown";
}

std::string excerpt(std::string_view body, std::size_t limit) {
    if (body.size() <= limit) return std::string(body);
    std::size_t cut = limit;
    // Step back over UTF-8 continuation bytes so the excerpt stays valid text.
    while (cut > 0 && (static_cast<unsigned char>(body[cut]) & 0xC0) == 0x80) --cut;
    return std::string(body.substr(0, cut));
}

std::chrono::milliseconds backoff_delay(const retry_settings& s, int failure_number, double unit_random) {
    const int exponent = std::clamp(failure_number - 1, 0, 40);
    const double ceiling =
        std::min(static_cast<double>(s.cap.count()), static_cast<double>(s.base.count()) * std::ldexp(1.0, exponent));
    const double r = std::clamp(unit_random, 0.0, 1.0);
    return std::chrono::milliseconds(static_cast<std::int64_t>(ceiling * r));
}

retry_decision decide_next(const send_outcome& outcome, attempt_counts counts, const retry_settings& settings,
                           std::optional<int> job_max_attempts, std::optional<unix_ms> expires_at, unix_ms now,
                           double unit_random) {
    retry_decision d;
    switch (outcome.cls) {
        case outcome_class::success:
            d.step = next_step::done_sent;
            return d;
        case outcome_class::validation:
            d.dead_class = dead_class::validation;
            return d;
        case outcome_class::permanent:
            d.dead_class = dead_class::permanent;
            return d;
        case outcome_class::auth:
            d.dead_class = dead_class::auth;
            return d;
        case outcome_class::rate_limited: {
            if (counts.rate_limited >= settings.max_rate_limited) {
                d.dead_class = dead_class::attempts_exhausted;
                return d;
            }
            std::chrono::milliseconds wait;
            if (outcome.retry_after)
                wait = std::clamp(*outcome.retry_after, std::chrono::milliseconds(0), settings.max_retry_after);
            else
                wait = backoff_delay(settings, counts.rate_limited, unit_random);
            d.step = next_step::retry;
            d.retry_at = now + wait.count();
            break;
        }
        case outcome_class::retryable:
        case outcome_class::ambiguous: {
            const int max_attempts = job_max_attempts.value_or(settings.max_attempts);
            if (counts.failures() >= max_attempts) {
                d.dead_class = dead_class::attempts_exhausted;
                return d;
            }
            d.step = next_step::retry;
            d.retry_at = now + backoff_delay(settings, counts.failures(), unit_random).count();
            break;
        }
    }
    // A message that cannot go out before it expires is dead, not sent late.
    if (expires_at && d.retry_at >= *expires_at) {
        d.step = next_step::dead;
        d.dead_class = dead_class::expired;
    }
    return d;
}

}  // namespace outq
