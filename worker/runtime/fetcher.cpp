#include "fetcher.hpp"

#include "outq/detail/async_event.hpp"
#include "outq/policy/fetch_size.hpp"
#include "outq/queue/admin.hpp"
#include "outq/queue/errors.hpp"
#include "outq/queue/format.hpp"
#include "outq/queue/group.hpp"
#include "outq/queue/oversized.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr auto fetch_linger = 2ms;
}

fetcher::fetcher(asio::any_io_executor ex, context& ctx, const queue::keys& partition, redis::connection& fetch,
                 redis::connection& control, ledger& held, admission& next, task_group& tasks)
    : ctx_(ctx),
      keys_(partition),
      fetch_(fetch),
      control_(control),
      held_(held),
      next_(next),
      tasks_(tasks),
      timer_(ex),
      backoff_(100ms, 5000ms),
      entry_bytes_(policy::initial_entry_bytes) {}

void fetcher::stop() {
    if (stopping_) return;
    stopping_ = true;
    timer_.cancel();
    held_.changed().notify_all();
    const auto id = fetch_.client_id();
    if (reading_ && id != 0) {
        tasks_.spawn("unblock fetch", [](redis::connection& c, std::int64_t client) -> asio::awaitable<void> {
            co_await c.exec(queue::unblock_command(client));
        }(control_, id));
    }
}

int fetcher::free() const {
    // Free concurrency, and room in memory: what waits in lanes (held, not
    // active) holds no slot but counts against the lanes' buffer.
    const int waiting = held_.held() - held_.active();
    return std::min(ctx_.config.concurrency - held_.active(), ctx_.config.lanes.buffer - waiting);
}

int fetcher::room() const {
    return free() - held_.reserved();
}

asio::awaitable<bool> fetcher::step() {
    // A partition's share of what is free: an idle partition's blocked read
    // holds no more than that, and a busy one reads again at once.
    const int partitions = static_cast<int>(ctx_.partitions.size());
    const int share = partitions == 1 ? room() : std::max(1, (free() + partitions - 1) / partitions);
    const int count =
        policy::fetch_count(std::min({ctx_.config.fetch_batch, room(), share}), entry_bytes_, ctx_.config.fetch_bytes);
    if (count <= 0) co_return true;
    const auto promised = held_.reserve(count);
    if (oversized_count_ > 0) co_return co_await take_oversized_read(oversized_count_, ledger::clock::now());
    // A long block costs nothing while idle: stop() ends it at once with
    // CLIENT UNBLOCK. Without a known client id it stays short.
    const auto block = fetch_.client_id() != 0 ? 2000ms : 300ms;
    const auto delivered_at = ledger::clock::now();
    reading_ = true;
    auto r = co_await fetch_.exec(queue::read_group_command(keys_, ctx_.consumer, count, block),
                                  ctx_.config.redis.command_timeout + block);
    reading_ = false;
    if (r.too_large) {
        oversized_count_ = count;  // all of them, even when less room is free on a second try
        co_return co_await take_oversized_read(count, delivered_at);
    }
    if (!r.ok()) {
        failing_ = true;
        log::write_throttled(trouble_log_, log::level::warn, "redis unavailable",
                             "command=XREADGROUP error=" + log::value(r.error));
        co_return false;
    }
    auto& reply = r.replies[0];
    if (reply.error_is("NOGROUP")) {
        log::warn("consumer group missing (Redis restarted without data?); recreating",
                  "command=XREADGROUP error=" + log::value(reply.str));
        // The format key went with the data: written again (SET NX) with the group.
        auto cmds = queue::claim_new_queue_commands(keys_);
        cmds.push_back(queue::create_group_command(keys_));
        auto c = co_await control_.exec(cmds);
        if (c.ok() && queue::parse_create_group(c.replies.back())) co_return true;
        co_return false;
    }
    std::vector<queue::stream_entry> entries;
    if (reply.is_error() || !queue::parse_xreadgroup(reply, entries)) {
        const auto kind = queue::classify_error(reply);
        log::write_throttled(trouble_log_, kind == queue::error_kind::transient ? log::level::warn : log::level::error,
                             "XREADGROUP failed",
                             "command=XREADGROUP kind=" + std::string(queue::to_string(kind)) +
                                 " error=" + log::value(reply.is_error() ? reply.str : "unexpected reply shape"));
        failing_ = true;
        co_return false;
    }
    if (trouble_log_.clear()) log::info("fetching works again");
    failing_ = false;
    last_ok_ = std::chrono::steady_clock::now();
    std::size_t bytes = 0;
    for (auto& e : entries) {
        e.partition = keys_.partition;
        for (const auto& [k, v] : e.fields) bytes += k.size() + v.size();
    }
    entry_bytes_ = policy::next_entry_bytes(entry_bytes_, bytes, entries.size());
    if (!entries.empty()) last_read_ = entries.back().id;  // a read of new entries returns them in id order
    if (!entries.empty()) co_await next_.admit(std::move(entries), delivered_at);
    co_return true;
}

