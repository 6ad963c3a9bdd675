#include "outq/queue/admin.hpp"

#include <rapidjson/document.h>

#include <charconv>

#include "outq/job.hpp"
#include "outq/json_util.hpp"
#include "outq/queue/control.hpp"
#include "outq/queue/migrate.hpp"
#include "outq/queue/result.hpp"

namespace outq::queue::admin {

namespace {

std::string_view kind_name(const redis::value& v) {
    switch (v.type) {
        case redis::value::kind::nil:
            return "nil";
        case redis::value::kind::string:
            return "a string";
        case redis::value::kind::integer:
            return "an integer";
        case redis::value::kind::array:
            return "an array";
        case redis::value::kind::error:
            return "an error";
        case redis::value::kind::status:
            return "a status";
    }
    return "an unknown reply";
}

}  // namespace

std::string unexpected(const redis::value& v, std::string_view command_name, std::string_view expected) {
    if (v.is_error()) return v.str;
    return "unexpected reply to " + std::string(command_name) + ": " + std::string(kind_name(v)) + " instead of " +
           std::string(expected);
}

namespace {

// An integer reply, or the error of reading it.
read_result<std::int64_t> integer_of(const redis::value& v, std::string_view command_name) {
    if (!is_integer(v)) return fail<std::int64_t>(v, command_name, "an integer");
    return std::int64_t{v.integer};
}

constexpr std::size_t stats_replies = 6;

}  // namespace

std::optional<std::string> first_error(const std::vector<redis::value>& replies) {
    for (auto& v : replies)
        if (v.is_error()) return v.str;
    return std::nullopt;
}

read_result<field_list> read_hash(const redis::value& reply, std::string_view command_name) {
    if (!reply.is_array() || reply.elements.size() % 2 != 0)
        return fail<field_list>(reply, command_name, "an array of field/value pairs");
    field_list out;
    out.reserve(reply.elements.size() / 2);
    for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
        const auto& name = reply.elements[i];
        const auto& value = reply.elements[i + 1];
        if (!name.is_string() || !value.is_string())
            return read_result<field_list>::failure("unexpected reply to " + std::string(command_name) +
                                                    ": a field or value that is not a string");
        out.emplace_back(name.str, value.str);
    }
    return out;
}

redis::command enqueue_command(const keys& k, std::string_view job_json) {
    return redis::command("XADD").arg(k.jobs).arg("*").arg("job").arg(job_json);
}

read_result<std::string> read_enqueued(const redis::value& reply) {
    if (reply.type != redis::value::kind::string || reply.str.empty())
        return fail<std::string>(reply, "XADD", "an entry id");
    return reply.str;
}

redis::command result_command(const keys& k, std::string_view job_id) {
    return redis::command("GET").arg(k.result(job_id));
}

read_result<std::optional<std::string>> read_result_reply(const redis::value& reply) {
    using result = read_result<std::optional<std::string>>;
    if (reply.is_nil()) return result(std::optional<std::string>());
    if (!reply.is_string()) return result::failure(unexpected(reply, "GET", "a result value or nil"));
    return result(std::optional<std::string>(reply.str));
}

redis::command last_event_command(const keys& k) {
    return redis::command("XREVRANGE").arg(k.results).arg("+").arg("-").arg("COUNT").arg(1);
}

read_result<std::string> read_last_event(const redis::value& reply) {
    if (!reply.is_array()) return fail<std::string>(reply, "XREVRANGE", "an array of entries");
    if (reply.elements.empty()) return std::string("0-0");
    const auto& e = reply.elements[0];
    if (!e.is_array() || e.elements.empty() || !e.elements[0].is_string())
        return read_result<std::string>::failure("unexpected reply to XREVRANGE: an entry is not [id, fields]");
    return e.elements[0].str;
}

redis::command follow_events_command(const keys& k, std::string_view after, std::chrono::milliseconds block) {
    return redis::command("XREAD")
        .arg("COUNT")
        .arg(1000)
        .arg("BLOCK")
        .arg(static_cast<long long>(std::max<std::int64_t>(1, block.count())))
        .arg("STREAMS")
        .arg(k.results)
        .arg(after);
}

