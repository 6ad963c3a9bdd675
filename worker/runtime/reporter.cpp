#include "reporter.hpp"

#include "outq/detail/async_event.hpp"
#include "outq/log.hpp"
#include "outq/log_throttle.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

reporter::reporter(asio::any_io_executor ex, const ledger& held, const writers& out,
                   std::function<std::uint64_t()> reclaimed, http_client& http, const token_cache& tokens,
                   metrics& stats, std::function<std::chrono::steady_clock::time_point()> last_redis_ok,
                   const context& ctx)
    : held_(held),
      out_(out),
      reclaimed_(std::move(reclaimed)),
      http_(http),
      tokens_(tokens),
      stats_(stats),
      last_redis_ok_(std::move(last_redis_ok)),
      ctx_(ctx),
      timer_(ex) {}

void reporter::stop() {
    stopping_ = true;
    timer_.cancel();
}

std::string reporter::progress() const {
    const auto& c = out_.written();
    const auto h = http_.stats();
    return "sent=" + std::to_string(c.sent) + " dead=" + std::to_string(c.dead) +
           " retried=" + std::to_string(c.retried) + " delayed=" + std::to_string(c.delayed) +
           " duplicates=" + std::to_string(c.duplicates) + " reclaimed=" + std::to_string(reclaimed_()) +
           " in_flight=" + std::to_string(held_.held()) + " unwritten=" + std::to_string(out_.queued()) +
           " http_connections=" + std::to_string(h.connections_opened) + " http_requests=" + std::to_string(h.requests);
}

std::string reporter::render_metrics() {
    const auto h = http_.stats();
    const auto total = [this](std::string_view name, auto n) { stats_.set_total(name, {}, static_cast<double>(n)); };
    // One series per configured account: no label value a producer chose.
    const auto now = pause_board::clock::now();
    std::string labels;
    for (const auto& [provider, settings] : ctx_.config.providers)
        for (const auto& [account, unused] : settings.accounts) {
            labels.clear();
            stats_.append_scope_labels(labels, provider, account);
            stats_.set("outq_account_paused", labels, ctx_.pauses.paused(provider, account, now) ? 1 : 0);
        }
    stats_.set("outq_in_flight_jobs", {}, held_.held());
    stats_.set("outq_limiter_waiting_jobs", {}, held_.held() - held_.active());
    stats_.set("outq_unwritten_outcomes", {}, static_cast<double>(out_.queued()));
    total("outq_http_connections_opened_total", h.connections_opened);
    total("outq_http_requests_total", h.requests);
    total("outq_http_stale_connections_closed_total", h.stale_closed);
    total("outq_http_resent_before_write_total", h.resent_before_write);
    total("outq_http_ambiguous_after_reuse_total", h.ambiguous_after_reuse);
    total("outq_token_fetches_total", tokens_.fetches());
    total("outq_reclaimed_jobs_total", reclaimed_());
    stats_.set("outq_redis_last_ok_age_seconds", {},
               std::chrono::duration<double>(std::chrono::steady_clock::now() - last_redis_ok_()).count());
    return stats_.render();
}

asio::awaitable<void> reporter::run() {
    // A progress line only when something changed since the last one, and
    // once every ten minutes (60 beats) when nothing did: a sign of life.
    log::repeat_filter changed(60);
    while (!stopping_) {
        co_await detail::sleep_for(timer_, 10s);
        if (stopping_) break;
        http_.evict_idle();
        const auto line = progress();
        if (changed.pass(line)) log::info("progress", line);
    }
}

}  // namespace outq::runtime
