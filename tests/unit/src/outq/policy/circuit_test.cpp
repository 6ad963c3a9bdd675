#include <doctest/doctest.h>

#include "outq/policy/circuit.hpp"

using namespace outq;
using namespace std::chrono_literals;
using policy::circuit_gate;
using policy::circuit_phase;
using policy::circuit_signal;

namespace {

send_outcome outcome(outcome_class cls, int status = 0, std::string error = {}) {
    send_outcome o;
    o.cls = cls;
    o.http_status = status;
    o.error = std::move(error);
    return o;
}

queue::circuit_reply reply(std::string state, std::int64_t failures, std::int64_t opens, std::int64_t open_ms,
                           std::int64_t remaining_ms, bool opened) {
    return {std::move(state), failures, opens, open_ms, remaining_ms, opened};
}

}  // namespace

TEST_CASE("connect failures, timeouts, 5xx and ambiguous failures count; 4xx, 429 and auth are neutral") {
    CHECK(policy::circuit_signal_of(outcome(outcome_class::success, 200)) == circuit_signal::success);
    // 5xx and 408 (classify_http_status: retryable), refused or reset before the write.
    CHECK(policy::circuit_signal_of(outcome(outcome_class::retryable, 503)) == circuit_signal::failure);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::retryable, 0, "connect: refused")) ==
          circuit_signal::failure);
    // After the request was written: a timeout, a reset, an unreadable answer.
    CHECK(policy::circuit_signal_of(outcome(outcome_class::ambiguous, 0, "timeout_after_send: x")) ==
          circuit_signal::failure);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::rate_limited, 429)) == circuit_signal::neutral);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::permanent, 422)) == circuit_signal::neutral);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::auth, 401)) == circuit_signal::neutral);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::validation)) == circuit_signal::neutral);
    // The shutdown cancelled it after the write: the worker's doing, not the provider's.
    CHECK(policy::circuit_signal_of(outcome(outcome_class::ambiguous), /*ended_by_worker=*/true) ==
          circuit_signal::neutral);
}

TEST_CASE("for the probe, any answer that is not a failure shows the provider is back") {
    const bool probe = true;
    CHECK(policy::circuit_signal_of(outcome(outcome_class::permanent, 422), false, probe) == circuit_signal::success);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::rate_limited, 429), false, probe) ==
          circuit_signal::success);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::auth, 401), false, probe) == circuit_signal::success);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::retryable, 503), false, probe) == circuit_signal::failure);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::ambiguous), false, probe) == circuit_signal::failure);
    // No answer and no failure (a malformed job, a token the worker could not build): nothing learnt.
    CHECK(policy::circuit_signal_of(outcome(outcome_class::validation), false, probe) == circuit_signal::neutral);
    CHECK(policy::circuit_signal_of(outcome(outcome_class::ambiguous), true, probe) == circuit_signal::neutral);
}

TEST_CASE("the reason is the outcome's error, cut to 200 bytes, or its status") {
    CHECK(policy::circuit_reason(outcome(outcome_class::retryable, 503, "HTTP 503 from webhook")) ==
          "HTTP 503 from webhook");
    CHECK(policy::circuit_reason(outcome(outcome_class::retryable, 502)) == "HTTP 502");
    CHECK(policy::circuit_reason(outcome(outcome_class::ambiguous)) == "ambiguous");
    CHECK(policy::circuit_reason(outcome(outcome_class::retryable, 0, std::string(500, 'x'))).size() == 200);
}

TEST_CASE("each consecutive opening lasts twice the one before, up to the cap") {
    CHECK(policy::circuit_open_for(1, 5000ms, 300000ms) == 5000ms);
    CHECK(policy::circuit_open_for(2, 5000ms, 300000ms) == 10000ms);
    CHECK(policy::circuit_open_for(3, 5000ms, 300000ms) == 20000ms);
    CHECK(policy::circuit_open_for(7, 5000ms, 300000ms) == 300000ms);  // 320 s capped
    CHECK(policy::circuit_open_for(1000, 5000ms, 300000ms) == 300000ms);
    CHECK(policy::circuit_open_for(0, 5000ms, 300000ms) == 5000ms);
    CHECK(policy::circuit_open_for(1, 5000ms, 1000ms) == 1000ms);
}

TEST_CASE("the probe lease defaults to the longest exchange plus 5 s") {
    CHECK(policy::default_probe_timeout(5000ms, 5000ms, 30000ms) == 45000ms);
}

TEST_CASE("a circuit's pause is told by its value") {
    CHECK(policy::is_circuit_pause("circuit: HTTP 503 from webhook"));
    CHECK_FALSE(policy::is_circuit_pause("maintenance"));
    CHECK_FALSE(policy::is_circuit_pause("circuit"));
    CHECK(policy::parse_circuit_phase("half_open") == circuit_phase::half_open);
    CHECK_FALSE(policy::parse_circuit_phase("ajar"));
    CHECK(policy::to_string(circuit_phase::half_open) == "half_open");
}

