#pragma once
// One logical queue over many Redis Cluster slots (docs/protocol.md,
// "Partitions"): which partition a job belongs to, the hash tag of each
// partition, and the key that records how many partitions a queue has. Pure
// code: producers' helpers compute the same answers in their own language.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outq/queue_protocol.hpp"
#include "outq/resp.hpp"

namespace outq::queue {

// The most partitions a queue may have: every partition is a fetch
// connection of every worker.
inline constexpr int max_partitions = 256;

// CRC-32 as zlib computes it (IEEE 802.3, reflected, initial and final
// value 0xFFFFFFFF): what every producer language has at hand.
std::uint32_t crc32(std::string_view bytes);

// The partition of a job with an id: crc32(id) mod count.
int partition_of(std::string_view job_id, int count);

// The hash tag of partition `index` of `count`: the queue's name alone for a
// queue of one partition (the layout of a queue that never had more);
// otherwise `Q#i` or `Q#i.n`, the first of n = 0 (no suffix), 1, …, 255 whose
// slot is nearest the centre of the i-th of `count` equal ranges of the
// 16384 slots, so that the partitions spread over a cluster whose primaries
// own equal ranges (what `redis-cli --cluster create` makes) instead of
// wherever CRC16 drops `Q#i`.
std::string partition_tag(std::string_view queue, int index, int count);

// The keys of one partition.
keys partition_keys_of(std::string_view queue, int index, int count);
// The keys of every partition, index by index.
std::vector<keys> partition_keys(std::string_view queue, int count);

// outq:{Q}:partitions — how many partitions the queue has (a decimal string;
// missing means 1). Written once by the first worker (SET NX), read by the
// workers, the CLI and producers.
std::string partitions_key(std::string_view queue);

// What a worker checks at start: the recorded count, and whether the
// layout of one partition holds jobs (waiting, pending or delayed).
std::vector<redis::command> partition_check_commands(std::string_view queue, int count);
// False on an unexpected shape.
struct partition_state {
    std::optional<int> recorded;     // none: the key is missing (a queue of one partition, or a new one)
    bool single_holds_jobs = false;  // outq:{Q}:jobs or outq:{Q}:delayed is not empty
};
bool parse_partition_check(const std::vector<redis::value>& replies, partition_state& out);
// A worker configured for `count` partitions may start when `refusal` is
// empty; it records the count first when `record` (a queue without one).
struct partition_verdict {
    std::string refusal;
    bool record = false;
};
partition_verdict check_partitions(std::string_view queue, int count, const partition_state& state);
// SET NX GET: a worker of another count that recorded first wins, and this
// one is refused (the parse gives why; empty when the count is recorded).
redis::command record_partitions_command(std::string_view queue, int count);
std::string parse_record_partitions(std::string_view queue, int count, const redis::value& reply);

// A count read back from the key's value; none when it is not a count.
std::optional<int> parse_partition_count(std::string_view text);

}  // namespace outq::queue
