#include "outq/rate_limit.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <utility>

namespace outq {

std::int64_t sliding_window_reserve(const std::vector<std::int64_t>& recorded, std::int64_t now, int limit,
                                    std::chrono::milliseconds window, int burst) {
    if (limit <= 0) return now;
    // Entries at or before now - window have left the window (ZREMRANGEBYSCORE
    // -inf now-window); reservations ahead of now never have.
    auto first_live = std::upper_bound(recorded.begin(), recorded.end(), now - window.count());
    const auto live = static_cast<int>(recorded.end() - first_live);
    if (live == 0) return now;
    const auto nth_latest = [&](int n) { return recorded[recorded.size() - static_cast<std::size_t>(n)]; };
    std::int64_t at = std::max(now, nth_latest(1));
    if (live >= limit) at = std::max(at, nth_latest(limit) + window.count() + 1);
    burst = std::clamp(burst, 1, limit);
    const std::int64_t span = window.count() / limit * burst;
    if (live >= burst) at = std::max(at, nth_latest(burst) + span);
    return at;
}

std::int64_t sliding_window_wait(const std::vector<std::int64_t>& sent, std::int64_t now, int limit,
                                 std::chrono::milliseconds window, int burst) {
    return sliding_window_reserve(sent, now, limit, window, burst) - now;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    if (text.empty()) return std::nullopt;
    // A plain number is seconds; otherwise number+unit parts, largest unit first
    // and each at most once ("1h30m", "2d12h", "1m30s500ms").
    static constexpr std::pair<std::string_view, std::int64_t> units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    std::int64_t total = 0;
    std::size_t next_unit = 0;  // units before this one are used up
    const char* p = text.data();
    const char* end = text.data() + text.size();
    while (p < end) {
        std::int64_t n = 0;
        auto [after, ec] = std::from_chars(p, end, n);
        if (ec != std::errc{} || after == p || n < 0) return std::nullopt;
        const char* unit_end = after;
        while (unit_end < end && *unit_end >= 'a' && *unit_end <= 'z') ++unit_end;
        const std::string_view unit(after, static_cast<std::size_t>(unit_end - after));
        std::int64_t factor = 0;
        if (unit.empty()) {
            if (p != text.data() || unit_end != end) return std::nullopt;  // "45" alone, not "1h30"
            factor = 1000;
        } else {
            std::size_t u = next_unit;
            while (u < std::size(units) && units[u].first != unit) ++u;
            if (u == std::size(units)) return std::nullopt;  // unknown, repeated or out of order
            factor = units[u].second;
            next_unit = u + 1;
        }
        if (n > (INT64_MAX - total) / factor) return std::nullopt;
        total += n * factor;
        p = unit_end;
    }
    return std::chrono::milliseconds(total);
}

}  // namespace outq
