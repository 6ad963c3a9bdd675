#pragma once
// The reporter: the progress line every 10 s, idle HTTP connections closed on
// the same beat, and the figures behind /metrics. Reads every component's
// counters; writes only the metrics gauges.
//
// Owns: its timer.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <string>

#include "context.hpp"
#include "ledger.hpp"
#include "outq/http_client.hpp"
#include "outq/metrics.hpp"
#include "outq/token_cache.hpp"
#include "writer.hpp"

namespace outq::runtime {

class reporter {
  public:
    reporter(boost::asio::any_io_executor ex, const ledger& held, const writers& out,
             std::function<std::uint64_t()> reclaimed, http_client& http, const token_cache& tokens, metrics& stats,
             std::function<std::chrono::steady_clock::time_point()> last_redis_ok, const context& ctx);

    boost::asio::awaitable<void> run();
    void stop();
    // The progress line's fields.
    std::string progress() const;
    std::string render_metrics();

  private:
    const ledger& held_;
    const writers& out_;
    std::function<std::uint64_t()> reclaimed_;
    http_client& http_;
    const token_cache& tokens_;
    metrics& stats_;
    std::function<std::chrono::steady_clock::time_point()> last_redis_ok_;
    const context& ctx_;  // the configured accounts and the pauses the worker knows of
    bool stopping_ = false;
    boost::asio::steady_timer timer_;
};

}  // namespace outq::runtime
