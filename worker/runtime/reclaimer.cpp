#include "reclaimer.hpp"

#include "outq/detail/async_event.hpp"
#include "outq/queue/errors.hpp"
#include "outq/queue/group.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

reclaimer::reclaimer(asio::any_io_executor ex, context& ctx, const queue::keys& partition, redis::connection& conn,
                     ledger& held, admission& next)
    : ctx_(ctx), keys_(partition), conn_(conn), held_(held), next_(next), timer_(ex), backoff_(1000ms, 30000ms) {}

void reclaimer::stop() {
    stopping_ = true;
    timer_.cancel();
}

asio::awaitable<void> reclaimer::forget_departed_consumers() {
    const std::int64_t idle_limit = std::max<std::int64_t>(3600000, ctx_.config.visibility_timeout.count() * 10);
    auto r = co_await conn_.exec(queue::consumers_command(keys_));
    std::vector<std::string> departed;
    if (!r.ok() || !queue::parse_departed_consumers(r.replies[0], ctx_.consumer, idle_limit, departed) ||
        departed.empty())
        co_return;
    std::vector<redis::command> deletions;
    for (auto& name : departed) deletions.push_back(queue::delete_consumer_command(keys_, name));
    co_await conn_.exec(deletions);
    log::info("removed departed consumers from the group", "count=" + std::to_string(deletions.size()));
}

asio::awaitable<bool> reclaimer::step() {
    if (++round_ % 20 == 1) co_await forget_departed_consumers();
    std::string cursor = "0-0";
    do {
        if (stopping_) break;
        const int free_slots = ctx_.config.concurrency - held_.active();
        if (free_slots <= 0) break;
        const auto delivered_at = ledger::clock::now();
        auto r = co_await conn_.exec(queue::autoclaim_command(keys_, ctx_.consumer, ctx_.config.visibility_timeout,
                                                              cursor, std::min(ctx_.config.fetch_batch, free_slots)));
        std::vector<queue::stream_entry> entries;
        if (!r.ok() || r.replies[0].is_error() || !queue::parse_xautoclaim(r.replies[0], cursor, entries)) {
            const auto kind = r.ok() ? queue::classify_error(r.replies[0]) : queue::error_kind::transient;
            if (r.ok() && r.replies[0].error_is("NOGROUP")) co_return true;  // the fetcher recreates it
            log::write_throttled(
                trouble_log_, kind == queue::error_kind::transient ? log::level::warn : log::level::error,
                "cannot take over stalled jobs",
                "command=XAUTOCLAIM kind=" + std::string(queue::to_string(kind)) + " error=" +
                    log::value(r.ok() ? (r.replies[0].is_error() ? r.replies[0].str : std::string("unexpected reply"))
                                      : r.error));
            co_return false;
        }
        trouble_log_.clear();
        // This worker's own entries come back when it was slow to refresh
        // them: it is still sending those; taking them over again would send twice.
        for (auto& e : entries) e.partition = keys_.partition;
        std::erase_if(entries, [&](const queue::stream_entry& e) { return held_.holds({e.id, e.partition}); });
        if (entries.empty()) continue;
        // How often each was delivered: a job that kills every worker taking it
        // must end as a dead letter, not loop through the fleet forever.
        std::vector<redis::command> ask;
        queue::append_delivery_count_commands(keys_, entries, ask);
        auto counts = co_await conn_.exec(ask);
        if (!counts.ok() || !queue::parse_delivery_counts(counts.replies, entries))
            log::warn("cannot read delivery counts of taken-over jobs; taking them over anyway",
                      "command=XPENDING error=" + log::value(counts.ok() ? "unexpected reply" : counts.error));
        reclaimed_ += entries.size();
        log::info("reclaimed jobs from a stalled worker", "count=" + std::to_string(entries.size()) + " idle_ms=" +
                                                              std::to_string(ctx_.config.visibility_timeout.count()));
        co_await next_.admit(std::move(entries), delivered_at);
    } while (cursor != "0-0");
    co_return true;
}

asio::awaitable<void> reclaimer::run() {
    const auto interval = std::max<std::chrono::milliseconds>(ctx_.config.visibility_timeout / 2, 100ms);
    while (!stopping_) {
        co_await detail::sleep_for(timer_, interval);
        if (stopping_) break;
        const bool ok = co_await step();
        if (ok) {
            backoff_.reset();
            continue;
        }
        if (!stopping_) co_await detail::sleep_for(timer_, backoff_.next(ctx_.unit_random()));
    }
}

}  // namespace outq::runtime
