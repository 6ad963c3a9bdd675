#pragma once
// The fetcher: reads new entries with a blocking XREADGROUP sized to the free
// concurrency, and hands them to admission. On stop, a read that is blocked
// is ended with CLIENT UNBLOCK from the control connection (cancelling the
// socket would not stop Redis from delivering entries into this consumer's
// pending list); whatever that read returns still goes through admission,
// which puts it back.
//
// Owns: the fetch connection's reads, its timer and backoff.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "admission.hpp"
#include "context.hpp"
#include "ledger.hpp"
#include "outq/backoff.hpp"
#include "outq/log_throttle.hpp"
#include "outq/redis_connection.hpp"
#include "task_group.hpp"

namespace outq::runtime {

class fetcher {
  public:
    fetcher(boost::asio::any_io_executor ex, context& ctx, redis::connection& fetch, redis::connection& control,
            ledger& held, admission& next, task_group& tasks);

    boost::asio::awaitable<void> run();
    void stop();
    // One read and its admission: false on Redis trouble (the caller backs off).
    boost::asio::awaitable<bool> step();
    std::chrono::steady_clock::time_point last_ok() const { return last_ok_; }
    // The last read failed (Redis unreachable, no primary): until one completes.
    bool failing() const { return failing_; }

  private:
    int room() const;
    context& ctx_;
    redis::connection& fetch_;
    redis::connection& control_;
    ledger& held_;
    admission& next_;
    task_group& tasks_;
    bool stopping_ = false;
    bool reading_ = false;
    boost::asio::steady_timer timer_;
    outq::backoff backoff_;
    log::throttle trouble_log_;
    std::chrono::steady_clock::time_point last_ok_ = std::chrono::steady_clock::now();
    bool failing_ = false;
};

}  // namespace outq::runtime
