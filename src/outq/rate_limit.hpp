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

struct rate_limit_settings {
    int requests = 0;  // per window; 0 = no rate limit
    std::chrono::milliseconds window{1000};
    int burst = 1;          // requests that may go back to back before pacing applies
    int max_in_flight = 0;  // concurrent requests in the whole fleet; 0 = no cap
    bool enabled() const { return requests > 0 || max_in_flight > 0; }
};

// Sliding-window-log decision with pacing. `sent` holds the decision times (ms)
// of the requests counted in the scope, oldest first, possibly including some
// older than the window. Returns 0 when a request may go now, else how many ms
// to wait: until the oldest counted request leaves the window when the window
// is full, and otherwise so that no more than `burst` requests fall in any
// span of burst·window/limit (burst 1: at least window/limit apart).
std::int64_t sliding_window_wait(const std::vector<std::int64_t>& sent, std::int64_t now, int limit,
                                 std::chrono::milliseconds window, int burst = 1);

// "30s", "5m", "2h", "1500ms", "1d", plain seconds ("45"), or parts with the
// largest unit first ("1h30m", "2d12h", "1m30s"); nullopt when invalid.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace outq
