#include "sender.hpp"

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <map>

#include "outq/backoff.hpp"
#include "outq/detail/async_event.hpp"
#include "outq/policy/sending.hpp"
#include "outq/queue/control.hpp"
#include "outq/queue/errors.hpp"
#include "outq/queue/message_index.hpp"

namespace outq::runtime {

namespace asio = boost::asio;
using namespace std::chrono_literals;

sender::sender(asio::any_io_executor ex, context& ctx, http_client& http, token_cache& tokens,
               redis::connection& limiter, writers& out, heartbeat& beat, metrics& stats)
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
    std::vector<ledger::key> stale;
    for (auto& d : items)
        if (now - d.slot.state().confirmed > beat_.trust()) stale.push_back(d.slot.key());
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

asio::awaitable<bool> sender::wait_for_permit(std::vector<delivery>& items, std::string& lease_id, bool reserve) {
    const delivery& first = items.front();
    const auto& limits = first.account->limits;
    const auto horizon = reserve && limits.max_in_flight == 0 ? outq::reservation_horizon : 0ms;
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
                                                             limits.burst, horizon));
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
        if (decision.reserved && decision.wait_ms > 0) {
            // A place is ours at its time: wait for it here, holding no slot.
            co_await hold(items, timer, std::chrono::milliseconds(decision.wait_ms));
            if (ctx_.terminal()) {
                for (auto& d : items) put_back(out_, std::move(d), wall_now_ms());
                co_return false;
            }
            lease_id.clear();
            co_return true;
        }
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
        co_await hold(items, timer, plan.wait);
    }
}

asio::awaitable<void> sender::hold(std::vector<delivery>& items, asio::steady_timer& timer,
                                   std::chrono::milliseconds wait) {
    // Waiting in memory for a permit holds no concurrency slot (outq_limiter_waiting_jobs).
    const int n = static_cast<int>(items.size());
    waiting_ += n;
    for (auto& d : items) d.slot.set_waiting(true);
    co_await detail::sleep_for(timer, wait);
    for (auto& d : items) d.slot.set_waiting(false);
    waiting_ -= n;
}

