#pragma once
// The completion of a batch of deliveries (docs/protocol.md, "Delivery
// semantics"): one script call (EVALSHA, every key declared) for the batch's
// outcomes, then the concurrency leases given back (account keys: another
// slot, after the outcomes; a lost release expires by itself).
//
// In the script, a `sent` outcome is written (result SET … EX replacing the
// marker, results event) and acknowledged at the end with the batch's other
// sent entries in one XACK; a script stops at its first failing call, so an
// entry is never acknowledged without its result. Every other outcome (retry,
// delay, dead letter, duplicate ack) — and every outcome of a batch written
// again after a failure (`gated`) — is acknowledged first and written only
// when XACK returned 1, so writing it again after a lost reply changes
// nothing; an outcome of an entry another consumer owns now is not written
// (that consumer took it over).
//
// Deferred acknowledgement (`defer_sent`): the script writes a batch's sent
// outcomes and leaves their entries pending; the writer acknowledges them a
// moment later, many at once, with one XACK and one XDEL (riding on a later
// batch's round trip, or alone). Safe because the result is written first: an
// entry left pending by a worker that died is taken over by another, whose
// claim finds the result and sends nothing.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "outq/queue/scripts.hpp"
#include "outq/queue_protocol.hpp"

namespace outq::queue {

extern const char* const completion_script;

// Where each part of the batch is in the pipeline.
struct completion_plan {
    std::vector<std::size_t> script;  // batch indexes written by the script (all of them)
    bool gated = false;
    std::size_t script_command = 0;  // index of the script call in the pipeline (when `script` is not empty)
    std::size_t commands = 0;        // commands in the pipeline
    std::size_t leases = 0;          // of which lease releases, at the end
    std::size_t indexed = 0;         // message index claims (SET NX GET), first: before the results they stand beside
    bool defer_sent = false;         // the script left its sent entries pending: the writer acknowledges them later
    std::size_t acks = 0;            // XACK and XDEL of sent entries written before (0 or 2), after the script
    std::size_t acks_command = 0;    // index of that XACK in the pipeline
};

// Appends the batch's commands to `out`. `consumer`: this worker's.
// `gated`: every outcome acknowledged first, `sent` ones too — for a batch
// written again after a failure: an entry whose earlier write landed (its
// reply lost) is then written nothing, not even its event again.
// `defer_sent` (ignored when gated): the script leaves sent entries pending.
// `acks`: sent entries written before, acknowledged and deleted after the
// script in the same pipeline.
completion_plan append_completion_commands(const keys& k, const write_settings& s, const script& sc,
                                           std::string_view consumer, const std::vector<const completion*>& batch,
                                           bool gated, std::vector<redis::command>& out, bool defer_sent = false,
                                           const std::vector<std::string>& acks = {});
// The script call alone (to send it again with its body after NOSCRIPT).
redis::command completion_script_command(const keys& k, const write_settings& s, const script& sc,
                                         std::string_view consumer, const std::vector<const completion*>& batch,
                                         const std::vector<std::size_t>& entries, bool gated, bool defer_sent = false);
// XACK <jobs> <group> <ids…> and XDEL <jobs> <ids…> of entries whose outcome
// is written: the number of commands appended (0 for no entries, else 2).
std::size_t append_ack_commands(const keys& k, const std::vector<std::string>& entries,
                                std::vector<redis::command>& out);
// Their replies (`count` from `first`): true when both are integers or one is
// an error (returned in `error`); false on another shape.
bool ack_replies_ok(const std::vector<redis::value>& replies, std::size_t first, std::size_t count,
                    const redis::value** error);

// The replies: per batch entry `written` (its outcome was written now; a
// `sent` outcome of a batch not gated always is) and `lost`
// (another consumer owns it now: not written). An entry of the script that was
// no longer pending (acknowledged before: an earlier write of this batch
// whose reply was lost, or another worker) is neither. False on an
// unexpected shape; a Redis error in any reply is returned in `error`.
bool parse_completion_replies(const completion_plan& plan, const std::vector<redis::value>& replies,
                              std::size_t entries, std::vector<bool>& written, std::vector<bool>& lost,
                              const redis::value** error);

}  // namespace outq::queue
