#pragma once
// The decisions around one request, as pure functions: whether a job waits for
// its permit in memory or goes back to the delayed set, which fleet-wide holds
// an answer calls for, and the completion (the next state written to Redis)
// that a job's outcome becomes.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outq/job.hpp"
#include "outq/outcome.hpp"
#include "outq/queue_protocol.hpp"
#include "outq/retry_policy.hpp"

namespace outq::policy {

struct permit_plan {
    enum class kind {
        go,        // send now
        hold,      // wait `wait` in memory, then ask again
        put_back,  // back to the delayed set, due at `due`, no attempt used
    };
    kind what = kind::go;
    std::chrono::milliseconds wait{0};
    unix_ms due = 0;
};
// `waiting` jobs already wait in memory; `jobs` more would join them. Long
// waits, too many waiters or a draining worker leave memory, so other accounts
// keep flowing and nothing is held across a shutdown.
permit_plan plan_permit(const queue::limit_decision& d, int waiting, int jobs, int concurrency, bool draining,
                        unix_ms now, double unit_random);

// A pause of the provider account for the whole fleet.
struct fleet_hold {
    std::optional<std::chrono::milliseconds> duration;  // nullopt: until resumed
    std::string reason;
};
// The holds an answer calls for, at most one of each kind, in this order: a 429
// (once per request, not per job; without Retry-After the backoff is drawn
// once and given to every rate-limited outcome, so the jobs come back when
// the pause ends), RateLimit headers saying none remain (only without a 429),
// an adapter's own pause (a quota window).
std::vector<fleet_hold> holds_after_answer(std::vector<send_outcome>& outcomes, const retry_settings& retry,
                                           int rate_limited_before,
                                           std::optional<std::chrono::milliseconds> provider_hold,
                                           std::string_view provider, double unit_random);

// Building blocks of completions.
queue::completion dead_letter(queue::envelope&& env, std::string job_id, std::string provider, std::string account,
                              std::string_view cls, std::string error, unix_ms now);
queue::completion delayed(queue::envelope&& env, const job& j, unix_ms due, bool release_marker);

// A job's outcome turned into its next state. `counts_attempt` is false for a
// reconciliation that found the message (no request was made).
queue::completion complete(queue::envelope&& env, job&& j, const retry_settings& retry, send_outcome outcome,
                           unix_ms started, unix_ms now, bool counts_attempt, double unit_random);

}  // namespace outq::policy
