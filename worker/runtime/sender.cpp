#include "sender.hpp"

#include <boost/asio/steady_timer.hpp>

#include "outq/backoff.hpp"
#include "outq/detail/async_event.hpp"
#include "outq/policy/sending.hpp"
#include "outq/queue/control.hpp"
#include "outq/queue/errors.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

sender::sender(asio::any_io_executor ex, context& ctx, http_client& http, token_cache& tokens,
               redis::connection& limiter, writer& out, heartbeat& beat, metrics& stats)
    : executor_(ex),
      ctx_(ctx),
      http_(http),
      tokens_(tokens),
      limiter_(limiter),
      out_(out),
      beat_(beat),
      stats_(stats) {}

void sender::drop_lost(std::vector<delivery>& items) {
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < items.size();) {
        if (!items[i].slot.state().lost) {
            ++i;
            continue;
        }
        ++dropped;
        items[i].slot.abandon();  // another worker owns it now and sends it
        items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (dropped)
        log::write_throttled(lost_log_, log::level::warn,
                             "not sending jobs another worker took over while this one stalled",
                             "count=" + std::to_string(dropped));
}

asio::awaitable<void> sender::release_lease(std::string_view scope, std::string& lease_id) {
    if (lease_id.empty()) co_return;
    // ZREM is idempotent.
    std::vector<redis::command> cmd{queue::release_lease_command(scope, lease_id)};
    co_await limiter_.exec(cmd, std::nullopt, redis::on_stale::retry_once);
    lease_id.clear();
}

// Confirms, before any byte goes out, that no other worker took these
// entries over while this one stalled; false when the send must not go on
// now (the worker is stopping for good).
asio::awaitable<bool> sender::still_ours(std::vector<delivery>& items) {
    drop_lost(items);  // known lost already (the heartbeat said so)
    const auto now = ledger::clock::now();
    std::vector<std::string> stale;
    for (auto& d : items)
        if (now - d.slot.state().confirmed > beat_.trust()) stale.push_back(d.slot.entry_id());
    if (stale.empty()) co_return true;
    outq::backoff wait(200ms, 5000ms);
    asio::steady_timer timer(executor_);
    for (;;) {
        const bool answered = co_await beat_.verify(stale);
        if (answered) break;
        if (ctx_.terminal()) co_return false;
        log::write_throttled(verify_log_, log::level::warn, "cannot confirm ownership of jobs before sending; waiting",
                             "count=" + std::to_string(stale.size()));
        co_await detail::sleep_for(timer, wait.next(ctx_.unit_random()));
    }
    drop_lost(items);
    co_return true;
}

asio::awaitable<bool> sender::wait_for_permit(std::vector<delivery>& items, std::string& lease_id) {
    const delivery& first = items.front();
    const auto& limits = first.account->limits;
    asio::steady_timer timer(executor_);
    const auto lease_ttl = first.account->http.connect_timeout + first.account->http.tls_handshake_timeout +
                           first.account->http.request_timeout + 5s;
    outq::backoff trouble(100ms, 5000ms);
    for (;;) {
        if (ctx_.terminal()) {
            for (auto& d : items) put_back(out_, std::move(d), wall_now_ms());
            co_return false;
        }
        lease_id = ctx_.consumer + ":" + std::to_string(++lease_seq_);
        auto r = co_await limiter_.exec(queue::limit_command(first.scope, limits.requests, limits.window,
                                                             limits.max_in_flight, lease_id, lease_ttl, std::nullopt,
                                                             limits.burst));
        queue::limit_decision decision;
        if (!r.ok() || !queue::parse_limit_reply(r.replies[0], decision)) {
            // Without the shared state the limit cannot be honoured: wait, never send blind.
            const bool permanent = r.ok() && queue::classify_error(r.replies[0]) == queue::error_kind::permanent;
            log::write_throttled(limiter_log_, permanent ? log::level::error : log::level::warn,
                                 "rate limiter unavailable",
                                 "command=EVAL(limit) error=" + log::value(r.ok() ? r.replies[0].str : r.error));
            co_await detail::sleep_for(timer, trouble.next(ctx_.unit_random()));
            continue;
        }
        limiter_log_.clear();
        if (decision.reason == "paused")
            ctx_.pauses.note(first.j.provider, first.j.account, decision.wait_ms, pause_board::clock::now());
        const int n = static_cast<int>(items.size());
        const auto plan = policy::plan_permit(decision, waiting_, n, ctx_.config.concurrency, ctx_.draining(),
                                              wall_now_ms(), ctx_.unit_random());
        switch (plan.what) {
            case policy::permit_plan::kind::go:
                if (limits.max_in_flight == 0) lease_id.clear();
                co_return true;
            case policy::permit_plan::kind::put_back:
                for (auto& d : items) put_back(out_, std::move(d), plan.due);
                co_return false;
            case policy::permit_plan::kind::hold:
                break;
        }
        waiting_ += n;
        for (auto& d : items) d.slot.set_waiting(true);
        co_await detail::sleep_for(timer, plan.wait);
        for (auto& d : items) d.slot.set_waiting(false);
        waiting_ -= n;
    }
}

