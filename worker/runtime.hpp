#pragma once
// The worker runtime: fetch → send → complete, as coroutines on one executor.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>

#include "outq/adapter.hpp"
#include "outq/config.hpp"

namespace outq {

class worker_runtime {
  public:
    worker_runtime(boost::asio::any_io_executor ex, const worker_config& config, const adapter_registry& adapters);
    ~worker_runtime();

    // Runs until stop() and the drain that follows have finished.
    boost::asio::awaitable<void> run();
    // Graceful: stop fetching, let in-flight sends finish within the grace
    // period, then cancel what is left (it stays pending for another worker).
    void stop();
    // Immediate: cancel in-flight sends now (second signal).
    void stop_now();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace outq
