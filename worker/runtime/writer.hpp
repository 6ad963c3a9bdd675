#pragma once
// The writer: every outcome goes to Redis through here, in batches, one
// completion script call per batch (queue/completion.hpp). A batch is sent
// again, on the writer's own timer and backoff, until its reply says it
// landed, and then gated: the script writes each entry at most once, so a
// reply lost to a timeout is harmless. The only place that counts outcomes, and it counts
// only what was written.
//
// Sent entries are acknowledged a moment after their outcome landed, many
// at once (queue/completion.hpp, deferred acknowledgement): within
// ack_delay() (at most 1 s), with the next batch or alone, and before run()
// returns.
//
// One writer per partition of the queue (a completion script touches one
// partition's keys); `writers` hands each outcome to its entry's.
//
// Owns: its partition's queue of outcomes, the sent entries still to acknowledge, its
// timer and backoff, the counters. Reads the context's stage and scripts.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "context.hpp"
#include "ledger.hpp"
#include "outq/backoff.hpp"
#include "outq/log_throttle.hpp"
#include "outq/metrics.hpp"
#include "outq/redis_connection.hpp"

namespace outq::runtime {

class writer {
  public:
    struct counts {
        std::uint64_t sent = 0, dead = 0, retried = 0, delayed = 0, duplicates = 0;
        std::uint64_t already_done = 0;  // the entry was acknowledged before this write (by another worker)
        std::uint64_t taken_over = 0;    // another worker owns the entry now: not written here
        std::uint64_t unacknowledged =
            0;  // sent (result written), left pending at exit: acknowledged by another worker
    };

    writer(boost::asio::any_io_executor ex, context& ctx, const queue::keys& partition, redis::connection& conn,
           metrics& stats);

    void push(slot s, queue::completion c);
    // Called with the due time of each delayed copy (retry, delay) once written.
    void on_delayed(std::function<void(unix_ms)> hook) { on_delayed_ = std::move(hook); }
    // Until stop() with nothing queued, or the final deadline.
    boost::asio::awaitable<void> run();
    void stop();
    // Terminal stage: outcomes not written by `deadline` are given up (left
    // pending in Redis, taken over by another worker).
    void set_final_deadline(std::chrono::steady_clock::time_point deadline);

    // One batch: true when it landed (or nothing was queued).
    boost::asio::awaitable<bool> step();

    // One XACK and XDEL of the sent entries still pending: true when it landed.
    boost::asio::awaitable<bool> flush_acks();

    const counts& written() const { return counts_; }
    std::size_t queued() const { return queue_.size(); }
    std::size_t acks_pending() const { return acks_.size(); }
    // How long a sent entry may stay pending after its outcome landed: short
    // against the visibility timeout, so that no worker takes it over meanwhile.
    std::chrono::milliseconds ack_delay() const;
    std::chrono::steady_clock::time_point last_ok() const { return last_ok_; }
    // The last outcome write failed (Redis down, a failover): until one lands.
    bool failing() const { return failed_before_; }

  private:
    struct item {
        slot s;
        queue::completion c;
    };
    void give_up_all(const char* why);
    void count(const queue::completion& c);
    void log_sent(const queue::completion& c);

    context& ctx_;
    const queue::keys& keys_;
    redis::connection& conn_;
    metrics& stats_;
    std::deque<item> queue_;
    std::vector<std::string> acks_;  // sent entries written, to acknowledge
    std::chrono::steady_clock::time_point acks_since_{};
    bool waiting_for_acks_ = false;  // run() sleeps until acks_ are due: a push wakes it
    log::throttle ack_log_;
    // The first `unknown_` items of queue_ went out in a write whose reply was
    // lost: an entry of theirs found acknowledged later was that write's doing.
    std::size_t unknown_ = 0;
    // The last write failed (or its reply was lost): the next one is
    // gated (queue/completion.hpp).
    bool failed_before_ = false;
    bool stopping_ = false;
    std::optional<std::chrono::steady_clock::time_point> final_deadline_;
    boost::asio::steady_timer timer_;
    detail::async_event ready_;
    outq::backoff backoff_;
    log::throttle trouble_log_;
    log::throttle already_log_;
    log::throttle lost_log_;
    counts counts_;
    std::chrono::steady_clock::time_point last_ok_ = std::chrono::steady_clock::now();
    std::string labels_;  // reused for metric labels
    std::function<void(unix_ms)> on_delayed_;
    // The "job sent" lines of the current second, and those not logged since the last one.
    std::chrono::steady_clock::time_point sent_log_second_{};
    int sent_logged_ = 0;
    std::uint64_t sent_not_logged_ = 0;
};

// Every partition's writer, as the components that hand over outcomes see
// them: an outcome goes to the writer of its entry's partition. The runtime
// runs each writer's loop; the sums are for the reporter and the probes.
class writers {
  public:
    writers(boost::asio::any_io_executor ex, context& ctx, redis::connection& conn, metrics& stats);

    void push(slot s, queue::completion c) {
        const auto p = static_cast<std::size_t>(c.env.partition);
        parts_[p]->push(std::move(s), std::move(c));
    }
    std::size_t size() const { return parts_.size(); }
    writer& at(std::size_t partition) { return *parts_[partition]; }

    void stop();
    void set_final_deadline(std::chrono::steady_clock::time_point deadline);
    writer::counts written() const;
    std::size_t queued() const;
    std::chrono::steady_clock::time_point last_ok() const;
    bool failing() const;

  private:
    std::vector<std::unique_ptr<writer>> parts_;
};

}  // namespace outq::runtime
