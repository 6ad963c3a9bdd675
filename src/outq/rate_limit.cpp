#include "outq/rate_limit.hpp"

#include <algorithm>
#include <charconv>

namespace outq {

std::int64_t sliding_window_wait(const std::vector<std::int64_t>& sent, std::int64_t now, int limit,
                                 std::chrono::milliseconds window, int burst) {
    if (limit <= 0) return 0;
    // Entries at or before now - window have left the window (ZREMRANGEBYSCORE -inf now-window).
    auto first_live = std::upper_bound(sent.begin(), sent.end(), now - window.count());
    const auto live = static_cast<int>(sent.end() - first_live);
    std::int64_t wait = 0;
    // The oldest live entry leaves the window at oldest + window; +1 so that
    // at that instant it is out (the boundary belongs to the expired side).
    if (live >= limit) wait = *first_live + window.count() - now + 1;
    // Pacing: at most `burst` requests per burst·window/limit, so a burst decided
    // in one millisecond cannot arrive at the provider as more than the limit
    // in its own window once network jitter shifts it.
    burst = std::clamp(burst, 1, limit);
    const std::int64_t span = window.count() / limit * burst;
    if (live >= burst) wait = std::max(wait, sent[sent.size() - static_cast<std::size_t>(burst)] + span - now);
    return std::max<std::int64_t>(wait, 0);
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    if (text.empty()) return std::nullopt;
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || n < 0) return std::nullopt;
    std::string_view unit(p, static_cast<std::size_t>(text.data() + text.size() - p));
    std::int64_t factor = 0;
    if (unit.empty() || unit == "s")
        factor = 1000;
    else if (unit == "ms")
        factor = 1;
    else if (unit == "m")
        factor = 60000;
    else if (unit == "h")
        factor = 3600000;
    else if (unit == "d")
        factor = 86400000;
    else
        return std::nullopt;
    if (n > INT64_MAX / factor) return std::nullopt;
    return std::chrono::milliseconds(n * factor);
}

}  // namespace outq
