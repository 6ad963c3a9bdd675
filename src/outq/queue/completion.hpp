#pragma once
// The completion of a batch of deliveries as one script call (EVALSHA, every
// key declared). For each entry the script runs XACK first and writes that
// entry's outcome — result, results event, dead letter, or delayed copy —
// only when XACK returned 1, then XDEL. Writing a batch again after a reply
// was lost (a timeout while Redis applied it) therefore changes nothing: the
// outcome of an entry is written at most once, for retries and delays too.
#include <cstddef>
#include <string_view>
#include <vector>

#include "outq/queue/scripts.hpp"
#include "outq/queue_protocol.hpp"

namespace outq::queue {

extern const char* const completion_script;

// One script call for the batch. Keys: jobs, results, dead, delayed, then per
// entry its result hash, in-flight marker, delayed item and lease set.
// `consumer`: this worker's; an outcome other than `sent` of an entry another
// consumer owns now is not written (that consumer took it over).
redis::command completion_command(const keys& k, const write_settings& s, const script& sc, std::string_view consumer,
                                  const std::vector<const completion*>& batch);

// The reply: per entry 1 when its outcome was written now, 0 when the entry
// was no longer pending (acknowledged before: an earlier write of this batch
// that timed out, or another worker), 2 when another consumer owns it now
// (`lost`). False on an unexpected shape.
bool parse_completion_reply(const redis::value& reply, std::size_t entries, std::vector<bool>& written,
                            std::vector<bool>* lost = nullptr);

}  // namespace outq::queue
