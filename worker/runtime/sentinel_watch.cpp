#include "sentinel_watch.hpp"

#include "outq/detail/async_event.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr std::string_view switch_channel = "+switch-master";
}

sentinel_watch::sentinel_watch(asio::any_io_executor ex, context& ctx, redis::sentinel_options sentinels,
                               redis::connection_options base, std::chrono::milliseconds ping_interval)
    : executor_(ex),
      ctx_(ctx),
      sentinels_(std::move(sentinels)),
      base_(std::move(base)),
      ping_interval_(ping_interval),
      timer_(ex),
      backoff_(200ms, 5000ms) {}

void sentinel_watch::stop() {
    if (stopping_) return;
    stopping_ = true;
    timer_.cancel();
    if (conn_) conn_->interrupt();
}

void sentinel_watch::trouble(std::string_view what, const std::string& error) {
    if (conn_) conn_->close();
    conn_.reset();
    log::write_throttled(trouble_log_, log::level::warn,
                         "sentinel watch unavailable; reconnecting (a failover is then found by READONLY)",
                         "command=" + std::string(what) + " error=" + log::value(error));
}

asio::awaitable<bool> sentinel_watch::step() {
    if (!conn_) {
        // The sentinels in turn: one that is down must not hide the others.
        redis::connection_options o;
        o.where = sentinels_.nodes[next_ % sentinels_.nodes.size()];
        ++next_;
        o.tls_ca_file = base_.tls_ca_file;
        o.tls_verify = base_.tls_verify;
        o.connect_timeout = base_.connect_timeout;
        o.command_timeout = base_.command_timeout;
        o.client_name = base_.client_name;
        conn_ = std::make_unique<redis::connection>(executor_, o);
        // A named vector: GCC 12 cannot keep an initializer list's array in a coroutine frame.
        const std::vector<std::string> channels{std::string(switch_channel)};
        auto r = co_await conn_->subscribe(channels);
        if (stopping_) co_return true;
        if (!r.ok()) {
            trouble("SUBSCRIBE", r.error);
            co_return false;
        }
        if (trouble_log_.clear()) log::info("sentinel watch works again", "sentinel=" + conn_->peer());
        co_return true;
    }
    auto m = co_await conn_->next_message(ping_interval_);
    if (stopping_) co_return true;
    if (!m.ok()) {
        trouble("read", m.error);
        co_return false;
    }
    if (m.message) {
        backoff_.reset();
        if (m.message->channel != switch_channel) co_return true;
        if (auto primary = redis::failover::parse_switch_master(m.message->payload, sentinels_.master)) {
            ++switches_;
            log::warn(
                "sentinel announced a new primary; reconnecting every Redis connection",
                "master=" + log::value(sentinels_.master) + " primary=" + *primary + " sentinel=" + conn_->peer());
            on_switch_(*primary);
        }
        co_return true;
    }
    auto ping = co_await conn_->ping_subscribed();
    if (stopping_) co_return true;
    if (!ping.ok()) {
        trouble("PING", ping.error);
        co_return false;
    }
    backoff_.reset();
    co_return true;
}

asio::awaitable<void> sentinel_watch::run() {
    if (sentinels_.empty()) co_return;
    while (!stopping_) {
        const bool ok = co_await step();
        if (stopping_) break;
        if (!ok) co_await detail::sleep_for(timer_, backoff_.next(ctx_.unit_random()));
    }
    if (conn_) conn_->close();
}

}  // namespace outq::runtime
