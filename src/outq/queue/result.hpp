#pragma once
// The value of `outq:{Q}:result:<job id>` (docs/protocol.md, "The result
// value"): a `sending` marker while a worker holds the job, then the job's
// outcome, both JSON objects whose first member is `status`. Pure text in,
// text out: the claim and the completion build their commands from these.
#include <string>
#include <string_view>

#include "outq/clock.hpp"
#include "outq/queue_protocol.hpp"

namespace outq::queue {

// {"status":"sending","entry":"<entry id>","since":<ms>}
std::string sending_marker(std::string_view entry_id, unix_ms since);
// What every marker of `entry_id` starts with: the completion script compares
// it before it releases a marker, so it never deletes another copy's marker
// or a result.
std::string marker_prefix(std::string_view entry_id);

// The outcome of a `sent` or `dead` completion. For `dead` the text ends open
// (no closing brace): the completion script appends the dead letter's entry
// id, known only once it is written (`,"dead_entry":"<id>"}`).
std::string outcome_json(const completion& c);
// The outcome `outq cancel` writes.
std::string cancelled_json(std::string_view job_id, std::string_view reason, unix_ms at);

// What a result value says, read without a DOM (the claim reads it for the
// copies of a job that met an existing key).
struct result_state {
    enum class kind {
        absent,      // no key
        sending,     // a marker: `entry` holds it
        final,       // an outcome: `status` says which
        unreadable,  // not a value this format writes
    };
    kind what = kind::absent;
    std::string status;
    std::string entry;   // sending: the entry holding it; final: the entry that sent it (when known)
    std::string origin;  // final: the entry of the enqueue, when the entry that sent it was a copy
};
result_state read_result_value(std::string_view value);

}  // namespace outq::queue
