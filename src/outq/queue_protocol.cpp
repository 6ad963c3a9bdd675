#include "outq/queue_protocol.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "outq/job.hpp"
#include "outq/json_util.hpp"
#include "outq/queue/result.hpp"

namespace outq::queue {

keys::keys(std::string_view q, std::string_view tag, int index)
    : queue(q),
      partition(index),
      prefix("outq:{" + std::string(tag) + "}:"),
      format(prefix + "format"),
      jobs(prefix + "jobs"),
      delayed(prefix + "delayed"),
      delayed_item_prefix(prefix + "delayed:"),
      results(prefix + "results"),
      dead(prefix + "dead"),
      replayed(prefix + "replayed"),
      control("outq:{" + std::string(q) + "}:control"),
      result_prefix(prefix + "result:") {}

const std::string* stream_entry::field(std::string_view name) const {
    for (auto& [k, v] : fields)
        if (k == name) return &v;
    return nullptr;
}

bool parse_entries(redis::value& entries, std::vector<stream_entry>& out) {
    if (entries.is_nil()) return true;
    if (!entries.is_array()) return false;
    out.reserve(out.size() + entries.elements.size());
    for (auto& e : entries.elements) {
        if (!e.is_array() || e.elements.size() != 2 || !e.elements[0].is_string()) return false;
        stream_entry se;
        se.id = std::move(e.elements[0].str);  // the reply is consumed: strings move, not copy
        auto& fv = e.elements[1];
        if (fv.is_array()) {  // nil when the entry was deleted while pending
            se.fields.reserve(fv.elements.size() / 2);
            for (std::size_t i = 0; i + 1 < fv.elements.size(); i += 2)
                se.fields.emplace_back(std::move(fv.elements[i].str), std::move(fv.elements[i + 1].str));
        }
        out.push_back(std::move(se));
    }
    return true;
}

bool parse_xreadgroup(redis::value& reply, std::vector<stream_entry>& out) {
    if (reply.is_nil()) return true;  // BLOCK timed out
    if (!reply.is_array()) return false;
    for (auto& stream : reply.elements) {
        if (!stream.is_array() || stream.elements.size() != 2) return false;
        if (!parse_entries(stream.elements[1], out)) return false;
    }
    return true;
}

bool parse_xautoclaim(redis::value& reply, std::string& next_cursor, std::vector<stream_entry>& out) {
    if (!reply.is_array() || reply.elements.size() < 2 || !reply.elements[0].is_string()) return false;
    next_cursor = reply.elements[0].str;
    return parse_entries(reply.elements[1], out);
}

void append_delivery_count_commands(const keys& k, const std::vector<stream_entry>& entries,
                                    std::vector<redis::command>& out) {
    for (auto& e : entries)
        out.push_back(redis::command("XPENDING").arg(k.jobs).arg(group_name).arg(e.id).arg(e.id).arg(1));
}

bool parse_delivery_counts(const std::vector<redis::value>& replies, std::vector<stream_entry>& entries) {
    if (replies.size() != entries.size()) return false;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& r = replies[i];
        if (!r.is_array()) return false;
        entries[i].deliveries = 0;
        if (r.elements.empty()) continue;  // acknowledged meanwhile
        const auto& row = r.elements[0];   // [id, consumer, idle ms, deliveries]
        if (!row.is_array() || row.elements.size() < 4 || row.elements[3].type != redis::value::kind::integer)
            return false;
        entries[i].deliveries = static_cast<int>(std::min<long long>(row.elements[3].integer, 1 << 30));
    }
    return true;
}

namespace {

int to_int_or_zero(const std::string* s) {
    if (!s) return 0;
    int v = 0;
    std::from_chars(s->data(), s->data() + s->size(), v);
    return v;
}

}  // namespace

