#include "outq/queue/completion.hpp"

#include "outq/queue/message_index.hpp"

#include "outq/queue/result.hpp"

namespace outq::queue {

// KEYS: jobs, results, dead, delayed, then per entry its result key and its
// delayed item. ARGV: group, result ttl (s), results maxlen, dead maxlen,
// entry count, consumer, gated (0|1); then per entry: action
// (sent|dead|dead_kept|delay|ack; dead_kept: the letter's job is taken from the entry), entry id, release marker (0|1),
// due (ms) and four counted lists: the result value (for dead: open, the dead letter's id is appended), dead letter
// fields, delayed copy fields, results event fields.
//
// A `sent` entry of a batch not gated is written first and acknowledged at
// the end with the others (one XACK): a script stops at its first failing
// call (OOM refuses the first write), so an entry is never acknowledged
// without its result. Every other entry, and every entry of a gated batch,
// is acknowledged first and written only when XACK returned 1.
const char* const completion_script = R"lua(
local group = ARGV[1]
local ttl = ARGV[2]
local results_max = ARGV[3]
local dead_max = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local consumer = ARGV[6]
local gated = ARGV[7] == '1'
-- 'd': sent entries are acknowledged later, in a batch, by the writer
local defer_sent = ARGV[7] == 'd'
local a = 8
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
-- The job's marker goes only when it is this entry's: never another copy's
-- marker, never a result.
local function release(key, id)
  local v = redis.call('GET', key)
  local prefix = '{"status":"sending","entry":"' .. id .. '",'
  if v and string.sub(v, 1, #prefix) == prefix then redis.call('DEL', key) end
end
-- Whether the job's result is a sent outcome of this very entry (another
-- delivery of it wrote it).
local function sent_by(key, id)
  local v = redis.call('GET', key)
  return v and string.sub(v, 1, 17) == '{"status":"sent",' and
         string.find(v, '"entry":"' .. id .. '"', 18, true) ~= nil
end
-- A copy of this entry scheduled by another delivery of it (a retry's
-- delayed item) is dropped when the job turns out sent.
local function drop_copy(k, id)
  if redis.call('ZREM', KEYS[4], id) == 1 then redis.call('DEL', KEYS[k + 1]) end
end
local written = {}
local acked = {}
local sent = {}
for e = 0, n - 1 do
  local action, id, rel, due = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  a = a + 4
  local r1, r2 = list()
  local d1, d2 = list()
  local q1, q2 = list()
  local v1, v2 = list()
  local k = 5 + 2 * e
  if action == 'sent' and not gated then
    -- True whoever holds the entry now; acknowledged below, after its result.
    -- Another delivery of the job that was sent too (it took the entry over
    -- while this worker stalled) has its event already: one event per job.
    local old = redis.call('SET', KEYS[k], ARGV[r1], 'EX', ttl, 'GET')
    if not (old and string.sub(old, 1, 17) == '{"status":"sent",') then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', results_max, '*', unpack(ARGV, v1, v2))
    end
    -- Not this entry's marker: another worker took the entry over while this
    -- one stalled, and may have scheduled a copy (a retry); the job is sent.
    if not (old and string.sub(old, 1, #('{"status":"sending","entry":"' .. id .. '",')) ==
            '{"status":"sending","entry":"' .. id .. '",') then
      drop_copy(k, id)
    end
    sent[#sent + 1] = id
    written[#written + 1] = 1
  -- A sent outcome is true whoever holds the entry now; any other outcome of
  -- an entry another worker took over is that worker's to write.
  elseif action ~= 'sent' and not ours(id) then
    written[#written + 1] = 2
  elseif action == 'sent' and redis.call('GET', KEYS[k]) == ARGV[r1] then
    -- Gated, and an earlier try of this batch wrote it (its reply lost) and
    -- left the entry for a deferred acknowledgement: acknowledged, nothing
    -- written again (its event is there).
    redis.call('XACK', KEYS[1], group, id)
    written[#written + 1] = 0
    acked[#acked + 1] = id
  else
  local now_acked = redis.call('XACK', KEYS[1], group, id) == 1
  if now_acked and action == 'delay' and sent_by(KEYS[k], id) then
    -- Sent meanwhile by another delivery of this entry (a worker that
    -- stalled past the visibility timeout, then wrote its true outcome and
    -- left the acknowledgement for later): no copy to send again.
    written[#written + 1] = 0
    acked[#acked + 1] = id
  elseif now_acked then
    if action == 'dead' or action == 'dead_kept' then
      local fields = {unpack(ARGV, d1, d2)}
      if action == 'dead_kept' then
        -- The job never left Redis (over max_job_bytes): the letter keeps it from the entry.
        local e = redis.call('XRANGE', KEYS[1], id, id)[1]
        local job = ''
        if e then
          for j = 1, #e[2], 2 do if e[2][j] == 'job' then job = e[2][j + 1] end end
        end
        for j = 1, #fields, 2 do if fields[j] == 'job' then fields[j + 1] = job end end
      end
      local dead_id
      if dead_max > 0 then
        dead_id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', dead_max, '*', unpack(fields))
      else
        dead_id = redis.call('XADD', KEYS[3], '*', unpack(fields))
      end
      redis.call('SET', KEYS[k], ARGV[r1] .. ',"dead_entry":"' .. dead_id .. '"}', 'EX', ttl)
    elseif action == 'sent' then
      redis.call('SET', KEYS[k], ARGV[r1], 'EX', ttl)
      drop_copy(k, id)
    else
      if action == 'delay' then
        redis.call('HSET', KEYS[k + 1], unpack(ARGV, q1, q2))
        redis.call('ZADD', KEYS[4], due, id)
      end
      if rel == '1' then release(KEYS[k], id) end
    end
    if v2 >= v1 then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', results_max, '*', unpack(ARGV, v1, v2))
    end
    written[#written + 1] = 1
    acked[#acked + 1] = id
  else
    written[#written + 1] = 0
    acked[#acked + 1] = id
  end
  end
end
if #sent > 0 and not defer_sent then
  redis.call('XACK', KEYS[1], group, unpack(sent))
  for _, id in ipairs(sent) do acked[#acked + 1] = id end
end
if #acked > 0 then redis.call('XDEL', KEYS[1], unpack(acked)) end
return written
)lua";

namespace {

void add_if(redis::command& c, std::string_view name, std::string_view value) {
    if (!value.empty()) c.arg(name).arg(value);
}

void add_dead_fields(redis::command& c, const completion& d) {
    c.arg("id").arg(d.job_id);
    c.arg("job").arg(d.env.stub ? std::string_view() : std::string_view(d.env.job_json));  // a stub's: from Redis
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
    add_if(c, "traceparent", d.traceparent);
}

void add_delayed_fields(redis::command& c, const completion& d) {
    c.arg("job").arg(d.env.job_json);
    c.arg("attempts").arg(d.env.attempts).arg("rate_limited").arg(d.env.rate_limited);
    add_if(c, "history", d.env.history);
    add_if(c, "replay_of", d.env.replay_of);
    add_if(c, "first_entry", d.env.first_entry);
    c.arg("origin").arg(enqueue_entry(d.env));
    c.arg("enqueued_at").arg(static_cast<long long>(d.env.enqueued_at));
    if (d.env.ambiguous_since) c.arg("ambiguous_since").arg(static_cast<long long>(d.env.ambiguous_since));
    if (d.env.lookups) c.arg("lookups").arg(static_cast<long long>(d.env.lookups));
}

// The results event of an outcome; none for a put-back or a retry, nor for
// the copy of a cancelled job (the cancel wrote its event).
void add_event_fields(redis::command& c, const completion& d) {
    switch (d.what) {
        case completion::kind::sent:
            c.arg("id").arg(d.job_id).arg("status").arg("sent");
            break;
        case completion::kind::dead:
            c.arg("id").arg(d.job_id).arg("status").arg("dead").arg("error_class").arg(d.dead_class);
            break;
        case completion::kind::duplicate:
            if (d.existing_status.empty() || d.existing_status == "cancelled" || d.own_entry) return;
            c.arg("id").arg(d.job_id).arg("status").arg("duplicate");
            c.arg("entry").arg(d.env.entry_id).arg("existing").arg(d.existing_status);
            break;
        case completion::kind::retry:
        case completion::kind::delay:
            return;
    }
    c.arg("completed_at").arg(static_cast<long long>(d.completed_at));
}

// Appends a counted field list: its length in arguments, then the arguments.
void add_list(redis::command& c, const redis::command& fields) {
    c.arg(static_cast<long long>(fields.size()));
    c.args_of(fields);
}

}  // namespace

redis::command completion_script_command(const keys& k, const write_settings& s, const script& sc,
                                         std::string_view consumer, const std::vector<const completion*>& batch,
                                         const std::vector<std::size_t>& entries, bool gated, bool defer_sent) {
    redis::command c = script_call(sc, 4 + 2 * static_cast<long long>(entries.size()));
    c.arg(k.jobs).arg(k.results).arg(k.dead).arg(k.delayed);
    for (std::size_t i : entries)
        c.arg(k.result_prefix, batch[i]->job_id).arg(k.delayed_item_prefix, batch[i]->env.entry_id);
    c.arg(group_name).arg(static_cast<long long>(s.result_ttl_seconds));
    c.arg(static_cast<long long>(s.results_stream_maxlen)).arg(static_cast<long long>(s.dead_maxlen));
    c.arg(static_cast<long long>(entries.size())).arg(consumer).arg(gated ? "1" : defer_sent ? "d" : "0");
    redis::command result, dead, delayed, event;
    for (std::size_t i : entries) {
        const completion& d = *batch[i];
        result = redis::command();
        dead = redis::command();
        delayed = redis::command();
        event = redis::command();
        std::string_view action = "ack";
        switch (d.what) {
            case completion::kind::dead:
                action = d.env.stub ? "dead_kept" : "dead";
                result.arg(outcome_json(d));
                add_dead_fields(dead, d);
                break;
            case completion::kind::retry:
            case completion::kind::delay:
                action = "delay";
                add_delayed_fields(delayed, d);
                break;
            case completion::kind::sent:
                action = "sent";
                result.arg(outcome_json(d));
                break;
            case completion::kind::duplicate:
                break;
        }
        add_event_fields(event, d);
        c.arg(action).arg(d.env.entry_id).arg(d.release_marker ? "1" : "0");
        c.arg(static_cast<long long>(d.due_at));
        add_list(c, result);
        add_list(c, dead);
        add_list(c, delayed);
        add_list(c, event);
    }
    return c;
}

completion_plan append_completion_commands(const keys& k, const write_settings& s, const script& sc,
                                           std::string_view consumer, const std::vector<const completion*>& batch,
                                           bool gated, std::vector<redis::command>& out, bool defer_sent,
                                           const std::vector<std::string>& acks) {
    completion_plan plan;
    plan.gated = gated;
    plan.defer_sent = defer_sent && !gated;
    for (std::size_t i = 0; i < batch.size(); ++i) plan.script.push_back(i);
    const std::size_t first = out.size();
    // The message index before the results: a result whose index entry is
    // missing would let reconciliation give its message to another job.
    for (const completion* d : batch) {
        if (d->what != completion::kind::sent || d->index_scope.empty() || d->provider_message_id.empty()) continue;
        out.push_back(claim_message_command(d->index_scope, d->provider_message_id, d->job_id,
                                            static_cast<long long>(s.result_ttl_seconds)));
        ++plan.indexed;
    }
    if (!plan.script.empty()) {
        plan.script_command = plan.indexed;
        out.push_back(completion_script_command(k, s, sc, consumer, batch, plan.script, gated, plan.defer_sent));
    }
    if (!acks.empty()) {
        plan.acks = append_ack_commands(k, acks, out);
        plan.acks_command = out.size() - plan.acks - first;
    }
    std::string lease_key;
    for (const completion* d : batch) {
        if (d->lease_id.empty()) continue;
        out.push_back(redis::command("ZREM").arg(lease_key.assign(d->lease_scope).append("leases")).arg(d->lease_id));
        ++plan.leases;
    }
    plan.commands = out.size() - first;
    return plan;
}

std::size_t append_ack_commands(const keys& k, const std::vector<std::string>& entries,
                                std::vector<redis::command>& out) {
    if (entries.empty()) return 0;
    redis::command ack("XACK"), del("XDEL");
    ack.arg(k.jobs).arg(group_name);
    del.arg(k.jobs);
    for (const auto& id : entries) {
        ack.arg(id);
        del.arg(id);
    }
    out.push_back(std::move(ack));
    out.push_back(std::move(del));
    return 2;
}

bool ack_replies_ok(const std::vector<redis::value>& replies, std::size_t first, std::size_t count,
                    const redis::value** error) {
    if (error) *error = nullptr;
    if (first + count > replies.size()) return false;
    for (std::size_t i = first; i < first + count; ++i) {
        if (replies[i].is_error()) {
            if (error) *error = &replies[i];
            return true;
        }
        if (replies[i].type != redis::value::kind::integer) return false;
    }
    return true;
}

bool parse_completion_replies(const completion_plan& plan, const std::vector<redis::value>& replies,
                              std::size_t entries, std::vector<bool>& written, std::vector<bool>& lost,
                              const redis::value** error) {
    written.assign(entries, false);
    lost.assign(entries, false);
    if (error) *error = nullptr;
    if (replies.size() != plan.commands) return false;
    // A lease release that failed is not the outcome's failure: the lease
    // expires by itself. Any other error fails the batch (written again).
    for (std::size_t i = 0; i + plan.leases < replies.size(); ++i) {
        if (replies[i].is_error()) {
            if (error) *error = &replies[i];
            return true;
        }
    }
    if (!plan.script.empty()) {
        const auto& reply = replies[plan.script_command];
        if (!reply.is_array() || reply.elements.size() != plan.script.size()) return false;
        for (std::size_t j = 0; j < plan.script.size(); ++j) {
            const auto& v = reply.elements[j];
            if (v.type != redis::value::kind::integer || v.integer < 0 || v.integer > 2) return false;
            if (plan.script[j] >= entries) return false;
            written[plan.script[j]] = v.integer == 1;
            lost[plan.script[j]] = v.integer == 2;
        }
    }
    return true;
}

}  // namespace outq::queue
