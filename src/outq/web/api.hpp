#pragma once
// The JSON API of `outq web`, as pure functions: query strings in, filters
// and JSON documents out. The server (worker/web_server.cpp) reads Redis with
// the queue layer's commands and hands the values here.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outq/clock.hpp"
#include "outq/queue/activity.hpp"
#include "outq/queue/admin.hpp"

namespace outq::web {

// %XX decoded (and, in a query string, + as a space); a malformed escape is kept as typed.
std::string url_decode(std::string_view s, bool query = false);

// a=1&b=x%20y → {a: 1, b: "x y"} (+ is a space); a malformed escape is kept as typed.
std::map<std::string, std::string> parse_query(std::string_view query);

// GET /api/dead?provider=&account=&class=&status=&q=&since=&until=&before=&limit=
// (since and until: RFC 3339 times, of the letter's failed_at)
struct dead_query {
    std::string provider, account, error_class, status, text;
    std::optional<unix_ms> since, until;
    std::string before;  // the page of letters older than this entry id (empty: the newest)
    int limit = 50;      // 1..500
    bool filtered() const {
        return !provider.empty() || !account.empty() || !error_class.empty() || !status.empty() || !text.empty() ||
               since || until;
    }
};
// None, with `error` set, when a value is out of range (a status that is no pattern, a limit not 1..500).
std::optional<dead_query> read_dead_query(const std::map<std::string, std::string>& params, std::string& error);
bool matches(const dead_query& q, const queue::admin::dead_letter& d);

struct dead_page {
    std::vector<const queue::admin::dead_letter*> letters;  // newest first
    std::size_t scanned = 0;                                // letters read to find them
    std::size_t total = 0;                                  // letters in the dead streams
    bool more = false;  // more match after these (next page: before = the last one's entry id)
};
std::string dead_page_json(const dead_page& page);
// One letter, every field (the job and its history as JSON when they parse).
std::string dead_letter_json(const queue::admin::dead_letter& d);

struct overview {
    std::string queue;
    int partitions = 1;
    queue::admin::queue_stats stats;
    std::optional<unix_ms> oldest_dead_at;
    std::int64_t consumers_alive = 0;  // consumers that read within the last 30 s (workers running now)
    unix_ms now = 0;
    // From the workers' writes (queue/activity.hpp): the last hour per minute, oldest first, and each
    // worker's snapshot.
    std::vector<queue::activity::queue_minute> activity;
    std::vector<queue::activity::worker_snapshot> workers;
};
std::string overview_json(const overview& o);

// GET /api/accounts: each account with state (a window, a pause, a circuit),
// the configured ones without any (`configured`: provider/account names), and
// those the workers counted jobs of; with what the workers wrote: the limits
// they run with, the last hour's outcomes and the latency of the exchanges of
// the last `latency_minutes`.
struct fleet_figures {
    std::map<std::string, queue::activity::account_figures, std::less<>> accounts;
    std::vector<queue::activity::worker_snapshot> workers;
    int latency_minutes = 15;
};
std::string accounts_json(const std::vector<queue::admin::scope_state>& scopes,
                          const std::vector<std::string>& configured, unix_ms now, const fleet_figures& fleet = {});

// GET /api/job/<id>: where the job's result is and what it says (null: none yet).
std::string job_json(std::string_view id, int partition, const std::optional<std::string>& result_value);

// {"error": "..."}
std::string error_json(std::string_view message);

}  // namespace outq::web
