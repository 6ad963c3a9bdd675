#include "outq/queue/activity.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "outq/json_util.hpp"

namespace outq::queue::activity {

namespace {

// "outq:{Q}:" whatever the partition: the queue's own slot.
std::string queue_prefix(const keys& k) {
    return "outq:{" + k.queue + "}:";
}

std::string account_of(std::string_view labels) {
    auto provider = label_value(labels, "provider");
    auto account = label_value(labels, "account");
    return provider.value_or(std::string(metrics::unknown)) + "/" + account.value_or(std::string(metrics::unknown));
}

// 0.005 s → "5"; bounds below a millisecond keep their decimals.
std::string bound_ms(double seconds) {
    const double ms = seconds * 1000.0;
    if (std::abs(ms - std::round(ms)) < 1e-9) return std::to_string(std::llround(ms));
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, ms);
    return ec == std::errc() ? std::string(buf, end) : std::to_string(ms);
}

bool integer_text(std::string_view s, std::int64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void string(json_writer& w, std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::int64_t integer(const rapidjson::Value& obj, const char* key) {
    const auto* v = json::find(obj, key);
    return v && v->IsInt64() ? v->GetInt64() : 0;
}

}  // namespace

std::string bucket_key(const keys& k, std::int64_t minute) {
    return queue_prefix(k) + "activity:" + std::to_string(minute);
}

std::string worker_key(const keys& k, std::string_view consumer) {
    return queue_prefix(k) + "worker:" + std::string(consumer);
}

totals totals_of(const metrics& m) {
    totals t;
    m.for_each_counter("outq_jobs_total", [&](std::string_view labels, double value) {
        const auto outcome = label_value(labels, "outcome");
        if (!outcome || value <= 0) return;
        std::string field = *outcome + ":";
        if (*outcome == "dead") field += label_value(labels, "class").value_or("unknown");
        field += ":" + account_of(labels);
        t[field] += static_cast<std::uint64_t>(value);
    });
    m.for_each_histogram("outq_send_duration_seconds",
                         [&](std::string_view labels, const std::vector<double>& bounds,
                             const std::vector<std::uint64_t>& buckets, std::uint64_t count) {
                             const auto account = account_of(labels);
                             std::uint64_t within = 0;
                             for (std::size_t i = 0; i < bounds.size() && i < buckets.size(); ++i) {
                                 within += buckets[i];
                                 if (buckets[i] > 0) t["lat:" + bound_ms(bounds[i]) + ":" + account] += buckets[i];
                             }
                             if (count > within) t["lat:inf:" + account] += count - within;
                         });
    return t;
}

std::vector<std::pair<std::string, std::uint64_t>> growth(const totals& written, const totals& now) {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    for (const auto& [field, total] : now) {
        const auto it = written.find(field);
        const std::uint64_t before = it == written.end() ? 0 : it->second;
        if (total > before) out.emplace_back(field, total - before);
    }
    return out;
}

void write_counts(json_writer& w, const worker_snapshot& s) {
    w.Key("in_flight");
    w.Int64(s.in_flight);
    w.Key("waiting_for_permit");
    w.Int64(s.waiting_for_permit);
    w.Key("concurrency");
    w.Int64(s.concurrency);
    w.Key("sent");
    w.Uint64(s.sent);
    w.Key("dead");
    w.Uint64(s.dead);
    w.Key("retried");
    w.Uint64(s.retried);
}

void write_limits(json_writer& w, const account_limits& l) {
    w.Key("requests");
    w.Int(l.requests);
    w.Key("window_ms");
    w.Int64(l.window_ms);
    w.Key("burst");
    w.Int(l.burst);
    w.Key("max_in_flight");
    w.Int(l.max_in_flight);
}

std::string to_json(const worker_snapshot& s) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    w.Key("consumer");
    string(w, s.consumer);
    w.Key("at");
    w.Int64(s.at);
    w.Key("started");
    w.Int64(s.started);
    write_counts(w, s);
    w.Key("limits");
    w.StartArray();
    for (const auto& l : s.limits) {
        w.StartObject();
        w.Key("account");
        string(w, l.account);
        write_limits(w, l);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return buf.GetString();
}

std::optional<worker_snapshot> parse_snapshot(std::string_view text) {
    rapidjson::Document d;
    d.Parse<json::strict_flags>(text.data(), text.size());
    if (d.HasParseError() || !d.IsObject()) return std::nullopt;
    const auto* consumer = json::find(d, "consumer");
    if (!consumer || !consumer->IsString()) return std::nullopt;
    worker_snapshot s;
    s.consumer = json::view(*consumer);
    s.at = integer(d, "at");
    s.started = integer(d, "started");
    s.in_flight = integer(d, "in_flight");
    s.waiting_for_permit = integer(d, "waiting_for_permit");
    s.concurrency = integer(d, "concurrency");
    s.sent = static_cast<std::uint64_t>(std::max<std::int64_t>(0, integer(d, "sent")));
    s.dead = static_cast<std::uint64_t>(std::max<std::int64_t>(0, integer(d, "dead")));
    s.retried = static_cast<std::uint64_t>(std::max<std::int64_t>(0, integer(d, "retried")));
    if (const auto* limits = json::find(d, "limits"); limits && limits->IsArray())
        for (const auto& l : limits->GetArray()) {
            const auto* account = json::find(l, "account");
            if (!account || !account->IsString()) continue;
            account_limits a;
            a.account = json::view(*account);
            a.requests = static_cast<int>(integer(l, "requests"));
            a.window_ms = integer(l, "window_ms");
            a.burst = static_cast<int>(integer(l, "burst"));
            a.max_in_flight = static_cast<int>(integer(l, "max_in_flight"));
            s.limits.push_back(std::move(a));
        }
    return s;
}

std::vector<redis::command> write_commands(const keys& k, std::int64_t minute,
                                           const std::vector<std::pair<std::string, std::uint64_t>>& grown,
                                           const worker_snapshot& snapshot, std::chrono::milliseconds snapshot_ttl) {
    std::vector<redis::command> cmds;
    cmds.reserve(grown.size() + 2);
    if (!grown.empty()) {
        const auto bucket = bucket_key(k, minute);
        for (const auto& [field, by] : grown)
            cmds.push_back(redis::command("HINCRBY").arg(bucket).arg(field).arg(static_cast<long long>(by)));
        // PEXPIRE: the worker's Redis user has it (deploy/redis/outq-users.acl).
        cmds.push_back(redis::command("PEXPIRE").arg(bucket).arg(static_cast<long long>(bucket_ttl_seconds * 1000)));
    }
    cmds.push_back(redis::command("SET")
                       .arg(worker_key(k, snapshot.consumer))
                       .arg(to_json(snapshot))
                       .arg("PX")
                       .arg(static_cast<long long>(snapshot_ttl.count())));
    return cmds;
}

bool written(const std::vector<redis::value>& replies, std::string& error) {
    for (const auto& r : replies)
        if (r.is_error()) {
            error = r.str;
            return false;
        }
    return true;
}

std::vector<redis::command> history_commands(const keys& k, std::int64_t last_minute, int minutes) {
    std::vector<redis::command> cmds;
    cmds.reserve(static_cast<std::size_t>(std::max(minutes, 0)));
    for (std::int64_t m = last_minute - minutes + 1; m <= last_minute; ++m)
        cmds.push_back(redis::command("HGETALL").arg(bucket_key(k, m)));
    return cmds;
}

bool read_history(const std::vector<redis::value>& replies, std::int64_t last_minute, std::vector<minute_counts>& out,
                  std::string& error) {
    out.clear();
    const auto first = last_minute - static_cast<std::int64_t>(replies.size()) + 1;
    for (std::size_t i = 0; i < replies.size(); ++i) {
        const auto& r = replies[i];
        if (r.is_error() || !r.is_array() || r.elements.size() % 2 != 0) {
            error = r.is_error() ? "HGETALL activity: " + r.str : "HGETALL activity: expected field, value pairs";
            return false;
        }
        minute_counts m;
        m.minute = first + static_cast<std::int64_t>(i);
        for (std::size_t j = 0; j + 1 < r.elements.size(); j += 2) {
            std::int64_t n = 0;
            if (!r.elements[j].is_string() || !integer_text(r.elements[j + 1].str, n)) continue;  // not ours
            m.fields[r.elements[j].str] += n;
        }
        out.push_back(std::move(m));
    }
    return true;
}

std::optional<field_name> split_field(std::string_view field) {
    const auto a = field.find(':');
    if (a == std::string_view::npos) return std::nullopt;
    const auto b = field.find(':', a + 1);
    if (b == std::string_view::npos) return std::nullopt;
    const auto account = field.substr(b + 1);
    if (account.find('/') == std::string_view::npos) return std::nullopt;
    return field_name{std::string(field.substr(0, a)), std::string(field.substr(a + 1, b - a - 1)),
                      std::string(account)};
}

std::vector<queue_minute> queue_series(const std::vector<minute_counts>& history) {
    std::vector<queue_minute> out;
    out.reserve(history.size());
    for (const auto& m : history) {
        queue_minute q;
        q.start = m.minute * minute_ms;
        for (const auto& [field, n] : m.fields) {
            auto f = split_field(field);
            if (!f) continue;
            if (f->kind == "sent")
                q.sent += n;
            else if (f->kind == "dead")
                q.dead += n;
            else if (f->kind == "retry")
                q.retried += n;
            else if (f->kind == "delay")
                q.delayed += n;
        }
        out.push_back(q);
    }
    return out;
}

std::int64_t account_figures::exchanges() const {
    std::int64_t n = 0;
    for (const auto& [bound, count] : latency) n += count;
    return n;
}

std::map<std::string, account_figures, std::less<>> account_series(const std::vector<minute_counts>& history,
                                                                   std::int64_t since_minute) {
    std::map<std::string, account_figures, std::less<>> out;
    for (const auto& m : history)
        for (const auto& [field, n] : m.fields) {
            auto f = split_field(field);
            if (!f) continue;
            auto& a = out[f->account];
            if (f->kind == "sent") {
                a.sent += n;
            } else if (f->kind == "retry") {
                a.retried += n;
            } else if (f->kind == "dead") {
                a.dead += n;
                a.dead_by_class[f->qualifier] += n;
            } else if (f->kind == "lat" && m.minute >= since_minute) {
                double bound = std::numeric_limits<double>::infinity();
                if (f->qualifier != "inf") {
                    auto [p, ec] =
                        std::from_chars(f->qualifier.data(), f->qualifier.data() + f->qualifier.size(), bound);
                    if (ec != std::errc() || p != f->qualifier.data() + f->qualifier.size()) continue;
                }
                a.latency[bound] += n;
            }
        }
    return out;
}

std::optional<double> quantile_ms(const std::map<double, std::int64_t>& buckets, double q) {
    std::int64_t total = 0;
    for (const auto& [bound, n] : buckets) total += std::max<std::int64_t>(n, 0);
    if (total == 0) return std::nullopt;
    const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
    double lower = 0, seen = 0, highest_finite = 0;
    for (const auto& [bound, n] : buckets) {
        if (std::isinf(bound)) return highest_finite;  // beyond every finite bound: say the highest
        highest_finite = bound;
        const double count = static_cast<double>(std::max<std::int64_t>(n, 0));
        if (count > 0 && seen + count >= rank) return lower + (bound - lower) * ((rank - seen) / count);
        seen += count;
        lower = bound;
    }
    return highest_finite;
}

redis::command snapshots_command(const keys& k, const std::vector<std::string>& consumers) {
    redis::command c("MGET");
    for (const auto& name : consumers) c.arg(worker_key(k, name));
    return c;
}

bool read_snapshots(const redis::value& reply, std::vector<worker_snapshot>& out, std::string& error) {
    if (reply.is_error() || !reply.is_array()) {
        error = reply.is_error() ? "MGET worker snapshots: " + reply.str : "MGET worker snapshots: expected an array";
        return false;
    }
    for (const auto& v : reply.elements)
        if (v.is_string())
            if (auto s = parse_snapshot(v.str)) out.push_back(std::move(*s));
    return true;
}

}  // namespace outq::queue::activity
