#include "outq/policy/sending.hpp"

#include <algorithm>

#include "outq/policy/admission.hpp"

namespace outq::policy {

permit_plan plan_permit(const queue::limit_decision& d, int waiting, int jobs, int concurrency, bool draining,
                        unix_ms now, double unit_random) {
    permit_plan p;
    if (d.wait_ms == 0) return p;
    if (d.reason == "paused") {
        p.what = permit_plan::kind::put_back;
        p.due = now + pause_delay(d.wait_ms, unit_random);
        return p;
    }
    if (d.wait_ms > 1000 || draining || waiting + jobs > concurrency) {
        p.what = permit_plan::kind::put_back;
        p.due = now + d.wait_ms + static_cast<std::int64_t>(unit_random * 50.0);
        return p;
    }
    p.what = permit_plan::kind::hold;
    p.wait = std::chrono::milliseconds(d.wait_ms);
    return p;
}

std::vector<fleet_hold> holds_after_answer(std::vector<send_outcome>& outcomes, const retry_settings& retry,
                                           int rate_limited_before,
                                           std::optional<std::chrono::milliseconds> provider_hold,
                                           std::string_view provider, double unit_random) {
    std::vector<fleet_hold> holds;
    bool any_rate_limited = false;
    for (auto& o : outcomes) {
        if (o.cls != outcome_class::rate_limited) continue;
        any_rate_limited = true;
        // An adapter's own pause (a quota window) says more than the generic one.
        if (o.pause_account_for) continue;
        const bool said_when = o.retry_after.has_value();
        auto wait = said_when ? std::clamp(*o.retry_after, std::chrono::milliseconds(0), retry.max_retry_after)
                              : backoff_delay(retry, rate_limited_before + 1, unit_random);
        for (auto& other : outcomes)
            if (other.cls == outcome_class::rate_limited && !other.retry_after) other.retry_after = wait;
        holds.push_back({wait, "HTTP " + std::to_string(o.http_status) + " from " + std::string(provider) +
                                   (said_when ? " with Retry-After" : "")});
        break;
    }
    // The provider says its limit is used up before it says 429: hold off the
    // whole fleet until its window resets instead of earning the 429.
    if (provider_hold && provider_hold->count() > 0 && !any_rate_limited)
        holds.push_back({std::min(*provider_hold, retry.max_retry_after),
                         "rate limit used up (RateLimit headers from " + std::string(provider) + ")"});
    for (auto& o : outcomes) {
        if (!o.pause_account_for) continue;
        holds.push_back({o.pause_account_for->count() > 0 ? o.pause_account_for : std::nullopt, o.pause_reason});
        break;
    }
    return holds;
}

queue::completion dead_letter(queue::envelope&& env, std::string job_id, std::string provider, std::string account,
                              std::string_view cls, std::string error, unix_ms now) {
    queue::completion c;
    c.what = queue::completion::kind::dead;
    c.job_id = std::move(job_id);
    c.provider = std::move(provider);
    c.account = std::move(account);
    c.dead_class = std::string(cls);
    c.error = std::move(error);
    c.completed_at = now;
    c.env = std::move(env);
    return c;
}

queue::completion delayed(queue::envelope&& env, const job& j, unix_ms due, bool release_marker) {
    queue::completion c;
    c.what = queue::completion::kind::delay;
    c.job_id = j.id;
    c.provider = j.provider;  // the metrics' labels
    c.account = j.account;
    c.due_at = due;
    c.release_marker = release_marker;
    c.env = std::move(env);
    return c;
}

queue::completion complete(queue::envelope&& env, job&& j, const retry_settings& retry, send_outcome outcome,
                           unix_ms started, unix_ms now, bool counts_attempt, double unit_random) {
    const int attempt = env.attempts + (counts_attempt ? 1 : 0);
    attempt_counts counts{attempt, env.rate_limited + (outcome.cls == outcome_class::rate_limited ? 1 : 0)};
    const auto decision = decide_next(outcome, counts, retry, j.max_attempts, j.expires_at, now, unit_random);
    env.attempts = counts.total;
    env.rate_limited = counts.rate_limited;
    if (outcome.cls != outcome_class::success || !counts_attempt)
        env.history = queue::append_history(env.history, started, outcome.http_status, outcome.cls, outcome.error);
    if (outcome.cls == outcome_class::ambiguous && env.ambiguous_since == 0) env.ambiguous_since = started;

    queue::completion c;  // the delivery ends here: its strings move on
    c.job_id = std::move(j.id);
    c.provider = std::move(j.provider);
    c.account = std::move(j.account);
    c.meta_json = std::move(j.meta_json);
    c.traceparent = std::move(j.traceparent);
    c.http_status = outcome.http_status;
    c.provider_message_id = std::move(outcome.provider_message_id);
    c.request_id = std::move(outcome.request_id);
    c.response_excerpt = std::move(outcome.response_excerpt);
    c.completed_at = now;
    switch (decision.step) {
        case next_step::done_sent:
            c.what = queue::completion::kind::sent;
            if (!counts_attempt) c.error = std::move(outcome.error);
            break;
        case next_step::retry:
            c.what = queue::completion::kind::retry;
            c.due_at = decision.retry_at;
            c.error = std::move(outcome.error);
            break;
        case next_step::dead:
            c.what = queue::completion::kind::dead;
            c.dead_class = std::string(decision.dead_class);
            if (decision.dead_class == dead_class::attempts_exhausted)
                c.error = "gave up after " + std::to_string(attempt) + " attempts; last: " + outcome.error;
            else if (decision.dead_class == dead_class::expired)
                c.error = "expires_at passes before the next attempt; last: " + outcome.error;
            else
                c.error = std::move(outcome.error);
            break;
    }
    c.env = std::move(env);
    return c;
}

}  // namespace outq::policy
