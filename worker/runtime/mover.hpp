#pragma once
// The mover: moves delayed jobs (retries, not_before, put-backs) whose time
// has come from the delayed set back into the stream, 500 at a time, every
// 200 ms, and at once again while a round was full.
//
// Owns: its timer and backoff.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "context.hpp"
#include "outq/backoff.hpp"
#include "outq/log_throttle.hpp"
#include "outq/redis_connection.hpp"

namespace outq::runtime {

class mover {
  public:
    mover(boost::asio::any_io_executor ex, context& ctx, redis::connection& conn);

    boost::asio::awaitable<void> run();
    void stop();
    // One round: the number moved, or -1 on Redis trouble.
    boost::asio::awaitable<int> step();

  private:
    context& ctx_;
    redis::connection& conn_;
    bool stopping_ = false;
    boost::asio::steady_timer timer_;
    outq::backoff backoff_;
    log::throttle trouble_log_;
};

}  // namespace outq::runtime
