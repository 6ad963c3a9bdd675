#pragma once
// The snapshotter: every `snapshot_interval_ms` (5 s), one pipeline on the
// control connection for `outq web` (queue/activity.hpp): what this worker's
// metrics counted since its last write, added into the current minute's
// activity bucket the whole fleet shares (HINCRBY), and this worker's snapshot
// (its counts, in-flight deliveries, the limits it runs with), which expires
// when the worker stops writing it. Nothing per job: the counts are read from
// the metrics the writer and the sender keep anyway.
//
// A write that failed is not lost: what it carried is added to the next. One
// whose reply was lost after it landed counts twice (figures for a chart, not
// outcomes). At stop, one last write and the snapshot deleted.
//
// Owns: its timer, the totals it last wrote.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>

#include "context.hpp"
#include "outq/log_throttle.hpp"
#include "outq/metrics.hpp"
#include "outq/queue/activity.hpp"
#include "outq/redis_connection.hpp"

namespace outq::runtime {

class snapshotter {
  public:
    // `now_state`: the worker's counts and deliveries as of now (the limits are filled in here).
    snapshotter(boost::asio::any_io_executor ex, context& ctx, redis::connection& conn, const metrics& stats,
                std::function<queue::activity::worker_snapshot()> now_state);

    boost::asio::awaitable<void> run();
    void stop();
    // One write: false on Redis trouble (what it carried goes with the next).
    boost::asio::awaitable<bool> step();
    // The last write and the snapshot's removal (at stop).
    boost::asio::awaitable<void> finish();

  private:
    context& ctx_;
    redis::connection& conn_;
    const metrics& stats_;
    std::function<queue::activity::worker_snapshot()> now_state_;
    std::vector<queue::activity::account_limits> limits_;
    unix_ms started_;
    queue::activity::totals written_;
    bool stopping_ = false;
    boost::asio::steady_timer timer_;
    log::throttle trouble_log_;
};

}  // namespace outq::runtime
