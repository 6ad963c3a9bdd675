#pragma once
// The reclaimer: takes over entries that stayed pending with a stalled or
// dead worker for longer than the visibility timeout (XAUTOCLAIM), with their
// delivery counts (the poison guard reads them), skipping entries this worker
// still holds itself; and, every 20 rounds, removes departed consumers (idle
// for long, nothing pending) from the group.
//
// One reclaimer per partition of the queue.
//
// Owns: its partition's takeovers, its timer, backoff and round counter.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "admission.hpp"
#include "context.hpp"
#include "ledger.hpp"
#include "outq/backoff.hpp"
#include "outq/log_throttle.hpp"
#include "outq/redis_connection.hpp"

namespace outq::runtime {

class reclaimer {
  public:
    reclaimer(boost::asio::any_io_executor ex, context& ctx, const queue::keys& partition, redis::connection& conn,
              ledger& held, admission& next);

    boost::asio::awaitable<void> run();
    void stop();
    // One pass over the pending list: false on Redis trouble.
    boost::asio::awaitable<bool> step();
    std::uint64_t reclaimed() const { return reclaimed_; }

  private:
    boost::asio::awaitable<void> forget_departed_consumers();

    context& ctx_;
    const queue::keys& keys_;
    redis::connection& conn_;
    ledger& held_;
    admission& next_;
    bool stopping_ = false;
    std::uint64_t round_ = 0, reclaimed_ = 0;
    boost::asio::steady_timer timer_;
    outq::backoff backoff_;
    log::throttle trouble_log_;
};

}  // namespace outq::runtime
