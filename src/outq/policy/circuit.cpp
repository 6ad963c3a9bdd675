#include "outq/policy/circuit.hpp"

#include <algorithm>

namespace outq::policy {

std::chrono::milliseconds default_probe_timeout(std::chrono::milliseconds connect_timeout,
                                                std::chrono::milliseconds tls_handshake_timeout,
                                                std::chrono::milliseconds request_timeout) {
    return connect_timeout + tls_handshake_timeout + request_timeout + std::chrono::seconds(5);
}

circuit_signal circuit_signal_of(const send_outcome& o, bool ended_by_worker, bool probe) {
    if (ended_by_worker) return circuit_signal::neutral;
    if (probe && o.http_status != 0 && o.cls != outcome_class::retryable && o.cls != outcome_class::ambiguous)
        return circuit_signal::success;
    switch (o.cls) {
        case outcome_class::success:
            return circuit_signal::success;
        case outcome_class::retryable:
        case outcome_class::ambiguous:
            return circuit_signal::failure;
        case outcome_class::rate_limited:
        case outcome_class::permanent:
        case outcome_class::auth:
        case outcome_class::validation:
            return circuit_signal::neutral;
    }
    return circuit_signal::neutral;
}

std::string circuit_reason(const send_outcome& o) {
    std::string why = o.error;
    if (why.empty()) why = o.http_status ? "HTTP " + std::to_string(o.http_status) : std::string(to_string(o.cls));
    return excerpt(why, 200);
}

std::chrono::milliseconds circuit_open_for(std::int64_t n, std::chrono::milliseconds open,
                                           std::chrono::milliseconds max_open) {
    const std::int64_t cap = std::max<std::int64_t>(1, max_open.count());
    std::int64_t ms = std::max<std::int64_t>(1, open.count());
    for (std::int64_t i = 1; i < n && ms < cap; ++i) ms *= 2;  // stops at the cap: no overflow
    return std::chrono::milliseconds(std::min(ms, cap));
}

bool is_circuit_pause(std::string_view pause_reason) {
    return pause_reason.substr(0, circuit_pause_prefix.size()) == circuit_pause_prefix;
}

std::string_view to_string(circuit_phase p) {
    switch (p) {
        case circuit_phase::closed:
            return "closed";
        case circuit_phase::open:
            return "open";
        case circuit_phase::half_open:
            return "half_open";
    }
    return "closed";
}

std::optional<circuit_phase> parse_circuit_phase(std::string_view s) {
    if (s == "closed") return circuit_phase::closed;
    if (s == "open") return circuit_phase::open;
    if (s == "half_open") return circuit_phase::half_open;
    return std::nullopt;
}

std::optional<circuit_state> interpret(const queue::circuit_reply& reply) {
    const auto phase = parse_circuit_phase(reply.state);
    if (!phase) return std::nullopt;
    circuit_state s;
    s.phase = *phase;
    s.failures = std::max<std::int64_t>(0, reply.failures);
    s.opens = std::max<std::int64_t>(0, reply.opens);
    s.open_for = std::chrono::milliseconds(std::max<std::int64_t>(0, reply.open_ms));
    s.remaining = s.phase == circuit_phase::open
                      ? std::chrono::milliseconds(std::max<std::int64_t>(0, reply.remaining_ms))
                      : std::chrono::milliseconds(0);
    s.opened = reply.opened;
    return s;
}

circuit_gate gate(const circuit_view& v, unix_ms now) {
    switch (v.phase) {
        case circuit_phase::closed:
            return {};
        case circuit_phase::open:
            if (now < v.open_until) return {circuit_gate::kind::park, v.open_until};
            break;  // the opening is over: half-open
        case circuit_phase::half_open:
            break;
    }
    if (now < v.probe_wait_until) return {circuit_gate::kind::park, v.probe_wait_until};
    return {circuit_gate::kind::probe, 0};
}

bool reports_success(const circuit_view& v) {
    return v.failures > 0 || v.phase != circuit_phase::closed;
}

circuit_view after_failure(const circuit_state& s, unix_ms now) {
    circuit_view v;
    v.phase = s.phase;
    v.failures = s.failures;
    if (s.phase == circuit_phase::open) v.open_until = now + s.remaining.count();
    return v;
}

circuit_view after_success(const circuit_view& v, const queue::success_reply& reply, unix_ms now) {
    if (!reply.closed && reply.was == "open") {
        // Left open by Redis: the opening is not over; keep what is known of it.
        circuit_view kept = v;
        kept.phase = circuit_phase::open;
        kept.open_until = std::max(v.open_until, now);
        return kept;
    }
    return {};
}

circuit_view after_probe(const circuit_view& v, const queue::probe_reply& reply, unix_ms now, bool& won) {
    won = false;
    circuit_view out = v;
    const std::int64_t wait = std::max<std::int64_t>(1, reply.wait_ms);
    if (reply.verdict == "won") {
        won = true;
        out.phase = circuit_phase::half_open;
        out.probe_wait_until = 0;
    } else if (reply.verdict == "busy") {
        out.phase = circuit_phase::half_open;
        out.probe_wait_until = now + wait;
    } else if (reply.verdict == "open") {
        out.phase = circuit_phase::open;
        out.open_until = now + wait;
        out.probe_wait_until = 0;
    } else {
        // "closed": another worker's probe closed it (or it expired). Send as usual.
        out = circuit_view{};
    }
    return out;
}

circuit_view after_pause(const circuit_view& v, std::string_view pause_reason, std::int64_t pause_ms, unix_ms now) {
    if (!is_circuit_pause(pause_reason) || pause_ms < 0) return v;
    circuit_view out = v;
    out.phase = circuit_phase::open;
    out.open_until = std::max(v.phase == circuit_phase::open ? v.open_until : 0, now + pause_ms);
    out.probe_wait_until = 0;
    return out;
}

}  // namespace outq::policy
