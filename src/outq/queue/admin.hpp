#pragma once
// The operator commands' part of the queue protocol (docs/protocol.md): the Redis
// commands of `outq enqueue`, `result`, `stats`, `dead list|show|replay`, `pause`
// and `resume`, and the reading of their replies into plain structs. Pure, like
// queue_protocol.hpp: nothing here does I/O.
//
// A reply that is an error, or not of the shape its command answers with, is
// read as an error carrying the Redis error text, never as zero or empty: a
// wrong Redis Cluster node answers MOVED to every command, and that must not
// look like an empty queue.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "outq/clock.hpp"
#include "outq/queue/circuit.hpp"
#include "outq/queue_protocol.hpp"
#include "outq/resp.hpp"

namespace outq::queue::admin {

// A reply read into a T, or why it could not be: the Redis error text
// ("MOVED 3999 10.0.0.2:6379") or what was unexpected about the reply.
template <typename T>
struct read_result {
    read_result() = default;
    read_result(T v) : value(std::move(v)) {}
    static read_result failure(std::string why) {
        read_result r;
        r.error = std::move(why);
        return r;
    }
    std::optional<T> value;
    std::string error;
    bool ok() const { return value.has_value(); }
};

// The Redis error text of an error reply; otherwise what was expected instead
// ("unexpected reply to XLEN: nil instead of an integer").
std::string unexpected(const redis::value& v, std::string_view command_name, std::string_view expected);
template <typename T>
read_result<T> fail(const redis::value& v, std::string_view command_name, std::string_view expected) {
    return read_result<T>::failure(unexpected(v, command_name, expected));
}
inline bool is_integer(const redis::value& v) {
    return v.type == redis::value::kind::integer;
}

// The Redis error text of the first error among a pipeline's replies; nullopt when none.
std::optional<std::string> first_error(const std::vector<redis::value>& replies);

using field_list = std::vector<std::pair<std::string, std::string>>;

// A hash as HGETALL answers it, field/value pairs in Redis' order; empty when
// the key does not exist.
read_result<field_list> read_hash(const redis::value& reply, std::string_view command_name = "HGETALL");

// --- enqueue ------------------------------------------------------------------
// XADD jobs * job <json>: exactly what any producer writes.
redis::command enqueue_command(const keys& k, std::string_view job_json);
// The new entry's id.
read_result<std::string> read_enqueued(const redis::value& reply);

// --- results ------------------------------------------------------------------
// GET of the job's result value (docs/protocol.md: JSON, `sending` while in flight).
redis::command result_command(const keys& k, std::string_view job_id);
// The value, or nullopt when there is none.
read_result<std::optional<std::string>> read_result_reply(const redis::value& reply);

// For `outq result --wait`: the results stream's last entry id (XREVRANGE
// results + - COUNT 1; "0-0" when empty), then blocking reads after it
// (XREAD COUNT 1000 BLOCK ms STREAMS results <after>).
redis::command last_event_command(const keys& k);
read_result<std::string> read_last_event(const redis::value& reply);
redis::command follow_events_command(const keys& k, std::string_view after, std::chrono::milliseconds block);
// Whether an event of `job_id` came; `after` moves to the last entry read.
read_result<bool> read_followed_events(redis::value& reply, std::string_view job_id, std::string& after);

// --- cancel -------------------------------------------------------------------
// One script call: the job's result becomes `cancelled` (with the results TTL)
// and a `cancelled` event is added — only when it has no value yet: a job a
// worker holds (`sending`) or that ended cannot be cancelled. Workers that
// take the job later skip it (the claim finds the result).
extern const char* const cancel_script;
redis::command cancel_command(const keys& k, std::string_view job_id, std::string_view reason, unix_ms now,
                              const write_settings& s);
// nullopt when cancelled; else the value that was there.
read_result<std::optional<std::string>> read_cancel(const redis::value& reply);

// --- dead letters -------------------------------------------------------------
inline constexpr long long dead_page_size = 500;
// XRANGE dead <start> + COUNT n: from the first entry when `after` is empty,
// else from the entry after `after`.
redis::command dead_page_command(const keys& k, std::string_view after, long long count = dead_page_size);
// The page newest first: the letters older than `before` (empty: the newest), read with read_dead_page.
redis::command dead_page_newest_command(const keys& k, std::string_view before, long long count = dead_page_size);
// One letter by its entry id (XRANGE id id), read with read_dead_page.
redis::command dead_letter_command(const keys& k, std::string_view entry);
struct dead_letter {
    std::string entry_id;
    field_list fields;
    int partition = 0;  // whose dead stream holds it
};
// One page, oldest first (the reply is consumed). A page shorter than the count is the last.
read_result<std::vector<dead_letter>> read_dead_page(redis::value& reply);

// HGETALL replayed: dead letter entry id → the job entry it was sent again as (read it with read_hash).
redis::command replayed_command(const keys& k);
// EVAL replay_script: the dead letter's job goes back into the stream, unless it
// was replayed already (then only with `force`).
redis::command replay_command(const keys& k, std::string_view job_id, std::string_view job_json,
                              std::string_view dead_entry, bool force);
// The job's new entry id, or nullopt when it had been replayed (by someone else meanwhile).
read_result<std::optional<std::string>> read_replay(const redis::value& reply);

// --- stats --------------------------------------------------------------------
// XLEN jobs, XPENDING jobs outq, ZCARD delayed, XLEN dead, XLEN results, XINFO GROUPS jobs.
std::vector<redis::command> stats_commands(const keys& k);
struct queue_stats {
    std::int64_t stream_length = 0;
    std::int64_t pending = 0;  // delivered to a worker, not acknowledged
    std::int64_t delayed = 0;
    std::int64_t dead = 0;
    std::int64_t results_events = 0;
    std::int64_t consumers = 0;  // of the outq group
    bool group = false;          // the outq group exists (a worker has started on this queue)
    std::int64_t waiting() const { return std::max<std::int64_t>(0, stream_length - pending); }
};
// The replies of stats_commands, in order. A queue no worker has seen yet (no
// stream: "no such key", no group: NOGROUP) has nothing pending and no
// consumers; every other error is an error.
read_result<queue_stats> read_stats(const std::vector<redis::value>& replies);
// The partitions' stats as one queue's: counts added; the consumers of the
// partition that has most (every worker consumes every partition); the group
// exists when it exists in every partition.
queue_stats sum_stats(const std::vector<queue_stats>& partitions);

// XINFO GROUPS jobs: whether a worker has created the outq group (enqueue warns when not).
redis::command groups_command(const keys& k);
// The outq group's consumers, or nullopt when the group (or the stream) does not exist.
read_result<std::optional<std::int64_t>> read_group(const redis::value& reply);

// --- rate-limit scopes and pauses ---------------------------------------------
// SCAN <cursor> MATCH <prefix>limit:* COUNT 1000: the limit keys of the queue (an
// operator command, not a hot path). The first cursor is "0".
redis::command scan_scopes_command(const keys& k, std::string_view cursor);
struct scope_page {
    std::string cursor;               // "0": the scan is complete
    std::vector<std::string> scopes;  // "provider:account" of each key found (repeats possible)
};
read_result<scope_page> read_scan_scopes(const keys& k, const redis::value& reply);

// PTTL and GET of the scope's pause, ZCARD of its window, HGETALL of its
// circuit; `scope` is "provider/account".
std::vector<redis::command> scope_state_commands(const keys& k, std::string_view scope);
struct scope_state {
    std::string provider_account;
    std::int64_t pause_ms = -2;  // -2 not paused, -1 until resumed, else the time left
    std::string pause_reason;
    std::int64_t in_window = 0;             // requests counted in the current window
    std::optional<circuit_record> circuit;  // the circuit breaker's hash, when there is one
};
read_result<scope_state> read_scope_state(std::string_view scope, const std::vector<redis::value>& replies);

// SET <scope>pause <reason> [PX ms]: an operator's pause replaces any other (it
// may shorten one), unlike the workers' extend-only queue::pause_command.
redis::command operator_pause_command(const keys& k, std::string_view provider, std::string_view account,
                                      std::string_view reason, std::optional<std::chrono::milliseconds> duration);
// +OK.
read_result<bool> read_ok(const redis::value& reply, std::string_view command_name);

// DEL <scope>pause.
redis::command resume_command(const keys& k, std::string_view provider, std::string_view account);
// Whether there was a pause to lift.
read_result<bool> read_resumed(const redis::value& reply);

// `outq pause` and `outq resume` in one pipeline each: the command above, then
// PUBLISH of the pause or resume message on the queue's control channel
// (queue/control.hpp), so that a worker asleep on the account hears it now.
std::vector<redis::command> operator_pause_commands(const keys& k, std::string_view provider, std::string_view account,
                                                    std::string_view reason,
                                                    std::optional<std::chrono::milliseconds> duration);
std::vector<redis::command> resume_commands(const keys& k, std::string_view provider, std::string_view account);
// The PUBLISH reply: the number of subscribers (workers) that got it.
read_result<std::int64_t> read_published(const redis::value& reply);

// Resume brings the account's jobs a pause held back into play at once: they
// wait in the delayed set until the pause's planned end. Paged through the
// jobs due after `now`: ZRANGEBYSCORE delayed (now +inf LIMIT start count.
inline constexpr long long held_page_size = 1000;
redis::command held_page_command(const keys& k, unix_ms now, long long start, long long count = held_page_size);
// The delayed set tokens of one page.
read_result<std::vector<std::string>> read_held_page(const redis::value& reply);
// HGET delayed:<token> job, one per token.
std::vector<redis::command> held_job_commands(const keys& k, const std::vector<std::string>& tokens);
// The tokens whose job is of `provider`/`account`; a token whose job is gone
// (nil) is skipped.
read_result<std::vector<std::string>> read_held_jobs_of(const std::vector<redis::value>& replies,
                                                        const std::vector<std::string>& tokens,
                                                        std::string_view provider, std::string_view account);
// ZADD delayed XX <now> <token>, one per token: due now, for the mover to take.
std::vector<redis::command> due_now_commands(const keys& k, const std::vector<std::string>& tokens, unix_ms now);

// --- dead letter lifecycle (dead delete|purge, replay links, filters) -----------
// Whether a dead letter's http_status matches a --status pattern: three
// characters, each a digit or `x` (any digit), the first a digit: "422"
// exactly, "4xx" any of 400–499, "42x". A letter without a status matches none.
bool valid_status_pattern(std::string_view pattern);
bool status_matches(std::string_view pattern, std::string_view http_status);
// --grep: whether TEXT occurs (bytes, case-sensitive) in the letter's error or its job JSON.
bool dead_letter_contains(const dead_letter& d, std::string_view text);

// XDEL dead <ids…>, then HDEL replayed <ids…>: a deleted letter's replay link goes with it.
std::vector<redis::command> dead_delete_commands(const keys& k, const std::vector<std::string>& entry_ids);
// How many letters XDEL deleted (one already gone is not counted).
read_result<std::int64_t> read_dead_deleted(const std::vector<redis::value>& replies);

// What became of a replayed letter: the `replayed` hash maps its entry id to
// the new jobs stream entry; that id's millisecond part is the replay time; the
// job's current result value says the outcome ("" while it has none).
struct replay_info {
    std::string entry;   // the jobs stream entry of the replay
    unix_ms at = 0;      // when it was replayed
    std::string result;  // the job's result status now: sent, dead, sending, cancelled; "" none
};
std::optional<replay_info> replay_info_of(const field_list& replayed, std::string_view dead_entry,
                                          std::string_view result_status);
// GET result:<id>, one per job id (pipelined).
std::vector<redis::command> result_commands(const keys& k, const std::vector<std::string>& job_ids);
// The `status` of each result value ("" for none, "unreadable" for a value this format does not write).
read_result<std::vector<std::string>> read_result_statuses(const std::vector<redis::value>& replies);

// XRANGE dead - + COUNT 1: the oldest letter (for stats).
redis::command oldest_dead_command(const keys& k);
// When the oldest letter was written (its entry id's milliseconds); nullopt when there is none.
read_result<std::optional<unix_ms>> read_oldest_dead(redis::value& reply);

// --- jobs (outq job, outq list) -----------------------------------------------
inline constexpr long long scan_page_size = 1000;
// XRANGE jobs <start> + COUNT n: from the first entry when `after` is empty, else after it.
redis::command jobs_page_command(const keys& k, std::string_view after, long long count = scan_page_size);
// Stream entries of one page (XRANGE's reply, consumed), as dead letters are read.
read_result<std::vector<dead_letter>> read_entries_page(redis::value& reply, std::string_view command_name);
// The job id of a jobs stream entry or delayed item: the job JSON's "id", else
// `first_entry` (a retried job without an id keeps its first entry id), else the entry id.
std::string job_id_of(const field_list& fields, std::string_view entry_id);
// The `not_before` of a delayed item's own job (none: no job, unreadable, or
// none set): a copy moved sooner than that is only delayed again.
std::optional<unix_ms> own_not_before_of(const field_list& fields);
// Stream entry id order ("1-2" < "10-0"); an id that does not parse sorts first.
bool entry_before(std::string_view a, std::string_view b);

// XINFO GROUPS jobs: the outq group's last-delivered-id; entries after it are
// waiting (not delivered yet). nullopt when the group or the stream does not exist.
read_result<std::optional<std::string>> read_last_delivered(const redis::value& reply);

struct pending_entry {
    std::string entry_id;
    std::string consumer;
    std::int64_t idle_ms = 0;
    std::int64_t deliveries = 0;
};
// XPENDING jobs outq.v2 <start> + n: the extended form, from the first pending
// entry (`after` empty) or after `after`.
redis::command pending_page_command(const keys& k, std::string_view after, long long count = scan_page_size);
// XPENDING jobs outq.v2 <id> <id> 1: who holds this entry.
redis::command pending_entry_command(const keys& k, std::string_view entry_id);
// The rows of the extended XPENDING; NOGROUP reads as none.
read_result<std::vector<pending_entry>> read_pending_rows(const redis::value& reply);
// XRANGE jobs <id> <id>, one per entry id (the job of each pending entry).
std::vector<redis::command> entry_commands(const keys& k, const std::vector<std::string>& entry_ids);

struct delayed_member {
    std::string token;
    unix_ms due = 0;
};
// ZRANGE delayed <start> <start+n-1> WITHSCORES: by due time, a page by rank.
redis::command delayed_page_command(const keys& k, long long start, long long count = scan_page_size);
read_result<std::vector<delayed_member>> read_delayed_page(const redis::value& reply);
// HGETALL delayed:<token>, one per token.
std::vector<redis::command> delayed_item_commands(const keys& k, const std::vector<delayed_member>& members);
// The fields of each item (empty when it was moved meanwhile).
read_result<std::vector<field_list>> read_delayed_items(const std::vector<redis::value>& replies);
// Why a delayed item waits, from its history's last attempt: "retry after
// rate_limited (HTTP 429): …"; without a history, "not_before" (or put back by a worker).
std::string delay_reason(const field_list& item);

// ZADD delayed XX CH <now> <token>: one delayed job due now (retry-now).
redis::command retry_now_command(const keys& k, std::string_view token, unix_ms now);
// Whether the member was there (and now due).
read_result<bool> read_retry_now(const redis::value& reply);

}  // namespace outq::queue::admin