envelope to_envelope(stream_entry&& entry) {
    envelope e;
    e.entry_id = std::move(entry.id);
    e.partition = entry.partition;
    e.deliveries = entry.deliveries;
    e.stub = entry.stub;
    for (auto& [k, v] : entry.fields) {
        if (k == "job") {
            e.job_json = std::move(v);
            e.has_job_field = true;
        } else if (k == "attempts") {
            e.attempts = to_int_or_zero(&v);
        } else if (k == "rate_limited") {
            e.rate_limited = to_int_or_zero(&v);
        } else if (k == "history") {
            e.history = std::move(v);
        } else if (k == "replay_of") {
            e.replay_of = std::move(v);
        } else if (k == "enqueued_at") {
            std::from_chars(v.data(), v.data() + v.size(), e.enqueued_at);
        } else if (k == "first_entry") {
            e.first_entry = std::move(v);
        } else if (k == "origin") {
            e.origin = std::move(v);
        } else if (k == "ambiguous_since") {
            std::from_chars(v.data(), v.data() + v.size(), e.ambiguous_since);
        } else if (k == "lookups") {
            e.lookups = to_int_or_zero(&v);
        }
    }
    if (e.enqueued_at == 0) e.enqueued_at = entry_id_millis(e.entry_id).value_or(0);
    return e;
}

std::string_view enqueue_entry(const envelope& env) {
    return env.origin.empty() ? env.entry_id : env.origin;
}

std::string append_history(std::string_view history, unix_ms at, int http_status, outcome_class cls,
                           std::string_view error) {
    std::string item = "{\"at\":" + std::to_string(at) + ",\"status\":" + std::to_string(http_status) +
                       ",\"class\":\"" + std::string(to_string(cls)) + "\",\"error\":";
    json::append_quoted(item, excerpt(error, 300));
    item += '}';
    if (history.size() < 2 || history.back() != ']') return "[" + item + "]";
    std::string out(history.substr(0, history.size() - 1));
    if (out.size() > 1) out += ',';
    out += item;
    out += ']';
    return out;
}

const char* const limit_script = R"lua(
local now
if ARGV[6] ~= '' then
  now = tonumber(ARGV[6])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local pause = redis.call('PTTL', KEYS[3])
if pause ~= -2 then
  return {pause, 'paused', redis.call('GET', KEYS[3]) or ''}
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max_in_flight = tonumber(ARGV[3])
local horizon = math.max(0, tonumber(ARGV[8]) or 0)
if max_in_flight > 0 then
  horizon = 0
end
local count = math.max(1, tonumber(ARGV[9]) or 1)
if max_in_flight > 0 then
  count = 1
