#include "outq/queue/group.hpp"

#include "outq/queue/errors.hpp"

namespace outq::queue {

redis::command create_group_command(const keys& k) {
    redis::command c("XGROUP");
    c.arg("CREATE").arg(k.jobs).arg(group_name).arg("0").arg("MKSTREAM");
    return c;
}

bool parse_create_group(const redis::value& reply) {
    return !reply.is_error() || reply.error_is("BUSYGROUP");
}

redis::command read_group_command(const keys& k, std::string_view consumer, int count,
                                  std::chrono::milliseconds block) {
    redis::command c("XREADGROUP");
    c.arg("GROUP").arg(group_name).arg(consumer).arg("COUNT").arg(count);
    c.arg("BLOCK").arg(static_cast<long long>(block.count()));
    c.arg("STREAMS").arg(k.jobs).arg(">");
    return c;
}

redis::command autoclaim_command(const keys& k, std::string_view consumer, std::chrono::milliseconds min_idle,
                                 std::string_view cursor, int count) {
    redis::command c("XAUTOCLAIM");
    c.arg(k.jobs).arg(group_name).arg(consumer);
    c.arg(static_cast<long long>(min_idle.count())).arg(cursor);
    c.arg("COUNT").arg(count);
    return c;
}

redis::command consumers_command(const keys& k) {
    return redis::command("XINFO").arg("CONSUMERS").arg(k.jobs).arg(group_name);
}

bool parse_consumers(const redis::value& reply, std::vector<consumer_row>& out) {
    out.clear();
    if (!reply.is_array()) return false;
    for (auto& c : reply.elements) {
        if (!c.is_array()) return false;
        consumer_row row;
        for (std::size_t i = 0; i + 1 < c.elements.size(); i += 2) {
            const auto& key = c.elements[i].str;
            if (key == "name")
                row.name = c.elements[i + 1].str;
            else if (key == "pending")
                row.pending = c.elements[i + 1].integer;
            else if (key == "idle")
                row.idle_ms = c.elements[i + 1].integer;
        }
        out.push_back(std::move(row));
    }
    return true;
}

bool parse_departed_consumers(const redis::value& reply, std::string_view me, std::int64_t idle_limit_ms,
                              std::vector<std::string>& out) {
    out.clear();
    std::vector<consumer_row> rows;
    if (!parse_consumers(reply, rows)) return false;
    for (auto& row : rows)
        if (!row.name.empty() && row.name != me && row.pending == 0 && row.idle_ms >= idle_limit_ms)
            out.push_back(std::move(row.name));
    return true;
}

redis::command delete_consumer_command(const keys& k, std::string_view name) {
    return redis::command("XGROUP").arg("DELCONSUMER").arg(k.jobs).arg(group_name).arg(name);
}

redis::command unblock_command(std::int64_t client_id) {
    return redis::command("CLIENT").arg("UNBLOCK").arg(static_cast<long long>(client_id));
}

redis::command pending_summary_command(const keys& k) {
    return redis::command("XPENDING").arg(k.jobs).arg(group_name);
}

bool parse_pending_of(const redis::value& reply, std::string_view consumer, std::int64_t& out) {
    out = 0;
    // [count, smallest id, greatest id, [[consumer, "count"], …]]
    if (!reply.is_array() || reply.elements.size() < 4) return false;
    const auto& per_consumer = reply.elements[3];
    if (per_consumer.is_nil()) return true;
    if (!per_consumer.is_array()) return false;
    for (auto& row : per_consumer.elements) {
        if (!row.is_array() || row.elements.size() < 2) return false;
        if (row.elements[0].str != consumer) continue;
        const auto& n = row.elements[1];
        if (n.type == redis::value::kind::integer) {
            out = n.integer;
        } else {
            try {
                out = std::stoll(n.str);
            } catch (...) {
                return false;
            }
        }
    }
    return true;
}

std::vector<preflight_check> preflight_checks(const keys& k, std::string_view consumer) {
    // Each call changes nothing: ids and idle times that match no entry, keys
    // of a job id no producer can use (it is longer than the 200 characters
    // a job id may have).
    const std::string probe = k.prefix + "preflight:" + std::string(201, 'x');
    std::vector<preflight_check> out;
    auto add = [&](std::string_view name, redis::command c) { out.push_back({name, std::move(c)}); };
    add("XREADGROUP", redis::command("XREADGROUP")
                          .arg("GROUP")
                          .arg(group_name)
                          .arg(consumer)
                          .arg("COUNT")
                          .arg(1)
                          .arg("STREAMS")
                          .arg(k.jobs)
                          .arg("0-1"));
    add("XAUTOCLAIM", autoclaim_command(k, consumer, std::chrono::milliseconds(std::int64_t(1) << 50), "0-0", 1));
    add("XCLAIM", redis::command("XCLAIM")
                      .arg(k.jobs)
                      .arg(group_name)
                      .arg(consumer)
                      .arg(static_cast<long long>(std::int64_t(1) << 50))
                      .arg("0-1")
                      .arg("JUSTID"));
    add("XPENDING", redis::command("XPENDING").arg(k.jobs).arg(group_name).arg("0-1").arg("0-1").arg(1));
    add("XACK", redis::command("XACK").arg(k.jobs).arg(group_name).arg("0-1"));
    add("XDEL", redis::command("XDEL").arg(k.jobs).arg("0-1"));
    add("XINFO", consumers_command(k));
    add("EVAL", redis::command("EVAL").arg("return 1").arg(1).arg(k.jobs));
    add("EVALSHA",
        redis::command("EVALSHA").arg("e0e1f9fabfc9d4800c877a703b823ac0578ff8db").arg(1).arg(k.jobs));  // "return 1"
    add("SET", redis::command("SET").arg(probe).arg("1").arg("PX").arg(1).arg("NX"));
    add("GET", redis::command("GET").arg(probe));
    // The format key exists (checked just before): MSETNX sets nothing.
    add("MSETNX", redis::command("MSETNX").arg(k.format).arg(format_version));
    // The pauses are account keys, in their own slot and key pattern.
    add("PTTL", redis::command("PTTL").arg(k.scope("preflight", std::string(201, 'x')) + "pause"));
    add("ZRANGE", next_due_command(k));
    add("ZREM", redis::command("ZREM").arg(probe).arg("x"));
    return out;
}

std::vector<std::string> missing_permissions(const std::vector<preflight_check>& checks,
                                             const std::vector<redis::value>& replies) {
    std::vector<std::string> missing;
    for (std::size_t i = 0; i < checks.size() && i < replies.size(); ++i) {
        const auto& r = replies[i];
        // EVALSHA of a script Redis never saw answers NOSCRIPT: allowed.
        if (r.is_error() && error_code(r) == "NOPERM") missing.emplace_back(checks[i].command);
    }
    return missing;
}

redis::command info_memory_command() {
    return redis::command("INFO").arg("memory");
}

std::string parse_maxmemory_policy(const redis::value& reply) {
    if (!reply.is_string()) return {};
    std::string_view text = reply.str;
    constexpr std::string_view key = "maxmemory_policy:";
    auto at = text.find(key);
    if (at == std::string_view::npos) return {};
    auto rest = text.substr(at + key.size());
    auto end = rest.find_first_of("\r\n");
    return std::string(rest.substr(0, end));
}

}  // namespace outq::queue
