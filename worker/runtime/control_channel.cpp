#include "control_channel.hpp"

#include "outq/detail/async_event.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

void apply_to_board(pause_board& board, const queue::control_message& m, pause_board::clock::time_point now) {
    switch (m.what) {
        case queue::control_message::kind::pause:
            board.set(m.provider, m.account, m.pause_ms, now);
            break;
        case queue::control_message::kind::resume:
            board.clear(m.provider, m.account);
            break;
        case queue::control_message::kind::circuit:
            // A closing circuit deletes its own pause, not another one: the
            // next claim reads the key again.
            board.forget(m.provider, m.account);
            break;
        case queue::control_message::kind::limit:
        case queue::control_message::kind::due:
            break;
    }
}

control_channel::control_channel(asio::any_io_executor ex, context& ctx, redis::connection& conn,
                                 std::chrono::milliseconds ping_interval)
    : ctx_(ctx),
      conn_(conn),
      ping_interval_(ping_interval),
      channel_(queue::control_channel(ctx.queue_wide())),
      timer_(ex),
      backoff_(100ms, 5000ms) {}

void control_channel::stop() {
    if (stopping_) return;
    stopping_ = true;
    timer_.cancel();
    conn_.interrupt();  // a blocked read ends now
}

void control_channel::trouble(std::string_view what, const std::string& error) {
    ctx_.pauses.channel_down();  // claims read the pauses until the next subscribe
    // A Redis user without SUBSCRIBE (or the channel) does not heal by waiting.
    const bool refused = error.find("NOPERM") != std::string::npos;
    log::write_throttled(
        trouble_log_, refused ? log::level::error : log::level::warn,
        "control channel unavailable; reconnecting (pauses and resumes are heard late)",
        "command=" + std::string(what) + " channel=" + log::value(channel_) + " error=" + log::value(error));
}

void control_channel::handle(const std::string& payload) {
    const auto m = queue::parse_control_message(payload);
    bool configured = false;
    if (m && m->what == queue::control_message::kind::due) {
        configured = true;  // about the queue's delayed jobs, not an account
    } else if (m) {
        const auto p = ctx_.config.providers.find(m->provider);
        configured = p != ctx_.config.providers.end() && p->second.accounts.count(m->account) > 0;
    }
    if (!configured) {
        ++ignored_;
        log::write_throttled(bad_message_log_, log::level::warn, "control message ignored",
                             "channel=" + log::value(channel_) +
                                 " reason=" + (m ? std::string("account_not_configured") : std::string("unreadable")) +
                                 " payload=" + log::value(payload.substr(0, 200)));
        return;
    }
    ++heard_;
    apply_to_board(ctx_.pauses, *m, pause_board::clock::now());
    log::debug("control message", "kind=" + std::string(queue::to_string(m->what)) + " provider=" + m->provider +
                                      " account=" + log::value(m->account) +
                                      " partition=" + std::to_string(m->partition));
    on_message_(*m);
}

asio::awaitable<bool> control_channel::step() {
    if (!conn_.subscribed()) {
        // A named vector: GCC 12 cannot keep an initializer list's array in a coroutine frame.
        const std::vector<std::string> channels{channel_};
        auto r = co_await conn_.subscribe(channels);
        if (stopping_) co_return true;
        if (!r.ok()) {
            trouble("SUBSCRIBE", r.error);
            co_return false;
        }
        ++subscribes_;
        ctx_.pauses.channel_up(pause_board::clock::now());
        std::uint64_t held = 0;
        if (trouble_log_.clear(&held))
            log::info("control channel works again; re-reading the pauses",
                      "channel=" + log::value(channel_) + " held_back=" + std::to_string(held));
        on_resync_();
        co_return true;
    }
    auto m = co_await conn_.next_message(ping_interval_);
    if (stopping_) co_return true;
    if (!m.ok()) {
        trouble("read", m.error);
        co_return false;
    }
    if (m.message) {
        backoff_.reset();  // the link is proven
        ctx_.pauses.channel_proven(pause_board::clock::now());
        if (m.message->channel == channel_) handle(m.message->payload);
        co_return true;
    }
    auto ping = co_await conn_.ping_subscribed();
    if (stopping_) co_return true;
    if (!ping.ok()) {
        trouble("PING", ping.error);
        co_return false;
    }
    backoff_.reset();
    ctx_.pauses.channel_proven(pause_board::clock::now());
    co_return true;
}

asio::awaitable<void> control_channel::run() {
    while (!stopping_) {
        const bool ok = co_await step();
        if (stopping_) break;
        if (!ok) co_await detail::sleep_for(timer_, backoff_.next(ctx_.unit_random()));
    }
    ctx_.pauses.channel_down();
    conn_.close();
}

}  // namespace outq::runtime
