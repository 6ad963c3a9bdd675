#pragma once
// A tiny HTTP endpoint for Prometheus scrapes (/metrics) and liveness probes
// (/healthz), on Beast. Plain HTTP, meant for a cluster-internal port.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <string>

namespace outq {

class metrics_server {
  public:
    // `render` produces the /metrics body; `healthy` answers /healthz.
    metrics_server(boost::asio::any_io_executor ex, std::function<std::string()> render, std::function<bool()> healthy);
    ~metrics_server();
    // "host:port"; throws std::runtime_error when it cannot listen (start-up error).
    void listen(const std::string& address);
    unsigned short port() const;
    boost::asio::awaitable<void> serve();
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace outq
