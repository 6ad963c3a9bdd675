#pragma once
// The queue's control channel (docs/protocol.md, "The control channel"): a
// Redis pub/sub channel per queue on which whoever changes an account's state
// (a worker's pause, an operator's `outq pause` / `outq resume`, later a
// circuit or a limit change) says so, so that a worker part asleep on that
// account (a lane waiting for a Retry-After or a permit) hears it at once
// instead of at the end of its sleep; and whoever makes delayed jobs due
// sooner than planned (`outq resume`, `outq job retry-now`) says so, so that
// the movers look at once. The channel only wakes: the state
// itself stays in the account keys, and a message lost (a subscriber that was
// disconnected) is made up for by reading them again.
//
// A message is one line of tab-separated fields, the version first:
//   v1 \t pause   \t <provider> \t <account> \t <ms left, -1 until resumed> \t <reason>
//   v1 \t resume  \t <provider> \t <account>
//   v1 \t circuit \t <provider> \t <account> \t <state>
//   v1 \t limit   \t <provider> \t <account>
//   v1 \t due     \t <partition> \t <unix ms>
// Text fields escape `\` as `\\`, a tab as `\t`, a line feed as `\n` and a
// carriage return as `\r`. A reader ignores fields after the ones it knows
// (v1 may grow at the end) and any message it cannot read. Pure: no I/O.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "outq/queue_protocol.hpp"
#include "outq/resp.hpp"

namespace outq::queue {

inline constexpr std::string_view control_version = "v1";

// outq:{Q}:control: named after the queue's partition tag. A channel is not a
// key (PUBLISH reaches every subscriber of the deployment, cluster included),
// so scripts pass it as an argument, never as a key of another slot.
std::string control_channel(const keys& k);

struct control_message {
    enum class kind { pause, resume, circuit, limit, due };
    kind what = kind::pause;
    std::string provider;
    std::string account;
    std::int64_t pause_ms = -1;  // pause: what is left of it when published; -1 until resumed
    std::string reason;          // pause
    std::string state;           // circuit: the circuit's new state (closed, open, half_open)
    int partition = 0;           // due: the partition whose delayed set holds jobs due sooner
    std::int64_t due_at = 0;     // due: the earliest due time written (unix ms)
    bool operator==(const control_message&) const = default;
};

std::string_view to_string(control_message::kind k);

// A pause for `duration` (none: until resumed).
control_message pause_message(std::string_view provider, std::string_view account,
                              std::optional<std::chrono::milliseconds> duration, std::string_view reason);
control_message resume_message(std::string_view provider, std::string_view account);
control_message circuit_message(std::string_view provider, std::string_view account, std::string_view state);
control_message limit_message(std::string_view provider, std::string_view account);
// Not about an account: delayed jobs of `partition` are due at `at` (or now).
control_message due_message(int partition, std::int64_t at);

std::string encode(const control_message& m);
// nullopt for anything that is not a v1 message of a known kind with every
// field it needs (never throws).
std::optional<control_message> parse_control_message(std::string_view payload);

// PUBLISH <channel> <message>.
redis::command publish_command(const keys& k, const control_message& m);
// The PUBLISH of a due message for the partition of `k`: sent after the
// writes that made its delayed jobs due (a refused PUBLISH fails nothing: the
// movers read the delayed set at their next poll, `mover_poll_ms`, in any case).
redis::command announce_due_command(const keys& k, std::int64_t at);

// The worker's pause script (queue::pause_command) with the pause message it
// publishes when the pause changed.
redis::command announced_pause_command(const keys& k, std::string_view provider, std::string_view account,
                                       std::optional<std::chrono::milliseconds> duration, std::string_view reason);

}  // namespace outq::queue