asio::awaitable<void> sender::pause_scope(const delivery& d, std::optional<std::chrono::milliseconds> duration,
                                          const std::string& reason) {
    // The pause script only ever extends a pause: sending it twice is safe,
    // so a connection that went stale (Redis restarted) is retried at once.
    // When the pause changed it tells the other workers on the control channel.
    std::vector<redis::command> cmd{
        queue::announced_pause_command(ctx_.keys, d.j.provider, d.j.account, duration, reason)};
    auto r = co_await limiter_.exec(cmd, std::nullopt, redis::on_stale::retry_once);
    if (!r.ok() || r.replies[0].is_error())
        log::error("could not set the account pause", "command=EVAL(pause) provider=" + d.j.provider +
                                                          " account=" + log::value(d.j.account) +
                                                          " error=" + log::value(r.ok() ? r.replies[0].str : r.error));
    else {
        ctx_.pauses.note(d.j.provider, d.j.account, duration ? duration->count() : -1, pause_board::clock::now());
        log::info("account paused", "provider=" + d.j.provider + " account=" + log::value(d.j.account) +
                                        " ms=" + (duration ? std::to_string(duration->count()) : "until_resumed") +
                                        " reason=" + log::value(reason));
    }
}

asio::awaitable<std::optional<send_outcome>> sender::reconcile(delivery& d) {
    std::string cursor;
    for (int page = 0; page < 10; ++page) {
        auto request = d.provider->reconcile_request(d.j, *d.account, d.env.ambiguous_since, cursor);
        if (!request) co_return std::nullopt;
        auto r = co_await http_.send(*request, d.account->http, d.account->tls);
        if (!r.ok()) {
            d.env.history = queue::append_history(d.env.history, wall_now_ms(), 0, outcome_class::ambiguous,
                                                  "reconciliation failed (" + r.error + "); sending again");
            co_return std::nullopt;
        }
        auto step = d.provider->parse_reconcile(r.response, d.j, *d.account, d.env.ambiguous_since);
        switch (step.what) {
            case reconcile_step::kind::found: {
                send_outcome o;
                o.cls = outcome_class::success;
                o.http_status = r.response.status;
                o.provider_message_id = step.provider_message_id;
                o.error = "reconciled: an earlier ambiguous attempt had delivered the message";
                log::info("reconciled: already delivered, not sending again",
                          "id=" + log::value(d.j.id) + " provider_message_id=" + log::value(step.provider_message_id));
                co_return o;
            }
            case reconcile_step::kind::next_page:
                cursor = step.cursor;
                continue;
            case reconcile_step::kind::not_found:
                d.env.history =
                    queue::append_history(d.env.history, wall_now_ms(), r.response.status, outcome_class::ambiguous,
                                          "reconciled: not delivered by the earlier attempt; sending again");
                co_return std::nullopt;
            case reconcile_step::kind::failed:
                d.env.history =
                    queue::append_history(d.env.history, wall_now_ms(), r.response.status, outcome_class::ambiguous,
                                          "reconciliation failed (" + step.error + "); sending again");
                co_return std::nullopt;
        }
    }
    co_return std::nullopt;
}

