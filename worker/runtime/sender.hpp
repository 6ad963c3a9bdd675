#pragma once
// The sender: one request for a group of deliveries of one account (one
// delivery unless the adapter batches): ownership check, rate-limit permit,
// reconciliation of an ambiguous earlier attempt, token, the exchange, the
// adapter's classification, the fleet-wide holds the answer calls for, and
// each job's completion handed to the writer. The decisions are the pure
// functions of policy/sending.hpp; this class only does what they say.
//
// Owns: nothing that outlives a send but its log throttles and the lease
// sequence. Reads the ledger state of its deliveries' slots.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <string>
#include <vector>

#include "context.hpp"
#include "delivery.hpp"
#include "heartbeat.hpp"
#include "outq/http_client.hpp"
#include "outq/log_throttle.hpp"
#include "outq/metrics.hpp"
#include "outq/policy/circuit.hpp"
#include "outq/redis_connection.hpp"
#include "outq/token_cache.hpp"
#include "writer.hpp"

namespace outq::runtime {

// What a send came to, for its lane's health (policy/lanes.hpp) and the
// account's circuit breaker (policy/circuit.hpp).
struct send_report {
    bool probe = false;      // in: the half-open circuit's one probe request
    bool requested = false;  // a request was made and ended (answered or failed)
    bool failed = false;     // connect failure, timeout, reset, 5xx (a circuit failure)
    policy::circuit_signal signal = policy::circuit_signal::neutral;
    std::string reason;       // for a failure: what it was (the circuit's reason)
    int batch = 0;            // deliveries in the request
    bool too_heavy = false;   // the provider found it too heavy: it goes again as two halves
    std::string refused_key;  // a request of one the provider refused: its batch key (adapter::batch_key)
};

class sender {
  public:
    using spawn_fn = std::function<void(std::vector<delivery>)>;  // sends a group in a task of its own

    sender(boost::asio::any_io_executor ex, context& ctx, http_client& http, token_cache& tokens,
           redis::connection& limiter, writers& out, heartbeat& beat, metrics& stats);
    void set_spawn(spawn_fn spawn) { spawn_ = std::move(spawn); }

    // `permitted`: the lane reserved this request's place in the rate limit
    // already (its time has come); otherwise the permit is asked here.
    boost::asio::awaitable<void> send(std::vector<delivery> items, send_report* report = nullptr,
                                      bool permitted = false);

  private:
    // `reserve`: take a place ahead in the window and wait for its time in
    // memory (a reconciliation's pages and the send after them: put back
    // halfway, a lookup would start again and never end), unless the account
    // caps requests in flight (no places ahead then).
    boost::asio::awaitable<bool> wait_for_permit(std::vector<delivery>& items, std::string& lease_id,
                                                 bool reserve = false);
    // Waits `wait` on `timer` with `items` counted as waiting for a permit.
    boost::asio::awaitable<void> hold(std::vector<delivery>& items, boost::asio::steady_timer& timer,
                                      std::chrono::milliseconds wait);
    boost::asio::awaitable<bool> still_ours(std::vector<delivery>& items);
    boost::asio::awaitable<void> release_lease(std::string_view scope, std::string& lease_id);
    boost::asio::awaitable<void> pause_scope(const delivery& d, std::optional<std::chrono::milliseconds> duration,
                                             const std::string& reason);
    // Looks up the ambiguous deliveries of `items` (those of one key in one
    // walk); those found or undecided are finished, the rest stay in `items`
    // to be sent. `asked`: a lookup request went out. False when the items
    // were put back (stopping while waiting for a permit).
    boost::asio::awaitable<bool> reconcile(std::vector<delivery>& items, std::string& lease_id, bool& asked);
    // `jitter`: the retry backoff's random draw; the jobs of one request share
    // one, so that those to retry come back together (one batch, one lookup).
    void finish(delivery&& d, send_outcome outcome, unix_ms started, std::string lease_id, bool counts_attempt,
                double jitter = -1);
    void drop_lost(std::vector<delivery>& items);

    boost::asio::any_io_executor executor_;
    context& ctx_;
    http_client& http_;
    token_cache& tokens_;
    redis::connection& limiter_;
    writers& out_;
    heartbeat& beat_;
    metrics& stats_;
    std::string labels_;  // reused for metric labels
    spawn_fn spawn_;
    std::uint64_t lease_seq_ = 0;
    int waiting_ = 0;  // jobs waiting for a permit in memory
    log::throttle limiter_log_, lost_log_, verify_log_;
};

}  // namespace outq::runtime
