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

asio::awaitable<bool> heartbeat::refresh(const std::vector<ledger::key>& asked_for) {
    const auto started = ledger::clock::now();
    // Built anew for each call: the views point into the ledger, whose
    // entries may close while a call is out.
    std::size_t asked = 0;
    std::vector<int> partitions;  // of each command
    auto build = [&](const queue::script& sc) {
        std::vector<std::vector<queue::held_entry>> by_partition(ctx_.partitions.size());
        for (auto& k : asked_for) {
            auto it = held_.entries().find(k);
            if (it == held_.entries().end()) continue;
            by_partition[static_cast<std::size_t>(k.partition)].push_back({it->first.entry_id});
        }
        asked = 0;
        partitions.clear();
        std::vector<redis::command> cmds;
        for (std::size_t p = 0; p < by_partition.size(); ++p) {
            if (by_partition[p].empty()) continue;
            asked += by_partition[p].size();
            partitions.push_back(static_cast<int>(p));
            cmds.push_back(queue::refresh_command(ctx_.partitions[p], sc, ctx_.consumer, by_partition[p]));
        }
        return cmds;
    };
    auto cmds = build(ctx_.scripts.refresh);
    if (cmds.empty()) co_return true;
    // Idempotent: a refresh sent twice refreshes twice.
    auto r = co_await conn_.exec(cmds, std::nullopt, redis::on_stale::retry_once);
    auto forgot = [&] {
        for (auto& reply : r.replies)
            if (queue::classify_error(reply) == queue::error_kind::noscript) return true;
        return false;
    };
    if (r.ok() && forgot()) {
        cmds = build(queue::script{ctx_.scripts.refresh.body, {}});
        if (cmds.empty()) co_return true;
        r = co_await conn_.exec(cmds, std::nullopt, redis::on_stale::retry_once);
    }
    std::vector<ledger::key> lost;
    const redis::value* failed = nullptr;
    if (r.ok())
        for (std::size_t i = 0; i < r.replies.size() && !failed; ++i) {
            std::vector<std::string> ids;
            if (!queue::parse_refresh_reply(r.replies[i], ids)) {
                failed = &r.replies[i];
                break;
            }
            for (auto& id : ids) lost.push_back({std::move(id), partitions[i]});
        }
    if (!r.ok() || failed) {
        const auto kind = r.ok() ? queue::classify_error(*failed) : queue::error_kind::transient;
        log::write_throttled(trouble_log_, kind == queue::error_kind::permanent ? log::level::error : log::level::warn,
                             "visibility refresh failed",
                             "command=refresh_script count=" + std::to_string(asked) +
                                 " error=" + log::value(r.ok() ? failed->str : r.error));
        co_return false;
    }
    if (trouble_log_.clear()) log::info("visibility refresh recovered");
    for (auto& k : lost) held_.mark_lost(k);
    for (auto& k : asked_for) held_.confirm(k, started);
    if (!lost.empty())
        log::write_throttled(lost_log_, log::level::warn,
                             "lost jobs to another worker (this one stalled past the visibility timeout); "
                             "they will not be sent from here",
                             "count=" + std::to_string(lost.size()) + " first_entry=" + lost.front().entry_id);
    co_return true;
}

asio::awaitable<bool> heartbeat::verify(const std::vector<ledger::key>& entries) {
    co_return co_await refresh(entries);
}

asio::awaitable<bool> heartbeat::step() {
    std::vector<ledger::key> held;
    held.reserve(held_.entries().size());
    for (auto& [k, e] : held_.entries())
        if (!e.lost) held.push_back(k);
    co_return co_await refresh(held);
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