TEST_CASE("the failure script's reply is read into the circuit's state") {
    auto s = policy::interpret(reply("open", 5, 2, 10000, 10000, true));
    REQUIRE(s);
    CHECK(s->phase == circuit_phase::open);
    CHECK(s->failures == 5);
    CHECK(s->opens == 2);
    CHECK(s->open_for == 10000ms);
    CHECK(s->remaining == 10000ms);
    CHECK(s->opened);
    auto counted = policy::interpret(reply("closed", 3, 0, 0, 0, false));
    REQUIRE(counted);
    CHECK(counted->phase == circuit_phase::closed);
    CHECK(counted->remaining == 0ms);
    CHECK_FALSE(counted->opened);
    CHECK_FALSE(policy::interpret(reply("ajar", 1, 0, 0, 0, false)));
}

TEST_CASE("closed sends; open parks until the opening ends; then one probe") {
    const unix_ms now = 1000000;
    policy::circuit_view v;
    CHECK(policy::gate(v, now).what == circuit_gate::kind::send);
    CHECK_FALSE(policy::reports_success(v));  // nothing to close: no Redis call

    // Two failures, below the threshold: still sends, and a success must now be reported.
    v = policy::after_failure(*policy::interpret(reply("closed", 2, 0, 0, 0, false)), now);
    CHECK(policy::gate(v, now).what == circuit_gate::kind::send);
    CHECK(policy::reports_success(v));

    // The failure that opened it.
    v = policy::after_failure(*policy::interpret(reply("open", 5, 1, 5000, 5000, true)), now);
    auto g = policy::gate(v, now + 100);
    CHECK(g.what == circuit_gate::kind::park);
    CHECK(g.until == now + 5000);
    CHECK(policy::reports_success(v));
    CHECK(policy::gate(v, now + 5000).what == circuit_gate::kind::probe);
}

TEST_CASE("only the winner of the probe lease sends; the others park until its lease ends") {
    const unix_ms now = 2000000;
    policy::circuit_view v;
    v.phase = circuit_phase::open;
    v.open_until = now;
    REQUIRE(policy::gate(v, now).what == circuit_gate::kind::probe);

    bool won = false;
    auto winner = policy::after_probe(v, queue::probe_reply{"won", 0}, now, won);
    CHECK(won);
    CHECK(winner.phase == circuit_phase::half_open);

    auto loser = policy::after_probe(v, queue::probe_reply{"busy", 30000}, now, won);
    CHECK_FALSE(won);
    auto g = policy::gate(loser, now + 10);
    CHECK(g.what == circuit_gate::kind::park);
    CHECK(g.until == now + 30000);
    CHECK(policy::gate(loser, now + 30000).what == circuit_gate::kind::probe);  // ask again

    // Another pod's probe failed meanwhile: open again.
    auto reopened = policy::after_probe(v, queue::probe_reply{"open", 10000}, now, won);
    CHECK_FALSE(won);
    CHECK(policy::gate(reopened, now).until == now + 10000);

    // Another pod's probe closed it: send as usual.
    auto closed = policy::after_probe(v, queue::probe_reply{"closed", 0}, now, won);
    CHECK_FALSE(won);
    CHECK(policy::gate(closed, now).what == circuit_gate::kind::send);
    CHECK_FALSE(policy::reports_success(closed));
}

TEST_CASE("a success closes the view unless Redis left the circuit open") {
    const unix_ms now = 3000000;
    policy::circuit_view v;
    v.phase = circuit_phase::half_open;
    v.failures = 6;
    auto closed = policy::after_success(v, queue::success_reply{"half_open", true}, now);
    CHECK(closed.phase == circuit_phase::closed);
    CHECK(closed.failures == 0);
    CHECK_FALSE(policy::reports_success(closed));

    // A late success of a request sent before the circuit opened: it stays open.
    policy::circuit_view open;
    open.phase = circuit_phase::open;
    open.open_until = now + 4000;
    auto kept = policy::after_success(open, queue::success_reply{"open", false}, now);
    CHECK(policy::gate(kept, now).what == circuit_gate::kind::park);
    CHECK(policy::gate(kept, now).until == now + 4000);
}

TEST_CASE("a circuit's pause met by a claim or a permit tells the worker the circuit is open") {
    const unix_ms now = 4000000;
    policy::circuit_view v;
    auto open = policy::after_pause(v, "circuit: HTTP 503 from webhook", 7000, now);
    CHECK(open.phase == circuit_phase::open);
    CHECK(policy::gate(open, now).until == now + 7000);
    CHECK(policy::reports_success(open));
    // Any other pause is not the circuit's business.
    auto other = policy::after_pause(v, "maintenance", 7000, now);
    CHECK(other.phase == circuit_phase::closed);
    CHECK(policy::after_pause(v, "circuit: x", -1, now).phase == circuit_phase::closed);
}