end
local ats = {now}
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local live = redis.call('ZCARD', KEYS[1])
  local burst = math.max(1, math.min(tonumber(ARGV[7]), limit))
  local pace = math.floor(window / limit) * burst
  -- The latest `limit` recorded times, oldest first; reservations join them.
  local s = {}
  if live > 0 then
    local rows = redis.call('ZRANGE', KEYS[1], -limit, -1, 'WITHSCORES')
    for i = 2, #rows, 2 do
      s[#s + 1] = tonumber(rows[i])
    end
  end
  local total = live
  ats = {}
  for n = 1, count do
    local at = now
    if #s > 0 then
      at = math.max(at, s[#s])
    end
    if total >= limit then
      at = math.max(at, s[#s - limit + 1] + window + 1)
    end
    if total >= burst then
      at = math.max(at, s[#s - burst + 1] + pace)
    end
    if at - now > horizon then
      if n == 1 then
        return {at - now, 'rate'}
      end
      break
    end
    ats[#ats + 1] = at
    s[#s + 1] = at
    total = total + 1
  end
end
if max_in_flight > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= max_in_flight then
    return {20, 'concurrency'}
  end
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
local reply = {ats[1] - now, 'go'}
if ats[1] > now then
  reply[2] = 'reserved'
end
if #ats > 1 then
  reply[3] = ''
end
if limit > 0 then
  local args = {ats[1], ARGV[4]}
  for i = 2, #ats do
    args[#args + 1] = ats[i]
    args[#args + 1] = ARGV[4] .. '#' .. i
    reply[#reply + 1] = ats[i] - now
  end
  redis.call('ZADD', KEYS[1], unpack(args))
  redis.call('PEXPIRE', KEYS[1], ats[#ats] - now + window)
end
return reply
)lua";

const char* const pause_script = R"lua(
local ttl = tonumber(ARGV[1])
local current = redis.call('PTTL', KEYS[1])
local changed = false
if ttl <= 0 then
  redis.call('SET', KEYS[1], ARGV[2])
  changed = current ~= -1
elseif current ~= -1 and current < ttl then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
  changed = true
end
if changed and ARGV[3] then
  redis.pcall('PUBLISH', ARGV[3], ARGV[4])
end
return redis.call('PTTL', KEYS[1])
)lua";

// KEYS: delayed, jobs, then the delayed item of each token in ARGV (every
// key declared: Redis Cluster routes and checks scripts by their KEYS).
const char* const move_due_script = R"lua(
for i, token in ipairs(ARGV) do
  local item = KEYS[2 + i]
  -- pcall: a key of another type written there by hand must not stop every move
  -- behind it; it is left as it is (not ours to delete) and its member dropped.
  -- An item already moved by another worker's mover (since the tokens were
  -- read) is gone: nothing is added twice.
  local fields = redis.pcall('HGETALL', item)
  if type(fields) == 'table' and fields.err == nil then
    if #fields > 0 then
      redis.call('XADD', KEYS[2], '*', unpack(fields))
    end
    redis.call('DEL', item)
  end
  redis.call('ZREM', KEYS[1], token)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
return {#ARGV, next or '-1'}
)lua";

const char* const replay_script = R"lua(
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 and ARGV[3] ~= 'force' then
  return false
end
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 20) == '{"status":"sending",' then
  return redis.error_reply('INFLIGHT a copy of this job is being sent now; replay it once that ends')
end
redis.call('DEL', KEYS[1])
local id = redis.call('XADD', KEYS[2], '*', 'job', ARGV[1], 'replay_of', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], id)
return id
)lua";

namespace {

// The distinct scopes of a batch in order of first appearance, and for each
// item the index of its scope. A batch holds a few scopes (often one), so a
// linear search beats hashing.
// The scopes whose pause the claim reads (items with a known pause read
// none), in order of first appearance; `index` maps each item to its scope
// (npos: known).
std::vector<std::string_view> distinct_scopes(const std::vector<claim_item>& items, std::vector<std::size_t>* index) {
    std::vector<std::string_view> scopes;
    for (auto& it : items) {
        if (it.known_pttl) {
            if (index) index->push_back(std::string_view::npos);
            continue;
        }
        std::size_t i = 0;
        while (i < scopes.size() && scopes[i] != it.scope) ++i;
        if (i == scopes.size()) scopes.push_back(it.scope);
        if (index) index->push_back(i);
    }
    return scopes;
}

}  // namespace

namespace {

// Whether item i repeats the job id of an earlier item of the batch: the
// items sorted by (id, position), each but the first of a run of one id.
std::vector<bool> repeated_ids(const std::vector<claim_item>& items) {
    std::vector<bool> out(items.size(), false);
    std::vector<std::pair<std::string_view, std::size_t>> order;
    order.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) order.emplace_back(items[i].job_id, i);
    std::sort(order.begin(), order.end());
    for (std::size_t k = 1; k < order.size(); ++k)
        if (order[k].first == order[k - 1].first) out[order[k].second] = true;
    return out;
}

}  // namespace

void append_claim_commands(const keys& k, const std::vector<claim_item>& items, unix_ms now,
                           std::vector<redis::command>& out) {
    const auto repeated = repeated_ids(items);
    redis::command msetnx("MSETNX");
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (repeated[i]) continue;
        msetnx.arg(k.result_prefix, items[i].job_id).arg(sending_marker(items[i].entry_id, now));
    }
    out.push_back(std::move(msetnx));
    std::string pause_key;
    for (auto scope : distinct_scopes(items, nullptr)) {
        pause_key.assign(scope).append("pause");
        out.push_back(redis::command("PTTL").arg(pause_key));
    }
}

bool parse_claim_replies(const std::vector<redis::value>& replies, const std::vector<claim_item>& items,
                         std::vector<claim_result>& out) {
    std::vector<std::size_t> scope_of;
    scope_of.reserve(items.size());
    const std::size_t n = items.size();
    const std::size_t scopes = distinct_scopes(items, &scope_of).size();
    if (replies.size() != 1 + scopes) return false;
    const auto& set = replies[0];
    if (set.type != redis::value::kind::integer || (set.integer != 0 && set.integer != 1)) return false;
    for (std::size_t s = 1; s <= scopes; ++s)
        if (replies[s].type != redis::value::kind::integer) return false;
    const auto repeated = repeated_ids(items);
    out.clear();
    for (std::size_t i = 0; i < n; ++i) {
        claim_result r;
        r.pause_read = !items[i].known_pttl;
        r.pttl = r.pause_read ? replies[1 + scope_of[i]].integer : *items[i].known_pttl;
        if (repeated[i]) {
            r.verdict = claim_verdict::busy;  // the batch's first copy of this id goes
        } else if (set.integer == 0) {
            r.claim_alone = true;  // decided in round 2
        } else {
            r.holds_marker = true;
        }
        if (r.verdict != claim_verdict::busy && r.pttl != -2) {
            r.verdict = claim_verdict::paused;
            r.pause_ms = r.pttl;
        }
        out.push_back(std::move(r));
    }
    return true;
}

redis::command claim_alone_command(const keys& k, const claim_item& item, unix_ms now) {
    return redis::command("SET")
        .arg(k.result_prefix, item.job_id)
        .arg(sending_marker(item.entry_id, now))
        .arg("NX")
        .arg("GET");
}

bool apply_claim_alone_reply(const redis::value& reply, const claim_item& item, claim_result& out) {
    out.claim_alone = false;
    if (reply.error_is("WRONGTYPE")) {
        // The key holds something this format never writes (a format 1 hash
        // not migrated): this job waits, untouched, and the batch goes on.
        out.verdict = claim_verdict::busy;
        out.foreign_value = true;
        return true;
    }
    if (reply.is_nil()) {
        out.holds_marker = true;  // a pause verdict from round 1 stands
        return true;
    }
    if (!reply.is_string()) return false;
    auto state = read_result_value(reply.str);
    switch (state.what) {
        case result_state::kind::final:
            out.verdict = claim_verdict::done;  // done wins over a pause: nothing to send
            // Sent by this entry (its acknowledgement lost), or by another
            // delivery of the same enqueue: a worker that stalled past the
            // visibility timeout wrote it after this copy was scheduled.
            out.own_outcome = state.status == "sent" && !state.entry.empty() &&
                              (state.entry == item.entry_id ||
                               (state.origin.empty() ? state.entry : state.origin) ==
                                   (item.origin.empty() ? std::string_view(item.entry_id) : item.origin));
            out.existing_status = std::move(state.status);
            return true;
        case result_state::kind::sending:
            if (state.entry == item.entry_id) {
                // This very entry, taken over from a worker that died holding it.
                out.holds_marker = true;
            } else if (out.verdict != claim_verdict::paused) {
                // Another entry's: a copy in flight, or a marker left behind (round 3).
                out.verdict = claim_verdict::busy;
                out.check_owner = true;
                out.owner_entry = std::move(state.entry);
            }
            return true;
        case result_state::kind::absent:
        case result_state::kind::unreadable:
            break;
    }
    return false;
}

// KEYS[1] jobs, KEYS[2] the result key. ARGV: group, the owner's marker
// prefix, the owner's entry id, the new marker.
const char* const take_over_marker_script = R"lua(
local v = redis.call('GET', KEYS[2])
if not v or string.sub(v, 1, #ARGV[2]) ~= ARGV[2] then return 0 end
if redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[4])
return 1
)lua";

redis::command take_over_marker_command(const keys& k, const claim_item& item, std::string_view owner_entry,
                                        unix_ms now) {
    redis::command c("EVAL");
    c.arg(take_over_marker_script).arg(2).arg(k.jobs).arg(k.result_prefix, item.job_id);
    c.arg(group_name).arg(marker_prefix(owner_entry)).arg(owner_entry).arg(sending_marker(item.entry_id, now));
    return c;
}

redis::command limit_command(std::string_view scope, int requests, std::chrono::milliseconds window, int max_in_flight,
                             std::string_view lease_id, std::chrono::milliseconds lease_ttl,
                             std::optional<std::int64_t> now_override, int burst, std::chrono::milliseconds horizon,
                             int count) {
    const std::string s(scope);
    redis::command c("EVAL");
    c.arg(limit_script).arg(3).arg(s + "window").arg(s + "leases").arg(s + "pause");
    c.arg(requests).arg(static_cast<long long>(window.count())).arg(max_in_flight).arg(lease_id);
    c.arg(static_cast<long long>(lease_ttl.count()));
    c.arg(now_override ? std::to_string(*now_override) : std::string());
    c.arg(burst);
    c.arg(static_cast<long long>(std::max<std::int64_t>(0, horizon.count())));
    c.arg(std::max(1, count));
    return c;
}

bool parse_limit_reply(const redis::value& reply, limit_decision& out) {
    if (!reply.is_array() || reply.elements.size() < 2 || reply.elements[0].type != redis::value::kind::integer)
        return false;
    out.wait_ms = reply.elements[0].integer;
    out.reason = reply.elements[1].str;
    out.pause_reason = reply.elements.size() > 2 ? reply.elements[2].str : std::string();
    out.reserved = out.reason == "go" || out.reason == "reserved";
    out.more_waits.clear();
    for (std::size_t i = 3; i < reply.elements.size(); ++i) {
        if (reply.elements[i].type != redis::value::kind::integer) return false;
        out.more_waits.push_back(reply.elements[i].integer);
    }
    if (out.reason == "paused" && out.wait_ms == -1) out.wait_ms = -1;  // until resumed
    return true;
}

redis::command release_lease_command(std::string_view scope, std::string_view lease_id) {
    return redis::command("ZREM").arg(std::string(scope) + "leases").arg(lease_id);
}

redis::command pause_command(std::string_view scope, std::optional<std::chrono::milliseconds> duration,
                             std::string_view reason, std::string_view channel, std::string_view message) {
    redis::command c("EVAL");
    c.arg(pause_script).arg(1).arg(std::string(scope) + "pause");
    c.arg(static_cast<long long>(duration ? std::max<std::int64_t>(1, duration->count()) : 0)).arg(reason);
    // The channel is an argument, not a key: it is in the partition's slot.
    if (!channel.empty()) c.arg(channel).arg(message);
    return c;
}

redis::command next_due_command(const keys& k) {
    return redis::command("ZRANGE").arg(k.delayed).arg(0).arg(0).arg("WITHSCORES");
}

namespace {

// A score as Redis prints it: an integer, or in exponent form for a large one;
// one beyond the range of unix_ms (a hand-written 5e83, inf) is the range's
// end, never an out-of-range conversion (found by the fuzz target redis_reply).
bool read_score(const redis::value& v, std::optional<unix_ms>& out) {
    if (!v.is_string()) return false;
    double d = 0;
    try {
        d = std::stod(v.str);
    } catch (...) {
        return false;
    }
    if (std::isnan(d)) return false;
    constexpr double bound = 9.0e18;  // inside int64's range, far beyond any time
    out = static_cast<unix_ms>(std::clamp(d, -bound, bound));
    return true;
}

}  // namespace

bool parse_next_due(const redis::value& reply, std::optional<unix_ms>& out) {
    out.reset();
    if (!reply.is_array()) return false;
    if (reply.elements.empty()) return true;
    return reply.elements.size() == 2 && read_score(reply.elements[1], out);
}

bool parse_move_due(const redis::value& reply, int& moved, std::optional<unix_ms>& next) {
    next.reset();
    if (!reply.is_array() || reply.elements.size() != 2 || reply.elements[0].type != redis::value::kind::integer)
        return false;
    moved = static_cast<int>(reply.elements[0].integer);
    if (reply.elements[1].is_string() && reply.elements[1].str == "-1") return true;
    return read_score(reply.elements[1], next);
}

redis::command due_tokens_command(const keys& k, unix_ms now, int limit) {
    redis::command c("ZRANGEBYSCORE");
    c.arg(k.delayed).arg("-inf").arg(static_cast<long long>(now)).arg("LIMIT").arg(0).arg(limit);
    return c;
}

bool parse_due_tokens(const redis::value& reply, std::vector<std::string>& tokens) {
    tokens.clear();
    if (!reply.is_array()) return false;
    tokens.reserve(reply.elements.size());
    for (const auto& e : reply.elements) {
        if (!e.is_string()) return false;
        tokens.push_back(e.str);
    }
    return true;
}

redis::command move_due_command(const keys& k, const std::vector<std::string>& tokens) {
    redis::command c("EVAL");
    c.arg(move_due_script).arg(static_cast<long long>(2 + tokens.size())).arg(k.delayed).arg(k.jobs);
    for (const auto& t : tokens) c.arg(k.delayed_item_prefix, t);
    for (const auto& t : tokens) c.arg(t);
    return c;
}

}  // namespace outq::queue