read_result<bool> read_followed_events(redis::value& reply, std::string_view job_id, std::string& after) {
    if (reply.is_nil()) return false;  // the block ended
    std::vector<stream_entry> entries;
    if (reply.is_error() || !parse_xreadgroup(reply, entries))
        return fail<bool>(reply, "XREAD", "a stream reply or nil");
    bool seen = false;
    for (auto& e : entries) {
        after = e.id;
        if (auto* id = e.field("id"); id && *id == job_id) seen = true;
    }
    return seen;
}

// KEYS[1] the result, KEYS[2] results. ARGV: the cancelled value, ttl (s),
// job id, now (ms), results maxlen.
const char* const cancel_script = R"lua(
local old = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2], 'GET')
if old then return old end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'id', ARGV[3], 'status', 'cancelled', 'completed_at', ARGV[4])
return redis.status_reply('OK')
)lua";

redis::command cancel_command(const keys& k, std::string_view job_id, std::string_view reason, unix_ms now,
                              const write_settings& s) {
    redis::command c("EVAL");
    c.arg(cancel_script).arg(2).arg(k.result(job_id)).arg(k.results);
    c.arg(cancelled_json(job_id, reason, now)).arg(static_cast<long long>(s.result_ttl_seconds));
    c.arg(job_id).arg(static_cast<long long>(now)).arg(static_cast<long long>(s.results_stream_maxlen));
    return c;
}

read_result<std::optional<std::string>> read_cancel(const redis::value& reply) {
    using result = read_result<std::optional<std::string>>;
    // 'OK' when cancelled; else the value that was there (the job is not waiting).
    if (reply.type == redis::value::kind::status && reply.str == "OK") return result(std::optional<std::string>());
    if (reply.is_string()) return result(std::optional<std::string>(reply.str));
    return result::failure(unexpected(reply, "EVAL (cancel)", "OK or the existing value"));
}

redis::command dead_page_command(const keys& k, std::string_view after, long long count) {
    redis::command c("XRANGE");
    c.arg(k.dead);
    if (after.empty())
        c.arg("-");
    else
        c.arg("(", after);
    return c.arg("+").arg("COUNT").arg(count);
}

redis::command dead_page_newest_command(const keys& k, std::string_view before, long long count) {
    redis::command c("XREVRANGE");
    c.arg(k.dead);
    if (before.empty())
        c.arg("+");
    else
        c.arg("(", before);
    return c.arg("-").arg("COUNT").arg(count);
}

redis::command dead_letter_command(const keys& k, std::string_view entry) {
    return redis::command("XRANGE").arg(k.dead).arg(entry).arg(entry);
}

read_result<std::vector<dead_letter>> read_dead_page(redis::value& reply) {
    if (!reply.is_array()) return fail<std::vector<dead_letter>>(reply, "XRANGE", "an array of entries");
    std::vector<stream_entry> entries;
    if (!parse_entries(reply, entries))
        return read_result<std::vector<dead_letter>>::failure(
            "unexpected reply to XRANGE: an entry is not [id, fields]");
    std::vector<dead_letter> out;
    out.reserve(entries.size());
    for (auto& e : entries) out.push_back({std::move(e.id), std::move(e.fields)});
    return out;
}

redis::command replayed_command(const keys& k) {
    return redis::command("HGETALL").arg(k.replayed);
}

redis::command replay_command(const keys& k, std::string_view job_id, std::string_view job_json,
                              std::string_view dead_entry, bool force) {
    redis::command c("EVAL");
    c.arg(replay_script).arg(3).arg(k.result(job_id)).arg(k.jobs).arg(k.replayed);
    c.arg(job_json).arg(dead_entry).arg(force ? "force" : "");
    return c;
}

