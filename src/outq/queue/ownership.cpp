#include "outq/queue/ownership.hpp"

namespace outq::queue {

// KEYS[1] jobs, KEYS[1 + i] the in-flight marker of entry i (KEYS[1] again
// when it holds none). ARGV: group, consumer, ttl (ms), then pairs of entry
// id and 1|0 (holds its marker).
const char* const refresh_script = R"lua(
local lost = {}
local n = (#ARGV - 3) / 2
for i = 1, n do
  local id = ARGV[2 + 2 * i]
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
  if row and row[2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
    if ARGV[3 + 2 * i] == '1' then redis.call('PEXPIRE', KEYS[1 + i], ARGV[3]) end
  else
    lost[#lost + 1] = id
  end
end
return lost
)lua";

redis::command refresh_command(const keys& k, const script& sc, std::string_view consumer,
                               std::chrono::milliseconds visibility_timeout, const std::vector<held_entry>& entries) {
    redis::command c = script_call(sc, 1 + static_cast<long long>(entries.size()));
    c.arg(k.jobs);
    for (auto& e : entries) {
        if (e.holds_marker && !e.job_id.empty())
            c.arg(k.inflight_prefix, e.job_id);
        else
            c.arg(k.jobs);
    }
    c.arg(group_name).arg(consumer).arg(static_cast<long long>(visibility_timeout.count()));
    for (auto& e : entries) c.arg(e.entry_id).arg(e.holds_marker && !e.job_id.empty() ? "1" : "0");
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
