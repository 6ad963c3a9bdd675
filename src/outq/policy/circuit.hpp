#pragma once
// The circuit breaker of a provider account (docs/protocol.md, "Circuit
// breaker"), as pure decisions: which outcomes count, how long the nth
// consecutive opening lasts, what the circuit scripts' replies mean, and what
// a worker may do with a send given what it knows of the account's circuit.
// The state itself lives in Redis (queue/circuit.hpp), shared by the fleet;
// `circuit_view` is the little a worker keeps of it between replies. `now` is
// always passed in (unix ms).
//
// The runtime's part, per account with `circuit.enabled`, keeping one
// circuit_view per account:
//   before a send:  gate(view, now): send; park (put back, due `until`, no
//                   attempt used); or probe: take_probe_command, after_probe,
//                   and only when `won` send (one request), else park.
//   after a send:   circuit_signal_of(outcome, cancelled_by_shutdown, won):
//                   failure → record_failure_command (reason circuit_reason),
//                   parse_circuit_reply, interpret, after_failure;
//                   success and (won or reports_success(view)) →
//                   record_success_command, parse_success_reply, after_success;
//                   neutral → nothing.
//   a pause met:    after_pause(view, reason, pause_ms, now) (permit replies
//                   carry the pause's reason).
//   metrics:        set_account_circuit_open(m, provider, account,
//                   view.phase != circuit_phase::closed).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "outq/clock.hpp"
#include "outq/outcome.hpp"
#include "outq/policy/circuit_settings.hpp"
#include "outq/queue/circuit.hpp"

namespace outq::policy {

// The probe lease a config leaves unset: the longest an exchange of the
// account can take (connect + TLS handshake + request timeout) plus 5 s, as
// for the concurrency leases.
std::chrono::milliseconds default_probe_timeout(std::chrono::milliseconds connect_timeout,
                                                std::chrono::milliseconds tls_handshake_timeout,
                                                std::chrono::milliseconds request_timeout);

enum class circuit_signal {
    failure,  // counts toward opening: a connect failure, a timeout, a 5xx, an ambiguous transport failure
    success,  // the provider answered with a success: closes the circuit
    neutral,  // says nothing about the provider's health: 4xx, 429, auth, a malformed job
};

// What one exchange's outcome says about the account. `retryable` (5xx, 408,
// refused, reset or timed out before the request was written) and `ambiguous`
// (the request was written and no readable answer came: a timeout, a reset, a
// malformed answer) are failures; `success` is a success; `rate_limited`
// (429: the rate-limit path, which pauses by itself), `permanent` (4xx),
// `auth` and `validation` are neutral. `ended_by_worker`: the worker ended
// the exchange itself (the shutdown cancelled it): neutral, whatever its class.
// `probe`: the half-open probe, for which any answer of the provider that is
// not a failure (a 4xx, a 429, an auth refusal) shows it is back, and counts
// as a success; otherwise a probe that met a bad message would leave the
// circuit half-open, one request per probe lease, until its TTL.
circuit_signal circuit_signal_of(const send_outcome& o, bool ended_by_worker = false, bool probe = false);

// The reason an opening records (the hash's `reason`, the pause's value after
// "circuit: "): the outcome's error, at most 200 bytes ("HTTP 503 from
// webhook", "connect: Connection refused").
std::string circuit_reason(const send_outcome& o);

// The length of the nth consecutive opening (n >= 1): open·2^(n-1), at most
// max_open (and never below 1 ms). The circuit script computes the same.
std::chrono::milliseconds circuit_open_for(std::int64_t n, std::chrono::milliseconds open,
                                           std::chrono::milliseconds max_open);

// The pause an open circuit sets has this value: "circuit: <reason>".
inline constexpr std::string_view circuit_pause_prefix = "circuit: ";
// Whether a pause's value is a circuit's (what a claim or a permit met).
bool is_circuit_pause(std::string_view pause_reason);

enum class circuit_phase {
    closed,     // requests go
    open,       // the account is paused until the opening ends
    half_open,  // the opening ended: one probe request for the whole fleet
};
std::string_view to_string(circuit_phase p);
// "closed", "open", "half_open"; nullopt for anything else.
std::optional<circuit_phase> parse_circuit_phase(std::string_view s);

// The meaning of record_failure's reply (queue::circuit_reply).
struct circuit_state {
    circuit_phase phase = circuit_phase::closed;
    std::int64_t failures = 0;               // consecutive failures counted, this one included
    std::int64_t opens = 0;                  // consecutive openings
    std::chrono::milliseconds open_for{0};   // the length of the current (or last) opening
    std::chrono::milliseconds remaining{0};  // until the opening ends (0 unless open)
    bool opened = false;                     // this very call opened the circuit
};
// nullopt when the reply names a phase this version does not know.
std::optional<circuit_state> interpret(const queue::circuit_reply& reply);

// What a worker knows of one account's circuit, from the replies it got (and
// the pauses it met). Closed with no failures is the default: such an account
// costs no Redis call on success.
struct circuit_view {
    circuit_phase phase = circuit_phase::closed;
    std::int64_t failures = 0;     // consecutive failures the last reply counted
    unix_ms open_until = 0;        // for open: when the opening ends (then half-open)
    unix_ms probe_wait_until = 0;  // half-open and another holds the probe lease: park until then
};

// Whether a send may go.
struct circuit_gate {
    enum class kind {
        send,   // go (closed)
        probe,  // half-open: take the probe lease first (queue::take_probe_command); only the winner sends
        park,   // open (or another worker probes): back to the delayed set until `until`, no attempt used
    };
    kind what = kind::send;
    unix_ms until = 0;  // for park
};
circuit_gate gate(const circuit_view& v, unix_ms now);

// A success is reported to Redis (record_success) only when the worker knows
// the account had failures or a circuit: otherwise nothing needs closing.
bool reports_success(const circuit_view& v);

// The view after each reply.
circuit_view after_failure(const circuit_state& s, unix_ms now);
// record_success answered: closed, unless the circuit was open and its
// opening not over (a late success of a request sent before it opened), which
// Redis left alone.
circuit_view after_success(const circuit_view& v, const queue::success_reply& reply, unix_ms now);
// take_probe answered; `won` is set when this worker holds the lease and sends
// the probe (its outcome goes to record_failure or record_success as usual).
circuit_view after_probe(const circuit_view& v, const queue::probe_reply& reply, unix_ms now, bool& won);
// A claim or a permit met the account's pause: a circuit's pause (its value
// starts with "circuit: ") says the circuit is open until the pause ends.
// `pause_ms` left of it (negative: until resumed, which a circuit never sets).
circuit_view after_pause(const circuit_view& v, std::string_view pause_reason, std::int64_t pause_ms, unix_ms now);

}  // namespace outq::policy
