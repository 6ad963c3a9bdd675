#pragma once
// The dispatcher: the scheduler of requests. It keeps a lane per provider
// account and decides when a delivery that passed admission is sent and with
// which others. Concurrency is shared between the lanes with ready work by
// policy/lanes.hpp (round robin, fair share while others wait, a reserve that
// untrusted lanes never take); a delivery its lane cannot start waits in the
// lane's queue without holding a concurrency slot, and what a full lane
// cannot keep is parked in the delayed set (no attempt used). Adapters that
// batch (Mews) gather the deliveries of one lane until the batch is full or
// its wait ends; the batch is then one request of that lane.
//
// A rate-limited lane reserves: one limiter call per request records it in
// the fleet's shared window at the time it may go (docs/protocol.md), and the
// lane sleeps on its one timer until then; a request whose time is beyond the
// horizon, or a paused account, parks the lane's queue in the delayed set due
// at that time, spaced by the rate, in the order it came. No polling.
//
// Owns: the lanes (their queues, batches being gathered, reservations and
// their times, their timers, requests in flight and their start times,
// health), the round-robin cursor.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "context.hpp"
#include "delivery.hpp"
#include "outq/log_throttle.hpp"
#include "outq/metrics.hpp"
#include "outq/policy/circuit.hpp"
#include "outq/policy/lanes.hpp"
#include "outq/queue/control.hpp"
#include "outq/redis_connection.hpp"
#include "sender.hpp"
#include "task_group.hpp"
#include "writer.hpp"

namespace outq::runtime {

class dispatcher {
  public:
    dispatcher(boost::asio::any_io_executor ex, context& ctx, sender& s, writers& out, redis::connection& limiter,
               task_group& sends, metrics& stats);

    // A delivery that passed admission, to its lane.
    void dispatch(delivery d);
    // At the start of and during a drain: batches being gathered are closed,
    // what may start starts, and every other delivery a lane keeps goes back
    // (no byte of it went out).
    void flush_all();

    // What the control channel heard (another pod's 429, an operator's pause
    // or resume, a circuit change): the lane concerned parks or wakes.
    void on_control(const queue::control_message& m);
    // After the control channel (re)subscribed, messages may have been
    // missed: blocks learnt from pauses are dropped, so each lane asks Redis
    // again (its next claim or reservation reads the pause key).
    void resync();

    // For tests and the reporter: deliveries in lanes' queues, and in flight.
    int queued() const { return queued_; }
    int in_flight() const { return in_flight_; }

  private:
    using clock = std::chrono::steady_clock;
    struct lane {
        const account_settings* account = nullptr;
        std::deque<std::vector<delivery>> ready;  // requests ready to start, oldest first
        int ready_count = 0;                      // deliveries in `ready`
        std::vector<delivery> gathering;          // a batch being gathered (batching adapters)
        int batch_max = 1;                        // the adapter's most deliveries per request
        int batch_limit = 0;  // smaller batches after a too heavy one (policy/batching.hpp); 0: none
        std::unordered_set<std::string> refused;  // batch keys the provider refused alone: sent alone
        std::unique_ptr<boost::asio::steady_timer> batch_timer;
        int in_flight = 0;                         // deliveries in requests out
        std::multiset<clock::time_point> started;  // start times of requests out
        bool trusted = false;
        int window = 1;          // slow start while untrusted (policy::window_after)
        std::string_view scope;  // the account's key prefix (interned)
        std::string provider;
        // Rate-limited lanes: the first `reserved` requests of `ready` are
        // recorded in the shared window, each may go at its `go_at`.
        bool limited = false;
        bool reserving = false;  // a limiter call is out
        int reserved = 0;
        std::deque<clock::time_point> go_at;
        std::unique_ptr<boost::asio::steady_timer> timer;  // the next go_at, or the next limiter try
        unix_ms blocked_until = 0;                         // paused or beyond the horizon: arrivals park until then
        bool blocked_by_pause = false;                     // the block came from a pause (dropped on resume or resync)
        std::int64_t park_spacing = 1;
        unsigned park_index = 0;
        unsigned overflow_index = 0;  // a rate-limited lane over its bound: arrivals parked so far
        std::vector<std::vector<delivery>> parked_scratch;  // reused by park_lane
        // The account's circuit breaker as this worker knows it; `probing`
        // while this worker takes the probe lease or sends the probe.
        policy::circuit_view circuit;
        bool probing = false;
    };

    lane& lane_of(const account_settings* account, std::string_view scope, std::string_view provider);
    lane* find_lane(std::string_view provider, std::string_view account);
    void close_batch(lane& l);
    int reservable(const lane& l) const;  // places in the limit the lane may hold now
    void enqueue(lane& l, std::vector<delivery> group);
    // Keeps the deliveries waiting in lanes within the buffer: parks the
    // newest delivery of the longest lane.
    void keep_within_buffer();
    void park(delivery&& d, unix_ms due);
    void pump();
    void start(lane& l, std::vector<delivery> items, bool permitted, bool probe = false);
    boost::asio::awaitable<void> run_send(lane& l, std::vector<delivery> items, bool permitted, bool probe);
    // Whether the lane's circuit lets its next request go now; parks the lane
    // while the circuit is open, and starts the probe when it is half-open.
    bool circuit_lets(lane& l, unix_ms now);
    boost::asio::awaitable<void> probe(lane& l);
    boost::asio::awaitable<void> record_circuit(lane& l, const send_report& report);
    void reserve_more(lane& l);
    boost::asio::awaitable<void> reserve(lane& l);
    // Parks the lane's unreserved requests, due from `due` on, `spacing` ms apart.
    void park_lane(lane& l, unix_ms due, std::int64_t spacing, bool reserved_too = false);
    void arm(lane& l, clock::time_point at);
    bool head_may_go(const lane& l, clock::time_point now) const;
    // How long the lane's oldest request has been out (none out: nullopt).
    static std::optional<std::chrono::milliseconds> oldest_in_flight(const lane& l, clock::time_point now);
    // Requests a rate-limited lane keeps in memory: what it may send within the horizon.
    int limited_bound(const lane& l) const;
    int waiting_in(const lane& l) const { return l.ready_count + static_cast<int>(l.gathering.size()); }

    boost::asio::any_io_executor executor_;
    context& ctx_;
    sender& sender_;
    writers& out_;
    redis::connection& limiter_;
    task_group& sends_;
    policy::lane_settings settings_;
    std::vector<std::unique_ptr<lane>> lanes_;
    std::unordered_map<const account_settings*, lane*> by_account_;
    std::vector<policy::lane_view> views_;  // reused by pump
    std::size_t cursor_ = 0;
    int queued_ = 0, in_flight_ = 0;
    unsigned park_seq_ = 0;
    std::uint64_t reserve_seq_ = 0;
    metrics& stats_;
    log::throttle limiter_log_, circuit_log_;
};

}  // namespace outq::runtime
