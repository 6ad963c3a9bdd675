#pragma once
// The Redis queue protocol (docs/protocol.md) as pure code: key names, parsing
// of stream replies, and the commands of every state transition. Nothing here
// does I/O, so every transition is unit-tested command by command.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "outq/clock.hpp"
#include "outq/outcome.hpp"
#include "outq/resp.hpp"

namespace outq::queue {

// Format 2 (docs/protocol.md). The group of format 1 was "outq": a worker of
// format 1 never reads this one.
inline constexpr std::string_view group_name = "outq.v2";
inline constexpr std::string_view format_version = "2";

// The keys of one partition of a queue (queue/partitions.hpp): a queue of one
// partition has the tag `{Q}`, partition i of many a tag of its own.
struct keys {
    explicit keys(std::string_view queue_name) : keys(queue_name, queue_name, 0) {}
    keys(std::string_view queue_name, std::string_view tag, int index);
    std::string queue;
    int partition = 0;   // its index among the queue's partitions
    std::string prefix;  // outq:{tag}: — the partition's keys
    std::string format;
    std::string jobs;
    std::string delayed;
    std::string delayed_item_prefix;  // + token → hash of stream fields
    std::string results;
    std::string dead;
    std::string replayed;
    // The queue's control channel, the same for every partition: outq:{Q}:control.
    std::string control;
    std::string result_prefix;  // + job id: the job's marker, then its outcome (JSON)
    std::string result(std::string_view job_id) const { return result_prefix + std::string(job_id); }
    // Keys the whole fleet shares for one provider account, in their own slot:
    // outq:{queue@provider/account}: + window, leases, pause.
    std::string scope(std::string_view provider, std::string_view account) const {
        return "outq:{" + queue + "@" + std::string(provider) + "/" + std::string(account) + "}:";
    }
    // SCAN pattern matching every account pause of the queue.
    std::string pause_pattern() const { return "outq:{" + queue + "@*}:pause"; }
};

// An entry read as a stub (queue/oversized.hpp): too large to transfer, its
// fields cut short; the whole entry stays in Redis.
struct stub_sizes {
    std::size_t job_bytes = 0;    // the job field's length
    std::size_t entry_bytes = 0;  // every field's
};

struct stream_entry {
    std::string id;
    int partition = 0;  // keys::partition of the stream it was read from
    std::vector<std::pair<std::string, std::string>> fields;
    int deliveries = 0;  // times the group delivered it (known for taken-over entries; 0: not asked)
    std::optional<stub_sizes> stub;
    const std::string* field(std::string_view name) const;
};

// XREADGROUP / XRANGE / XAUTOCLAIM reply parsing. False on an unexpected shape.
// The reply is consumed: its strings move into the entries.
bool parse_entries(redis::value& entries, std::vector<stream_entry>& out);
bool parse_xreadgroup(redis::value& reply, std::vector<stream_entry>& out);
bool parse_xautoclaim(redis::value& reply, std::string& next_cursor, std::vector<stream_entry>& out);
// Delivery counts of taken-over entries: one `XPENDING jobs group id id 1` per
// entry, pipelined; the replies fill in `deliveries` (0 when an entry is no
// longer pending). False on an unexpected shape.
void append_delivery_count_commands(const keys& k, const std::vector<stream_entry>& entries,
                                    std::vector<redis::command>& out);
bool parse_delivery_counts(const std::vector<redis::value>& replies, std::vector<stream_entry>& entries);

// A stream entry seen as one delivery of a job, with the state the worker
// carries between attempts in extra fields of the entry.
struct envelope {
    std::string entry_id;
    int partition = 0;  // the queue partition whose stream holds the entry
    std::string job_json;
    bool has_job_field = false;
    int attempts = 0;      // HTTP attempts already made
    int rate_limited = 0;  // of which rate-limited
    std::string history;   // JSON array text; empty when no attempt yet
    std::string replay_of;
    unix_ms enqueued_at = 0;
    unix_ms ambiguous_since = 0;     // an attempt that may have delivered started then: reconcile first
    int lookups = 0;                 // reconciliations of that attempt that could not tell (failed, or not unique)
    int deliveries = 0;              // from stream_entry::deliveries
    std::optional<stub_sizes> stub;  // from stream_entry::stub: job_json is the job's first bytes only
    // The stream entry id the job first had: a job without an `id` keeps it as
    // its id through retries and delays (each of which adds a new entry).
    std::string first_entry;
    // The entry the producer's enqueue created, when this entry is a copy of
    // it (a retry, a delay or a put-back adds a new entry): every delivery of
    // one enqueue shares it, so a copy knows a result sent by another
    // delivery of the same enqueue as its own, not as a duplicate enqueue.
    std::string origin;
};
envelope to_envelope(stream_entry&& entry);
// The entry the job's enqueue created: `origin`, or this entry when it is no copy.
std::string_view enqueue_entry(const envelope& env);

// Appends one attempt to a history JSON array.
std::string append_history(std::string_view history, unix_ms at, int http_status, outcome_class cls,
                           std::string_view error);

enum class claim_verdict { go, done, busy, paused };

struct claim_item {
    std::string job_id;
    std::string entry_id;
    std::string_view scope;  // keys::scope() of the job's provider account (outlives the claim)
    // The account's pause as PTTL would answer it, when the worker knows it
    // (the control channel vouches for it): not read again.
    std::optional<std::int64_t> known_pttl;
    std::string_view origin;  // enqueue_entry() of the delivery, when known (outlives the claim)
};

struct claim_result {
    claim_verdict verdict = claim_verdict::go;
    std::int64_t pause_ms = 0;    // for paused: remaining pause, -1 when it has no end
    bool holds_marker = false;    // this delivery holds the job's `sending` marker (release it when done)
    bool claim_alone = false;     // the batch's MSETNX found a key: claim this job on its own (round 2)
    bool check_owner = false;     // the marker is another entry's: is that entry still pending? (round 3)
    std::string existing_status;  // for done: the status of the result found (sent, dead, cancelled)
    std::string owner_entry;      // for check_owner: the entry whose marker it is
    bool foreign_value = false;   // busy because the result key holds another type (not ours to touch)
    bool own_outcome = false;     // done: the result was sent by this entry or another delivery of its enqueue
    bool pause_read = false;      // round 1 read the account's pause (PTTL), rather than knowing it
    std::int64_t pttl = -2;       // the account's pause, as PTTL answers (-2: none)
};

// Claiming a batch (docs/protocol.md, "The result value"), pipelined:
// round 1 is one MSETNX of every job's `sending` marker — a copy of an id
// already in the batch is not in it: that copy is busy — and one PTTL per
// distinct account pause not known (in order of first appearance). When MSETNX set
// nothing, a key exists for at least one job: round 2 claims each job alone
// with SET … NX GET and reads what was there; a marker of another entry
// whose entry is no longer pending (round 3) is taken over.
void append_claim_commands(const keys& k, const std::vector<claim_item>& items, unix_ms now,
                           std::vector<redis::command>& out);
bool parse_claim_replies(const std::vector<redis::value>& replies, const std::vector<claim_item>& items,
                         std::vector<claim_result>& out);
// Round 2, for each job with claim_alone: SET result:<id> <marker> NX GET.
redis::command claim_alone_command(const keys& k, const claim_item& item, unix_ms now);
// Its reply: nil (claimed), the value that was there, or false on an error.
bool apply_claim_alone_reply(const redis::value& reply, const claim_item& item, claim_result& out);
// Round 3, for each job with check_owner: one script call that takes the
// marker over (reply 1) when it still is `owner_entry`'s and that entry is no
// longer pending in the group — it left its marker behind (deleted by hand) —
// and answers 0 otherwise: a copy in flight (busy).
redis::command take_over_marker_command(const keys& k, const claim_item& item, std::string_view owner_entry,
                                        unix_ms now);
extern const char* const take_over_marker_script;

// The limiter decision for one request of a scope, on Redis' clock
// (`now_override` (ms) replaces it, for tests). One call per request: the
// script computes the earliest time `at` >= now the request may go under the
// sliding window and its pacing, counting every request recorded in the
// window, reservations ahead of now included (sliding_window_reserve in
// rate_limit.hpp is the same math), and
// - when the account is paused, records nothing: wait = the pause's PTTL
//   (-1: until resumed), reason "paused";
// - when at - now <= `horizon`, records the request at `at` under the member
//   `lease_id` (unique per call) and answers go (wait 0) or reserved (wait =
//   at - now): the caller sleeps that long and sends without asking again;
// - otherwise records nothing: wait = at - now, reason "rate" (ask again then).
// With max_in_flight > 0 nothing is reserved ahead (horizon 0), and a go takes
// a lease `lease_id` of `lease_ttl`, or waits 20 ms, reason "concurrency", at
// the cap. horizon 0 is the polling limiter: go or wait and ask again.
// `count` > 1 (without max_in_flight): up to `count` requests recorded in one
// call, each placed after the one before, as many as fit within the horizon,
// under the members lease_id, lease_id#2, ...; the reply is then
// {wait_1, go|reserved, '', wait_2, ...} (just {wait_1, go|reserved} for
// one). One call for a lane's next requests.
redis::command limit_command(std::string_view scope, int requests, std::chrono::milliseconds window, int max_in_flight,
                             std::string_view lease_id, std::chrono::milliseconds lease_ttl,
                             std::optional<std::int64_t> now_override = std::nullopt, int burst = 1,
                             std::chrono::milliseconds horizon = std::chrono::milliseconds(0), int count = 1);
struct limit_decision {
    std::int64_t wait_ms = 0;  // go: 0; reserved: until the reserved time; else until asking again is worth it
    std::string reason;        // go, reserved, paused, rate, concurrency
    std::string pause_reason;  // for paused
    bool reserved = false;     // go or reserved: the permit is taken (recorded); send after wait_ms, do not ask again
    // With count > 1: the further requests reserved in the same call, in
    // order (ms from now each), as many as fit within the horizon.
    std::vector<std::int64_t> more_waits;
};
bool parse_limit_reply(const redis::value& reply, limit_decision& out);
redis::command release_lease_command(std::string_view scope, std::string_view lease_id);

// Pauses a scope for `duration` (extends, never shortens, an existing pause);
// no duration: until resumed. With a `channel`, the script also publishes
// `message` there when the pause changed (set, extended, or made "until
// resumed"), in the same call (queue/control.hpp builds both); a refused
// PUBLISH does not fail the pause. The reply is the pause's PTTL either way.
redis::command pause_command(std::string_view scope, std::optional<std::chrono::milliseconds> duration,
                             std::string_view reason, std::string_view channel = {}, std::string_view message = {});

// The tokens of up to `limit` delayed jobs due at `now` (ZRANGEBYSCORE).
redis::command due_tokens_command(const keys& k, unix_ms now, int limit);
bool parse_due_tokens(const redis::value& reply, std::vector<std::string>& tokens);
// Moves those delayed jobs back into the stream, atomically, each item's key
// declared; the reply is [tokens handled, the next due time left or "-1"].
redis::command move_due_command(const keys& k, const std::vector<std::string>& tokens);
bool parse_move_due(const redis::value& reply, int& moved, std::optional<unix_ms>& next);
// The earliest due time in the delayed set (ZRANGE 0 0 WITHSCORES): one read,
// so an idle worker does not run the move script to find nothing.
redis::command next_due_command(const keys& k);
bool parse_next_due(const redis::value& reply, std::optional<unix_ms>& out);

// The outcome of one delivery, ready to be written.
struct completion {
    enum class kind {
        sent,       // result + ack
        dead,       // dead letter + result + ack
        retry,      // back into the delayed set + ack (attempt counters advanced)
        delay,      // not_before in the future, or a twin in flight: back into the delayed set, no attempt used
        duplicate,  // a result already exists: ack only
    };
    kind what = kind::sent;
    envelope env;
    std::string job_id;
    std::string provider;
    std::string account;
    std::string meta_json;
    std::string traceparent;  // the job's W3C trace context, kept in the result and dead letter
    int http_status = 0;
    std::string provider_message_id;
    std::string request_id;
    std::string response_excerpt;
    std::string dead_class;
    std::string error;
    std::string existing_status;  // duplicate: the status of the result it met (no event for cancelled)
    // duplicate: the result met is this very entry's own (written, its
    // acknowledgement lost with its worker): acknowledged, no event.
    bool own_entry = false;
    unix_ms due_at = 0;        // retry / delay
    unix_ms completed_at = 0;  // sent / dead
    bool release_marker = true;
    // sent, by a provider that reconciles: its provider message id is indexed
    // to its job under this account scope (queue/message_index.hpp)
    std::string index_scope;
    std::string lease_scope;  // a concurrency lease to give back, when one was taken
    std::string lease_id;
};

struct write_settings {
    std::int64_t result_ttl_seconds = 7 * 24 * 3600;
    std::int64_t results_stream_maxlen = 100000;
    std::int64_t dead_maxlen = 0;
};

// The completion of a batch is one script call: queue/completion.hpp.

// Lua bodies, exposed for tests and the CLI.
extern const char* const move_due_script;
extern const char* const replay_script;
extern const char* const limit_script;
extern const char* const pause_script;

}  // namespace outq::queue
