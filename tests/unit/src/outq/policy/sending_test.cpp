#include <doctest/doctest.h>

#include "outq/policy/sending.hpp"

using namespace outq;
using namespace std::chrono_literals;

namespace {

queue::limit_decision decision(std::int64_t wait_ms, std::string reason, std::string pause_reason) {
    queue::limit_decision d;
    d.wait_ms = wait_ms;
    d.reason = std::move(reason);
    d.pause_reason = std::move(pause_reason);
    return d;
}

}  // namespace

TEST_CASE("permit plan: go, a short wait in memory, or back to the delayed set") {
    using kind = policy::permit_plan::kind;
    const auto go = decision(0, "go", "");
    CHECK(policy::plan_permit(go, 0, 1, 10, false, 1000, 0.5).what == kind::go);

    const auto rate = decision(400, "rate", "");
    auto hold = policy::plan_permit(rate, 0, 1, 10, false, 1000, 0.5);
    CHECK(hold.what == kind::hold);
    CHECK(hold.wait == 400ms);
    // Too many waiters already, or a draining worker: memory is not a queue.
    CHECK(policy::plan_permit(rate, 10, 1, 10, false, 1000, 0.5).what == kind::put_back);
    CHECK(policy::plan_permit(rate, 0, 1, 10, true, 1000, 0.5).what == kind::put_back);

    const auto slow = decision(5000, "rate", "");
    auto back = policy::plan_permit(slow, 0, 1, 10, false, 1000, 0.0);
    CHECK(back.what == kind::put_back);
    CHECK(back.due == 6000);

    const auto paused = decision(2000, "paused", "HTTP 429");
    auto p = policy::plan_permit(paused, 0, 1, 10, false, 1000, 0.0);
    CHECK(p.what == kind::put_back);
    CHECK(p.due == 3000);
}

TEST_CASE("a 429 pauses the account once per request; without Retry-After the backoff is drawn once for all") {
    retry_settings retry;
    retry.base = 1000ms;
    std::vector<send_outcome> outcomes(3);
    for (auto& o : outcomes) {
        o.cls = outcome_class::rate_limited;
        o.http_status = 429;
    }
    auto holds = policy::holds_after_answer(outcomes, retry, 0, std::nullopt, "mews", 0.5);
    REQUIRE(holds.size() == 1);
    REQUIRE(holds[0].duration);
    CHECK(*holds[0].duration == 500ms);
    for (auto& o : outcomes) CHECK(o.retry_after == 500ms);
    CHECK(holds[0].reason == "HTTP 429 from mews");
}

TEST_CASE("Retry-After is clamped to max_retry_after") {
    retry_settings retry;
    retry.max_retry_after = 10s;
    std::vector<send_outcome> outcomes(1);
    outcomes[0].cls = outcome_class::rate_limited;
    outcomes[0].http_status = 429;
    outcomes[0].retry_after = 3600s;
    auto holds = policy::holds_after_answer(outcomes, retry, 0, std::nullopt, "webhook", 0.5);
    REQUIRE(holds.size() == 1);
    CHECK(*holds[0].duration == 10s);
    CHECK(holds[0].reason == "HTTP 429 from webhook with Retry-After");
}

TEST_CASE("RateLimit headers saying none remain hold the fleet, unless a 429 already did") {
    retry_settings retry;
    std::vector<send_outcome> ok(1);
    ok[0].cls = outcome_class::success;
    auto holds = policy::holds_after_answer(ok, retry, 0, 7000ms, "webhook", 0.5);
    REQUIRE(holds.size() == 1);
    CHECK(*holds[0].duration == 7000ms);
    CHECK(policy::holds_after_answer(ok, retry, 0, 0ms, "webhook", 0.5).empty());

    std::vector<send_outcome> limited(1);
    limited[0].cls = outcome_class::rate_limited;
    limited[0].retry_after = 2s;
    CHECK(policy::holds_after_answer(limited, retry, 0, 7000ms, "webhook", 0.5).size() == 1);
}

TEST_CASE("an adapter's own pause is used instead of the generic 429 hold") {
    retry_settings retry;
    std::vector<send_outcome> outcomes(1);
    outcomes[0].cls = outcome_class::rate_limited;
    outcomes[0].pause_account_for = 60000ms;
    outcomes[0].pause_reason = "quota window closed";
    auto holds = policy::holds_after_answer(outcomes, retry, 0, std::nullopt, "onebox", 0.5);
    REQUIRE(holds.size() == 1);
    CHECK(*holds[0].duration == 60000ms);
    CHECK(holds[0].reason == "quota window closed");
}

TEST_CASE("completions from outcomes") {
    retry_settings retry;
    retry.max_attempts = 2;
    auto make_job = [] {
        job j;
        j.id = "j";
        j.provider = "webhook";
        j.account = "a";
        return j;
    };
    queue::envelope env;
    env.entry_id = "1-0";
    send_outcome ok;
    ok.cls = outcome_class::success;
    ok.http_status = 200;
    ok.provider_message_id = "pm";
    auto sent = policy::complete(queue::envelope(env), make_job(), retry, ok, 100, 200, true, 0.5);
    CHECK(sent.what == queue::completion::kind::sent);
    CHECK(sent.env.attempts == 1);
    CHECK(sent.env.history.empty());
    CHECK(sent.provider_message_id == "pm");
    CHECK(sent.completed_at == 200);

    send_outcome lost;
    lost.cls = outcome_class::ambiguous;
    lost.error = "timeout after the request was written";
    auto retry1 = policy::complete(queue::envelope(env), make_job(), retry, lost, 100, 200, true, 0.5);
    CHECK(retry1.what == queue::completion::kind::retry);
    CHECK(retry1.env.ambiguous_since == 100);  // reconciliation looks from here
    CHECK(retry1.env.history.find("ambiguous") != std::string::npos);
    CHECK(retry1.due_at > 200);

    auto second = policy::complete(std::move(retry1.env), make_job(), retry, lost, 300, 400, true, 0.5);
    CHECK(second.what == queue::completion::kind::dead);
    CHECK(second.dead_class == "attempts_exhausted");
    CHECK(second.error.find("gave up after 2 attempts") == 0);
    CHECK(second.env.ambiguous_since == 100);  // the first ambiguous attempt, not the last

    // A reconciliation that found the message made no request.
    auto found = policy::complete(queue::envelope(env), make_job(), retry, ok, 100, 200, false, 0.5);
    CHECK(found.what == queue::completion::kind::sent);
    CHECK(found.env.attempts == 0);
    CHECK_FALSE(found.env.history.empty());
}

TEST_CASE("put-backs and dead letters") {
    queue::envelope env;
    env.entry_id = "1-0";
    job j;
    j.id = "j";
    j.provider = "webhook";
    j.account = "a";
    auto d = policy::delayed(queue::envelope(env), j, 5000, false);
    CHECK(d.what == queue::completion::kind::delay);
    CHECK(d.job_id == "j");
    CHECK(d.provider == "webhook");  // counted under its account, not _unknown_
    CHECK(d.account == "a");
    CHECK(d.due_at == 5000);
    CHECK_FALSE(d.release_marker);
    CHECK(d.env.attempts == 0);
    auto dl = policy::dead_letter(queue::envelope(env), "j", "webhook", "a", dead_class::expired, "late", 7);
    CHECK(dl.what == queue::completion::kind::dead);
    CHECK(dl.dead_class == "expired");
    CHECK(dl.completed_at == 7);
}
