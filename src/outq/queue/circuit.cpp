#include "outq/queue/circuit.hpp"

#include <algorithm>
#include <charconv>

namespace outq::queue {

// KEYS: circuit, pause, probe. ARGV: threshold, base open ms, max open ms,
// reason, now ('' for Redis' clock).
const char* const circuit_failure_script = R"lua(
local now
if ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local threshold = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'state', 'opens', 'opened_at', 'open_ms')
local opens = tonumber(h[2]) or 0
local open_ms = tonumber(h[4]) or 0
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if h[1] == 'open' then
  local ends = (tonumber(h[3]) or 0) + open_ms
  if now < ends then
    return {'open', failures, opens, open_ms, ends - now, 0}
  end
elseif failures < threshold then
  redis.call('HSET', KEYS[1], 'state', 'closed')
  redis.call('PEXPIRE', KEYS[1], max)
  return {'closed', failures, opens, open_ms, 0, 0}
end
opens = opens + 1
open_ms = math.max(1, math.floor(math.min(max, base * 2 ^ (opens - 1))))
redis.call('HSET', KEYS[1], 'state', 'open', 'opens', opens, 'opened_at', now, 'open_ms', open_ms,
           'reason', ARGV[4])
redis.call('PEXPIRE', KEYS[1], open_ms + max)
local pause = redis.call('PTTL', KEYS[2])
if pause ~= -1 and pause < open_ms then
  redis.call('SET', KEYS[2], 'circuit: ' .. ARGV[4], 'PX', open_ms)
end
redis.call('DEL', KEYS[3])
return {'open', failures, opens, open_ms, open_ms, 1}
)lua";

// KEYS: circuit, pause, probe. ARGV: now ('' for Redis' clock).
const char* const circuit_success_script = R"lua(
local h = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'open_ms')
if not h[1] then
  return {'closed', 0}
end
local was = h[1]
if was == 'open' then
  local now
  if ARGV[1] ~= '' then
    now = tonumber(ARGV[1])
  else
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  if now < (tonumber(h[2]) or 0) + (tonumber(h[3]) or 0) then
    return {'open', 0}
  end
  was = 'half_open'
end
redis.call('DEL', KEYS[1], KEYS[3])
local pause = redis.call('GET', KEYS[2])
if pause and string.sub(pause, 1, 7) == 'circuit' then
  redis.call('DEL', KEYS[2])
end
return {was, 1}
)lua";

// KEYS: circuit, probe. ARGV: owner, lease ms, now ('' for Redis' clock).
const char* const circuit_probe_script = R"lua(
local h = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'open_ms')
if h[1] ~= 'open' then
  return {'closed', 0}
end
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ends = (tonumber(h[2]) or 0) + (tonumber(h[3]) or 0)
if now < ends then
  return {'open', ends - now}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'won', 0}
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  return {'won', 0}
end
return {'busy', math.max(1, redis.call('PTTL', KEYS[2]))}
)lua";

std::string circuit_key(std::string_view scope) {
    return std::string(scope) + "circuit";
}

std::string circuit_probe_key(std::string_view scope) {
    return std::string(scope) + "circuit:probe";
}

namespace {

std::string now_arg(std::optional<std::int64_t> now_override) {
    return now_override ? std::to_string(*now_override) : std::string();
}

bool is_integer(const redis::value& v) {
    return v.type == redis::value::kind::integer;
}

// A status word of a script reply (a bulk string).
bool is_word(const redis::value& v) {
    return v.is_string() && !v.str.empty();
}

bool to_int64(std::string_view s, std::int64_t& out) {
    const auto* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, out);
    return ec == std::errc() && p == end && !s.empty();
}

}  // namespace

redis::command record_failure_command(const script& sc, std::string_view scope, int threshold,
                                      std::chrono::milliseconds base_open, std::chrono::milliseconds max_open,
                                      std::string_view reason, std::optional<std::int64_t> now_override) {
    auto c = script_call(sc, 3);
    c.arg(circuit_key(scope)).arg(std::string(scope) + "pause").arg(circuit_probe_key(scope));
    c.arg(std::max(1, threshold));
    c.arg(static_cast<long long>(std::max<std::int64_t>(1, base_open.count())));
    c.arg(static_cast<long long>(std::max<std::int64_t>(1, max_open.count())));
    c.arg(reason).arg(now_arg(now_override));
    return c;
}