void sender::finish(delivery&& d, send_outcome outcome, unix_ms started, std::string lease_id, bool counts_attempt) {
    const unix_ms now = wall_now_ms();
    const std::string_view scope = d.scope;
    const int attempt = d.env.attempts + (counts_attempt ? 1 : 0);
    const auto cls = outcome.cls;
    auto c = policy::complete(std::move(d.env), std::move(d.j), d.settings->retry, std::move(outcome), started, now,
                              counts_attempt, ctx_.unit_random());
    c.release_marker = d.slot.state().holds_marker;
    if (!lease_id.empty()) {
        c.lease_scope = scope;
        c.lease_id = std::move(lease_id);
    }
    // The trace context, when the job has one, goes on every line about it.
    const std::string trace = c.traceparent.empty() ? std::string() : " traceparent=" + c.traceparent;
    switch (c.what) {
        case queue::completion::kind::sent:
            break;  // said by the writer ("job sent") once the outcome is written
        case queue::completion::kind::retry:
            log::info("send failed, will retry", "id=" + log::value(c.job_id) + " attempt=" + std::to_string(attempt) +
                                                     " class=" + std::string(to_string(cls)) +
                                                     " in_ms=" + std::to_string(c.due_at - now) +
                                                     " error=" + log::value(c.error) + trace);
            c.error.clear();
            break;
        case queue::completion::kind::dead:
            log::info("job dead", "id=" + log::value(c.job_id) + " class=" + c.dead_class +
                                      " error=" + log::value(c.error) + trace);
            break;
        default:
            break;
    }
    out_.push(std::move(d.slot), std::move(c));
}

