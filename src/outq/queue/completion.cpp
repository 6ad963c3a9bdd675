#include "outq/queue/completion.hpp"

namespace outq::queue {

// ARGV: group, result ttl (s), results maxlen, dead maxlen, entry count, consumer; then
// per entry: action (sent|dead|delay|ack), entry id, release marker (0|1),
// lease id ('' for none), due (ms) and four counted field lists: result hash,
// dead letter, delayed copy, results event.
const char* const completion_script = R"lua(
local group = ARGV[1]
local ttl = ARGV[2]
local results_max = ARGV[3]
local dead_max = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local consumer = ARGV[6]
local a = 7
-- A counted list is read in place: its first and last argument index.
local function list()
  local count = tonumber(ARGV[a])
  local first = a + 1
  a = a + count + 1
  return first, first + count - 1
end
-- Whether this consumer still owns a pending entry: another worker may have
-- taken it over while this one stalled.
local function ours(id)
  local row = redis.call('XPENDING', KEYS[1], group, id, id, 1)[1]
  return row == nil or row[2] == consumer
end
local written = {}
local acked = {}
local markers = {}
for e = 0, n - 1 do
  local action, id, release, lease, due = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  a = a + 5
  local r1, r2 = list()
  local d1, d2 = list()
  local q1, q2 = list()
  local v1, v2 = list()
  local k = 5 + 4 * e
  -- A sent outcome is true whoever holds the entry now; any other outcome of
  -- an entry another worker took over is that worker's to write.
  if action ~= 'sent' and not ours(id) then
    written[#written + 1] = 2
  elseif redis.call('XACK', KEYS[1], group, id) == 1 then
    if action == 'dead' then
      local dead_id
      if dead_max > 0 then
        dead_id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', dead_max, '*', unpack(ARGV, d1, d2))
      else
        dead_id = redis.call('XADD', KEYS[3], '*', unpack(ARGV, d1, d2))
      end
      redis.call('HSET', KEYS[k], 'dead_entry', dead_id, unpack(ARGV, r1, r2))
      redis.call('EXPIRE', KEYS[k], ttl)
    elseif action == 'sent' then
      redis.call('HSET', KEYS[k], unpack(ARGV, r1, r2))
      redis.call('EXPIRE', KEYS[k], ttl)
    elseif action == 'delay' then
      redis.call('HSET', KEYS[k + 2], unpack(ARGV, q1, q2))
      redis.call('ZADD', KEYS[4], due, id)
    end
    if v2 >= v1 then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', results_max, '*', unpack(ARGV, v1, v2))
    end
    if release == '1' then markers[#markers + 1] = KEYS[k + 1] end
    written[#written + 1] = 1
  else
    written[#written + 1] = 0
  end
  if lease ~= '' then redis.call('ZREM', KEYS[k + 3], lease) end
  if written[#written] ~= 2 then acked[#acked + 1] = id end
end
if #markers > 0 then redis.call('DEL', unpack(markers)) end
if #acked > 0 then redis.call('XDEL', KEYS[1], unpack(acked)) end
return written
)lua";

namespace {

void add_if(redis::command& c, std::string_view name, std::string_view value) {
    if (!value.empty()) c.arg(name).arg(value);
}

// The result hash fields shared by sent and dead outcomes.
void add_result_fields(redis::command& c, const completion& d, std::string_view status) {
    c.arg("id").arg(d.job_id).arg("status").arg(status);
    c.arg("attempts").arg(d.env.attempts);
    if (d.http_status) c.arg("http_status").arg(d.http_status);
    add_if(c, "provider_message_id", d.provider_message_id);
    add_if(c, "request_id", d.request_id);
    add_if(c, "response", d.response_excerpt);
    add_if(c, "error_class", d.dead_class);
    add_if(c, "error", d.error);
    add_if(c, "provider", d.provider);
    add_if(c, "account", d.account);
    c.arg("enqueued_at").arg(static_cast<long long>(d.env.enqueued_at));
    c.arg("completed_at").arg(static_cast<long long>(d.completed_at));
    add_if(c, "meta", d.meta_json);
    add_if(c, "replay_of", d.env.replay_of);
}

void add_dead_fields(redis::command& c, const completion& d) {
    c.arg("id").arg(d.job_id);
    c.arg("job").arg(d.env.job_json);
    add_if(c, "provider", d.provider);
    add_if(c, "account", d.account);
    c.arg("error_class").arg(d.dead_class);
    c.arg("error").arg(d.error);
    if (d.http_status) c.arg("http_status").arg(d.http_status);
    add_if(c, "response", d.response_excerpt);
    c.arg("attempts").arg(d.env.attempts);
    c.arg("history").arg(d.env.history.empty() ? std::string("[]") : d.env.history);
    c.arg("failed_at").arg(static_cast<long long>(d.completed_at));
    add_if(c, "replay_of", d.env.replay_of);
    add_if(c, "source_entry", d.env.entry_id);
}

void add_delayed_fields(redis::command& c, const completion& d) {
    c.arg("job").arg(d.env.job_json);
    c.arg("attempts").arg(d.env.attempts).arg("rate_limited").arg(d.env.rate_limited);
    add_if(c, "history", d.env.history);
    add_if(c, "replay_of", d.env.replay_of);
    add_if(c, "first_entry", d.env.first_entry);
    c.arg("enqueued_at").arg(static_cast<long long>(d.env.enqueued_at));
    if (d.env.ambiguous_since) c.arg("ambiguous_since").arg(static_cast<long long>(d.env.ambiguous_since));
}

void add_event_fields(redis::command& c, const completion& d, std::string_view status) {
    c.arg("id").arg(d.job_id).arg("status").arg(status);
    add_if(c, "error_class", d.dead_class);
    c.arg("completed_at").arg(static_cast<long long>(d.completed_at));
}

// Appends a counted field list: its length in arguments, then the arguments.
void add_list(redis::command& c, const redis::command& fields) {
    c.arg(static_cast<long long>(fields.size()));
    c.args_of(fields);
}

}  // namespace

redis::command completion_command(const keys& k, const write_settings& s, const script& sc, std::string_view consumer,
                                  const std::vector<const completion*>& batch) {
    redis::command c = script_call(sc, 4 + 4 * static_cast<long long>(batch.size()));
    c.arg(k.jobs).arg(k.results).arg(k.dead).arg(k.delayed);
    std::string lease_key;
    for (const completion* d : batch) {
        c.arg(k.result_prefix, d->job_id).arg(k.inflight_prefix, d->job_id).arg(k.delayed_item_prefix, d->env.entry_id);
        // Without a lease the key is only declared (every key a script touches
        // must be): any key of the queue's slot will do.
        if (d->lease_id.empty())
            c.arg(k.jobs);
        else
            c.arg(lease_key.assign(d->lease_scope).append("leases"));
    }
    c.arg(group_name).arg(static_cast<long long>(s.result_ttl_seconds));
    c.arg(static_cast<long long>(s.results_stream_maxlen)).arg(static_cast<long long>(s.dead_maxlen));
    c.arg(static_cast<long long>(batch.size())).arg(consumer);
    redis::command result, dead, delayed, event;
    for (const completion* dp : batch) {
        const completion& d = *dp;
        result = redis::command();
        dead = redis::command();
        delayed = redis::command();
        event = redis::command();
        std::string_view action = "ack";
        switch (d.what) {
            case completion::kind::sent:
                action = "sent";
                add_result_fields(result, d, "sent");
                add_event_fields(event, d, "sent");
                break;
            case completion::kind::dead:
                action = "dead";
                add_result_fields(result, d, "dead");
                add_dead_fields(dead, d);
                add_event_fields(event, d, "dead");
                break;
            case completion::kind::retry:
            case completion::kind::delay:
                action = "delay";
                add_delayed_fields(delayed, d);
                break;
            case completion::kind::duplicate:
                break;
        }
        c.arg(action).arg(d.env.entry_id).arg(d.release_marker ? "1" : "0").arg(d.lease_id);
        c.arg(static_cast<long long>(d.due_at));
        add_list(c, result);
        add_list(c, dead);
        add_list(c, delayed);
        add_list(c, event);
    }
    return c;
}

bool parse_completion_reply(const redis::value& reply, std::size_t entries, std::vector<bool>& written,
                            std::vector<bool>* lost) {
    written.clear();
    if (lost) lost->clear();
    if (!reply.is_array() || reply.elements.size() != entries) return false;
    for (auto& v : reply.elements) {
        if (v.type != redis::value::kind::integer || v.integer < 0 || v.integer > 2) return false;
        written.push_back(v.integer == 1);
        if (lost) lost->push_back(v.integer == 2);
    }
    return true;
}

}  // namespace outq::queue