asio::awaitable<bool> fetcher::take_oversized_read(int count, ledger::clock::time_point delivered_at) {
    namespace oversized = queue::oversized;
    log::write_throttled(oversized_log_, log::level::warn, "a read was too large to take; its jobs are sized in Redis",
                         "limit_bytes=" + std::to_string(policy::reply_limit(ctx_.config)) +
                             " count=" + std::to_string(count) + " stream=" + keys_.jobs);
    auto r = co_await fetch_.exec(
        oversized::inspect_command(keys_, ctx_.consumer, last_read_, count, ctx_.config.max_job_bytes));
    std::vector<oversized::inspected> found;
    if (!r.ok() || !oversized::parse_inspection(r.replies[0], keys_.partition, found)) {
        failing_ = true;
        log::write_throttled(trouble_log_, log::level::warn, "sizing the entries of a read too large failed",
                             "error=" + log::value(!r.ok() ? r.error : r.replies[0].str));
        co_return false;
    }
    // Taken before (a try of this that failed half way): held, not admitted twice.
    std::erase_if(found, [&](const oversized::inspected& i) { return held_.holds({i.id, keys_.partition}); });
    std::vector<queue::stream_entry> stubs;
    std::size_t bytes = 0, read = 0;
    std::string highest = last_read_;
    for (auto& i : found) {
        if (highest.empty() || queue::admin::entry_before(highest, i.id)) highest = i.id;
        if (i.stub) stubs.push_back(std::move(*i.stub));
    }
    if (!stubs.empty()) co_await next_.admit(std::move(stubs), delivered_at);
    for (const auto& group : oversized::read_groups(found, ctx_.config.fetch_bytes)) {
        auto g = co_await fetch_.exec(oversized::read_commands(keys_, group));
        std::vector<queue::stream_entry> entries;
        if (!g.ok() || !oversized::parse_reads(g.replies, keys_.partition, entries)) {
            failing_ = true;
            log::write_throttled(trouble_log_, log::level::warn, "reading the entries of a read too large failed",
                                 "error=" + log::value(g.ok() ? "unexpected reply" : g.error));
            co_return false;
        }
        for (const auto& e : entries)
            for (const auto& [k, v] : e.fields) bytes += k.size() + v.size();
        read += entries.size();
        if (!entries.empty()) co_await next_.admit(std::move(entries), delivered_at);
    }
    entry_bytes_ = policy::next_entry_bytes(entry_bytes_, bytes, read);
    last_read_ = highest;
    oversized_count_ = 0;
    failing_ = false;
    last_ok_ = std::chrono::steady_clock::now();
    co_return true;
}

asio::awaitable<void> fetcher::run() {
    while (!stopping_) {
        while (room() <= 0 && !stopping_) co_await held_.changed().wait();
        if (stopping_) break;
        // Busy with little room: let more free up first, so a read (and the
        // claim after it, three Redis calls) serves a batch, not a job.
        const int want = std::min(ctx_.config.fetch_batch, ctx_.config.concurrency) / 2;
        if (held_.active() > 0 && room() < want) {
            co_await detail::sleep_for(timer_, fetch_linger);
            if (stopping_) break;
        }
        // Room in memory short (lanes hold deliveries of a throttled account,
        // which drain slowly): wait a little longer for a batch's worth.
        for (int i = 0;
             i < 10 && ctx_.config.lanes.buffer - (held_.held() - held_.active()) < want && room() < want && !stopping_;
             ++i)
            co_await detail::sleep_for(timer_, fetch_linger * 5);
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
