#include "mover.hpp"

#include <algorithm>

#include "outq/detail/async_event.hpp"
#include "outq/queue/errors.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr int round_limit = 500;
}

mover::mover(asio::any_io_executor ex, context& ctx, const queue::keys& partition, redis::connection& conn)
    : ctx_(ctx), keys_(partition), conn_(conn), timer_(ex), backoff_(200ms, 10000ms) {}

void mover::stop() {
    stopping_ = true;
    timer_.cancel();
}

void mover::expect(unix_ms due) {
    if (next_due_ && *next_due_ <= due) return;
    next_due_ = due;
    timer_.cancel();  // run() sleeps again, until the sooner time
}

asio::awaitable<int> mover::step() {
    const unix_ms now = wall_now_ms();
    // Three reads at most: the earliest due time (all an idle worker asks),
    // the due tokens, then the script that moves them with every key declared.
    std::string command = "ZRANGE";
    auto r = co_await conn_.exec(queue::next_due_command(keys_));
    std::optional<unix_ms> next;
    if (r.ok() && queue::parse_next_due(r.replies[0], next)) {
        if (!next || *next > now) {
            next_due_ = next;
            if (trouble_log_.clear()) log::info("moving due jobs works again");
            co_return 0;
        }
        command = "ZRANGEBYSCORE";
        r = co_await conn_.exec(queue::due_tokens_command(keys_, now, round_limit));
        std::vector<std::string> tokens;
        if (r.ok() && queue::parse_due_tokens(r.replies[0], tokens)) {
            if (tokens.empty()) {
                next_due_.reset();  // moved by another worker since the probe: the next poll reads again
                co_return 0;
            }
            command = "EVAL(move_due)";
            r = co_await conn_.exec(queue::move_due_command(keys_, tokens));
            int moved = 0;
            if (r.ok() && queue::parse_move_due(r.replies[0], moved, next)) {
                next_due_ = next;
                if (trouble_log_.clear()) log::info("moving due jobs works again");
                co_return moved;
            }
        }
    }
    const auto kind = r.ok() ? queue::classify_error(r.replies[0]) : queue::error_kind::transient;
    const std::string trouble = r.ok() ? r.replies[0].str : r.error;
    log::write_throttled(trouble_log_, kind == queue::error_kind::transient ? log::level::warn : log::level::error,
                         "moving due jobs failed",
                         "command=" + command + " kind=" + std::string(queue::to_string(kind)) +
                             " error=" + log::value(trouble.empty() ? std::string("unexpected reply") : trouble));
    co_return -1;
}

asio::awaitable<void> mover::run() {
    while (!stopping_) {
        const int moved = co_await step();
        if (stopping_) break;
        if (moved >= round_limit) continue;
        if (moved < 0) {
            co_await detail::sleep_for(timer_, backoff_.next(ctx_.unit_random()));
            continue;
        }
        backoff_.reset();
        // Until the earliest due time known, at most a poll interval (other
        // workers add delayed copies too); expect() cuts the sleep short.
        for (;;) {
            const auto poll = ctx_.config.mover_poll;
            auto wait = poll;
            if (next_due_)
                wait = std::clamp<std::chrono::milliseconds>(std::chrono::milliseconds(*next_due_ - wall_now_ms()), 0ms,
                                                             poll);
            const auto planned = next_due_;
            if (wait > 0ms) co_await detail::sleep_for(timer_, wait);
            if (stopping_ || next_due_ == planned) break;  // slept the whole wait: a round
        }
    }
}

}  // namespace outq::runtime