read_result<std::optional<std::string>> read_replay(const redis::value& reply) {
    using result = read_result<std::optional<std::string>>;
    if (reply.is_nil()) return result(std::optional<std::string>());  // the script's `false`
    if (reply.type != redis::value::kind::string || reply.str.empty())
        return result::failure(unexpected(reply, "EVAL (replay)", "an entry id or nil"));
    return result(std::optional<std::string>(reply.str));
}

std::vector<redis::command> stats_commands(const keys& k) {
    std::vector<redis::command> cmds;
    cmds.reserve(stats_replies);
    cmds.push_back(redis::command("XLEN").arg(k.jobs));
    cmds.push_back(redis::command("XPENDING").arg(k.jobs).arg(group_name));
    cmds.push_back(redis::command("ZCARD").arg(k.delayed));
    cmds.push_back(redis::command("XLEN").arg(k.dead));
    cmds.push_back(redis::command("XLEN").arg(k.results));
    cmds.push_back(redis::command("XINFO").arg("GROUPS").arg(k.jobs));
    return cmds;
}

queue_stats sum_stats(const std::vector<queue_stats>& partitions) {
    queue_stats sum;
    sum.group = !partitions.empty();
    for (const auto& p : partitions) {
        sum.stream_length += p.stream_length;
        sum.pending += p.pending;
        sum.delayed += p.delayed;
        sum.dead += p.dead;
        sum.results_events += p.results_events;
        sum.consumers = std::max(sum.consumers, p.consumers);
        sum.group = sum.group && p.group;
    }
    return sum;
}

read_result<queue_stats> read_stats(const std::vector<redis::value>& replies) {
    using result = read_result<queue_stats>;
    if (replies.size() != stats_replies)
        return result::failure("expected " + std::to_string(stats_replies) + " replies to the stats commands, got " +
                               std::to_string(replies.size()));
    queue_stats s;
    struct count {
        std::size_t reply;
        std::int64_t queue_stats::*field;
        const char* command_name;
    };
    for (const count c : {count{0, &queue_stats::stream_length, "XLEN"}, count{2, &queue_stats::delayed, "ZCARD"},
                          count{3, &queue_stats::dead, "XLEN"}, count{4, &queue_stats::results_events, "XLEN"}}) {
        auto n = integer_of(replies[c.reply], c.command_name);
        if (!n.ok()) return result::failure(n.error);
        s.*c.field = *n.value;
    }
    // XPENDING's summary: [count, smallest id, greatest id, consumers].
    const auto& pending = replies[1];
    if (pending.error_is("NOGROUP")) {
        s.pending = 0;  // no group yet: nothing was delivered
    } else if (pending.is_array() && !pending.elements.empty() && is_integer(pending.elements[0])) {
        s.pending = pending.elements[0].integer;
    } else {
        return fail<queue_stats>(pending, "XPENDING", "a summary array");
    }
    auto group = read_group(replies[5]);
    if (!group.ok()) return result::failure(group.error);
    s.group = group.value->has_value();
    s.consumers = group.value->value_or(0);
    return s;
}

redis::command groups_command(const keys& k) {
    return redis::command("XINFO").arg("GROUPS").arg(k.jobs);
}

read_result<std::optional<std::int64_t>> read_group(const redis::value& groups) {
    using result = read_result<std::optional<std::int64_t>>;
    // XINFO GROUPS: one flat name/value array per group.
    if (groups.is_error() && groups.str.rfind("ERR no such key", 0) == 0)
        return result(std::optional<std::int64_t>());  // no stream yet
    if (!groups.is_array()) return result::failure(unexpected(groups, "XINFO GROUPS", "an array of groups"));
    for (auto& g : groups.elements) {
        if (!g.is_array() || g.elements.size() % 2 != 0)
            return result::failure("unexpected reply to XINFO GROUPS: a group is not a list of name/value pairs");
        bool ours = false;
        std::optional<std::int64_t> consumers;
        for (std::size_t i = 0; i < g.elements.size(); i += 2) {
            const auto& name = g.elements[i].str;
            const auto& value = g.elements[i + 1];
            if (name == "name") ours = value.is_string() && value.str == group_name;
            if (name == "consumers" && is_integer(value)) consumers = value.integer;
        }
        if (!ours) continue;
        if (!consumers)
            return result::failure("unexpected reply to XINFO GROUPS: the outq group has no consumers count");
        return result(consumers);
    }
    return result(std::optional<std::int64_t>());
}