asio::awaitable<void> sender::send(std::vector<delivery> items, send_report* report, bool permitted) {
    drop_lost(items);
    if (items.empty()) co_return;
    if (ctx_.terminal()) {
        for (auto& d : items) put_back(out_, std::move(d), wall_now_ms());
        co_return;
    }
    const adapter& provider = *items.front().provider;
    const account_settings& account = *items.front().account;
    const std::string_view scope = items.front().scope;
    std::string lease_id;
    if (account.limits.enabled()) {
        if (!permitted) {
            const bool got = co_await wait_for_permit(items, lease_id);
            if (!got) co_return;
        }
        // The wait for a permit may have outlasted a job's expires_at: never send late.
        const unix_ms after_wait = wall_now_ms();
        for (std::size_t i = 0; i < items.size();) {
            auto& d = items[i];
            if (!d.j.expires_at || *d.j.expires_at > after_wait) {
                ++i;
                continue;
            }
            auto c = policy::dead_letter(
                std::move(d.env), d.j.id, d.j.provider, d.j.account, dead_class::expired,
                "expires_at " + format_rfc3339(*d.j.expires_at) + " passed while the job waited for its rate limit",
                after_wait);
            c.release_marker = d.slot.state().holds_marker;
            out_.push(std::move(d.slot), std::move(c));
            items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
        }
    }
    // Nothing goes out for a job another worker took over meanwhile.
    bool ours = true;
    if (!items.empty()) ours = co_await still_ours(items);
    if (!ours) {
        for (auto& d : items) d.slot.abandon();
        items.clear();
    }
    if (items.empty()) {
        co_await release_lease(scope, lease_id);
        co_return;
    }

    // Reconciliation first: a job an earlier attempt delivered is done.
    for (std::size_t i = 0; i < items.size();) {
        if (items[i].env.ambiguous_since == 0) {
            ++i;
            continue;
        }
        auto found = co_await reconcile(items[i]);
        items[i].env.ambiguous_since = 0;
        if (!found) {
            ++i;
            continue;
        }
        finish(std::move(items[i]), std::move(*found), wall_now_ms(), {}, /*counts_attempt=*/false);
        items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (items.empty()) {
        co_await release_lease(scope, lease_id);
        co_return;
    }

    // Asked by the HTTP client right before the first byte goes out: the
    // ownership confirmed before is still recent enough to trust.
    const std::function<bool()> may_write = [this, &items] {
        const auto now = ledger::clock::now();
        for (auto& d : items)
            if (d.slot.state().lost || now - d.slot.state().confirmed > beat_.trust()) return false;
        return true;
    };
    std::vector<batch_item> batch;
    batch.reserve(items.size());
    for (auto& d : items) batch.push_back({&d.j, d.env.attempts + 1});
    const bool needs_token = provider.token_request(account).has_value();
    bool token_refreshed = false;
    std::vector<send_outcome> outcomes;
    bool halve = false;
    unix_ms started = 0;
    std::optional<std::chrono::milliseconds> provider_hold;  // RateLimit headers: none left
    bool ended_by_worker = false;                            // the shutdown cancelled the exchange
    for (;;) {
        std::string token;
        std::optional<send_outcome> failure;
        if (needs_token) {
            auto t = co_await tokens_.get(provider, account);
            if (t.token)
                token = std::move(t.token->value);
            else
                failure = std::move(t.failure);
        }
        started = wall_now_ms();
        if (ctx_.terminal()) {
            // Stopping for good before this request went out: put back.
            for (auto& d : items) put_back(out_, std::move(d), started);
            co_await release_lease(scope, lease_id);
            co_return;
        }
        if (failure) {
            outcomes.assign(items.size(), *failure);
            break;
        }
        auto request =
            provider.build_batch_request(batch, account, attempt_context{batch.front().attempt_number, started, token});
        // Forwarded only where the account opts in (the provider is a third
        // party), and only for a request of one job: a batch has no one trace.
        if (account.http.forward_traceparent && items.size() == 1 && !items.front().j.traceparent.empty())
            request.headers.push_back({"traceparent", items.front().j.traceparent});
        http_result result = co_await http_.send(request, account.http, account.tls, &may_write);
        if (result.failure == http_failure::withdrawn) {
            // The worker stalled between the ownership check and the write
            // (a long pause, a SIGSTOP): confirm again; lost jobs are dropped.
            const bool confirmed = co_await still_ours(items);
            if (!confirmed) {
                for (auto& d : items) d.slot.abandon();
                items.clear();
            }
            if (items.empty()) {
                co_await release_lease(scope, lease_id);
                co_return;
            }
            batch.clear();
            for (auto& d : items) batch.push_back({&d.j, d.env.attempts + 1});
            continue;
        }
        std::string send_labels;
        stats_.append_scope_labels(send_labels, items.front().j.provider, items.front().j.account);
        stats_.observe("outq_send_duration_seconds", send_labels,
                       static_cast<double>(wall_now_ms() - started) / 1000.0);
        if (result.failure == http_failure::cancelled) {
            if (!result.request_written) {
                // Nothing reached the provider: the jobs go back as they were.
                for (auto& d : items) put_back(out_, std::move(d), wall_now_ms());
                co_await release_lease(scope, lease_id);
                co_return;
            }
            // The request was written: the provider may have it. An ambiguous
            // attempt, with its time, so reconciliation can look it up.
            send_outcome o;
            o.cls = outcome_class::ambiguous;
            o.error = "cancelled by shutdown after the request was written";
            outcomes.assign(items.size(), o);
            ended_by_worker = true;
            break;
        }
        if (result.ok() && needs_token && !token_refreshed && provider.token_rejected(result.response, account)) {
            // A stale token is not the job's fault: refresh once and send again.
            tokens_.invalidate(account, token);
            token_refreshed = true;
            if (account.limits.enabled()) {
                // The resend is a request of its own: it needs its own permit.
                co_await release_lease(scope, lease_id);
                const bool permitted = co_await wait_for_permit(items, lease_id);
                if (!permitted) co_return;
            }
            continue;
        }
        if (result.ok()) {
            const unix_ms answered = wall_now_ms();
            outcomes = provider.classify_batch(result.response, batch, account, answered, halve);
            provider_hold = rate_limit_exhausted_for(result.response, answered);
        } else {
            outcomes.assign(items.size(), outcome_from_failure(result));
        }
        break;
    }
    if (report && started != 0) {
        report->requested = true;
        for (auto& o : outcomes) {
            const auto signal = policy::circuit_signal_of(o, ended_by_worker, report->probe);
            if (signal == policy::circuit_signal::failure) {
                report->signal = signal;
                report->failed = true;
                report->reason = policy::circuit_reason(o);
                break;
            }
            if (signal == policy::circuit_signal::success) report->signal = signal;
        }
    }
    if (outcomes.size() != items.size()) {
        send_outcome broken;
        broken.cls = outcome_class::ambiguous;
        broken.error = "adapter returned " + std::to_string(outcomes.size()) + " outcomes for " +
                       std::to_string(items.size()) + " jobs";
        outcomes.assign(items.size(), broken);
    }
    if (halve && items.size() > 1) {
        // The provider found the request too heavy: send it again as two halves.
        log::info("batch too heavy for the provider, halving", "size=" + std::to_string(items.size()));
        co_await release_lease(scope, lease_id);
        std::vector<delivery> second(
            std::make_move_iterator(items.begin() + static_cast<std::ptrdiff_t>(items.size() / 2)),
            std::make_move_iterator(items.end()));
        items.resize(items.size() / 2);
        spawn_(std::move(second));
        spawn_(std::move(items));
        co_return;
    }
    const delivery& first = items.front();
    for (auto& hold : policy::holds_after_answer(outcomes, first.settings->retry, first.env.rate_limited, provider_hold,
                                                 first.j.provider, ctx_.unit_random()))
        co_await pause_scope(first, hold.duration, hold.reason);
    for (std::size_t i = 0; i < items.size(); ++i)
        finish(std::move(items[i]), std::move(outcomes[i]), started, i == 0 ? lease_id : std::string(), true);
}

}  // namespace outq::runtime
