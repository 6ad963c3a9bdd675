#pragma once
// The worker runtime: owns the components, their connections and the order
// in which they start and stop (written down once, in runtime.cpp).
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

    // Runs until stop() and the drain that follows have finished, or until
    // start-up is refused (see exit_code).
    boost::asio::awaitable<void> run();
    // Graceful: stop taking work, finish every delivery held (or put it back)
    // within the grace period, then cancel what is left.
    void stop();
    // Immediate: cancel the sends in flight now (second signal).
    void stop_now();
    // 0 after a clean run; 1 when start-up was refused (a missing Redis
    // permission) or a component failed.
    int exit_code() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace outq
