#pragma once
// The retry policy: a pure function from an attempt's outcome and the job's
// history to its next state. No clock, no randomness of its own: both are
// passed in, so it is tested exactly.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "outq/clock.hpp"
#include "outq/outcome.hpp"

namespace outq {

struct retry_settings {
    std::chrono::milliseconds base{1000};
    std::chrono::milliseconds cap{300000};
    int max_attempts = 8;                                // failure attempts (rate-limited answers excluded)
    int max_rate_limited = 50;                           // rate-limited answers tolerated
    std::chrono::milliseconds max_retry_after{3600000};  // a provider's Retry-After is clamped to this
};

// Attempts made so far, including the one being decided.
struct attempt_counts {
    int total = 0;         // every HTTP attempt
    int rate_limited = 0;  // of which answered as rate-limited
    int failures() const { return total - rate_limited; }
};

enum class next_step { done_sent, retry, dead };

struct retry_decision {
    next_step step = next_step::dead;
    unix_ms retry_at = 0;         // for retry
    std::string_view dead_class;  // for dead
};

// Full-jitter exponential backoff for the n-th failure (n ≥ 1):
// uniform in [0, min(cap, base·2^(n-1))]. `unit_random` is in [0, 1).
std::chrono::milliseconds backoff_delay(const retry_settings& s, int failure_number, double unit_random);

retry_decision decide_next(const send_outcome& outcome, attempt_counts counts, const retry_settings& settings,
                           std::optional<int> job_max_attempts, std::optional<unix_ms> expires_at, unix_ms now,
                           double unit_random);

}  // namespace outq
