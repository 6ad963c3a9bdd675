#include "outq/queue/partitions.hpp"

#include <array>
#include <charconv>
#include <cstdlib>

#include "outq/redis_cluster.hpp"

namespace outq::queue {

namespace {

constexpr std::array<std::uint32_t, 256> crc32_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
    }
    return t;
}

constexpr auto crc_table = crc32_table();

// Candidates per partition: enough that the nearest lands within a few dozen
// slots of the centre, few enough for a producer to compute at start.
constexpr int tag_candidates = 256;

}  // namespace

std::uint32_t crc32(std::string_view bytes) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : bytes) c = crc_table[(c ^ b) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

int partition_of(std::string_view job_id, int count) {
    if (count <= 1) return 0;
    return static_cast<int>(crc32(job_id) % static_cast<std::uint32_t>(count));
}

std::string partition_tag(std::string_view queue, int index, int count) {
    if (count <= 1) return std::string(queue);
    const std::string base = std::string(queue) + "#" + std::to_string(index);
    const long centre = (2L * index + 1) * redis::cluster::slot_count / (2L * count);
    std::string best = base;
    long best_distance = std::labs(redis::cluster::key_slot(base) - centre);
    for (int n = 1; n < tag_candidates && best_distance > 0; ++n) {
        std::string candidate = base + "." + std::to_string(n);
        const long d = std::labs(redis::cluster::key_slot(candidate) - centre);
        if (d < best_distance) {
            best_distance = d;
            best = std::move(candidate);
        }
    }
    return best;
}

keys partition_keys_of(std::string_view queue, int index, int count) {
    return keys(queue, partition_tag(queue, index, count), index);
}

std::vector<keys> partition_keys(std::string_view queue, int count) {
    std::vector<keys> out;
    out.reserve(static_cast<std::size_t>(std::max(count, 1)));
    for (int i = 0; i < std::max(count, 1); ++i) out.emplace_back(queue, partition_tag(queue, i, count), i);
    return out;
}

std::string partitions_key(std::string_view queue) {
    return "outq:{" + std::string(queue) + "}:partitions";
}

std::vector<redis::command> partition_check_commands(std::string_view queue, int) {
    std::vector<redis::command> cmds;
    cmds.push_back(redis::command("GET").arg(partitions_key(queue)));
    const keys single(queue);
    cmds.push_back(redis::command("XLEN").arg(single.jobs));
    cmds.push_back(redis::command("ZCARD").arg(single.delayed));
    return cmds;
}

std::optional<int> parse_partition_count(std::string_view text) {
    int n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || p != text.data() + text.size() || n < 1 || n > max_partitions) return std::nullopt;
    return n;
}

bool parse_partition_check(const std::vector<redis::value>& replies, partition_state& out) {
    if (replies.size() < 3) return false;
    const auto& count = replies[0];
    if (count.is_nil())
        out.recorded.reset();
    else if (count.is_string()) {
        auto n = parse_partition_count(count.str);
        if (!n) return false;
        out.recorded = n;
    } else
        return false;
    for (int i : {1, 2})
        if (replies[i].type != redis::value::kind::integer) return false;
    out.single_holds_jobs = replies[1].integer > 0 || replies[2].integer > 0;
    return true;
}

partition_verdict check_partitions(std::string_view queue, int count, const partition_state& state) {
    partition_verdict v;
    const std::string q(queue);
    if (state.recorded) {
        if (*state.recorded != count)
            v.refusal = "queue " + q + " has " + std::to_string(*state.recorded) + " partitions (" +
                        partitions_key(queue) + ") and this worker is configured for " + std::to_string(count) +
                        ": set queue_partitions to " + std::to_string(*state.recorded) +
                        ", or drain the queue before changing it (docs/operations.md, \"Partitions\")";
        return v;
    }
    if (count > 1 && state.single_holds_jobs) {
        v.refusal = "queue " + q + " holds jobs in its single partition (" + keys(queue).jobs + ", " +
                    keys(queue).delayed + ") and this worker is configured for " + std::to_string(count) +
                    " partitions: drain it first, or keep queue_partitions at 1 (docs/operations.md, \"Partitions\")";
        return v;
    }
    v.record = true;
    return v;
}

redis::command record_partitions_command(std::string_view queue, int count) {
    return redis::command("SET").arg(partitions_key(queue)).arg(count).arg("NX").arg("GET");
}

std::string parse_record_partitions(std::string_view queue, int count, const redis::value& reply) {
    if (reply.is_nil()) return {};
    if (reply.is_error()) return "could not record the partition count in " + partitions_key(queue) + ": " + reply.str;
    partition_state raced;
    if (reply.is_string()) raced.recorded = parse_partition_count(reply.str);
    if (!raced.recorded) return partitions_key(queue) + " holds something that is not a partition count";
    return check_partitions(queue, count, raced).refusal;
}

}  // namespace outq::queue