bool parse_circuit_reply(const redis::value& reply, circuit_reply& out) {
    if (!reply.is_array() || reply.elements.size() != 6 || !is_word(reply.elements[0])) return false;
    for (std::size_t i = 1; i < 6; ++i)
        if (!is_integer(reply.elements[i])) return false;
    out.state = reply.elements[0].str;
    out.failures = reply.elements[1].integer;
    out.opens = reply.elements[2].integer;
    out.open_ms = reply.elements[3].integer;
    out.remaining_ms = reply.elements[4].integer;
    out.opened = reply.elements[5].integer != 0;
    return true;
}

redis::command record_success_command(const script& sc, std::string_view scope,
                                      std::optional<std::int64_t> now_override) {
    auto c = script_call(sc, 3);
    c.arg(circuit_key(scope)).arg(std::string(scope) + "pause").arg(circuit_probe_key(scope));
    c.arg(now_arg(now_override));
    return c;
}

bool parse_success_reply(const redis::value& reply, success_reply& out) {
    if (!reply.is_array() || reply.elements.size() != 2 || !is_word(reply.elements[0]) ||
        !is_integer(reply.elements[1]))
        return false;
    out.was = reply.elements[0].str;
    out.closed = reply.elements[1].integer != 0;
    return true;
}

redis::command take_probe_command(const script& sc, std::string_view scope, std::string_view owner,
                                  std::chrono::milliseconds lease, std::optional<std::int64_t> now_override) {
    auto c = script_call(sc, 2);
    c.arg(circuit_key(scope)).arg(circuit_probe_key(scope));
    c.arg(owner).arg(static_cast<long long>(std::max<std::int64_t>(1, lease.count()))).arg(now_arg(now_override));
    return c;
}

bool parse_probe_reply(const redis::value& reply, probe_reply& out) {
    if (!reply.is_array() || reply.elements.size() != 2 || !is_word(reply.elements[0]) ||
        !is_integer(reply.elements[1]))
        return false;
    out.verdict = reply.elements[0].str;
    out.wait_ms = reply.elements[1].integer;
    return true;
}

redis::command read_circuit_command(std::string_view scope) {
    return redis::command("HGETALL").arg(circuit_key(scope));
}

std::string circuit_record::phase(std::int64_t now) const {
    if (state != "open") return "closed";
    return now < opened_at + open_ms ? "open" : "half_open";
}

std::int64_t circuit_record::remaining_ms(std::int64_t now) const {
    return state == "open" ? std::max<std::int64_t>(0, opened_at + open_ms - now) : 0;
}

bool parse_circuit_record(const redis::value& reply, std::optional<circuit_record>& out, std::string& error) {
    out.reset();
    if (reply.is_error()) {
        error = reply.str;
        return false;
    }
    // RESP2 answers a flat array of field/value pairs (RESP3 would answer a map).
    if (!reply.is_array() || reply.elements.size() % 2 != 0) {
        error = "unexpected reply to HGETALL of the circuit: not a hash";
        return false;
    }
    if (reply.elements.empty()) return true;
    circuit_record r;
    for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
        const auto& name = reply.elements[i];
        const auto& value = reply.elements[i + 1];
        if (!name.is_string() || !value.is_string()) {
            error = "unexpected reply to HGETALL of the circuit: a field that is not a string";
            return false;
        }
        std::int64_t* number = nullptr;
        if (name.str == "state")
            r.state = value.str;
        else if (name.str == "reason")
            r.reason = value.str;
        else if (name.str == "failures")
            number = &r.failures;
        else if (name.str == "opens")
            number = &r.opens;
        else if (name.str == "opened_at")
            number = &r.opened_at;
        else if (name.str == "open_ms")
            number = &r.open_ms;
        if (number && !to_int64(value.str, *number)) {
            error = "unexpected circuit field " + name.str + ": '" + value.str + "' is not an integer";
            return false;
        }
    }
    out = std::move(r);
    return true;
}

}  // namespace outq::queue
