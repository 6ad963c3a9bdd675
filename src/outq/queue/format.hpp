#pragma once
// The queue's format version (docs/protocol.md, "Upgrading from format 1"):
// a worker runs only on a queue of the format it knows, and writes the version
// of a new queue. Commands and reply interpretation only; the preflight and
// `outq migrate` drive them.
#include <string>
#include <vector>

#include "outq/queue_protocol.hpp"

namespace outq::queue {

// The format 1 consumer group, fenced by `outq migrate`.
inline constexpr std::string_view format1_group_name = "outq";

// GET format, XINFO GROUPS jobs.
std::vector<redis::command> format_check_commands(const keys& k);

struct format_verdict {
    enum class kind {
        current,    // format 2: go
        new_queue,  // no format key and no format 1 group: write format 2, then go
        format1,    // a format 1 queue: refuse until `outq migrate` ran
        unknown,    // another value (a newer format, or a migration under way): refuse
        error,      // a reply that is neither (a Redis error): `text` says it
    };
    kind what = kind::error;
    std::string text;  // the value found, or the error
    // An error that waiting does not heal (NOPERM: the user may not read the
    // queue's keys; WRONGTYPE): start-up refuses instead of retrying.
    bool permanent = false;
};
format_verdict read_format(const std::vector<redis::value>& replies);

// SET format 2 NX, then GET format: the queue is format 2 when the GET says so.
std::vector<redis::command> claim_new_queue_commands(const keys& k);
bool claimed_new_queue(const std::vector<redis::value>& replies);

// The sentence a worker refuses with.
std::string refusal_text(const keys& k, const format_verdict& v);

}  // namespace outq::queue
