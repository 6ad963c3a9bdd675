#include "outq/policy/lanes.hpp"

#include <algorithm>

namespace outq::policy {

lane_settings default_lane_settings(int concurrency) {
    lane_settings s;
    s.concurrency = std::max(1, concurrency);
    // An eighth of the slots, at least one, and never all of them.
    s.reserve = s.concurrency == 1 ? 0 : std::clamp(s.concurrency / 8, 1, s.concurrency - 1);
    // Deliveries waiting in memory are small (a job's JSON and its envelope):
    // a generous buffer keeps the worker reading past a slow or throttled
    // account without parking what its lane will send soon.
    s.buffer = std::max(1024, 4 * s.concurrency);
    s.queue = s.buffer / 2;
    return s;
}

lane_totals totals_of(const std::vector<lane_view>& lanes) {
    lane_totals t;
    for (auto& l : lanes) {
        t.in_flight += l.in_flight;
        if (!l.trusted) t.untrusted_in_flight += l.in_flight;
        // A lane held back by its own window is not one the others share with.
        const bool window_full = !l.trusted && l.in_flight > 0 && l.in_flight + l.next_size > l.window;
        if (l.ready > 0 && !window_full) ++t.lanes_waiting;
    }
    return t;
}

bool may_start(const lane_view& lane, const lane_totals& totals, const lane_settings& s) {
    if (lane.ready == 0 || lane.next_size == 0) return false;
    // What the lane may hold at most; a request larger than that (a batch)
    // counts as filling it, and goes alone.
    const int cap = lane.trusted ? s.concurrency : std::max(1, s.concurrency - s.reserve);
    const int size = std::min(lane.next_size, cap);
    if (totals.in_flight + size > s.concurrency) return false;
    // An untrusted lane with nothing out may send one request, even into the
    // reserve: that is how a new (or recovered) account proves itself.
    if (!lane.trusted && lane.in_flight > 0 && totals.untrusted_in_flight + size > cap) return false;
    if (!lane.trusted && lane.in_flight > 0 && lane.in_flight + size > lane.window) return false;
    // Fair share binds only while another lane has ready work.
    if (totals.lanes_waiting > 1) {
        const int share = std::max(1, (s.concurrency + totals.lanes_waiting - 1) / totals.lanes_waiting);
        if (lane.in_flight >= share) return false;
    }
    return true;
}

std::optional<std::size_t> next_lane(const std::vector<lane_view>& lanes, std::size_t cursor, const lane_settings& s) {
    if (lanes.empty()) return std::nullopt;
    const auto totals = totals_of(lanes);
    for (std::size_t k = 0; k < lanes.size(); ++k) {
        const std::size_t i = (cursor + k) % lanes.size();
        if (may_start(lanes[i], totals, s)) return i;
    }
    return std::nullopt;
}

bool trusted_after(request_result r, std::chrono::milliseconds took, const lane_settings& s) {
    return r == request_result::answered_well && took <= s.slow_after;
}

int window_after(int window, request_result r, int concurrency) {
    if (r == request_result::failed) return std::max(1, window / 2);
    return std::min(std::max(1, concurrency), std::max(1, window) * 2);
}

bool trusted_now(bool trusted, std::optional<std::chrono::milliseconds> oldest_in_flight, const lane_settings& s) {
    if (oldest_in_flight && *oldest_in_flight > s.slow_after) return false;
    return trusted;
}

std::int64_t park_due(int position, std::int64_t now, std::optional<std::chrono::milliseconds> oldest_in_flight,
                      const lane_settings& s) {
    auto wait = s.park_full;
    if (oldest_in_flight) wait = std::max(wait, std::min(*oldest_in_flight, s.park_max));
    return now + wait.count() + position;
}

lane_admit admit_to_lane(int queued, int bound, int position, std::int64_t now,
                         std::optional<std::chrono::milliseconds> oldest_in_flight, const lane_settings& s) {
    lane_admit a;
    if (queued < bound) return a;
    a.keep = false;
    a.due = park_due(position, now, oldest_in_flight, s);
    return a;
}

}  // namespace outq::policy
