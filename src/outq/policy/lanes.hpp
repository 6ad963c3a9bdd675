#pragma once
// The scheduler's decisions as pure functions: which provider account's lane
// may start its next request now, how a lane's health changes with what its
// requests came to, and what happens to a delivery its lane cannot take.
//
// Concurrency is shared fairly between the lanes that have ready work, and
// the sharing is work-conserving: a lone busy lane may use every slot. A cap
// binds only while another lane waits: then a lane at or above its fair share
// (concurrency / lanes with work) starts nothing more. A small reserve of
// slots is kept from lanes not known to be healthy (new, failing, slow), so a
// provider that hangs can hold at most `concurrency - reserve` slots even
// before its first request times out; such a lane with nothing out may still
// send one request at a time, which is how a new or recovered account proves
// itself (so each hanging account can hold one reserve slot at most).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace outq::policy {

struct lane_settings {
    int concurrency = 256;                       // requests in flight in this worker, all lanes together
    int reserve = 32;                            // slots only trusted lanes may use
    int queue = 128;                             // deliveries one lane keeps waiting in memory
    int buffer = 256;                            // deliveries all lanes together keep waiting in memory
    std::chrono::milliseconds slow_after{1000};  // a request out longer than this makes its lane untrusted
    int start_window = 1;  // requests a new lane may have out before its first answer (slow start)
    std::chrono::milliseconds park_full{
        1000};  // a delivery its full lane cannot keep comes back at least this much later
    std::chrono::milliseconds park_max{30000};  // and at most this much later
};

// Defaults derived from the worker's concurrency, unless the config set them.
lane_settings default_lane_settings(int concurrency);

// One lane as the scheduler sees it when a slot may be given.
struct lane_view {
    int in_flight = 0;     // deliveries in requests started and not finished
    int ready = 0;         // deliveries queued and ready to start
    int next_size = 0;     // deliveries in the lane's next request (0: none ready)
    bool trusted = false;  // its recent requests were answered fast and well, none is out too long
    int window = 1;        // requests an untrusted lane may have out (slow start: window_after)
};

struct lane_totals {
    int in_flight = 0;            // all lanes
    int untrusted_in_flight = 0;  // lanes not trusted
    int lanes_waiting = 0;        // lanes with ready work
};

lane_totals totals_of(const std::vector<lane_view>& lanes);

// Whether `lane` may start its next request now.
bool may_start(const lane_view& lane, const lane_totals& totals, const lane_settings& s);

// The lane that starts next, round robin from `cursor` (the lane after the
// one that started last); nullopt when none may start.
std::optional<std::size_t> next_lane(const std::vector<lane_view>& lanes, std::size_t cursor, const lane_settings& s);

// What a lane's health becomes.
enum class request_result {
    answered_well,  // an answer that is not the provider's or the network's fault (2xx, 4xx, 429)
    failed,         // connect failure, timeout, reset, 5xx
};
// After one of its requests ended, `took` after it started.
bool trusted_after(request_result r, std::chrono::milliseconds took, const lane_settings& s);
// An untrusted lane's window (slow start, as TCP's): every answer of the
// provider doubles it, a failure halves it; a new lane starts at 1. So an
// account that hangs keeps about one request out per worker, and one that is
// slow but answers grows to what the reserve leaves within a few answers.
int window_after(int window, request_result r, int concurrency);
// Before giving a slot: a request still out after `slow_after` makes the lane untrusted.
bool trusted_now(bool trusted, std::optional<std::chrono::milliseconds> oldest_in_flight, const lane_settings& s);

// When a delivery its lane cannot keep comes back from the delayed set (no
// attempt used): after `park_full`, or after as long as the lane's oldest
// request has been out (a lane that hangs is not asked again every second),
// at most `park_max`; `position` (a running count) puts each 1 ms after the
// one parked before, so parked deliveries come back in the order they left.
std::int64_t park_due(int position, std::int64_t now, std::optional<std::chrono::milliseconds> oldest_in_flight,
                      const lane_settings& s);

// A delivery arriving at its lane: kept in the lane queue, or parked until `due`.
struct lane_admit {
    bool keep = true;
    std::int64_t due = 0;  // unix ms; when parked
};
// `queued` deliveries wait in the lane now, which keeps at most `bound`.
lane_admit admit_to_lane(int queued, int bound, int position, std::int64_t now,
                         std::optional<std::chrono::milliseconds> oldest_in_flight, const lane_settings& s);

}  // namespace outq::policy