asio::awaitable<void> sender::pause_scope(const delivery& d, std::optional<std::chrono::milliseconds> duration,
                                          const std::string& reason) {
    // The pause script only ever extends a pause: sending it twice is safe,
    // so a connection that went stale (Redis restarted) is retried at once.
    // When the pause changed it tells the other workers on the control channel.
    std::vector<redis::command> cmd{
        queue::announced_pause_command(ctx_.queue_wide(), d.j.provider, d.j.account, duration, reason)};
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

namespace {

// Lookups of one ambiguous attempt that could not tell before the job ends
// as a dead letter of class outcome_unknown (docs/providers/mews.md).
constexpr int max_lookups = 5;
// Pages of one walk: 10 x 100 messages newer than the attempt.
constexpr int max_pages = 10;

}  // namespace

asio::awaitable<bool> sender::reconcile(std::vector<delivery>& items, std::string& lease_id, bool& asked) {
    const adapter& provider = *items.front().provider;
    const account_settings& account = *items.front().account;
    const bool limited = account.limits.enabled();
    // The ambiguous deliveries, by lookup key (Mews: the message thread).
    std::map<std::string, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].env.ambiguous_since == 0) continue;
        auto key = provider.reconcile_key(items[i].j);
        if (key.empty()) {
            items[i].env.ambiguous_since = 0;  // the provider cannot be asked: sent again, as before
            continue;
        }
        groups[std::move(key)].push_back(i);
    }
    if (groups.empty()) co_return true;

    // What each looked-up delivery came to: not there (send it), found
    // (`found_id`), or undecided (a failed lookup, or more than one message
    // could be it: `why`).
    struct verdict {
        enum class kind { not_there, found, undecided } what = kind::undecided;
        std::vector<std::string> candidates;
        std::string found_id, why;
    };
    std::vector<verdict> verdicts(items.size());
    std::vector<send_outcome> lookup_failures;  // for the holds they call for (a 429)
    for (auto& [key, members] : groups) {
        std::vector<const job*> jobs;
        std::vector<unix_ms> since;
        unix_ms earliest = INT64_MAX;
        for (auto i : members) {
            jobs.push_back(&items[i].j);
            since.push_back(items[i].env.ambiguous_since);
            earliest = std::min(earliest, items[i].env.ambiguous_since);
        }
        std::string cursor, failed;
        bool complete = false;
        for (int page = 0; page < max_pages && failed.empty(); ++page) {
            if (asked && limited) {
                // Each page is a request of its own: it takes its own permit.
                co_await release_lease(items.front().scope, lease_id);
                if (!co_await wait_for_permit(items, lease_id, /*reserve=*/true)) co_return false;
            }
            auto request = provider.reconcile_request(jobs, account, earliest, cursor);
            if (!request) {
                failed = "no lookup request";
                break;
            }
            asked = true;
            auto r = co_await http_.send(*request, account.http, account.tls);
            if (!r.ok()) {
                failed = "messages lookup failed: " + r.error;
                break;
            }
            auto got = provider.parse_reconcile(r.response, jobs, account, since, wall_now_ms());
            if (got.what == reconcile_page::kind::failed) {
                failed = got.failure.error;
                lookup_failures.push_back(std::move(got.failure));
                break;
            }
            for (std::size_t m = 0; m < members.size() && m < got.candidates.size(); ++m)
                for (auto& id : got.candidates[m]) verdicts[members[m]].candidates.push_back(std::move(id));
            if (got.cursor.empty()) {
                complete = true;
                break;
            }
            cursor = std::move(got.cursor);
        }
        if (failed.empty() && !complete) failed = "more than " + std::to_string(max_pages) + " pages of newer messages";
        for (auto i : members) {
            if (!failed.empty()) verdicts[i].why = "reconciliation failed (" + failed + ")";
        }
    }

    // Which candidates other jobs own already (queue/message_index.hpp).
    std::vector<std::string> all;
    for (auto& v : verdicts)
        for (auto& id : v.candidates)
            if (std::find(all.begin(), all.end(), id) == all.end()) all.push_back(id);
    std::vector<std::string> owners;
    std::string index_trouble;
    if (!all.empty()) {
        const std::vector<redis::command> read_cmd{queue::read_message_owners_command(items.front().scope, all)};
        auto r = co_await limiter_.exec(read_cmd, std::nullopt, redis::on_stale::retry_once);
        if (!r.ok() || !queue::parse_message_owners(r.replies[0], all.size(), owners))
            index_trouble = r.ok() ? (r.replies[0].is_error() ? r.replies[0].str : "unexpected reply") : r.error;
    }
    auto owner_of = [&](const std::string& id) -> const std::string& {
        static const std::string none;
        const auto at = std::find(all.begin(), all.end(), id);
        return at == all.end() || owners.empty() ? none : owners[static_cast<std::size_t>(at - all.begin())];
    };
    std::vector<std::size_t> to_claim;
    for (auto& [key, members] : groups) {
        for (auto i : members) {
            auto& v = verdicts[i];
            if (!v.why.empty()) continue;
            if (!index_trouble.empty()) {
                v.why = "the message index could not be read (" + index_trouble + ")";
                continue;
            }
            std::vector<const std::string*> free;
            const std::string* own = nullptr;
            for (auto& id : v.candidates) {
                const auto& owner = owner_of(id);
                if (owner == items[i].j.id) own = &id;
                if (owner.empty() &&
                    std::find_if(free.begin(), free.end(), [&](auto* f) { return *f == id; }) == free.end())
                    free.push_back(&id);
            }
            if (own) {
                v.what = verdict::kind::found;  // claimed by an earlier lookup of this job
                v.found_id = *own;
            } else if (free.empty()) {
                v.what = verdict::kind::not_there;
            } else if (free.size() == 1) {
                v.found_id = *free.front();
                to_claim.push_back(i);
            } else {
                v.why = std::to_string(free.size()) + " messages with its text could be it; cannot tell which";
            }
        }
    }
    if (!to_claim.empty()) {
        // SET NX GET: a message two jobs found is the first one's.
        std::vector<redis::command> cmds;
        const auto ttl = static_cast<long long>(ctx_.writes.result_ttl_seconds);
        for (auto i : to_claim)
            cmds.push_back(queue::claim_message_command(items[i].scope, verdicts[i].found_id, items[i].j.id, ttl));
        auto r = co_await limiter_.exec(cmds, std::nullopt, redis::on_stale::retry_once);
        for (std::size_t n = 0; n < to_claim.size(); ++n) {
            auto& v = verdicts[to_claim[n]];
            queue::message_claim claim;
            if (r.ok() && queue::parse_claim_message(r.replies[n], items[to_claim[n]].j.id, claim)) {
                if (claim == queue::message_claim::claimed)
                    v.what = verdict::kind::found;
                else
                    v.why = "the only message that could be it was claimed by another job meanwhile";
            } else {
                v.why = "the message index could not be written";
            }
        }
    }

    if (!lookup_failures.empty()) {
        const delivery& first = items.front();
        for (auto& hold : policy::holds_after_answer(lookup_failures, first.settings->retry, first.env.rate_limited,
                                                     std::nullopt, first.j.provider, ctx_.unit_random()))
            co_await pause_scope(first, hold.duration, hold.reason);
    }
    const bool rate_limited = std::any_of(lookup_failures.begin(), lookup_failures.end(),
                                          [](auto& f) { return f.cls == outcome_class::rate_limited; });
    const auto retry_after = rate_limited ? lookup_failures.front().retry_after : std::nullopt;
    const unix_ms now = wall_now_ms();
    const double jitter = ctx_.unit_random();  // the undecided ones come back together
    std::vector<delivery> rest;
    rest.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        auto& d = items[i];
        auto& v = verdicts[i];
        if (d.env.ambiguous_since == 0 || v.what == verdict::kind::not_there) {
            if (d.env.ambiguous_since != 0) {
                d.env.history =
                    queue::append_history(d.env.history, now, 0, outcome_class::ambiguous,
                                          "reconciled: not delivered by the earlier attempt; sending again");
                d.env.ambiguous_since = 0;
                d.env.lookups = 0;
            }
            rest.push_back(std::move(d));
            continue;
        }
        if (v.what == verdict::kind::found) {
            send_outcome o;
            o.cls = outcome_class::success;
            o.provider_message_id = v.found_id;
            o.error = "reconciled: an earlier ambiguous attempt had delivered the message";
            log::info("reconciled: already delivered, not sending again",
                      "id=" + log::value(d.j.id) + " provider_message_id=" + log::value(v.found_id));
            finish(std::move(d), std::move(o), now, {}, /*counts_attempt=*/false);
            continue;
        }
        // Undecided: never sent blind. Looked up again later, or given up on.
        ++d.env.lookups;
        const std::string why = v.why + "; not sent again (lookup " + std::to_string(d.env.lookups) + " of " +
                                std::to_string(max_lookups) + ")";
        if (d.env.lookups >= max_lookups && !rate_limited) {
            d.env.history = queue::append_history(d.env.history, now, 0, outcome_class::ambiguous, why);
            auto c =
                policy::dead_letter(std::move(d.env), d.j.id, d.j.provider, d.j.account, dead_class::outcome_unknown,
                                    "the outcome of an ambiguous attempt is unknown after " +
                                        std::to_string(max_lookups) + " lookups; last: " + v.why,
                                    now);
            c.release_marker = d.slot.state().holds_marker;
            c.traceparent = d.j.traceparent;
            log::warn("job dead: outcome unknown", "id=" + log::value(d.j.id) + " error=" + log::value(v.why));
            out_.push(std::move(d.slot), std::move(c));
            continue;
        }
        if (rate_limited) --d.env.lookups;  // the provider said wait: not a lookup that could not tell
        send_outcome o;
        o.cls = rate_limited ? outcome_class::rate_limited : outcome_class::ambiguous;
        o.retry_after = retry_after;
        o.error = why;
        finish(std::move(d), std::move(o), now, {}, /*counts_attempt=*/false, jitter);
    }
    items = std::move(rest);
    co_return true;
}

