#pragma once
// Reads that were too large (docs/operations.md, "Input limits"). A read whose
// reply is longer than the fetcher's limit is not read (the connection drops
// it), yet Redis delivered its entries to this consumer. They are found here,
// in Redis: every entry pending for the consumer after the last entry it read
// and delivered once (a taken-over entry has been delivered more often), with
// each one's sizes. An entry whose job is over max_job_bytes (or whose other
// fields are that long) comes back as a stub, its fields cut to their first
// bytes, and never leaves Redis whole: it becomes a validation dead letter that
// the completion script writes with the job taken from the entry itself
// (action `dead_kept`). The others are read again by id, a few at a time, so
// that no reply is over the budget. Pure: the script, the commands, the
// reading of the replies.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "outq/queue_protocol.hpp"

namespace outq::queue::oversized {

extern const char* const inspect_script;
// What a stub keeps of each field.
inline constexpr std::size_t head_bytes = 4096;
// Fields besides the job may add this much to an entry before it is a stub.
inline constexpr std::size_t other_fields_bytes = 64 * 1024;

// EVAL of the script: entries pending for `consumer` after `after` (an entry
// id, exclusive; empty: from the start), at most `count`.
redis::command inspect_command(const keys& k, std::string_view consumer, std::string_view after, int count,
                               std::size_t max_job_bytes);

struct inspected {
    std::string id;
    stub_sizes sizes;
    std::optional<stream_entry> stub;  // for an entry too large to read
};
// The script's reply; false on another shape.
bool parse_inspection(redis::value& reply, int partition, std::vector<inspected>& out);

// The entries that are not stubs, in groups to read with XRANGE, each group's
// entries adding up to at most `budget` bytes (an entry larger alone).
std::vector<std::vector<std::string>> read_groups(const std::vector<inspected>& entries, std::size_t budget);
// XRANGE jobs id id of each; and their replies as entries (one that is gone: none).
std::vector<redis::command> read_commands(const keys& k, const std::vector<std::string>& ids);
bool parse_reads(std::vector<redis::value>& replies, int partition, std::vector<stream_entry>& out);

}  // namespace outq::queue::oversized
