#pragma once
// The queue's depth for the metrics (docs/operations.md, "Metrics"): one
// pipeline of five reads, no writes — XLEN jobs, the XPENDING summary, ZCARD
// delayed, XLEN dead, and XRANGE jobs - + COUNT 1 for the oldest entry. Pure:
// the commands and the reading of their replies.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outq/clock.hpp"
#include "outq/queue_protocol.hpp"

namespace outq::queue {

struct depth {
    std::int64_t stream_length = 0;  // XLEN jobs: waiting + pending (acknowledged entries are deleted)
    std::int64_t pending = 0;        // delivered to a worker, not acknowledged
    std::int64_t delayed = 0;
    std::int64_t dead = 0;
    // While any job waits: the time (in its entry id) of the stream's oldest
    // entry. When that entry is in flight (the smallest pending id), the oldest
    // waiting job is younger: an upper bound then, exact otherwise.
    std::optional<unix_ms> oldest_waiting_at;
    std::int64_t waiting() const { return stream_length > pending ? stream_length - pending : 0; }
    // Seconds since oldest_waiting_at (0 when nothing waits, never negative).
    double oldest_waiting_age_seconds(unix_ms now) const;
};

std::vector<redis::command> depth_commands(const keys& k);

struct depth_reading {
    std::optional<depth> value;
    std::string error;  // when there is no value: which reply, and Redis' error
};
// The replies of depth_commands, in order. A queue no worker has started on
// (no stream, no group: NOGROUP) is empty; any other error is an error.
depth_reading read_depth(const std::vector<redis::value>& replies);

// A queue of many partitions: every partition's reads in one pipeline, and
// their sum (the oldest waiting job: the oldest of any partition's).
std::vector<redis::command> depth_commands(const std::vector<keys>& partitions);
depth_reading read_depths(const std::vector<redis::value>& replies, std::size_t partitions);

}  // namespace outq::queue
