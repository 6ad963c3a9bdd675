#pragma once
// Visibility refresh of the entries a worker has in flight. Only entries this
// consumer still owns are refreshed (XCLAIM with min-idle 0 would take back an
// entry another worker already took over after this one stalled): the script
// reads each entry's owner with XPENDING and claims only its own; the others
// come back as lost, so the worker drops them before any byte goes out.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "outq/queue/scripts.hpp"
#include "outq/queue_protocol.hpp"

namespace outq::queue {

extern const char* const refresh_script;

struct held_entry {
    std::string_view entry_id;
};

redis::command refresh_command(const keys& k, const script& sc, std::string_view consumer,
                               const std::vector<held_entry>& entries);
// The entry ids that are no longer this consumer's. False on an unexpected shape.
bool parse_refresh_reply(const redis::value& reply, std::vector<std::string>& lost);

}  // namespace outq::queue
