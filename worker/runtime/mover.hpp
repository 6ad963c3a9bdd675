#pragma once
// The mover: moves delayed jobs (retries, not_before, put-backs) whose time
// has come from the delayed set back into the stream, 500 at a time. It
// sleeps until the earliest due time it knows of, and at most `mover_poll_ms`
// (1 s): a round is one read of the earliest due time (ZRANGE 0 0), and the
// move script only when something is due, so an idle worker costs Redis one
// call per poll. A delayed copy this worker writes, and a `due` message on
// the control channel (`outq resume`, `outq job retry-now`), wake it earlier
// (expect()).
//
// One mover per partition of the queue.
//
// Owns: its partition's delayed set, its timer, its backoff and the earliest
// due time it knows.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <optional>

#include "context.hpp"
#include "outq/backoff.hpp"
#include "outq/clock.hpp"
#include "outq/log_throttle.hpp"
#include "outq/redis_connection.hpp"

namespace outq::runtime {

class mover {
  public:
    mover(boost::asio::any_io_executor ex, context& ctx, const queue::keys& partition, redis::connection& conn);

    boost::asio::awaitable<void> run();
    void stop();
    // A delayed copy due at `due` was written: look again then, if that is sooner.
    void expect(unix_ms due);
    // One round: the number moved, or -1 on Redis trouble.
    boost::asio::awaitable<int> step();
    // The earliest due time the last round saw (none: the delayed set was empty).
    std::optional<unix_ms> next_due() const { return next_due_; }

  private:
    context& ctx_;
    const queue::keys& keys_;
    redis::connection& conn_;
    bool stopping_ = false;
    std::optional<unix_ms> next_due_;
    boost::asio::steady_timer timer_;
    outq::backoff backoff_;
    log::throttle trouble_log_;
};

}  // namespace outq::runtime
