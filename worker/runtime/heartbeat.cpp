#include "heartbeat.hpp"

#include "outq/detail/async_event.hpp"
#include "outq/queue/errors.hpp"
#include "outq/queue/ownership.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

heartbeat::heartbeat(asio::any_io_executor ex, context& ctx, redis::connection& conn, ledger& held)
    // While a refresh fails, at most a second between tries: a Redis that is
    // back (after a restart and its AOF load) must be met before the entries
    // go idle past the visibility timeout.
    : ctx_(ctx), conn_(conn), held_(held), timer_(ex), backoff_(200ms, 1000ms) {}

std::chrono::milliseconds heartbeat::trust() const {
    // The heartbeat confirms every third of the visibility timeout; another
    // worker can take an entry over once a whole timeout passed unconfirmed.
    return ctx_.config.visibility_timeout * 2 / 3;
}

void heartbeat::stop() {
    stopping_ = true;
    timer_.cancel();
}

asio::awaitable<bool> heartbeat::refresh(const std::vector<std::string>& entry_ids) {
    const auto started = ledger::clock::now();
    // Built anew for each call: the views point into the ledger, whose
    // entries may close while a call is out.
    std::size_t asked = 0;
    auto build = [&](const queue::script& sc) {
        std::vector<queue::held_entry> entries;
        entries.reserve(entry_ids.size());
        for (auto& id : entry_ids) {
            auto it = held_.entries().find(id);
            if (it == held_.entries().end()) continue;
            entries.push_back({it->first});
        }
        asked = entries.size();
        std::vector<redis::command> cmd;
        if (!entries.empty()) cmd.push_back(queue::refresh_command(ctx_.keys, sc, ctx_.consumer, entries));
        return cmd;
    };
    auto cmd = build(ctx_.scripts.refresh);
    if (cmd.empty()) co_return true;
    // Idempotent: a refresh sent twice refreshes twice.
    auto r = co_await conn_.exec(cmd, std::nullopt, redis::on_stale::retry_once);
    if (r.ok() && queue::classify_error(r.replies[0]) == queue::error_kind::noscript) {
        cmd = build(queue::script{ctx_.scripts.refresh.body, {}});
        if (cmd.empty()) co_return true;
        r = co_await conn_.exec(cmd, std::nullopt, redis::on_stale::retry_once);
    }
    std::vector<std::string> lost;
    if (!r.ok() || !queue::parse_refresh_reply(r.replies[0], lost)) {
        const auto kind = r.ok() ? queue::classify_error(r.replies[0]) : queue::error_kind::transient;
        log::write_throttled(trouble_log_, kind == queue::error_kind::permanent ? log::level::error : log::level::warn,
                             "visibility refresh failed",
                             "command=refresh_script count=" + std::to_string(asked) +
                                 " error=" + log::value(r.ok() ? r.replies[0].str : r.error));
        co_return false;
    }
    if (trouble_log_.clear()) log::info("visibility refresh recovered");
    for (auto& id : lost) held_.mark_lost(id);
    for (auto& id : entry_ids) held_.confirm(id, started);
    if (!lost.empty())
        log::write_throttled(lost_log_, log::level::warn,
                             "lost jobs to another worker (this one stalled past the visibility timeout); "
                             "they will not be sent from here",
                             "count=" + std::to_string(lost.size()) + " first_entry=" + lost.front());
    co_return true;
}

asio::awaitable<bool> heartbeat::verify(const std::vector<std::string>& entry_ids) {
    co_return co_await refresh(entry_ids);
}

asio::awaitable<bool> heartbeat::step() {
    std::vector<std::string> ids;
    ids.reserve(held_.entries().size());
    for (auto& [id, e] : held_.entries())
        if (!e.lost) ids.push_back(id);
    co_return co_await refresh(ids);
}

asio::awaitable<void> heartbeat::run() {
    const auto interval = std::max<std::chrono::milliseconds>(ctx_.config.visibility_timeout / 3, 50ms);
    while (!stopping_) {
        std::chrono::milliseconds wait = interval;
        const bool ok = co_await step();
        if (!ok)
            wait = std::min(interval, backoff_.next(ctx_.unit_random()));
        else
            backoff_.reset();
        if (stopping_) break;
        co_await detail::sleep_for(timer_, wait);
    }
}

}  // namespace outq::runtime
