#pragma once
// How much one read of new jobs may bring (docs/operations.md, "Input limits").
// Pure: the fetcher keeps the estimate and asks here.
//
// - COUNT follows the entries' sizes: at most `fetch_bytes` worth at the
//   average size of the entries read so far (an estimate that jumps to a
//   larger read's average at once and moves a quarter of the way to a smaller
//   one), never less than one entry.
// - A reply over `reply_limit` (fetch_bytes, two of the largest jobs allowed,
//   and room for the fields around them) is not read: the connection drops it,
//   and the entries that read delivered are inspected in Redis
//   (queue/oversized.hpp), so a job over max_job_bytes never leaves Redis.
#include <cstddef>

#include "outq/config.hpp"

namespace outq::policy {

inline constexpr double initial_entry_bytes = 2048;

// The read's COUNT: at most `wanted`, at least 1.
int fetch_count(int wanted, double bytes_per_entry, std::size_t fetch_bytes);
// The estimate after a read of `entries` entries of `bytes` bytes in all.
double next_entry_bytes(double estimate, std::size_t bytes, std::size_t entries);
// The size past which a read's reply is not read.
std::size_t reply_limit(const worker_config& c);

}  // namespace outq::policy