void sender::finish(delivery&& d, send_outcome outcome, unix_ms started, std::string lease_id, bool counts_attempt,
                    double jitter) {
    const unix_ms now = wall_now_ms();
    // What the provider said goes into Redis and the log: never a credential it echoed.
    const auto& secrets = ctx_.config.secrets;
    const std::string_view token = tokens_.current(*d.account);
    if (!secrets.empty() || !token.empty()) {
        secrets.redact(outcome.error, token);
        secrets.redact(outcome.response_excerpt, token);
        secrets.redact(outcome.pause_reason, token);
    }
    const std::string_view scope = d.scope;
    const int attempt = d.env.attempts + (counts_attempt ? 1 : 0);
    const auto cls = outcome.cls;
    auto c = policy::complete(std::move(d.env), std::move(d.j), d.settings->retry, std::move(outcome), started, now,
                              counts_attempt, jitter >= 0 ? jitter : ctx_.unit_random());
    c.release_marker = d.slot.state().holds_marker;
    // A provider that reconciles indexes each message it sent to its job, so
    // that a lookup never gives it to another job.
    if (c.what == queue::completion::kind::sent && !d.provider->reconcile_key(d.j).empty())
        c.index_scope = std::string(scope);
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
            // A place of its own, waited for in memory (a half of a split
            // batch, a lane's late request); polled when the account caps
            // requests in flight.
            const bool got = co_await wait_for_permit(items, lease_id, /*reserve=*/true);
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

    // Reconciliation first: a job an earlier attempt delivered is done, one
    // whose fate cannot be told is not sent blind.
    bool asked = false;
    if (!co_await reconcile(items, lease_id, asked)) co_return;
    if (items.empty()) {
        co_await release_lease(scope, lease_id);
        co_return;
    }
    if (asked && account.limits.enabled()) {
        // The lookups used the permit: the send is a request of its own.
        co_await release_lease(scope, lease_id);
        if (!co_await wait_for_permit(items, lease_id, /*reserve=*/true)) co_return;
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
    inbound_response answer;  // the answer that asked for halves
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
        labels_.clear();  // no co_await until observed: one buffer serves every task
        stats_.append_scope_labels(labels_, items.front().j.provider, items.front().j.account);
        stats_.observe("outq_send_duration_seconds", labels_, static_cast<double>(wall_now_ms() - started) / 1000.0);
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
                const bool resend_permitted = co_await wait_for_permit(items, lease_id);
                if (!resend_permitted) co_return;
            }
            continue;
        }
        if (result.ok()) {
            const unix_ms answered = wall_now_ms();
            outcomes = provider.classify_batch(result.response, batch, account, answered, halve);
            if (halve) answer = result.response;
            provider_hold = rate_limit_exhausted_for(result.response, answered);
        } else {
            outcomes.assign(items.size(), outcome_from_failure(result));
        }
        break;
    }
    if (report && started != 0) {
        report->requested = true;
        report->batch = static_cast<int>(items.size());
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
        // The provider found the request too heavy, or refused it as a whole
        // for something in it: send it again as two halves, using no attempt.
        const bool heavy = provider.batch_too_heavy(answer);
        if (report) report->too_heavy = heavy;
        log::info(heavy ? "batch too heavy for the provider, halving" : "batch refused as a whole, halving to find why",
                  "size=" + std::to_string(items.size()) + " http_status=" + std::to_string(answer.status));
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
    const double jitter = ctx_.unit_random();
    if (report && items.size() == 1 && outcomes[0].cls == outcome_class::permanent && provider.max_batch(account) > 1)
        report->refused_key = provider.batch_key(first.j);
    for (auto& hold : policy::holds_after_answer(outcomes, first.settings->retry, first.env.rate_limited, provider_hold,
                                                 first.j.provider, ctx_.unit_random()))
        co_await pause_scope(first, hold.duration, hold.reason);
    for (std::size_t i = 0; i < items.size(); ++i)
        finish(std::move(items[i]), std::move(outcomes[i]), started, i == 0 ? lease_id : std::string(), true, jitter);
}

}  // namespace outq::runtime
