#include "mover.hpp"

#include "outq/detail/async_event.hpp"
#include "outq/queue/errors.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr int round_limit = 500;
}

mover::mover(asio::any_io_executor ex, context& ctx, redis::connection& conn)
    : ctx_(ctx), conn_(conn), timer_(ex), backoff_(200ms, 10000ms) {}

void mover::stop() {
    stopping_ = true;
    timer_.cancel();
}

asio::awaitable<int> mover::step() {
    auto r = co_await conn_.exec(queue::move_due_command(ctx_.keys, wall_now_ms(), round_limit));
    if (r.ok() && r.replies[0].type == redis::value::kind::integer) {
        if (trouble_log_.clear()) log::info("moving due jobs works again");
        co_return static_cast<int>(r.replies[0].integer);
    }
    const auto kind = r.ok() ? queue::classify_error(r.replies[0]) : queue::error_kind::transient;
    log::write_throttled(trouble_log_, kind == queue::error_kind::transient ? log::level::warn : log::level::error,
                         "moving due jobs failed",
                         "command=EVAL(move_due) kind=" + std::string(queue::to_string(kind)) +
                             " error=" + log::value(r.ok() ? r.replies[0].str : r.error));
    co_return -1;
}

asio::awaitable<void> mover::run() {
    while (!stopping_) {
        const int moved = co_await step();
        if (stopping_) break;
        if (moved >= round_limit) continue;
        std::chrono::milliseconds wait = 200ms;
        if (moved < 0)
            wait = backoff_.next(ctx_.unit_random());
        else
            backoff_.reset();
        co_await detail::sleep_for(timer_, wait);
    }
}

}  // namespace outq::runtime
