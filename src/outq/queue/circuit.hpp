#pragma once
// The circuit breaker's Redis side (docs/protocol.md, "Circuit breaker"): the
// scripts and commands on an account's keys `<scope>circuit` (a hash: state,
// failures, opens, opened_at, open_ms, reason), `<scope>circuit:probe` (the
// half-open probe's lease) and `<scope>pause` (an open circuit pauses the
// account), all in the account's slot, and the reading of their replies.
// Times are Redis' own (TIME), so pods with skewed clocks agree; `now_override`
// replaces it, for tests. Pure: nothing here does I/O. What the replies mean
// for a worker is policy/circuit.hpp.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "outq/queue/scripts.hpp"
#include "outq/resp.hpp"

namespace outq::queue {

extern const char* const circuit_failure_script;
extern const char* const circuit_success_script;
extern const char* const circuit_probe_script;

// The keys of an account's circuit: `scope` is keys::scope(provider, account).
std::string circuit_key(std::string_view scope);
std::string circuit_probe_key(std::string_view scope);

// One failure of the account (atomic): counts it (HINCRBY failures) and opens
// the circuit when the count reaches `threshold`, or when the circuit was
// half-open (the probe failed). Opening: state=open, opens+1, opened_at=now,
// open_ms = base_open·2^(opens-1) capped at max_open, reason; the account's
// pause is set to "circuit: <reason>" for open_ms unless it already lasts as
// long (only ever extended, like queue::pause_command); the probe lease is
// dropped. A failure while the circuit is open (a request sent before it
// opened) is counted and changes nothing else. The hash's TTL is set on every
// call: open_ms + max_open after an opening (the half-open phase waits that
// long for a probe), max_open after a failure that did not open it.
// Reply: see circuit_reply.
redis::command record_failure_command(const script& sc, std::string_view scope, int threshold,
                                      std::chrono::milliseconds base_open, std::chrono::milliseconds max_open,
                                      std::string_view reason, std::optional<std::int64_t> now_override = std::nullopt);

// {state, failures, opens, open_ms, remaining_ms, opened}: the circuit after
// the call. state is "closed", "open" or "half_open"; remaining_ms is the time
// left of the opening (0 unless open); opened is 1 when this call opened it.
struct circuit_reply {
    std::string state;
    std::int64_t failures = 0;
    std::int64_t opens = 0;
    std::int64_t open_ms = 0;
    std::int64_t remaining_ms = 0;
    bool opened = false;
};
bool parse_circuit_reply(const redis::value& reply, circuit_reply& out);

// One success of the account: closes the circuit (DEL the hash and the probe
// lease, and DEL the pause only when its value starts with "circuit", never an
// operator's or a 429's), unless the circuit is open and its opening not over
// (a late success of a request sent before it opened): then nothing changes.
redis::command record_success_command(const script& sc, std::string_view scope,
                                      std::optional<std::int64_t> now_override = std::nullopt);
// {state before, closed}: state "closed" (with or without failures: none when
// there was no hash), "open" or "half_open"; closed is 1 when this call deleted
// the circuit (it had failures or was half-open), 0 when there was nothing to
// close or it was left open.
struct success_reply {
    std::string was;
    bool closed = false;
};
bool parse_success_reply(const redis::value& reply, success_reply& out);

// The half-open probe: the lease `<scope>circuit:probe` is taken with SET NX
// PX lease (value: `owner`, the worker's consumer name) only when the circuit
// is half-open, so the fleet sends one probe, not one per pod.
redis::command take_probe_command(const script& sc, std::string_view scope, std::string_view owner,
                                  std::chrono::milliseconds lease,
                                  std::optional<std::int64_t> now_override = std::nullopt);
// {verdict, wait_ms}: "won" (this caller holds the lease: send one request),
// "busy" (another holds it: wait_ms left of its lease), "open" (the circuit is
// open: wait_ms left of the opening), "closed" (no circuit: send as usual).
struct probe_reply {
    std::string verdict;
    std::int64_t wait_ms = 0;
};
bool parse_probe_reply(const redis::value& reply, probe_reply& out);

// For `outq stats`: HGETALL <scope>circuit.
redis::command read_circuit_command(std::string_view scope);
// The hash as the scripts write it; nullopt in `out` when there is none.
struct circuit_record {
    std::string state;  // as stored: "open", or "closed" (failures counted below the threshold)
    std::int64_t failures = 0;
    std::int64_t opens = 0;
    std::int64_t opened_at = 0;  // unix ms, Redis' clock
    std::int64_t open_ms = 0;
    std::string reason;
    // "open" while opened_at + open_ms is after `now`, "half_open" after it,
    // "closed" when it never opened (failures only).
    std::string phase(std::int64_t now) const;
    std::int64_t remaining_ms(std::int64_t now) const;
};
// False (with why in `error`) on a reply that is not a hash or has a field
// that is not a number where a number belongs.
bool parse_circuit_record(const redis::value& reply, std::optional<circuit_record>& out, std::string& error);

}  // namespace outq::queue
