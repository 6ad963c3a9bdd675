#pragma once
// A tiny HTTP endpoint for Prometheus scrapes (/metrics), liveness (/healthz)
// and readiness (/readyz) probes, on Beast. Plain HTTP, meant for a
// cluster-internal port. Only GET and HEAD are served (other methods: 405).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <string>

#include "outq/metrics.hpp"

namespace outq {

class metrics_server {
  public:
    // `render` produces the /metrics body; `live` answers /healthz and `ready` /readyz
    // (200 when ok, else 503; the reason is the body).
    metrics_server(boost::asio::any_io_executor ex, std::function<std::string()> render,
                   std::function<probe_answer()> live, std::function<probe_answer()> ready);
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
