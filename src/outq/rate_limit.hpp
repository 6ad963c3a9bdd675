#pragma once
// Shared rate limits: a sliding-window request limit and a cap on concurrent
// requests per provider+account scope, and pauses (429 Retry-After, provider
// quota answers, operators). The state lives in Redis so the whole fleet obeys
// one limit, with Redis' clock (TIME) so pods with skewed clocks agree. The
// math is here as a pure function; the Lua script in queue_protocol.cpp is its
// transcription, and both are tested against each other.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outq {

// How far ahead a worker reserves places in an account's window and waits for
// them in memory (the heartbeat keeps the entries, the lanes' buffer bounds
// them); a request whose place is further off is parked. A worker that dies
// wastes the places it reserved within this.
inline constexpr std::chrono::milliseconds reservation_horizon{30000};

struct rate_limit_settings {
    int requests = 0;  // per window; 0 = no rate limit
    std::chrono::milliseconds window{1000};
    int burst = 1;          // requests that may go back to back before pacing applies
    int max_in_flight = 0;  // concurrent requests in the whole fleet; 0 = no cap
    bool enabled() const { return requests > 0 || max_in_flight > 0; }
};

// Sliding-window-log reservation with pacing: the earliest time `at` >= now
// (ms) at which one more request may go. `recorded` holds the times (ms) of
// the requests recorded in the scope, in ascending order: those that went
// (possibly some older than the window) and reservations ahead of now alike.
// A recorded time t is in the window at `at` while t > at - window. With the
// request added at `at`:
// - never before the latest recorded time: reservations are made in order, so
//   adding one never changes the count of a window that ends before it;
// - the window: when `limit` or more recorded times are still in the window
//   at now, `at` is at least the limit-th latest of them + window + 1, so no
//   window holds more than `limit` (the +1 is one ms more than the boundary
//   needs, a time exactly `window` old being out already; it is the polling
//   limiter's, kept so that its waits do not change);
// - pacing: when `burst` or more are, `at` is at least the burst-th latest +
//   burst·(window/limit), so no more than `burst` requests fall in any span of
//   burst·window/limit (burst 1: at least window/limit apart), and a burst
//   decided in one millisecond cannot reach the provider as more than the
//   limit in its own window once network jitter shifts it.
// No limit (limit <= 0): now.
std::int64_t sliding_window_reserve(const std::vector<std::int64_t>& recorded, std::int64_t now, int limit,
                                    std::chrono::milliseconds window, int burst = 1);

// How long (ms) a request that is recorded only when it goes waits before it
// may go: sliding_window_reserve(sent, now, ...) - now, 0 when it may go now.
std::int64_t sliding_window_wait(const std::vector<std::int64_t>& sent, std::int64_t now, int limit,
                                 std::chrono::milliseconds window, int burst = 1);

// "30s", "5m", "2h", "1500ms", "1d", plain seconds ("45"), or parts with the
// largest unit first ("1h30m", "2d12h", "1m30s"); nullopt when invalid.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace outq
