#include "writer.hpp"

#include <algorithm>

#include "outq/detail/async_event.hpp"
#include "outq/queue/completion.hpp"
#include "outq/queue/errors.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using queue::completion;

namespace {
constexpr std::size_t max_batch = 512;
constexpr std::size_t linger_below = 32;
constexpr auto write_linger = 1ms;
constexpr std::size_t max_acks = 512;  // sent entries acknowledged at once
}  // namespace

writer::writer(asio::any_io_executor ex, context& ctx, const queue::keys& partition, redis::connection& conn,
               metrics& stats)
    : ctx_(ctx), keys_(partition), conn_(conn), stats_(stats), timer_(ex), ready_(ex), backoff_(100ms, 5000ms) {}

void writer::push(slot s, completion c) {
    queue_.push_back({std::move(s), std::move(c)});
    ready_.notify_all();
    if (waiting_for_acks_) timer_.cancel();
}

std::chrono::milliseconds writer::ack_delay() const {
    return std::clamp<std::chrono::milliseconds>(ctx_.config.visibility_timeout / 4, 1ms, 1000ms);
}

void writer::stop() {
    stopping_ = true;
    ready_.notify_all();
    timer_.cancel();
}

void writer::set_final_deadline(std::chrono::steady_clock::time_point deadline) {
    final_deadline_ = deadline;
    ready_.notify_all();
    timer_.cancel();
}

void writer::give_up_all(const char* why) {
    if (queue_.empty()) return;
    log::error("could not write outcomes before exit; those jobs stay pending and another worker takes them over",
               "count=" + std::to_string(queue_.size()) + " reason=" + log::value(why));
    queue_.clear();  // each slot abandons itself
    unknown_ = 0;
}

void writer::log_sent(const completion& c) {
    const int budget = ctx_.config.log_sent_per_second;
    if (budget <= 0 || !log::enabled(log::level::info)) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - sent_log_second_ >= 1s) {
        sent_log_second_ = now;
        sent_logged_ = 0;
    }
    if (sent_logged_ >= budget) {
        ++sent_not_logged_;  // said on the next line that is written
        return;
    }
    ++sent_logged_;
    std::string fields = "id=" + log::value(c.job_id) + " provider=" + log::value(c.provider) +
                         " account=" + log::value(c.account) + " attempts=" + std::to_string(c.env.attempts);
    if (c.http_status) fields += " http_status=" + std::to_string(c.http_status);
    if (c.env.enqueued_at && c.completed_at >= c.env.enqueued_at)
        fields += " ms=" + std::to_string(c.completed_at - c.env.enqueued_at);
    if (!c.traceparent.empty()) fields += " traceparent=" + c.traceparent;
    if (sent_not_logged_) {
        fields += " not_logged=" + std::to_string(sent_not_logged_);
        sent_not_logged_ = 0;
    }
    log::info("job sent", fields);
}

void writer::count(const completion& c) {
    static constexpr const char* names[] = {"sent", "dead", "retry", "delay", "duplicate"};
    switch (c.what) {
        case completion::kind::sent:
            ++counts_.sent;
            break;
        case completion::kind::dead:
            ++counts_.dead;
            break;
        case completion::kind::retry:
            ++counts_.retried;
            break;
        case completion::kind::delay:
            ++counts_.delayed;
            break;
        case completion::kind::duplicate:
            if (c.own_entry) {
                ++counts_.already_done;  // this entry's own outcome, acknowledged late: no new outcome
                return;
            }
            ++counts_.duplicates;
            break;
    }
    labels_.clear();                                             // reused: no allocation per job
    stats_.append_scope_labels(labels_, c.provider, c.account);  // _unknown_ when not configured
    append_label(labels_, "outcome", names[static_cast<int>(c.what)]);
    if (c.what == completion::kind::dead) append_label(labels_, "class", c.dead_class);
    stats_.inc("outq_jobs_total", labels_);
}

