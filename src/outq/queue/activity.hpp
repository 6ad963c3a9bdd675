#pragma once
// The dashboard's figures (docs/protocol.md, "Activity"): what every worker
// writes to Redis every few seconds, and how `outq web` reads it back. No
// per-job write: a worker adds up what its metrics counted since its last
// write. Pure: the commands, the JSON and the reading of the replies.
//
// - Activity buckets: `outq:{Q}:activity:<minute>` (minute = unix ms / 60000),
//   a hash the whole fleet adds to with HINCRBY, kept two hours. Its fields are
//   `<kind>:<qualifier>:<provider>/<account>`:
//     sent::p/a  retry::p/a  delay::p/a  duplicate::p/a   outcomes written
//     dead:<class>:p/a                                    dead letters by class
//     lat:<le>:p/a                                        provider exchanges whose duration was at most
//                                                         <le> ms and over the bucket before (<le> "inf": longer)
//   Provider and account names are those of the configuration, else
//   `_unknown_` (as on /metrics): producers cannot add fields.
// - Worker snapshot: `outq:{Q}:worker:<consumer>`, a JSON object (the worker,
//   its counts, the limits it runs with), expiring after three intervals.
// Both are in the queue's own slot `{Q}`, whatever its partitions.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "outq/clock.hpp"
#include "outq/metrics.hpp"
#include "outq/queue_protocol.hpp"

namespace outq::queue::activity {

inline constexpr std::int64_t bucket_ttl_seconds = 2 * 3600;
inline constexpr unix_ms minute_ms = 60000;
inline std::int64_t minute_of(unix_ms t) {
    return t / minute_ms;
}
std::string bucket_key(const keys& k, std::int64_t minute);
std::string worker_key(const keys& k, std::string_view consumer);

// --- writing (the worker) ---------------------------------------------------------

// Field → running total, from the worker's metrics (outq_jobs_total and
// outq_send_duration_seconds).
using totals = std::map<std::string, std::uint64_t, std::less<>>;
totals totals_of(const metrics& m);
// What grew from `written` to `now`: the fields to add, each once.
std::vector<std::pair<std::string, std::uint64_t>> growth(const totals& written, const totals& now);

struct account_limits {
    std::string account;  // provider/account
    int requests = 0;     // per window; 0: no rate limit
    std::int64_t window_ms = 0;
    int burst = 0;
    int max_in_flight = 0;  // 0: no cap
};

struct worker_snapshot {
    std::string consumer;
    unix_ms at = 0;       // when it was written
    unix_ms started = 0;  // when the worker started
    std::int64_t in_flight = 0;
    std::int64_t waiting_for_permit = 0;
    std::int64_t concurrency = 0;
    std::uint64_t sent = 0, dead = 0, retried = 0;
    std::vector<account_limits> limits;  // the configured accounts
};
std::string to_json(const worker_snapshot& s);
// Its counts as members of the JSON object `w` is writing (in_flight, waiting_for_permit, concurrency, sent,
// dead, retried): the snapshot and the dashboard's API write them alike.
void write_counts(rapidjson::Writer<rapidjson::StringBuffer>& w, const worker_snapshot& s);
// The limits' members (requests, window_ms, burst, max_in_flight), likewise.
void write_limits(rapidjson::Writer<rapidjson::StringBuffer>& w, const account_limits& l);
std::optional<worker_snapshot> parse_snapshot(std::string_view json);

// HINCRBY of each field grown into the current minute's bucket, its expiry (PEXPIRE),
// and the snapshot (SET … PX ttl): one pipeline.
std::vector<redis::command> write_commands(const keys& k, std::int64_t minute,
                                           const std::vector<std::pair<std::string, std::uint64_t>>& grown,
                                           const worker_snapshot& snapshot, std::chrono::milliseconds snapshot_ttl);
// True when every reply of write_commands is not an error.
bool written(const std::vector<redis::value>& replies, std::string& error);

// --- reading (outq web) -----------------------------------------------------------

// HGETALL of the buckets of minutes last_minute - minutes + 1 … last_minute, oldest first.
std::vector<redis::command> history_commands(const keys& k, std::int64_t last_minute, int minutes);

struct minute_counts {
    std::int64_t minute = 0;
    std::map<std::string, std::int64_t, std::less<>> fields;
};
// The replies of history_commands; false (and `error`) on an error reply or another shape.
bool read_history(const std::vector<redis::value>& replies, std::int64_t last_minute, std::vector<minute_counts>& out,
                  std::string& error);

struct field_name {
    std::string kind, qualifier, account;  // account: provider/account
};
std::optional<field_name> split_field(std::string_view field);

// The queue's outcomes per minute (every account).
struct queue_minute {
    unix_ms start = 0;
    std::int64_t sent = 0, dead = 0, retried = 0, delayed = 0;
};
std::vector<queue_minute> queue_series(const std::vector<minute_counts>& history);

// One account's figures over minutes since `since_minute` (latency) and every minute given (the rest).
struct account_figures {
    std::int64_t sent = 0, retried = 0, dead = 0;
    std::map<std::string, std::int64_t, std::less<>> dead_by_class;
    std::map<double, std::int64_t> latency;  // bucket upper bound (ms, infinity last) → exchanges
    std::int64_t exchanges() const;
};
std::map<std::string, account_figures, std::less<>> account_series(const std::vector<minute_counts>& history,
                                                                   std::int64_t since_minute);
// The q-quantile of a latency histogram in ms, interpolated inside its bucket
// as Prometheus' histogram_quantile does (the highest finite bound when it
// falls in the last bucket); nullopt without exchanges.
std::optional<double> quantile_ms(const std::map<double, std::int64_t>& buckets, double q);

// One MGET of the workers' snapshots; and its reply (nil and unreadable ones skipped).
redis::command snapshots_command(const keys& k, const std::vector<std::string>& consumers);
bool read_snapshots(const redis::value& reply, std::vector<worker_snapshot>& out, std::string& error);

}  // namespace outq::queue::activity
