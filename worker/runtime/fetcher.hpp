#pragma once
// The fetcher: reads new entries with a blocking XREADGROUP sized to the free
// concurrency, and hands them to admission. On stop, a read that is blocked
// is ended with CLIENT UNBLOCK from the control connection (cancelling the
// socket would not stop Redis from delivering entries into this consumer's
// pending list); whatever that read returns still goes through admission,
// which puts it back.
//
// One fetcher per partition of the queue, each on its own connection (a read
// blocks, and cannot span the slots of two partitions). They share the free
// concurrency: each read asks for at most its partition's fair share of it,
// and reserves what it asked until its entries hold slots.
//
// A read's COUNT follows the entries' sizes (policy/fetch_size.hpp); a reply
// over the limit is not read, and the entries that read delivered are found
// and sized in Redis (queue/oversized.hpp): those too large are admitted as
// stubs (they become dead letters that keep the job in Redis), the others read
// again by id a budget at a time.
//
// Owns: its partition's reads on its fetch connection, its timer and backoff,
// the size estimate, the last entry id it read.
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
    fetcher(boost::asio::any_io_executor ex, context& ctx, const queue::keys& partition, redis::connection& fetch,
            redis::connection& control, ledger& held, admission& next, task_group& tasks);

    boost::asio::awaitable<void> run();
    void stop();
    // One read and its admission: false on Redis trouble (the caller backs off).
    boost::asio::awaitable<bool> step();
    std::chrono::steady_clock::time_point last_ok() const { return last_ok_; }
    // The last read failed (Redis unreachable, no primary): until one completes.
    bool failing() const { return failing_; }

  private:
    int free() const;
    int room() const;
    // The entries a read too large to take delivered: false on Redis trouble (tried again next step).
    boost::asio::awaitable<bool> take_oversized_read(int count, std::chrono::steady_clock::time_point delivered_at);
    context& ctx_;
    const queue::keys& keys_;
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
    double entry_bytes_;
    std::string last_read_;    // the highest entry id a read of this fetcher returned
    int oversized_count_ = 0;  // a read was too large (its COUNT): its entries are still to be taken
    log::throttle oversized_log_;
};

}  // namespace outq::runtime
