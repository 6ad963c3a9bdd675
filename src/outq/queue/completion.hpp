#pragma once
// The completion of a batch of deliveries as one script call (EVALSHA, every
// key declared). For each entry the script runs XACK first and writes that
// entry's outcome — result, results event, dead letter, or delayed copy —
// only when XACK returned 1, then XDEL. Writing a batch again after a reply
// was lost (a timeout while Redis applied it) therefore changes nothing: the
// outcome of an entry is written at most once, for retries and delays too.
#include <cstddef>
#include <vector>

#include "outq/queue/scripts.hpp"
#include "outq/queue_protocol.hpp"

namespace outq::queue {

extern const char* const completion_script;

// One script call for the batch. Keys: jobs, results, dead, delayed, then per
// entry its result hash, in-flight marker, delayed item and lease set.
redis::command completion_command(const keys& k, const write_settings& s, const script& sc,
                                  const std::vector<const completion*>& batch);

// The reply: per entry 1 when its outcome was written now, 0 when the entry
// was no longer pending (acknowledged before: an earlier write of this batch
// that timed out, or another worker). False on an unexpected shape.
bool parse_completion_reply(const redis::value& reply, std::size_t entries, std::vector<bool>& written);

}  // namespace outq::queue
