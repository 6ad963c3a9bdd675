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
// Owns: the lanes (their queues, batches being gathered and their timers,
// requests in flight and their start times, health), the round-robin cursor.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "context.hpp"
#include "delivery.hpp"
#include "outq/policy/lanes.hpp"
#include "sender.hpp"
#include "task_group.hpp"
#include "writer.hpp"

namespace outq::runtime {

class dispatcher {
  public:
    dispatcher(boost::asio::any_io_executor ex, context& ctx, sender& s, writer& out, task_group& sends);

    // A delivery that passed admission, to its lane.
    void dispatch(delivery d);
    // At the start of and during a drain: batches being gathered are closed,
    // what may start starts, and every other delivery a lane keeps goes back
    // (no byte of it went out).
    void flush_all();

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
        std::unique_ptr<boost::asio::steady_timer> batch_timer;
        int in_flight = 0;                   // deliveries in requests out
        std::multiset<clock::time_point> started;  // start times of requests out
        bool trusted = false;
    };

    lane& lane_of(const account_settings* account);
    void close_batch(lane& l);
    void enqueue(lane& l, std::vector<delivery> group);
    // Keeps the deliveries waiting in lanes within the buffer: parks the
    // newest delivery of the longest lane.
    void keep_within_buffer();
    void park(delivery&& d, unix_ms due);
    void pump();
    void start(lane& l, std::vector<delivery> items);
    boost::asio::awaitable<void> run_send(lane& l, std::vector<delivery> items);
    int waiting_in(const lane& l) const { return l.ready_count + static_cast<int>(l.gathering.size()); }

    boost::asio::any_io_executor executor_;
    context& ctx_;
    sender& sender_;
    writer& out_;
    task_group& sends_;
    policy::lane_settings settings_;
    std::vector<std::unique_ptr<lane>> lanes_;
    std::unordered_map<const account_settings*, lane*> by_account_;
    std::vector<policy::lane_view> views_;  // reused by pump
    std::size_t cursor_ = 0;
    int queued_ = 0, in_flight_ = 0;
    unsigned park_seq_ = 0;
};

}  // namespace outq::runtime