asio::awaitable<bool> writer::step() {
    if (queue_.empty()) co_return true;
    const auto now = std::chrono::steady_clock::now();
    if (final_deadline_ && now >= *final_deadline_) {
        give_up_all("final write deadline passed");
        co_return true;
    }
    const std::size_t n = std::min(queue_.size(), max_batch);
    std::vector<const completion*> batch;
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) batch.push_back(&queue_[i].c);
    auto timeout = ctx_.config.redis.command_timeout;
    if (final_deadline_)
        timeout = std::max<std::chrono::milliseconds>(
            1ms, std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(*final_deadline_ - now)));

    std::vector<redis::command> cmds;
    // After a failure the batch goes through the script alone (gated): it
    // writes nothing for an entry acknowledged before, events included.
    // Otherwise its sent entries are acknowledged later, and those written
    // before ride along when due.
    const bool defer = !stopping_ && !final_deadline_;
    const bool acks_due = !acks_.empty() && (!defer || acks_.size() >= max_acks || now - acks_since_ >= ack_delay());
    static const std::vector<std::string> no_acks;
    const auto plan = queue::append_completion_commands(keys_, ctx_.writes, ctx_.scripts.completion, ctx_.consumer,
                                                        batch, failed_before_, cmds, defer, acks_due ? acks_ : no_acks);
    auto r = co_await conn_.exec(cmds, timeout, redis::on_stale::retry_once);
    std::string trouble;
    queue::error_kind kind = queue::error_kind::none;
    std::vector<bool> written, lost;
    const redis::value* refused = nullptr;
    if (r.ok() && !plan.script.empty() && r.replies.size() == plan.commands &&
        queue::classify_error(r.replies[plan.script_command]) == queue::error_kind::noscript) {
        // Redis forgot the script (a restart): send its body once; EVAL caches it again.
        cmds[plan.script_command] =
            queue::completion_script_command(keys_, ctx_.writes, queue::script{ctx_.scripts.completion.body, {}},
                                             ctx_.consumer, batch, plan.script, plan.gated, plan.defer_sent);
        r = co_await conn_.exec(cmds, timeout, redis::on_stale::retry_once);
    }
    if (!r.ok()) {
        // The pipeline may or may not have been applied: sending it again is safe.
        unknown_ = std::max(unknown_, n);
        trouble = r.error;
        kind = queue::error_kind::transient;
    } else if (!queue::parse_completion_replies(plan, r.replies, n, written, lost, &refused)) {
        trouble = "unexpected reply to the completion";
        kind = queue::error_kind::permanent;
    } else if (refused) {
        trouble = refused->str;
        kind = queue::classify_error(*refused);
    }
    if (!trouble.empty()) {
        // Transient trouble (Redis down, OOM, LOADING, a failover) passes by
        // waiting; anything else needs an operator: said at error level, once
        // per interval, and the outcomes stay in memory meanwhile.
        const bool permanent = kind == queue::error_kind::permanent || kind == queue::error_kind::redirect;
        log::write_throttled(trouble_log_, permanent ? log::level::error : log::level::warn,
                             permanent ? "outcome write refused by redis; outcomes kept in memory"
                                       : "redis unavailable; outcomes kept in memory",
                             "command=completion count=" + std::to_string(queue_.size()) +
                                 " kind=" + std::string(queue::to_string(kind)) + " error=" + log::value(trouble));
        failed_before_ = true;
        co_return false;
    }
    failed_before_ = false;
    if (plan.acks) acks_.clear();
    std::uint64_t already = 0, taken_over = 0;
    for (std::size_t i = 0; i < n; ++i) {
        auto& it = queue_.front();
        if (lost[i]) {
            // Another worker took the entry over while this one stalled: its
            // outcome is that worker's to write. Left pending, not written.
            ++taken_over;
            it.s.abandon();
            queue_.pop_front();
            continue;
        }
        // An entry found acknowledged after a write whose reply was lost is
        // that write's doing; otherwise another worker finished it first.
        if (written[i] && plan.defer_sent && it.c.what == completion::kind::sent) {
            if (acks_.empty()) acks_since_ = std::chrono::steady_clock::now();
            acks_.push_back(it.c.env.entry_id);
        }
        if (written[i] || i < unknown_) {
            count(it.c);
            if (it.c.what == completion::kind::sent) log_sent(it.c);
            const bool delayed = it.c.what == completion::kind::retry || it.c.what == completion::kind::delay;
            if (delayed && on_delayed_) on_delayed_(it.c.due_at);
        } else
            ++already;
        it.s.written();
        queue_.pop_front();
    }
    counts_.already_done += already;
    counts_.taken_over += taken_over;
    if (taken_over)
        log::write_throttled(lost_log_, log::level::warn,
                             "outcome not written: another worker took the job over while this one stalled",
                             "count=" + std::to_string(taken_over));
    if (already)
        log::write_throttled(already_log_, log::level::info,
                             "outcome not written: the entry was already acknowledged by another worker",
                             "count=" + std::to_string(already));
    unknown_ -= std::min(unknown_, n);
    if (trouble_log_.clear()) log::info("redis writes recovered", "queued=" + std::to_string(queue_.size()));
    last_ok_ = std::chrono::steady_clock::now();
    co_return true;
}

