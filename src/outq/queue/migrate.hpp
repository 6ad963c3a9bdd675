#pragma once
// `outq migrate`: the in-place upgrade of a format 1 queue to format 2
// (docs/protocol.md, "Upgrading from format 1"). The Redis commands of each
// step and the reading of their replies into plain structs; pure, like
// admin.hpp: the CLI (worker/cli.cpp) sends them and reports.
//
// The steps, in the order the CLI runs them; each can be run again after a
// failure at any point (a queue left in format `migrating` is resumed):
//   1. the queue's state: GET format, XINFO GROUPS jobs — already format 2,
//      a new queue (SET format 2), another format (refused), or migrate;
//   2. XINFO CONSUMERS jobs outq — refused while a format 1 consumer was
//      active in the last 60 s (unless forced, or the group is fenced already);
//   3. SET format migrating — format 2 workers refuse it;
//   4. the groups: the entries a format 1 worker acknowledged but did not
//      delete are deleted (XPENDING and XRANGE pages, XDEL), then one
//      transaction creates outq.v2 at 0 and fences outq (a format 1 worker
//      started from now on reads and claims nothing);
//   5. each result hash becomes its JSON value with the same remaining TTL;
//   6. the in-flight markers are deleted;
//   7. each account's pause and window are copied to the account keys and the
//      format 1 limit keys deleted (leases are dropped);
//   8. SET format 2.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "outq/queue/admin.hpp"
#include "outq/queue_protocol.hpp"
#include "outq/resp.hpp"

