#include "snapshotter.hpp"

#include "outq/detail/async_event.hpp"

namespace outq::runtime {

namespace asio = boost::asio;

snapshotter::snapshotter(asio::any_io_executor ex, context& ctx, redis::connection& conn, const metrics& stats,
                         std::function<queue::activity::worker_snapshot()> now_state)
    : ctx_(ctx), conn_(conn), stats_(stats), now_state_(std::move(now_state)), started_(wall_now_ms()), timer_(ex) {
    for (const auto& [provider, p] : ctx.config.providers)
        for (const auto& [name, account] : p.accounts) {
            const auto& l = account->limits;
            limits_.push_back({provider + "/" + name, l.requests, l.window.count(), l.burst, l.max_in_flight});
        }
}

void snapshotter::stop() {
    stopping_ = true;
    timer_.cancel();
}

asio::awaitable<bool> snapshotter::step() {
    const auto now = wall_now_ms();
    auto totals = queue::activity::totals_of(stats_);
    auto state = now_state_();
    state.consumer = ctx_.consumer;
    state.at = now;
    state.started = started_;
    state.limits = limits_;
    const auto& k = ctx_.queue_wide();
    const auto ttl = 3 * ctx_.config.snapshot_interval + std::chrono::milliseconds(1000);
    auto r = co_await conn_.exec(queue::activity::write_commands(
        k, queue::activity::minute_of(now), queue::activity::growth(written_, totals), state, ttl));
    std::string error = r.error;
    if (r.ok() && queue::activity::written(r.replies, error)) {
        written_ = std::move(totals);
        if (trouble_log_.clear()) log::info("writing the worker snapshot works again");
        co_return true;
    }
    log::write_throttled(trouble_log_, log::level::warn, "writing the worker snapshot failed",
                         "error=" + log::value(error));
    co_return false;
}

asio::awaitable<void> snapshotter::finish() {
    co_await step();
    co_await conn_.exec(redis::command("DEL").arg(queue::activity::worker_key(ctx_.queue_wide(), ctx_.consumer)));
}

asio::awaitable<void> snapshotter::run() {
    while (!stopping_) {
        co_await detail::sleep_for(timer_, ctx_.config.snapshot_interval);
        if (stopping_) break;
        co_await step();
    }
}

}  // namespace outq::runtime
