#pragma once
// The depth sampler: every 15 s, one pipeline of five reads on the control
// connection (queue::depth_commands: XLEN jobs, XPENDING summary, ZCARD
// delayed, XLEN dead, XRANGE jobs - + COUNT 1) for the queue gauges of
// /metrics, and the round trip's time. An idle worker's Redis budget (2 calls
// a second besides its blocking reads) pays 5 calls per 15 s for it. Its
// rounds also tell the probes whether the control connection answers.
//
// After a failed round it tries again sooner (backoff from 0.5 s up to 15 s).
//
// Owns: its timer and backoff, the last depth read and when the rounds last ended.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <optional>

#include "context.hpp"
#include "outq/backoff.hpp"
#include "outq/log_throttle.hpp"
#include "outq/metrics.hpp"
#include "outq/queue/depth.hpp"
#include "outq/redis_connection.hpp"

namespace outq::runtime {

class depth_sampler {
  public:
    using clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds interval{15};

    depth_sampler(boost::asio::any_io_executor ex, context& ctx, redis::connection& conn, metrics& stats);

    boost::asio::awaitable<void> run();
    void stop();
    // One round: the reads, the gauges set. False on Redis trouble.
    boost::asio::awaitable<bool> step();
    // Sets the sample's age gauge (the depth itself is set by step()).
    void refresh_ages(clock::time_point now);

    const std::optional<queue::depth>& last() const { return last_; }
    std::optional<clock::time_point> last_ok() const { return last_ok_; }
    std::optional<clock::time_point> last_round() const { return last_round_; }
    bool failing() const { return failing_; }

  private:
    context& ctx_;
    redis::connection& conn_;
    metrics& stats_;
    std::string queue_label_;
    bool stopping_ = false;
    bool failing_ = false;
    std::optional<queue::depth> last_;
    std::optional<clock::time_point> last_ok_, last_round_;
    boost::asio::steady_timer timer_;
    outq::backoff backoff_;
    log::throttle trouble_log_;
};

}  // namespace outq::runtime
