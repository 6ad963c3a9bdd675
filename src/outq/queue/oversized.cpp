#include "outq/queue/oversized.hpp"

#include <algorithm>

namespace outq::queue::oversized {

// KEYS: jobs. ARGV: group, consumer, after (an exclusive start: "(id" or "-"),
// count, max job bytes, head bytes, other fields' bytes. Returns per entry
// [id, job bytes, entry bytes] and, for one too large, its stub fields.
const char* const inspect_script = R"lua(
local rows = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], '+', tonumber(ARGV[4]), ARGV[2])
local limit = tonumber(ARGV[5])
local head = tonumber(ARGV[6])
local others = tonumber(ARGV[7])
local out = {}
for _, row in ipairs(rows) do
  -- Delivered once: read by XREADGROUP, never taken over (the reclaimer's are).
  if tonumber(row[4]) == 1 then
    local e = redis.call('XRANGE', KEYS[1], row[1], row[1])[1]
    if e then
      local f = e[2]
      local job, all = 0, 0
      for j = 1, #f, 2 do
        all = all + #f[j] + #f[j + 1]
        if f[j] == 'job' then job = #f[j + 1] end
      end
      if job > limit or all > limit + others then
        local stub = {}
        for j = 1, #f, 2 do
          stub[#stub + 1] = string.sub(f[j], 1, head)
          stub[#stub + 1] = string.sub(f[j + 1], 1, head)
        end
        out[#out + 1] = {row[1], job, all, stub}
      else
        out[#out + 1] = {row[1], job, all}
      end
    end
  end
end
return out
)lua";

redis::command inspect_command(const keys& k, std::string_view consumer, std::string_view after, int count,
                               std::size_t max_job_bytes) {
    redis::command c("EVAL");
    c.arg(inspect_script).arg(1).arg(k.jobs).arg(group_name).arg(consumer);
    if (after.empty())
        c.arg("-");
    else
        c.arg("(", after);
    c.arg(count)
        .arg(static_cast<long long>(max_job_bytes))
        .arg(static_cast<long long>(head_bytes))
        .arg(static_cast<long long>(other_fields_bytes));
    return c;
}

bool parse_inspection(redis::value& reply, int partition, std::vector<inspected>& out) {
    if (!reply.is_array()) return false;
    for (auto& row : reply.elements) {
        if (!row.is_array() || row.elements.size() < 3 || !row.elements[0].is_string() ||
            row.elements[1].type != redis::value::kind::integer || row.elements[2].type != redis::value::kind::integer)
            return false;
        inspected i;
        i.id = std::move(row.elements[0].str);
        i.sizes.job_bytes = static_cast<std::size_t>(std::max<long long>(0, row.elements[1].integer));
        i.sizes.entry_bytes = static_cast<std::size_t>(std::max<long long>(0, row.elements[2].integer));
        if (row.elements.size() > 3) {
            auto& fields = row.elements[3];
            if (!fields.is_array() || fields.elements.size() % 2 != 0) return false;
            stream_entry e;
            e.id = i.id;
            e.partition = partition;
            e.stub = i.sizes;
            for (std::size_t j = 0; j + 1 < fields.elements.size(); j += 2)
                e.fields.emplace_back(std::move(fields.elements[j].str), std::move(fields.elements[j + 1].str));
            i.stub = std::move(e);
        }
        out.push_back(std::move(i));
    }
    return true;
}

std::vector<std::vector<std::string>> read_groups(const std::vector<inspected>& entries, std::size_t budget) {
    std::vector<std::vector<std::string>> groups;
    std::size_t bytes = 0;
    for (const auto& e : entries) {
        if (e.stub) continue;
        if (groups.empty() || (bytes + e.sizes.entry_bytes > budget && !groups.back().empty())) {
            groups.emplace_back();
            bytes = 0;
        }
        groups.back().push_back(e.id);
        bytes += e.sizes.entry_bytes;
    }
    return groups;
}

std::vector<redis::command> read_commands(const keys& k, const std::vector<std::string>& ids) {
    std::vector<redis::command> cmds;
    cmds.reserve(ids.size());
    for (const auto& id : ids) cmds.push_back(redis::command("XRANGE").arg(k.jobs).arg(id).arg(id));
    return cmds;
}

bool parse_reads(std::vector<redis::value>& replies, int partition, std::vector<stream_entry>& out) {
    for (auto& r : replies) {
        const std::size_t before = out.size();
        if (r.is_error() || !parse_entries(r, out)) return false;
        for (std::size_t i = before; i < out.size(); ++i) out[i].partition = partition;
    }
    return true;
}

}  // namespace outq::queue::oversized
