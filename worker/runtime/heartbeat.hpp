#pragma once
// The heartbeat: keeps the visibility of every delivery this worker holds
// fresh (every visibility_timeout/3), refreshing only entries this consumer
// still owns (queue/ownership.hpp). An entry another worker took over (this
// one stalled past the visibility timeout) is marked lost in the ledger, so
// the sender drops it before any byte of it goes out. `verify` runs the same
// check at once for a sender whose confirmation is old.
//
// Owns: its timer and backoff. Writes the ledger's `confirmed` and `lost`.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <optional>
#include <string>
#include <vector>

#include "context.hpp"
#include "ledger.hpp"
#include "outq/backoff.hpp"
#include "outq/log_throttle.hpp"
#include "outq/redis_connection.hpp"

namespace outq::runtime {

class heartbeat {
  public:
    heartbeat(boost::asio::any_io_executor ex, context& ctx, redis::connection& conn, ledger& held);

    boost::asio::awaitable<void> run();
    void stop();
    // One refresh of every held entry: false when Redis did not answer.
    boost::asio::awaitable<bool> step();
    // Refreshes these entries now: true when Redis answered (each is then
    // confirmed or marked lost in the ledger).
    boost::asio::awaitable<bool> verify(const std::vector<ledger::key>& entries);

    // How long a confirmation is trusted for sending: past this, the sender verifies first.
    std::chrono::milliseconds trust() const;

  private:
    // One refresh script call per partition among `entries`, in one pipeline.
    boost::asio::awaitable<bool> refresh(const std::vector<ledger::key>& entries);

    context& ctx_;
    redis::connection& conn_;
    ledger& held_;
    bool stopping_ = false;
    boost::asio::steady_timer timer_;
    outq::backoff backoff_;
    log::throttle trouble_log_;
    log::throttle lost_log_;
};

}  // namespace outq::runtime