asio::awaitable<bool> writer::flush_acks() {
    if (acks_.empty()) co_return true;
    auto timeout = ctx_.config.redis.command_timeout;
    if (final_deadline_)
        timeout = std::max<std::chrono::milliseconds>(
            1ms, std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                       *final_deadline_ - std::chrono::steady_clock::now())));
    std::vector<redis::command> cmds;
    const std::size_t n = queue::append_ack_commands(keys_, acks_, cmds);
    auto r = co_await conn_.exec(cmds, timeout, redis::on_stale::retry_once);
    const redis::value* refused = nullptr;
    std::string trouble;
    if (!r.ok())
        trouble = r.error;
    else if (!queue::ack_replies_ok(r.replies, 0, n, &refused))
        trouble = "unexpected reply to XACK or XDEL";
    else if (refused)
        trouble = refused->str;
    if (!trouble.empty()) {
        // Safe to repeat; meanwhile the entries stay pending with their results written.
        log::write_throttled(
            ack_log_, log::level::warn, "acknowledging sent jobs failed; retrying",
            "command=XACK,XDEL count=" + std::to_string(acks_.size()) + " error=" + log::value(trouble));
        co_return false;
    }
    acks_.clear();
    if (ack_log_.clear()) log::info("acknowledging sent jobs works again");
    co_return true;
}

asio::awaitable<void> writer::run() {
    for (;;) {
        if (queue_.empty() && !acks_.empty()) {
            const auto now = std::chrono::steady_clock::now();
            if (final_deadline_ && now >= *final_deadline_) {
                // Their results are written: whoever takes them over finds them and sends nothing.
                log::warn("sent jobs left unacknowledged at exit; another worker acknowledges them",
                          "count=" + std::to_string(acks_.size()));
                counts_.unacknowledged += acks_.size();
                acks_.clear();
                continue;
            }
            if (!stopping_ && !final_deadline_ && acks_.size() < max_acks && now - acks_since_ < ack_delay()) {
                waiting_for_acks_ = true;
                co_await detail::sleep_for(timer_, acks_since_ + ack_delay() - now);
                waiting_for_acks_ = false;
                continue;
            }
            if (co_await flush_acks()) {
                backoff_.reset();
                continue;
            }
            auto delay = backoff_.next(ctx_.unit_random());
            if (final_deadline_)
                delay = std::min(delay, std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::max(*final_deadline_ - now, std::chrono::steady_clock::duration(0))) +
                                            1ms);
            co_await detail::sleep_for(timer_, delay);
            continue;
        }
        if (queue_.empty()) {
            if (stopping_) co_return;
            co_await ready_.wait();
            continue;
        }
        // A few outcomes queued while sends are still finishing: wait a
        // moment for more, so one script call writes a batch, not a job.
        if (queue_.size() < linger_below && !stopping_ && !final_deadline_)
            co_await detail::sleep_for(timer_, write_linger);
        const bool landed = co_await step();
        if (landed) {
            backoff_.reset();
            continue;
        }
        auto delay = backoff_.next(ctx_.unit_random());
        if (final_deadline_) {
            const auto left = *final_deadline_ - std::chrono::steady_clock::now();
            if (left <= 0s) continue;  // step() gives up
            delay = std::min(delay, std::chrono::duration_cast<std::chrono::milliseconds>(left) + 1ms);
        }
        co_await detail::sleep_for(timer_, delay);
    }
}

writers::writers(asio::any_io_executor ex, context& ctx, redis::connection& conn, metrics& stats) {
    parts_.reserve(ctx.partitions.size());
    for (const auto& k : ctx.partitions) parts_.push_back(std::make_unique<writer>(ex, ctx, k, conn, stats));
}

void writers::stop() {
    for (auto& w : parts_) w->stop();
}

void writers::set_final_deadline(std::chrono::steady_clock::time_point deadline) {
    for (auto& w : parts_) w->set_final_deadline(deadline);
}

writer::counts writers::written() const {
    writer::counts sum;
    for (auto& w : parts_) {
        const auto& c = w->written();
        sum.sent += c.sent;
        sum.dead += c.dead;
        sum.retried += c.retried;
        sum.delayed += c.delayed;
        sum.duplicates += c.duplicates;
        sum.already_done += c.already_done;
        sum.taken_over += c.taken_over;
        sum.unacknowledged += c.unacknowledged;
    }
    return sum;
}

std::size_t writers::queued() const {
    std::size_t n = 0;
    for (auto& w : parts_) n += w->queued();
    return n;
}

std::chrono::steady_clock::time_point writers::last_ok() const {
    auto t = parts_.front()->last_ok();
    for (auto& w : parts_) t = std::max(t, w->last_ok());
    return t;
}

bool writers::failing() const {
    for (auto& w : parts_)
        if (w->failing()) return true;
    return false;
}

}  // namespace outq::runtime
