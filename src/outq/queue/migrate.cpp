#include "outq/queue/migrate.hpp"

#include <rapidjson/document.h>

#include <charconv>

#include "outq/encoding.hpp"
#include "outq/json_util.hpp"
#include "outq/queue/format.hpp"

namespace outq::queue::migrate {

namespace {

// Reply reading shared with the other operator commands.
using admin::fail;
using admin::is_integer;
using admin::unexpected;

// "ERR no such key": XINFO of a stream that does not exist.
bool no_such_key(const redis::value& v) {
    return v.is_error() && v.str.find("no such key") != std::string::npos;
}

std::string v1_limit_prefix(const keys& k) {
    return k.prefix + "limit:";
}

std::string v1_scope_prefix(const keys& k, const v1_scope& s) {
    return v1_limit_prefix(k) + s.provider + ":" + s.account + ":";
}

// The members of a result as outcome_json (result.cpp) writes them, in its order.
enum class member_type { text, text_if, number, json };
struct member {
    std::string_view name;
    member_type type;
};
constexpr member outcome_members[] = {
    {"id", member_type::text},
    {"attempts", member_type::number},
    {"http_status", member_type::number},
    {"provider_message_id", member_type::text_if},
    {"request_id", member_type::text_if},
    {"response", member_type::text_if},
    {"error_class", member_type::text_if},
    {"error", member_type::text_if},
    {"provider", member_type::text_if},
    {"account", member_type::text_if},
    {"enqueued_at", member_type::number},
    {"completed_at", member_type::number},
    {"meta", member_type::json},
    {"replay_of", member_type::text_if},
    {"dead_entry", member_type::text_if},  // appended by the completion script, after the others
};

bool known_member(std::string_view name) {
    if (name == "status") return true;
    for (auto& m : outcome_members)
        if (m.name == name) return true;
    return false;
}

void append_name(std::string& out, std::string_view name) {
    out += ',';
    json::append_quoted(out, is_valid_utf8(name) ? std::string(name) : to_valid_utf8(name));
    out += ':';
}

void append_string(std::string& out, std::string_view value) {
    if (is_valid_utf8(value))
        json::append_quoted(out, value);
    else
        json::append_quoted(out, to_valid_utf8(value));
}

// A whole number as JSON writes it ("007" is 7); nullopt for anything else.
std::optional<std::string> whole_number(std::string_view text) {
    long long n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return std::to_string(n);
}

// Whether `text` is one JSON value in UTF-8 (what a format 1 worker wrote as meta).
bool is_json(std::string_view text) {
    if (!is_valid_utf8(text)) return false;
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
    return !d.HasParseError();
}

const std::string* find_field(const field_list& fields, std::string_view name) {
    for (auto& [k, v] : fields)
        if (k == name) return &v;
    return nullptr;
}

}  // namespace

std::string glob_escape(std::string_view literal) {
    std::string out;
    out.reserve(literal.size());
    for (char c : literal) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

std::string v1_result_pattern(const keys& k) {
    return glob_escape(k.result_prefix) + "*";
}

std::string v1_inflight_pattern(const keys& k) {
    return glob_escape(k.prefix + "inflight:") + "*";
}

std::string v1_limit_pattern(const keys& k) {
    return glob_escape(v1_limit_prefix(k)) + "*";
}

// --- 1 --------------------------------------------------------------------------

std::vector<redis::command> state_commands(const keys& k) {
    std::vector<redis::command> out;
    out.push_back(redis::command("GET").arg(k.format));
    out.push_back(redis::command("XINFO").arg("GROUPS").arg(k.jobs));
    return out;
}

read_result<queue_state> read_state(const std::vector<redis::value>& replies) {
    using result = read_result<queue_state>;
    if (replies.size() != 2)
        return result::failure("expected 2 replies to GET and XINFO GROUPS, got " + std::to_string(replies.size()));
    queue_state s;
    const auto& format = replies[0];
    if (format.is_string())
        s.format = format.str;
    else if (!format.is_nil())
        return fail<queue_state>(format, "GET", "the format or nil");
    const auto& groups = replies[1];
    if (no_such_key(groups)) return s;  // no stream: no group either
    if (!groups.is_array()) return fail<queue_state>(groups, "XINFO GROUPS", "an array of groups");
    s.stream = true;
    for (auto& g : groups.elements) {
        if (!g.is_array() || g.elements.size() % 2 != 0)
            return result::failure("unexpected reply to XINFO GROUPS: a group is not a list of name/value pairs");
        std::string name;
        group_state state;
        bool has_last = false;
        for (std::size_t i = 0; i < g.elements.size(); i += 2) {
            const auto& field = g.elements[i].str;
            const auto& value = g.elements[i + 1];
            if (field == "name" && value.is_string()) {
                name = value.str;
            } else if (field == "last-delivered-id" && value.is_string()) {
                state.last_delivered = value.str;
                has_last = true;
            } else if (field == "pending" && is_integer(value)) {
                state.pending = value.integer;
            } else if (field == "consumers" && is_integer(value)) {
                state.consumers = value.integer;
            }
        }
        if (name == group_name) s.v2 = true;
        if (name == format1_group_name) {
            if (!has_last)
                return result::failure("unexpected reply to XINFO GROUPS: the group outq has no last-delivered-id");
            s.v1 = std::move(state);
        }
    }
    return s;
}

decision decide(const keys& k, const queue_state& s) {
    decision d;
    if (s.format == format_version) {
        d.what = decision::kind::already;
        d.message = "queue " + k.queue + " is already in format " + std::string(format_version);
    } else if (s.format && *s.format != migrating_value) {
        d.what = decision::kind::refuse;
        d.message = "queue " + k.queue + " has format '" + *s.format + "' (" + k.format +
                    "); outq migrate converts format 1 (no format key) to format " + std::string(format_version) +
                    " only";
    } else if (!s.format && !s.v1) {
        d.what = decision::kind::new_queue;
    } else {
        d.what = decision::kind::migrate;
    }
    return d;
}

// --- 2 --------------------------------------------------------------------------

redis::command consumers_command(const keys& k) {
    return redis::command("XINFO").arg("CONSUMERS").arg(k.jobs).arg(format1_group_name);
}

read_result<std::vector<consumer>> read_consumers(const redis::value& reply) {
    using result = read_result<std::vector<consumer>>;
    if (reply.error_is("NOGROUP") || no_such_key(reply)) return std::vector<consumer>{};
    if (!reply.is_array()) return fail<std::vector<consumer>>(reply, "XINFO CONSUMERS", "an array of consumers");
    std::vector<consumer> out;
    for (auto& c : reply.elements) {
        if (!c.is_array() || c.elements.size() % 2 != 0)
            return result::failure("unexpected reply to XINFO CONSUMERS: a consumer is not a list of name/value pairs");
        consumer one;
        bool has_idle = false;
        for (std::size_t i = 0; i < c.elements.size(); i += 2) {
            const auto& field = c.elements[i].str;
            const auto& value = c.elements[i + 1];
            if (field == "name" && value.is_string()) {
                one.name = value.str;
            } else if (field == "pending" && is_integer(value)) {
                one.pending = value.integer;
            } else if (field == "idle" && is_integer(value)) {
                one.idle_ms = value.integer;
                has_idle = true;
            }
        }
        if (!has_idle) return result::failure("unexpected reply to XINFO CONSUMERS: a consumer without idle");
        out.push_back(std::move(one));
    }
    return out;
}

std::vector<consumer> active_consumers(const std::vector<consumer>& all, std::int64_t within_ms) {
    std::vector<consumer> out;
    for (auto& c : all)
        if (c.idle_ms < within_ms) out.push_back(c);
    return out;
}

std::string active_refusal(const keys& k, const std::vector<consumer>& active) {
    std::string names;
    for (auto& c : active) {
        if (!names.empty()) names += ", ";
        names += to_valid_utf8(c.name) + " (idle " + std::to_string(c.idle_ms / 1000) + " s, " +
                 std::to_string(c.pending) + " pending)";
    }
    return "queue " + k.queue + ": a consumer of the format 1 group " + std::string(format1_group_name) + " on " +
           k.jobs + " was active in the last " + std::to_string(active_within_ms / 1000) + " s: " + names +
           "; a format 1 worker may be running: stop every format 1 worker first (--force when you know they are "
           "gone)";
}

// --- 3 and 8 --------------------------------------------------------------------

redis::command set_format_command(const keys& k, std::string_view value) {
    return redis::command("SET").arg(k.format).arg(value);
}

// --- 4 --------------------------------------------------------------------------

redis::command pending_page_command(const keys& k, std::string_view after, long long count) {
    redis::command c("XPENDING");
    c.arg(k.jobs).arg(format1_group_name);
    if (after.empty())
        c.arg("-");
    else
        c.arg("(", after);
    return c.arg("+").arg(count);
}

read_result<std::vector<std::string>> read_pending_page(const redis::value& reply) {
    using result = read_result<std::vector<std::string>>;
    if (reply.error_is("NOGROUP")) return std::vector<std::string>{};
    if (!reply.is_array()) return fail<std::vector<std::string>>(reply, "XPENDING", "an array of pending entries");
    std::vector<std::string> out;
    out.reserve(reply.elements.size());
    for (auto& row : reply.elements) {  // [id, consumer, idle, deliveries]
        if (!row.is_array() || row.elements.empty() || !row.elements[0].is_string())
            return result::failure("unexpected reply to XPENDING: a row that is not [id, consumer, idle, count]");
        out.push_back(row.elements[0].str);
    }
    return out;
}

redis::command delivered_page_command(const keys& k, std::string_view after, std::string_view last_delivered,
                                      long long count) {
    redis::command c("XRANGE");
    c.arg(k.jobs);
    if (after.empty())
        c.arg("-");
    else
        c.arg("(", after);
    return c.arg(last_delivered).arg("COUNT").arg(count);
}

read_result<std::vector<std::string>> read_entry_ids(const redis::value& reply) {
    using result = read_result<std::vector<std::string>>;
    if (!reply.is_array()) return fail<std::vector<std::string>>(reply, "XRANGE", "an array of entries");
    std::vector<std::string> out;
    out.reserve(reply.elements.size());
    for (auto& e : reply.elements) {  // [id, [field, value, …]]
        if (!e.is_array() || e.elements.size() != 2 || !e.elements[0].is_string())
            return result::failure("unexpected reply to XRANGE: an entry is not [id, fields]");
        out.push_back(e.elements[0].str);
    }
    return out;
}

std::vector<std::string> finished_entries(const std::vector<std::string>& delivered,
                                          const std::unordered_set<std::string>& pending) {
    std::vector<std::string> out;
    for (auto& id : delivered)
        if (!pending.count(id)) out.push_back(id);
    return out;
}

redis::command delete_entries_command(const keys& k, const std::vector<std::string>& ids) {
    redis::command c("XDEL");
    c.arg(k.jobs);
    for (auto& id : ids) c.arg(id);
    return c;
}

std::vector<redis::command> switch_groups_commands(const keys& k, bool create_v2) {
    std::vector<redis::command> out;
    out.push_back(redis::command("MULTI"));
    if (create_v2)
        out.push_back(redis::command("XGROUP").arg("CREATE").arg(k.jobs).arg(group_name).arg("0").arg("MKSTREAM"));
    out.push_back(redis::command("XGROUP").arg("DESTROY").arg(k.jobs).arg(format1_group_name));
    out.push_back(
        redis::command("XGROUP").arg("CREATE").arg(k.jobs).arg(format1_group_name).arg(fence_id).arg("MKSTREAM"));
    out.push_back(redis::command("EXEC"));
    return out;
}

read_result<bool> read_switch_groups(const std::vector<redis::value>& replies, bool create_v2) {
    using result = read_result<bool>;
    const std::size_t inner = create_v2 ? 3 : 2;
    if (replies.size() != inner + 2)
        return result::failure("expected " + std::to_string(inner + 2) + " replies to MULTI … EXEC, got " +
                               std::to_string(replies.size()));
    // A command refused when queued makes EXEC answer EXECABORT: that error says less.
    for (std::size_t i = 1; i <= inner; ++i)
        if (replies[i].is_error()) return result::failure(replies[i].str);
    if (replies[0].is_error()) return result::failure(replies[0].str);
    const auto& exec = replies.back();
    if (!exec.is_array()) return fail<bool>(exec, "EXEC", "the replies of the transaction");
    if (exec.elements.size() != inner)
        return result::failure("unexpected reply to EXEC: " + std::to_string(exec.elements.size()) +
                               " replies instead of " + std::to_string(inner));
    std::size_t at = 0;
    if (create_v2) {
        const auto& v2 = exec.elements[at++];
        if (v2.is_error() && !v2.error_is("BUSYGROUP"))
            return result::failure("XGROUP CREATE " + std::string(group_name) + ": " + v2.str);
    }
    const auto& destroy = exec.elements[at++];
    if (!is_integer(destroy))
        return result::failure("XGROUP DESTROY " + std::string(format1_group_name) + ": " +
                               unexpected(destroy, "XGROUP DESTROY", "an integer"));
    const auto& fence = exec.elements[at];
    if (fence.type != redis::value::kind::status || fence.str != "OK")
        return result::failure("XGROUP CREATE " + std::string(format1_group_name) + " " + std::string(fence_id) + ": " +
                               unexpected(fence, "XGROUP CREATE", "OK"));
    return true;
}

// --- SCAN -----------------------------------------------------------------------

redis::command scan_command(std::string_view cursor, std::string_view pattern) {
    return redis::command("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(scan_count);
}

read_result<scan_page> read_scan(const redis::value& reply) {
    using result = read_result<scan_page>;
    if (!reply.is_array() || reply.elements.size() != 2 || !reply.elements[0].is_string() ||
        !reply.elements[1].is_array())
        return fail<scan_page>(reply, "SCAN", "[cursor, keys]");
    scan_page page;
    page.cursor = reply.elements[0].str;
    page.keys.reserve(reply.elements[1].elements.size());
    for (auto& key : reply.elements[1].elements) {
        if (!key.is_string()) return result::failure("unexpected reply to SCAN: a key that is not a string");
        page.keys.push_back(key.str);
    }
    return page;
}

// --- 5 --------------------------------------------------------------------------

std::vector<redis::command> type_commands(const std::vector<std::string>& keys) {
    std::vector<redis::command> out;
    out.reserve(keys.size());
    for (auto& key : keys) out.push_back(redis::command("TYPE").arg(key));
    return out;
}

read_result<std::vector<std::string>> read_types(const std::vector<redis::value>& replies) {
    std::vector<std::string> out;
    out.reserve(replies.size());
    for (auto& r : replies) {
        if (!r.is_string()) return fail<std::vector<std::string>>(r, "TYPE", "a type name");
        out.push_back(r.str);
    }
    return out;
}

std::vector<redis::command> hash_read_commands(const std::vector<std::string>& keys) {
    std::vector<redis::command> out;
    out.reserve(2 * keys.size());
    for (auto& key : keys) {
        out.push_back(redis::command("HGETALL").arg(key));
        out.push_back(redis::command("PTTL").arg(key));
    }
    return out;
}

read_result<std::vector<v1_result>> read_hashes(const std::vector<std::string>& keys,
                                                const std::vector<redis::value>& replies) {
    using result = read_result<std::vector<v1_result>>;
    if (replies.size() != 2 * keys.size())
        return result::failure("expected " + std::to_string(2 * keys.size()) + " replies to HGETALL and PTTL, got " +
                               std::to_string(replies.size()));
    std::vector<v1_result> out;
    out.reserve(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        auto fields = admin::read_hash(replies[2 * i]);
        if (!fields.ok()) return result::failure(fields.error + " (" + keys[i] + ")");
        const auto& pttl = replies[2 * i + 1];
        if (!is_integer(pttl)) return result::failure(unexpected(pttl, "PTTL", "an integer") + " (" + keys[i] + ")");
        out.push_back({keys[i], std::move(*fields.value), pttl.integer});
    }
    return out;
}

std::string result_json(const field_list& fields) {
    std::string out = "{\"status\":";
    const std::string* status = find_field(fields, "status");
    append_string(out, status ? std::string_view(*status) : std::string_view("unknown"));
    for (const member& m : outcome_members) {
        const std::string* value = find_field(fields, m.name);
        if (!value) continue;
        switch (m.type) {
            case member_type::text:
                append_name(out, m.name);
                append_string(out, *value);
                break;
            case member_type::text_if:
                if (value->empty()) break;
                append_name(out, m.name);
                append_string(out, *value);
                break;
            case member_type::number:
                append_name(out, m.name);
                if (auto n = whole_number(*value))
                    out += *n;
                else
                    append_string(out, *value);
                break;
            case member_type::json:
                if (value->empty()) break;
                append_name(out, m.name);
                if (is_json(*value))
                    out += *value;
                else
                    append_string(out, *value);
                break;
        }
    }
    for (auto& [name, value] : fields) {
        if (known_member(name)) continue;
        append_name(out, name);
        append_string(out, value);
    }
    out += '}';
    return out;
}

std::vector<redis::command> convert_commands(const std::vector<v1_result>& hashes) {
    std::vector<redis::command> out;
    out.reserve(hashes.size());
    for (auto& h : hashes) {
        if (!h.convertible()) continue;
        redis::command c("SET");
        c.arg(h.key).arg(result_json(h.fields));
        if (h.pttl > 0) c.arg("PX").arg(static_cast<long long>(h.pttl));
        out.push_back(std::move(c));
    }
    return out;
}

read_result<std::int64_t> read_oks(const std::vector<redis::value>& replies, std::string_view command_name) {
    std::int64_t n = 0;
    for (auto& r : replies) {
        if (r.type != redis::value::kind::status || r.str != "OK") return fail<std::int64_t>(r, command_name, "OK");
        ++n;
    }
    return n;
}

// --- 6 --------------------------------------------------------------------------

redis::command delete_keys_command(const std::vector<std::string>& keys) {
    redis::command c("DEL");
    for (auto& key : keys) c.arg(key);
    return c;
}

read_result<std::int64_t> read_count(const redis::value& reply, std::string_view command_name) {
    if (!is_integer(reply)) return fail<std::int64_t>(reply, command_name, "an integer");
    return std::int64_t{reply.integer};
}

// --- 7 --------------------------------------------------------------------------

std::optional<v1_scope> parse_limit_key(const keys& k, std::string_view key) {
    const std::string prefix = v1_limit_prefix(k);
    if (key.size() <= prefix.size() || key.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    std::string_view rest = key.substr(prefix.size());
    bool known = false;
    for (std::string_view suffix : {":window", ":leases", ":pause"}) {
        if (rest.size() > suffix.size() && rest.ends_with(suffix)) {
            rest.remove_suffix(suffix.size());
            known = true;
            break;
        }
    }
    if (!known) return std::nullopt;
    const auto colon = rest.find(':');  // provider names have none; account names may
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) return std::nullopt;
    return v1_scope{std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))};
}

std::vector<redis::command> scope_read_commands(const keys& k, const v1_scope& s) {
    const std::string base = v1_scope_prefix(k, s);
    std::vector<redis::command> out;
    out.push_back(redis::command("GET").arg(base + "pause"));
    out.push_back(redis::command("PTTL").arg(base + "pause"));
    out.push_back(redis::command("ZRANGE").arg(base + "window").arg(0).arg(-1).arg("WITHSCORES"));
    out.push_back(redis::command("PTTL").arg(base + "window"));
    return out;
}

read_result<scope_snapshot> read_scope(const v1_scope& s, const std::vector<redis::value>& replies) {
    using result = read_result<scope_snapshot>;
    if (replies.size() != 4)
        return result::failure("expected 4 replies to GET, PTTL, ZRANGE and PTTL, got " +
                               std::to_string(replies.size()));
    scope_snapshot snap;
    snap.scope = s;
    if (replies[0].is_string())
        snap.pause = replies[0].str;
    else if (!replies[0].is_nil())
        return fail<scope_snapshot>(replies[0], "GET", "a pause reason or nil");
    if (!is_integer(replies[1])) return fail<scope_snapshot>(replies[1], "PTTL", "an integer");
    snap.pause_pttl = replies[1].integer;
    const auto& window = replies[2];
    if (!window.is_array() || window.elements.size() % 2 != 0)
        return fail<scope_snapshot>(window, "ZRANGE", "member/score pairs");
    for (std::size_t i = 0; i < window.elements.size(); i += 2) {
        if (!window.elements[i].is_string() || !window.elements[i + 1].is_string())
            return result::failure("unexpected reply to ZRANGE: a member or score that is not a string");
        snap.window.emplace_back(window.elements[i].str, window.elements[i + 1].str);
    }
    if (!is_integer(replies[3])) return fail<scope_snapshot>(replies[3], "PTTL", "an integer");
    snap.window_pttl = replies[3].integer;
    return snap;
}

std::vector<redis::command> scope_copy_commands(const keys& k, const scope_snapshot& s) {
    const std::string account = k.scope(s.scope.provider, s.scope.account);
    std::vector<redis::command> out;
    if (s.moves_pause()) {
        redis::command c("SET");
        c.arg(account + "pause").arg(*s.pause);
        if (s.pause_pttl > 0) c.arg("PX").arg(static_cast<long long>(s.pause_pttl));
        out.push_back(std::move(c));
    }
    if (s.moves_window()) {
        redis::command c("ZADD");
        c.arg(account + "window");
        for (auto& [member, score] : s.window) c.arg(score).arg(member);
        out.push_back(std::move(c));
        if (s.window_pttl > 0)
            out.push_back(redis::command("PEXPIRE").arg(account + "window").arg(static_cast<long long>(s.window_pttl)));
    }
    return out;
}

redis::command scope_delete_command(const keys& k, const v1_scope& s) {
    const std::string base = v1_scope_prefix(k, s);
    return redis::command("DEL").arg(base + "window").arg(base + "leases").arg(base + "pause");
}

}  // namespace outq::queue::migrate
