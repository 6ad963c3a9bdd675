#include "depth_sampler.hpp"

#include "outq/detail/async_event.hpp"
#include "outq/queue/errors.hpp"

namespace outq::runtime {

namespace asio = boost::asio;

depth_sampler::depth_sampler(asio::any_io_executor ex, context& ctx, redis::connection& conn, metrics& stats)
    : ctx_(ctx),
      conn_(conn),
      stats_(stats),
      queue_label_(label("queue", ctx.config.queue)),
      timer_(ex),
      backoff_(std::chrono::milliseconds(500), interval) {}

void depth_sampler::stop() {
    stopping_ = true;
    timer_.cancel();
}

asio::awaitable<bool> depth_sampler::step() {
    const auto started = clock::now();
    auto r = co_await conn_.exec(queue::depth_commands(ctx_.partitions));
    const auto ended = clock::now();
    last_round_ = ended;
    std::string trouble;
    queue::error_kind kind = queue::error_kind::transient;
    if (!r.ok()) {
        trouble = r.error;
    } else {
        auto reading = queue::read_depths(r.replies, ctx_.partitions.size());
        if (reading.value) {
            last_ = *reading.value;
        } else {
            trouble = reading.error;
            kind = queue::error_kind::permanent;  // an unexpected reply, unless Redis said why
            for (const auto& reply : r.replies)
                if (reply.is_error()) {
                    kind = queue::classify_error(reply);
                    break;
                }
        }
    }
    failing_ = !trouble.empty();
    if (failing_) {
        log::write_throttled(trouble_log_, kind == queue::error_kind::transient ? log::level::warn : log::level::error,
                             "reading the queue depth failed",
                             "command=XLEN,XPENDING,ZCARD,XRANGE kind=" + std::string(queue::to_string(kind)) +
                                 " error=" + log::value(trouble));
        co_return false;
    }
    if (trouble_log_.clear()) log::info("reading the queue depth works again");
    last_ok_ = ended;
    stats_.observe("outq_redis_roundtrip_seconds", "connection=\"control\"",
                   std::chrono::duration<double>(ended - started).count());
    stats_.set("outq_queue_waiting_jobs", queue_label_, static_cast<double>(last_->waiting()));
    stats_.set("outq_queue_pending_jobs", queue_label_, static_cast<double>(last_->pending));
    stats_.set("outq_queue_delayed_jobs", queue_label_, static_cast<double>(last_->delayed));
    stats_.set("outq_queue_dead_letters", queue_label_, static_cast<double>(last_->dead));
    // As of this round: between rounds the jobs may have been taken (the sample's age says how old it is).
    stats_.set("outq_queue_oldest_waiting_age_seconds", queue_label_, last_->oldest_waiting_age_seconds(wall_now_ms()));
    refresh_ages(ended);
    co_return true;
}

void depth_sampler::refresh_ages(clock::time_point now) {
    if (!last_ok_) return;
    stats_.set("outq_queue_depth_sample_age_seconds", queue_label_,
               std::chrono::duration<double>(now - *last_ok_).count());
}

asio::awaitable<void> depth_sampler::run() {
    while (!stopping_) {
        const bool ok = co_await step();
        if (stopping_) break;
        // After a failed round, sooner (bounded, jittered): readiness sees Redis back quickly.
        if (ok) backoff_.reset();
        co_await detail::sleep_for(timer_,
                                   ok ? std::chrono::milliseconds(interval) : backoff_.next(ctx_.unit_random()));
    }
}

}  // namespace outq::runtime
