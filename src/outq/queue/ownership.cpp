#include "outq/queue/ownership.hpp"

namespace outq::queue {

// KEYS[1] jobs. ARGV: group, consumer, then the entry ids. (Markers have no
// TTL in format 2: nothing else to refresh.)
const char* const refresh_script = R"lua(
local lost = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
  if row and row[2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
  else
    lost[#lost + 1] = id
  end
end
return lost
)lua";

redis::command refresh_command(const keys& k, const script& sc, std::string_view consumer,
                               const std::vector<held_entry>& entries) {
    redis::command c = script_call(sc, 1);
    c.arg(k.jobs).arg(group_name).arg(consumer);
    for (auto& e : entries) c.arg(e.entry_id);
    return c;
}

bool parse_refresh_reply(const redis::value& reply, std::vector<std::string>& lost) {
    lost.clear();
    if (!reply.is_array()) return false;
    for (auto& v : reply.elements) {
        if (!v.is_string()) return false;
        lost.push_back(v.str);
    }
    return true;
}

}  // namespace outq::queue
