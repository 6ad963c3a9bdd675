#include "outq/web/api.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>

#include "outq/encoding.hpp"

namespace outq::web {

namespace admin = queue::admin;

namespace {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string url_decode(std::string_view s, bool query) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (query && s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

namespace {

// Text as JSON wants it: valid UTF-8 (the writer escapes quotes and control characters).
void string(writer& w, std::string_view s) {
    if (is_valid_utf8(s)) {
        w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
        return;
    }
    const auto fixed = to_valid_utf8(s);
    w.String(fixed.data(), static_cast<rapidjson::SizeType>(fixed.size()));
}

std::string_view field(const admin::field_list& fields, std::string_view name) {
    for (const auto& [k, v] : fields)
        if (k == name) return v;
    return {};
}

// The summary of a letter for a table row: what an operator filters and reads.
void letter_summary(writer& w, const admin::dead_letter& d) {
    w.StartObject();
    w.Key("entry");
    string(w, d.entry_id);
    w.Key("partition");
    w.Int(d.partition);
    for (const char* name : {"id", "provider", "account", "error_class", "error", "http_status", "failed_at"}) {
        w.Key(name);
        string(w, field(d.fields, name));
    }
    w.EndObject();
}

}  // namespace

std::map<std::string, std::string> parse_query(std::string_view query) {
    std::map<std::string, std::string> out;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (!pair.empty())
            out[url_decode(pair.substr(0, eq), true)] =
                eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1), true);
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return out;
}

std::optional<dead_query> read_dead_query(const std::map<std::string, std::string>& p, std::string& error) {
    dead_query q;
    auto get = [&](const char* name) {
        auto it = p.find(name);
        return it == p.end() ? std::string() : it->second;
    };
    q.provider = get("provider");
    q.account = get("account");
    q.error_class = get("class");
    q.status = get("status");
    q.text = get("q");
    q.before = get("before");
    if (!q.status.empty() && !admin::valid_status_pattern(q.status)) {
        error = "status: expected an HTTP status (422) or a class of them (4xx, 42x)";
        return std::nullopt;
    }
    for (auto [name, at] : {std::pair{"since", &q.since}, std::pair{"until", &q.until}}) {
        const auto text = get(name);
        if (text.empty()) continue;
        *at = parse_rfc3339(text);
        if (!*at) {
            error = std::string(name) + ": expected an RFC 3339 time (2026-12-01T10:00:00Z)";
            return std::nullopt;
        }
    }
    if (const auto limit = get("limit"); !limit.empty()) {
        int n = 0;
        auto [ptr, ec] = std::from_chars(limit.data(), limit.data() + limit.size(), n);
        if (ec != std::errc() || ptr != limit.data() + limit.size() || n < 1 || n > 500) {
            error = "limit: expected 1 to 500";
            return std::nullopt;
        }
        q.limit = n;
    }
    return q;
}

bool matches(const dead_query& q, const admin::dead_letter& d) {
    if (!q.provider.empty() && field(d.fields, "provider") != q.provider) return false;
    if (!q.account.empty() && field(d.fields, "account") != q.account) return false;
    if (!q.error_class.empty() && field(d.fields, "error_class") != q.error_class) return false;
    if (!q.status.empty() && !admin::status_matches(q.status, field(d.fields, "http_status"))) return false;
    if (q.since || q.until) {
        const auto failed = field(d.fields, "failed_at");
        std::int64_t at = 0;
        std::from_chars(failed.data(), failed.data() + failed.size(), at);
        if (q.since && at < *q.since) return false;
        if (q.until && at > *q.until) return false;
    }
    if (!q.text.empty() && !admin::dead_letter_contains(d, q.text)) return false;
    return true;
}

std::string dead_page_json(const dead_page& page) {
    rapidjson::StringBuffer buf;
    writer w(buf);
    w.StartObject();
    w.Key("letters");
    w.StartArray();
    for (const auto* d : page.letters) letter_summary(w, *d);
    w.EndArray();
    w.Key("scanned");
    w.Uint64(page.scanned);
    w.Key("total");
    w.Uint64(page.total);
    w.Key("more");
    w.Bool(page.more);
    w.Key("next_before");
    string(w,
           page.more && !page.letters.empty() ? std::string_view(page.letters.back()->entry_id) : std::string_view());
    w.EndObject();
    return buf.GetString();
}

std::string dead_letter_json(const admin::dead_letter& d) {
    rapidjson::StringBuffer buf;
    writer w(buf);
    w.StartObject();
    w.Key("entry");
    string(w, d.entry_id);
    w.Key("partition");
    w.Int(d.partition);
    w.Key("fields");
    w.StartObject();
    for (const auto& [k, v] : d.fields) {
        string(w, k);
        string(w, v);  // the job and the history as text: the page shows them as they are
    }
    w.EndObject();
    w.EndObject();
    return buf.GetString();
}

std::string overview_json(const overview& o) {
    rapidjson::StringBuffer buf;
    writer w(buf);
    w.StartObject();
    w.Key("queue");
    string(w, o.queue);
    w.Key("partitions");
    w.Int(o.partitions);
    w.Key("waiting");
    w.Int64(o.stats.waiting());
    w.Key("pending");
    w.Int64(o.stats.pending);
    w.Key("delayed");
    w.Int64(o.stats.delayed);
    w.Key("dead");
    w.Int64(o.stats.dead);
    w.Key("consumers");
    w.Int64(o.stats.consumers);
    w.Key("consumers_alive");
    w.Int64(o.consumers_alive);
    w.Key("results_events");
    w.Int64(o.stats.results_events);
    w.Key("oldest_dead_age_ms");
    if (o.oldest_dead_at)
        w.Int64(std::max<std::int64_t>(0, o.now - *o.oldest_dead_at));
    else
        w.Null();
    std::int64_t sent = 0, dead = 0, retried = 0;
    w.Key("activity");
    w.StartArray();
    for (const auto& m : o.activity) {
        w.StartObject();
        w.Key("t");
        w.Int64(m.start);
        w.Key("sent");
        w.Int64(m.sent);
        w.Key("dead");
        w.Int64(m.dead);
        w.Key("retried");
        w.Int64(m.retried);
        w.Key("delayed");
        w.Int64(m.delayed);
        w.EndObject();
        sent += m.sent;
        dead += m.dead;
        retried += m.retried;
    }
    w.EndArray();
    w.Key("last_hour");
    w.StartObject();
    w.Key("sent");
    w.Int64(sent);
    w.Key("dead");
    w.Int64(dead);
    w.Key("retried");
    w.Int64(retried);
    w.EndObject();
    w.Key("workers");
    w.StartArray();
    for (const auto& s : o.workers) {
        w.StartObject();
        w.Key("consumer");
        string(w, s.consumer);
        w.Key("age_ms");
        w.Int64(std::max<std::int64_t>(0, o.now - s.at));
        w.Key("up_ms");
        w.Int64(std::max<std::int64_t>(0, o.now - s.started));
        queue::activity::write_counts(w, s);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return buf.GetString();
}

namespace {

// The limits the workers run with for one account (the first snapshot naming
// it), and whether they disagree (a rollout of a new config half done).
void limits_json(writer& w, const std::string& account, const std::vector<queue::activity::worker_snapshot>& workers) {
    const queue::activity::account_limits* first = nullptr;
    bool differ = false;
    for (const auto& s : workers)
        for (const auto& l : s.limits) {
            if (l.account != account) continue;
            if (!first)
                first = &l;
            else if (l.requests != first->requests || l.window_ms != first->window_ms || l.burst != first->burst ||
                     l.max_in_flight != first->max_in_flight)
                differ = true;
        }
    w.Key("limits");
    if (!first) {
        w.Null();
    } else {
        w.StartObject();
        queue::activity::write_limits(w, *first);
        w.EndObject();
    }
    w.Key("limits_differ");
    w.Bool(differ);
}

void optional_number(writer& w, const std::optional<double>& v) {
    if (v)
        w.Double(*v);
    else
        w.Null();
}

void figures_json(writer& w, const queue::activity::account_figures* f, int latency_minutes) {
    const queue::activity::account_figures none;
    if (!f) f = &none;
    w.Key("last_hour");
    w.StartObject();
    w.Key("sent");
    w.Int64(f->sent);
    w.Key("retried");
    w.Int64(f->retried);
    w.Key("dead");
    w.Int64(f->dead);
    w.Key("dead_by_class");
    w.StartObject();
    for (const auto& [cls, n] : f->dead_by_class) {
        w.Key(cls.data(), static_cast<rapidjson::SizeType>(cls.size()));
        w.Int64(n);
    }
    w.EndObject();
    w.EndObject();
    w.Key("latency_ms");
    w.StartObject();
    w.Key("minutes");
    w.Int(latency_minutes);
    w.Key("exchanges");
    w.Int64(f->exchanges());
    w.Key("p50");
    optional_number(w, queue::activity::quantile_ms(f->latency, 0.5));
    w.Key("p99");
    optional_number(w, queue::activity::quantile_ms(f->latency, 0.99));
    w.EndObject();
}

}  // namespace

std::string accounts_json(const std::vector<admin::scope_state>& scopes, const std::vector<std::string>& configured,
                          unix_ms now, const fleet_figures& fleet) {
    // The configured accounts without any state read as ones that are not paused, have no window and no circuit;
    // so do those only the workers' counts name (_unknown_ ones among them).
    std::vector<admin::scope_state> all = scopes;
    auto add = [&](const std::string& name) {
        if (std::none_of(all.begin(), all.end(),
                         [&](const admin::scope_state& sc) { return sc.provider_account == name; })) {
            all.emplace_back();
            all.back().provider_account = name;
        }
    };
    for (const auto& name : configured) add(name);
    for (const auto& [name, unused] : fleet.accounts) add(name);
    rapidjson::StringBuffer buf;
    writer w(buf);
    w.StartObject();
    w.Key("accounts");
    w.StartArray();
    for (const auto& sc : all) {
        w.StartObject();
        w.Key("account");
        string(w, sc.provider_account);
        w.Key("paused");
        w.Bool(sc.pause_ms != -2);
        w.Key("pause_remaining_ms");
        if (sc.pause_ms >= 0)
            w.Int64(sc.pause_ms);
        else
            w.Null();  // not paused, or until resumed
        w.Key("pause_reason");
        string(w, sc.pause_reason);
        w.Key("requests_in_window");
        w.Int64(sc.in_window);
        w.Key("circuit");
        if (sc.circuit) {
            w.StartObject();
            w.Key("state");
            string(w, sc.circuit->phase(now));
            w.Key("remaining_ms");
            w.Int64(sc.circuit->remaining_ms(now));
            w.Key("failures");
            w.Int64(sc.circuit->failures);
            w.Key("opens");
            w.Int64(sc.circuit->opens);
            w.Key("reason");
            string(w, sc.circuit->reason);
            w.EndObject();
        } else {
            w.Null();
        }
        limits_json(w, sc.provider_account, fleet.workers);
        const auto f = fleet.accounts.find(sc.provider_account);
        figures_json(w, f == fleet.accounts.end() ? nullptr : &f->second, fleet.latency_minutes);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return buf.GetString();
}

std::string job_json(std::string_view id, int partition, const std::optional<std::string>& value) {
    rapidjson::StringBuffer buf;
    writer w(buf);
    w.StartObject();
    w.Key("id");
    string(w, id);
    w.Key("partition");
    w.Int(partition);
    w.Key("result");
    rapidjson::Document d;
    if (value) d.Parse(value->data(), value->size());
    if (value && !d.HasParseError() && d.IsObject())
        d.Accept(w);  // a format 2 result value (JSON): as it is
    else if (value)
        string(w, *value);
    else
        w.Null();
    w.EndObject();
    return buf.GetString();
}

std::string error_json(std::string_view message) {
    rapidjson::StringBuffer buf;
    writer w(buf);
    w.StartObject();
    w.Key("error");
    string(w, message);
    w.EndObject();
    return buf.GetString();
}

}  // namespace outq::web