redis::command scan_scopes_command(const keys& k, std::string_view cursor) {
    // The queue's name is literal in the pattern (it may hold '*', '?', '[').
    return redis::command("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg("outq:{" + migrate::glob_escape(k.queue) + "@*")
        .arg("COUNT")
        .arg(1000);
}

read_result<scope_page> read_scan_scopes(const keys& k, const redis::value& reply) {
    using result = read_result<scope_page>;
    if (!reply.is_array() || reply.elements.size() != 2 || !reply.elements[0].is_string() ||
        !reply.elements[1].is_array())
        return fail<scope_page>(reply, "SCAN", "[cursor, keys]");
    const std::string prefix = "outq:{" + k.queue + "@";
    scope_page page;
    page.cursor = reply.elements[0].str;
    for (auto& key : reply.elements[1].elements) {
        if (!key.is_string()) return result::failure("unexpected reply to SCAN: a key that is not a string");
        // outq:{<queue>@<provider>/<account>}:<window|leases|pause>
        if (key.str.size() <= prefix.size() || key.str.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string_view rest = std::string_view(key.str).substr(prefix.size());
        const auto close = rest.find("}:");
        if (close == std::string_view::npos || rest.find('/') > close) continue;
        page.scopes.emplace_back(rest.substr(0, close));
    }
    return page;
}

std::vector<redis::command> scope_state_commands(const keys& k, std::string_view scope) {
    const std::string base = "outq:{" + k.queue + "@" + std::string(scope) + "}:";
    std::vector<redis::command> cmds;
    cmds.push_back(redis::command("PTTL").arg(base + "pause"));
    cmds.push_back(redis::command("GET").arg(base + "pause"));
    cmds.push_back(redis::command("ZCARD").arg(base + "window"));
    cmds.push_back(read_circuit_command(base));
    return cmds;
}

read_result<scope_state> read_scope_state(std::string_view scope, const std::vector<redis::value>& replies) {
    using result = read_result<scope_state>;
    if (replies.size() != 4)
        return result::failure("expected 4 replies to PTTL, GET, ZCARD and HGETALL, got " +
                               std::to_string(replies.size()));
    scope_state s;
    s.provider_account = std::string(scope);
    auto pttl = integer_of(replies[0], "PTTL");
    if (!pttl.ok()) return result::failure(pttl.error);
    s.pause_ms = *pttl.value;
    if (replies[1].is_string())
        s.pause_reason = replies[1].str;
    else if (!replies[1].is_nil())  // nil: no pause (or it ended between PTTL and GET)
        return fail<scope_state>(replies[1], "GET", "a string or nil");
    auto in_window = integer_of(replies[2], "ZCARD");
    if (!in_window.ok()) return result::failure(in_window.error);
    s.in_window = *in_window.value;
    std::string why;
    if (!parse_circuit_record(replies[3], s.circuit, why)) return result::failure(why);
    return s;
}

redis::command operator_pause_command(const keys& k, std::string_view provider, std::string_view account,
                                      std::string_view reason, std::optional<std::chrono::milliseconds> duration) {
    redis::command c("SET");
    c.arg(k.scope(provider, account), "pause").arg(reason);
    if (duration) c.arg("PX").arg(static_cast<long long>(duration->count()));
    return c;
}

read_result<bool> read_ok(const redis::value& reply, std::string_view command_name) {
    if (reply.type != redis::value::kind::status || reply.str != "OK") return fail<bool>(reply, command_name, "OK");
    return true;
}

redis::command resume_command(const keys& k, std::string_view provider, std::string_view account) {
    return redis::command("DEL").arg(k.scope(provider, account), "pause");
}

read_result<bool> read_resumed(const redis::value& reply) {
    auto n = integer_of(reply, "DEL");
    if (!n.ok()) return read_result<bool>::failure(n.error);
    return *n.value > 0;
}

std::vector<redis::command> operator_pause_commands(const keys& k, std::string_view provider, std::string_view account,
                                                    std::string_view reason,
                                                    std::optional<std::chrono::milliseconds> duration) {
    std::vector<redis::command> cmds;
    cmds.push_back(operator_pause_command(k, provider, account, reason, duration));
    cmds.push_back(publish_command(k, pause_message(provider, account, duration, reason)));
    return cmds;
}

std::vector<redis::command> resume_commands(const keys& k, std::string_view provider, std::string_view account) {
    std::vector<redis::command> cmds;
    cmds.push_back(resume_command(k, provider, account));
    cmds.push_back(publish_command(k, resume_message(provider, account)));
    return cmds;
}

read_result<std::int64_t> read_published(const redis::value& reply) {
    return integer_of(reply, "PUBLISH");
}

redis::command held_page_command(const keys& k, unix_ms now, long long start, long long count) {
    return redis::command("ZRANGEBYSCORE")
        .arg(k.delayed)
        .arg("(" + std::to_string(now))
        .arg("+inf")
        .arg("LIMIT")
        .arg(start)
        .arg(count);
}

read_result<std::vector<std::string>> read_held_page(const redis::value& reply) {
    using result = read_result<std::vector<std::string>>;
    if (!reply.is_array()) return fail<std::vector<std::string>>(reply, "ZRANGEBYSCORE", "an array of members");
    std::vector<std::string> tokens;
    tokens.reserve(reply.elements.size());
    for (auto& t : reply.elements) {
        if (!t.is_string()) return result::failure("unexpected reply to ZRANGEBYSCORE: a member that is not a string");
        tokens.push_back(t.str);
    }
    return tokens;
}

std::vector<redis::command> held_job_commands(const keys& k, const std::vector<std::string>& tokens) {
    std::vector<redis::command> cmds;
    cmds.reserve(tokens.size());
    for (auto& t : tokens) cmds.push_back(redis::command("HGET").arg(k.delayed_item_prefix, t).arg("job"));
    return cmds;
}

read_result<std::vector<std::string>> read_held_jobs_of(const std::vector<redis::value>& replies,
                                                        const std::vector<std::string>& tokens,
                                                        std::string_view provider, std::string_view account) {
    using result = read_result<std::vector<std::string>>;
    if (replies.size() != tokens.size())
        return result::failure("expected " + std::to_string(tokens.size()) + " replies to HGET, got " +
                               std::to_string(replies.size()));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const auto& v = replies[i];
        if (v.is_nil()) continue;  // moved or finished meanwhile
        if (v.type != redis::value::kind::string) return fail<std::vector<std::string>>(v, "HGET", "a job or nil");
        if (json::scalar_member(v.str, "provider") == provider && json::scalar_member(v.str, "account") == account)
            out.push_back(tokens[i]);
    }
    return out;
}

std::vector<redis::command> due_now_commands(const keys& k, const std::vector<std::string>& tokens, unix_ms now) {
    std::vector<redis::command> cmds;
    cmds.reserve(tokens.size());
    for (auto& t : tokens)
        cmds.push_back(redis::command("ZADD").arg(k.delayed).arg("XX").arg(static_cast<long long>(now)).arg(t));
    return cmds;
}

bool valid_status_pattern(std::string_view pattern) {
    if (pattern.size() != 3 || pattern[0] < '1' || pattern[0] > '9') return false;
    for (char c : pattern)
        if (!(c >= '0' && c <= '9') && c != 'x' && c != 'X') return false;
    return true;
}

bool status_matches(std::string_view pattern, std::string_view http_status) {
    if (!valid_status_pattern(pattern) || http_status.size() != 3) return false;
    for (std::size_t i = 0; i < 3; ++i) {
        const char p = pattern[i], c = http_status[i];
        if (c < '0' || c > '9') return false;
        if (p != 'x' && p != 'X' && p != c) return false;
    }
    return true;
}

namespace {

const std::string* find_field(const field_list& f, std::string_view name) {
    for (auto& [k, v] : f)
        if (k == name) return &v;
    return nullptr;
}

}  // namespace

bool dead_letter_contains(const dead_letter& d, std::string_view text) {
    for (const char* name : {"error", "job"})
        if (auto* v = find_field(d.fields, name); v && v->find(text) != std::string::npos) return true;
    return false;
}

std::vector<redis::command> dead_delete_commands(const keys& k, const std::vector<std::string>& entry_ids) {
    std::vector<redis::command> cmds;
    if (entry_ids.empty()) return cmds;
    redis::command xdel("XDEL"), hdel("HDEL");
    xdel.arg(k.dead);
    hdel.arg(k.replayed);
    for (auto& id : entry_ids) {
        xdel.arg(id);
        hdel.arg(id);
    }
    cmds.push_back(std::move(xdel));
    cmds.push_back(std::move(hdel));
    return cmds;
}

read_result<std::int64_t> read_dead_deleted(const std::vector<redis::value>& replies) {
    if (replies.size() != 2)
        return read_result<std::int64_t>::failure("expected 2 replies to XDEL and HDEL, got " +
                                                  std::to_string(replies.size()));
    auto deleted = integer_of(replies[0], "XDEL");
    if (!deleted.ok()) return deleted;
    if (auto links = integer_of(replies[1], "HDEL"); !links.ok()) return links;
    return deleted;
}

std::optional<replay_info> replay_info_of(const field_list& replayed, std::string_view dead_entry,
                                          std::string_view result_status) {
    const std::string* entry = find_field(replayed, dead_entry);
    if (!entry) return std::nullopt;
    replay_info r;
    r.entry = *entry;
    r.at = entry_id_millis(*entry).value_or(0);
    r.result = std::string(result_status);
    return r;
}

std::vector<redis::command> result_commands(const keys& k, const std::vector<std::string>& job_ids) {
    std::vector<redis::command> cmds;
    cmds.reserve(job_ids.size());
    for (auto& id : job_ids) cmds.push_back(result_command(k, id));
    return cmds;
}

read_result<std::vector<std::string>> read_result_statuses(const std::vector<redis::value>& replies) {
    std::vector<std::string> out;
    out.reserve(replies.size());
    for (auto& v : replies) {
        auto value = read_result_reply(v);
        if (!value.ok()) return read_result<std::vector<std::string>>::failure(value.error);
        if (!*value.value) {
            out.emplace_back();
            continue;
        }
        const auto state = read_result_value(**value.value);
        out.push_back(state.what == result_state::kind::unreadable ? std::string("unreadable") : state.status);
    }
    return out;
}

redis::command oldest_dead_command(const keys& k) {
    return redis::command("XRANGE").arg(k.dead).arg("-").arg("+").arg("COUNT").arg(1);
}

read_result<std::optional<unix_ms>> read_oldest_dead(redis::value& reply) {
    using result = read_result<std::optional<unix_ms>>;
    auto page = read_dead_page(reply);
    if (!page.ok()) return result::failure(page.error);
    if (page.value->empty()) return result(std::optional<unix_ms>());
    return result(entry_id_millis(page.value->front().entry_id));
}

redis::command jobs_page_command(const keys& k, std::string_view after, long long count) {
    redis::command c("XRANGE");
    c.arg(k.jobs);
    if (after.empty())
        c.arg("-");
    else
        c.arg("(", after);
    return c.arg("+").arg("COUNT").arg(count);
}

read_result<std::vector<dead_letter>> read_entries_page(redis::value& reply, std::string_view command_name) {
    using result = read_result<std::vector<dead_letter>>;
    if (!reply.is_array()) return fail<std::vector<dead_letter>>(reply, command_name, "an array of entries");
    std::vector<stream_entry> entries;
    if (!parse_entries(reply, entries))
        return result::failure("unexpected reply to " + std::string(command_name) + ": an entry is not [id, fields]");
    std::vector<dead_letter> out;
    out.reserve(entries.size());
    for (auto& e : entries) out.push_back({std::move(e.id), std::move(e.fields)});
    return out;
}

std::optional<unix_ms> own_not_before_of(const field_list& fields) {
    const auto* job = find_field(fields, "job");
    if (!job) return std::nullopt;
    const auto parsed = parse_job(*job, "0-0");
    return parsed.ok() ? parsed.value->not_before : std::nullopt;
}

std::string job_id_of(const field_list& fields, std::string_view entry_id) {
    if (auto* job = find_field(fields, "job"))
        if (auto id = json::scalar_member(*job, "id"); id && !id->empty()) return *id;
    if (auto* first = find_field(fields, "first_entry"); first && !first->empty()) return *first;
    return std::string(entry_id);
}

namespace {

std::optional<std::pair<std::uint64_t, std::uint64_t>> entry_parts(std::string_view id) {
    const auto dash = id.find('-');
    std::uint64_t ms = 0, seq = 0;
    const auto ms_end = dash == std::string_view::npos ? id.size() : dash;
    auto [p1, e1] = std::from_chars(id.data(), id.data() + ms_end, ms);
    if (e1 != std::errc{} || p1 != id.data() + ms_end) return std::nullopt;
    if (dash != std::string_view::npos) {
        auto [p2, e2] = std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
        if (e2 != std::errc{} || p2 != id.data() + id.size()) return std::nullopt;
    }
    return std::pair{ms, seq};
}

}  // namespace

bool entry_before(std::string_view a, std::string_view b) {
    const auto pa = entry_parts(a), pb = entry_parts(b);
    if (!pa) return pb.has_value();
    if (!pb) return false;
    return *pa < *pb;
}

read_result<std::optional<std::string>> read_last_delivered(const redis::value& groups) {
    using result = read_result<std::optional<std::string>>;
    if (groups.is_error() && groups.str.rfind("ERR no such key", 0) == 0) return result(std::optional<std::string>());
    if (!groups.is_array()) return result::failure(unexpected(groups, "XINFO GROUPS", "an array of groups"));
    for (auto& g : groups.elements) {
        if (!g.is_array() || g.elements.size() % 2 != 0)
            return result::failure("unexpected reply to XINFO GROUPS: a group is not a list of name/value pairs");
        bool ours = false;
        std::optional<std::string> last;
        for (std::size_t i = 0; i < g.elements.size(); i += 2) {
            const auto& name = g.elements[i].str;
            const auto& value = g.elements[i + 1];
            if (name == "name") ours = value.is_string() && value.str == group_name;
            if (name == "last-delivered-id" && value.is_string()) last = value.str;
        }
        if (!ours) continue;
        if (!last) return result::failure("unexpected reply to XINFO GROUPS: the outq group has no last-delivered-id");
        return result(last);
    }
    return result(std::optional<std::string>());
}

redis::command pending_page_command(const keys& k, std::string_view after, long long count) {
    redis::command c("XPENDING");
    c.arg(k.jobs).arg(group_name);
    if (after.empty())
        c.arg("-");
    else
        c.arg("(", after);
    return c.arg("+").arg(count);
}

redis::command pending_entry_command(const keys& k, std::string_view entry_id) {
    return redis::command("XPENDING").arg(k.jobs).arg(group_name).arg(entry_id).arg(entry_id).arg(1);
}

read_result<std::vector<pending_entry>> read_pending_rows(const redis::value& reply) {
    using result = read_result<std::vector<pending_entry>>;
    if (reply.error_is("NOGROUP")) return std::vector<pending_entry>{};
    if (!reply.is_array()) return fail<std::vector<pending_entry>>(reply, "XPENDING", "an array of pending entries");
    std::vector<pending_entry> out;
    for (auto& row : reply.elements) {
        // [id, consumer, idle ms, deliveries]
        if (!row.is_array() || row.elements.size() != 4 || !row.elements[0].is_string() ||
            !row.elements[1].is_string() || !is_integer(row.elements[2]) || !is_integer(row.elements[3]))
            return result::failure("unexpected reply to XPENDING: a row is not [id, consumer, idle, deliveries]");
        out.push_back({row.elements[0].str, row.elements[1].str, row.elements[2].integer, row.elements[3].integer});
    }
    return out;
}

std::vector<redis::command> entry_commands(const keys& k, const std::vector<std::string>& entry_ids) {
    std::vector<redis::command> cmds;
    cmds.reserve(entry_ids.size());
    for (auto& id : entry_ids) cmds.push_back(redis::command("XRANGE").arg(k.jobs).arg(id).arg(id));
    return cmds;
}

redis::command delayed_page_command(const keys& k, long long start, long long count) {
    return redis::command("ZRANGE").arg(k.delayed).arg(start).arg(start + count - 1).arg("WITHSCORES");
}

read_result<std::vector<delayed_member>> read_delayed_page(const redis::value& reply) {
    using result = read_result<std::vector<delayed_member>>;
    if (!reply.is_array() || reply.elements.size() % 2 != 0)
        return fail<std::vector<delayed_member>>(reply, "ZRANGE", "an array of member/score pairs");
    std::vector<delayed_member> out;
    for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
        const auto& m = reply.elements[i];
        const auto& score = reply.elements[i + 1];
        if (!m.is_string() || !score.is_string())
            return result::failure("unexpected reply to ZRANGE: a member or score that is not a string");
        double d = 0;
        auto [p, ec] = std::from_chars(score.str.data(), score.str.data() + score.str.size(), d);
        if (ec != std::errc{}) return result::failure("unexpected reply to ZRANGE: a score that is not a number");
        out.push_back({m.str, static_cast<unix_ms>(d)});
    }
    return out;
}

std::vector<redis::command> delayed_item_commands(const keys& k, const std::vector<delayed_member>& members) {
    std::vector<redis::command> cmds;
    cmds.reserve(members.size());
    for (auto& m : members) cmds.push_back(redis::command("HGETALL").arg(k.delayed_item_prefix, m.token));
    return cmds;
}

read_result<std::vector<field_list>> read_delayed_items(const std::vector<redis::value>& replies) {
    std::vector<field_list> out;
    out.reserve(replies.size());
    for (auto& v : replies) {
        auto h = read_hash(v);
        if (!h.ok()) return read_result<std::vector<field_list>>::failure(h.error);
        out.push_back(std::move(*h.value));
    }
    return out;
}

std::string delay_reason(const field_list& item) {
    const std::string* history = find_field(item, "history");
    if (!history || history->size() < 3) return "not_before (or put back by a worker)";
    rapidjson::Document d;
    d.Parse(history->c_str(), history->size());
    if (d.HasParseError() || !d.IsArray() || d.Empty()) return "not_before (or put back by a worker)";
    const auto& last = d[d.Size() - 1];
    std::string out = "retry after ";
    if (last.IsObject()) {
        if (auto* cls = json::find(last, "class"); cls && cls->IsString()) out += json::view(*cls);
        if (auto* st = json::find(last, "status"); st && st->IsInt() && st->GetInt() > 0)
            out += " (HTTP " + std::to_string(st->GetInt()) + ")";
        if (auto* err = json::find(last, "error"); err && err->IsString() && err->GetStringLength() > 0)
            out += ": " + std::string(json::view(*err));
    }
    out += " (attempt " + std::to_string(d.Size()) + ")";
    return out;
}

redis::command retry_now_command(const keys& k, std::string_view token, unix_ms now) {
    return redis::command("ZADD").arg(k.delayed).arg("XX").arg("CH").arg(static_cast<long long>(now)).arg(token);
}

read_result<bool> read_retry_now(const redis::value& reply) {
    auto n = integer_of(reply, "ZADD");
    if (!n.ok()) return read_result<bool>::failure(n.error);
    return *n.value > 0;
}

}  // namespace outq::queue::admin
