#pragma once
// The consumer group's commands and the replies the worker reads from them:
// creating the group, the blocking read, taking over stalled entries, pruning
// departed consumers, ending a blocked read, the pending count of a consumer,
// and the start-up checks (permissions, eviction policy). Pure.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "outq/queue_protocol.hpp"

namespace outq::queue {

redis::command create_group_command(const keys& k);
// True when the group exists now (created, or BUSYGROUP).
bool parse_create_group(const redis::value& reply);

redis::command read_group_command(const keys& k, std::string_view consumer, int count, std::chrono::milliseconds block);
redis::command autoclaim_command(const keys& k, std::string_view consumer, std::chrono::milliseconds min_idle,
                                 std::string_view cursor, int count);

redis::command consumers_command(const keys& k);
// XINFO CONSUMERS' rows. False on an unexpected shape.
struct consumer_row {
    std::string name;
    std::int64_t pending = -1;
    std::int64_t idle_ms = 0;  // since its last read or claim (a worker's blocking reads keep it near 0)
};
bool parse_consumers(const redis::value& reply, std::vector<consumer_row>& out);
// Consumers other than `me` with nothing pending, idle for at least `idle_limit`.
bool parse_departed_consumers(const redis::value& reply, std::string_view me, std::int64_t idle_limit_ms,
                              std::vector<std::string>& out);
redis::command delete_consumer_command(const keys& k, std::string_view name);

// Ends another connection's blocking command (the fetch's XREADGROUP) at once.
redis::command unblock_command(std::int64_t client_id);

// `XPENDING jobs group` summary: how many entries `consumer` holds (0 when none).
redis::command pending_summary_command(const keys& k);
bool parse_pending_of(const redis::value& reply, std::string_view consumer, std::int64_t& out);

// Start-up checks: one harmless call of every command the worker needs (a
// missing permission answers NOPERM), in a pipeline.
struct preflight_check {
    std::string_view command;  // for the log: "XAUTOCLAIM"
    redis::command call;
};
std::vector<preflight_check> preflight_checks(const keys& k, std::string_view consumer);
// The commands whose replies say the permission is missing.
std::vector<std::string> missing_permissions(const std::vector<preflight_check>& checks,
                                             const std::vector<redis::value>& replies);

redis::command info_memory_command();
// The `maxmemory_policy` of an INFO memory reply, empty when absent.
std::string parse_maxmemory_policy(const redis::value& reply);

}  // namespace outq::queue