namespace outq::queue::migrate {

using admin::field_list;
using admin::read_result;

// The value of the format key while a migration is under way (or was interrupted).
inline constexpr std::string_view migrating_value = "migrating";
// The largest id a stream can have: the fenced group outq is created there, so
// `XREADGROUP … >` never finds an entry after it and nothing is pending in it.
inline constexpr std::string_view fence_id = "18446744073709551615-18446744073709551615";
// A format 1 consumer idle for less than this may belong to a running worker.
inline constexpr std::int64_t active_within_ms = 60000;
// SCAN's COUNT, and the size of XPENDING and XRANGE pages.
inline constexpr long long scan_count = 1000;
inline constexpr long long page_size = 1000;

// A SCAN MATCH pattern matching exactly `literal` (glob characters escaped).
std::string glob_escape(std::string_view literal);
// outq:{Q}:result:*, outq:{Q}:inflight:*, outq:{Q}:limit:* (the queue name escaped).
std::string v1_result_pattern(const keys& k);
std::string v1_inflight_pattern(const keys& k);
std::string v1_limit_pattern(const keys& k);

// --- 1. the queue's state -----------------------------------------------------
// GET format, XINFO GROUPS jobs.
std::vector<redis::command> state_commands(const keys& k);

struct group_state {
    std::string last_delivered;  // last-delivered-id
    std::int64_t pending = 0;
    std::int64_t consumers = 0;
    // Created by a migration at the fence id: its consumers can take nothing.
    bool fenced() const { return last_delivered == fence_id; }
};
struct queue_state {
    std::optional<std::string> format;  // nullopt: no format key
    bool stream = false;                // the jobs stream exists
    std::optional<group_state> v1;      // the format 1 group outq
    bool v2 = false;                    // the format 2 group outq.v2 exists
};
read_result<queue_state> read_state(const std::vector<redis::value>& replies);

struct decision {
    enum class kind {
        already,    // format 2: nothing to do
        new_queue,  // no format key and no format 1 group: SET format 2 and done
        migrate,    // no format key and a format 1 group, or `migrating`: migrate (or resume)
        refuse,     // another format
    };
    kind what = kind::refuse;
    std::string message;  // for already and refuse
};
decision decide(const keys& k, const queue_state& s);

// --- 2. no format 1 worker may be running ------------------------------------
// XINFO CONSUMERS jobs outq.
redis::command consumers_command(const keys& k);
struct consumer {
    std::string name;
    std::int64_t pending = 0;
    std::int64_t idle_ms = 0;
};
// The consumers of outq; none when the group or the stream does not exist.
read_result<std::vector<consumer>> read_consumers(const redis::value& reply);
// Those idle for less than `within_ms`.
std::vector<consumer> active_consumers(const std::vector<consumer>& all, std::int64_t within_ms = active_within_ms);
// The refusal naming them.
std::string active_refusal(const keys& k, const std::vector<consumer>& active);

// --- 3. and 8. the format key --------------------------------------------------
// SET format <value>: `migrating` at the start, `2` at the end (read with admin::read_ok).
redis::command set_format_command(const keys& k, std::string_view value);

// --- 4. the groups ---------------------------------------------------------------
// XPENDING jobs outq - + n, then from the entry after `after`: every entry
// outq's consumers hold (format 1 will never finish them: format 2 sends them).
redis::command pending_page_command(const keys& k, std::string_view after, long long count = page_size);
// The pending ids of one page (oldest first); none when the group is gone (NOGROUP).
read_result<std::vector<std::string>> read_pending_page(const redis::value& reply);
// XRANGE jobs - <last delivered> COUNT n, then from the entry after `after`:
// the entries outq has delivered that are still in the stream.
redis::command delivered_page_command(const keys& k, std::string_view after, std::string_view last_delivered,
                                      long long count = page_size);
// The entry ids of one page (oldest first).
read_result<std::vector<std::string>> read_entry_ids(const redis::value& reply);
// Of the delivered entries of a page, those not pending: a format 1 worker
// acknowledged them (they are finished) but did not delete them.
std::vector<std::string> finished_entries(const std::vector<std::string>& delivered,
                                          const std::unordered_set<std::string>& pending);
// XDEL jobs <ids…> (read with read_count).
redis::command delete_entries_command(const keys& k, const std::vector<std::string>& ids);
// One transaction: MULTI, [XGROUP CREATE jobs outq.v2 0 MKSTREAM], XGROUP
// DESTROY jobs outq, XGROUP CREATE jobs outq <fence_id> MKSTREAM, EXEC. A
// format 1 worker can never find outq missing (and create it at 0).
std::vector<redis::command> switch_groups_commands(const keys& k, bool create_v2);
// OK when the transaction ran and every command in it did (outq.v2 existing
// already is fine); else the first error.
read_result<bool> read_switch_groups(const std::vector<redis::value>& replies, bool create_v2);

// --- SCAN ---------------------------------------------------------------------------
// SCAN <cursor> MATCH <pattern> COUNT 1000; the first cursor is "0".
redis::command scan_command(std::string_view cursor, std::string_view pattern);
struct scan_page {
    std::string cursor;  // "0": the scan is complete
    std::vector<std::string> keys;
};
read_result<scan_page> read_scan(const redis::value& reply);

// --- 5. results ----------------------------------------------------------------------
// TYPE of each key.
std::vector<redis::command> type_commands(const std::vector<std::string>& keys);
// "hash", "string", "none" (expired meanwhile)… one per key.
read_result<std::vector<std::string>> read_types(const std::vector<redis::value>& replies);
// HGETALL and PTTL of each key (the hashes among the TYPE replies).
std::vector<redis::command> hash_read_commands(const std::vector<std::string>& keys);
struct v1_result {
    std::string key;
    field_list fields;       // empty: gone meanwhile
    std::int64_t pttl = -2;  // -1: no TTL
    // Still there and not about to expire.
    bool convertible() const { return !fields.empty() && (pttl == -1 || pttl > 0); }
};
read_result<std::vector<v1_result>> read_hashes(const std::vector<std::string>& keys,
                                                const std::vector<redis::value>& replies);
// A format 1 result hash as its format 2 value: the members of outcome_json
// (result.cpp), in its order and with its types — status first; attempts,
// http_status, enqueued_at and completed_at as numbers (a field that is not a
// whole number stays a string); meta embedded when it is JSON (else a
// string); dead_entry last, where the completion script appends it; every
// string made valid UTF-8 — then any other field as a string. A hash without
// a status (not one a worker wrote) gets "unknown": it is still a result, so a
// copy of its job is not sent (format 1 skipped any job with a result hash).
std::string result_json(const field_list& fields);
// SET <key> <json> [PX <pttl>] for each convertible hash (the others are skipped).
std::vector<redis::command> convert_commands(const std::vector<v1_result>& hashes);
// How many replies are OK; the first error otherwise.
read_result<std::int64_t> read_oks(const std::vector<redis::value>& replies, std::string_view command_name);

// --- 6. in-flight markers ---------------------------------------------------------
// DEL <keys…>.
redis::command delete_keys_command(const std::vector<std::string>& keys);
// An integer reply (DEL, XDEL).
read_result<std::int64_t> read_count(const redis::value& reply, std::string_view command_name);

// --- 7. accounts --------------------------------------------------------------------
struct v1_scope {
    std::string provider;
    std::string account;
    auto operator<=>(const v1_scope&) const = default;
};
// outq:{Q}:limit:<provider>:<account>:<window|leases|pause> → its provider
// and account (provider names have no ':', account names may); nullopt for
// another key.
std::optional<v1_scope> parse_limit_key(const keys& k, std::string_view key);
// GET and PTTL of the format 1 pause, ZRANGE window 0 -1 WITHSCORES and PTTL of the window.
std::vector<redis::command> scope_read_commands(const keys& k, const v1_scope& s);
struct scope_snapshot {
    v1_scope scope;
    std::optional<std::string> pause;                         // the reason; nullopt: not paused
    std::int64_t pause_pttl = -2;                             // -1: until resumed
    std::vector<std::pair<std::string, std::string>> window;  // member, score
    std::int64_t window_pttl = -2;
    bool moves_pause() const { return pause && (pause_pttl == -1 || pause_pttl > 0); }
    bool moves_window() const { return !window.empty() && (window_pttl == -1 || window_pttl > 0); }
};
read_result<scope_snapshot> read_scope(const v1_scope& s, const std::vector<redis::value>& replies);
// SET <A>pause <reason> [PX <pttl>]; ZADD <A>window <score member…> and
// PEXPIRE <A>window <pttl> (read with admin::first_error). Copying again is
// harmless: a run that stopped before the format 1 keys were deleted copies
// them again.
std::vector<redis::command> scope_copy_commands(const keys& k, const scope_snapshot& s);
// DEL of the three format 1 keys, once their copies landed.
redis::command scope_delete_command(const keys& k, const v1_scope& s);

}  // namespace outq::queue::migrate
