#include "outq/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace outq {

std::string label(std::string_view name, std::string_view value) {
    std::string out;
    append_label(out, name, value);
    return out;
}

void append_label(std::string& out, std::string_view name, std::string_view value) {
    if (!out.empty()) out += ',';
    out += name;
    out += "=\"";
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    out += '"';
}

namespace {

const std::vector<double> send_buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const std::vector<double> redis_buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

std::string number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[40];
    if (v == std::floor(v) && std::fabs(v) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

const char* type_name(metrics::kind k) {
    switch (k) {
        case metrics::kind::counter:
            return "counter";
        case metrics::kind::gauge:
            return "gauge";
        case metrics::kind::histogram:
            return "histogram";
    }
    return "untyped";
}

void series_line(std::string& out, std::string_view name, std::string_view labels, double value) {
    out += name;
    if (!labels.empty()) {
        out += '{';
        out += labels;
        out += '}';
    }
    out += ' ';
    out += number(value);
    out += '\n';
}

}  // namespace

// The catalogue: every family the worker exposes (docs/operations.md, "Metrics").
metrics::metrics() {
    using k = kind;
    // Outcomes and sends.
    declare("outq_jobs_total", k::counter,
            "Outcomes written, by provider, account (from the configuration, else _unknown_), outcome and, for dead "
            "letters, class.");
    declare("outq_send_duration_seconds", k::histogram,
            "Duration of provider HTTP exchanges (one per request, a batch is one), by provider and account.",
            send_buckets);
    declare("outq_reclaimed_jobs_total", k::counter, "Stalled deliveries of other consumers taken over.");
    declare("outq_redis_not_primary_replies_total", k::counter,
            "READONLY, MASTERDOWN or UNBLOCKED replies: the node was no longer the primary; each closed its "
            "connection, and the next call dialled again (asking Sentinel where the primary is, when configured).");
    declare("outq_redis_cluster_redirects_total", k::counter,
            "Redis Cluster answers followed, by kind: moved (the slot lives elsewhere now; the slot map is read "
            "again), ask (a slot being migrated: ASKING and the command on the node named), wait (TRYAGAIN, "
            "CLUSTERDOWN or LOADING: sent again after a short wait).");
    declare("outq_redis_sentinel_switches_total", k::counter,
            "+switch-master announcements of this worker's master heard from Sentinel; each made every Redis "
            "connection dial again.");
    declare("outq_token_fetches_total", k::counter, "Access tokens fetched from providers' token endpoints.");
    // The HTTP client.
    declare("outq_http_connections_opened_total", k::counter, "Provider HTTP connections opened.");
    declare("outq_http_requests_total", k::counter, "Provider HTTP requests sent.");
    declare("outq_http_stale_connections_closed_total", k::counter,
            "Idle provider connections found closed by the peer and dropped.");
    declare("outq_http_resent_before_write_total", k::counter,
            "Requests sent again on a fresh connection because a reused one failed before the request was written.");
    declare("outq_http_ambiguous_after_reuse_total", k::counter,
            "Requests on a reused connection that failed after being written (the provider may have them).");
    // This worker's state.
    declare("outq_in_flight_jobs", k::gauge, "Deliveries this worker holds (taken, not yet written or put back).");
    declare("outq_concurrency_slots", k::gauge, "The configured concurrency: deliveries held at most at a time.");
    declare("outq_limiter_waiting_jobs", k::gauge,
            "Deliveries waiting for a rate-limit permit (they do not use a concurrency slot).");
    declare("outq_unwritten_outcomes", k::gauge, "Outcomes decided but not yet written to Redis.");
    declare("outq_ready", k::gauge, "1 when /readyz answers 200, else 0.");
    declare("outq_account_paused", k::gauge,
            "1 while this worker knows the account to be paused (a pause it set, or one a claim or a permit met), "
            "else 0.");
    declare("outq_account_circuit_open", k::gauge,
            "1 while this worker knows the account's circuit breaker to be open or half-open (consecutive "
            "failures paused it), else 0.");
    // Redis.
    declare("outq_redis_last_ok_age_seconds", k::gauge,
            "Seconds since the last successful Redis round trip (a read or an outcome write).");
    declare("outq_redis_roundtrip_seconds", k::histogram,
            "Round-trip time of the depth sampler's Redis pipeline, by connection.", redis_buckets);
    // The queue, sampled every 15 s by one worker's depth sampler (each worker samples).
    declare("outq_queue_waiting_jobs", k::gauge, "Jobs in the stream not yet delivered to any worker, by queue.");
    declare("outq_queue_pending_jobs", k::gauge, "Jobs delivered to a worker and not yet acknowledged, by queue.");
    declare("outq_queue_delayed_jobs", k::gauge, "Jobs in the delayed set (retries, not_before, pauses), by queue.");
    declare("outq_queue_dead_letters", k::gauge, "Entries in the dead letter stream, by queue.");
    declare("outq_queue_oldest_waiting_age_seconds", k::gauge,
            "Age of the oldest job not yet acknowledged while any is waiting (0 when none waits), as of the last "
            "sample, by queue.");
    declare("outq_queue_depth_sample_age_seconds", k::gauge,
            "Seconds since the queue gauges were last read from Redis (large: they are stale), by queue.");
}

void set_account_circuit_open(metrics& m, std::string_view provider, std::string_view account, bool open) {
    std::string labels;
    m.append_scope_labels(labels, provider, account);
    m.set("outq_account_circuit_open", labels, open ? 1 : 0);
}

void metrics::declare(std::string_view name, kind type, std::string_view help, std::vector<double> bounds) {
    family f;
    f.type = type;
    f.help = help;
    f.bounds = std::move(bounds);
    families_.insert_or_assign(std::string(name), std::move(f));
}

metrics::family& metrics::find(std::string_view name, kind type) {
    auto it = families_.find(name);
    if (it == families_.end() || it->second.type != type)
        throw std::logic_error("metrics: " + std::string(name) + " is not a declared " + type_name(type));
    return it->second;
}

void metrics::inc(std::string_view name, std::string_view labels, double by) {
    auto& values = find(name, kind::counter).values;
    if (auto it = values.find(labels); it != values.end())
        it->second += by;
    else
        values.emplace(std::string(labels), by);
}

void metrics::set_total(std::string_view name, std::string_view labels, double total) {
    auto& values = find(name, kind::counter).values;
    if (auto it = values.find(labels); it != values.end())
        it->second = total;
    else
        values.emplace(std::string(labels), total);
}

void metrics::set(std::string_view name, std::string_view labels, double value) {
    auto& values = find(name, kind::gauge).values;
    if (auto it = values.find(labels); it != values.end())
        it->second = value;
    else
        values.emplace(std::string(labels), value);
}

void metrics::observe(std::string_view name, std::string_view labels, double value) {
    auto& f = find(name, kind::histogram);
    auto it = f.hists.find(labels);
    if (it == f.hists.end()) {
        it = f.hists.emplace(std::string(labels), histogram{}).first;
        it->second.buckets.assign(f.bounds.size(), 0);
    }
    auto& h = it->second;
    for (std::size_t i = 0; i < f.bounds.size(); ++i)
        if (value <= f.bounds[i]) {
            ++h.buckets[i];
            break;
        }
    ++h.count;
    h.sum += value;
}

void metrics::allow_scope(std::string_view provider, std::string_view account) {
    auto it = scopes_.find(provider);
    if (it == scopes_.end()) it = scopes_.emplace(std::string(provider), std::set<std::string, std::less<>>{}).first;
    it->second.emplace(account);
}

void metrics::append_scope_labels(std::string& out, std::string_view provider, std::string_view account) const {
    const auto it = scopes_.find(provider);
    const bool known_provider = it != scopes_.end();
    const bool known_account = known_provider && it->second.find(account) != it->second.end();
    append_label(out, "provider", known_provider ? provider : unknown);
    append_label(out, "account", known_account ? account : unknown);
}

std::string metrics::render() const {
    std::string out;
    for (const auto& [name, f] : families_) {
        out += "# HELP " + name + " " + f.help + "\n";
        out += "# TYPE " + name + " " + type_name(f.type) + "\n";
        if (f.type != kind::histogram) {
            for (const auto& [labels, v] : f.values) series_line(out, name, labels, v);
            continue;
        }
        const std::string bucket = name + "_bucket";
        for (const auto& [labels, h] : f.hists) {
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < f.bounds.size(); ++i) {
                cumulative += h.buckets[i];
                std::string l(labels);
                append_label(l, "le", number(f.bounds[i]));
                series_line(out, bucket, l, static_cast<double>(cumulative));
            }
            std::string l(labels);
            append_label(l, "le", "+Inf");
            series_line(out, bucket, l, static_cast<double>(h.count));
            series_line(out, name + "_sum", labels, h.sum);
            series_line(out, name + "_count", labels, static_cast<double>(h.count));
        }
    }
    return out;
}

void metrics::for_each_counter(std::string_view name, const std::function<void(std::string_view, double)>& f) const {
    auto it = families_.find(name);
    if (it == families_.end() || it->second.type != kind::counter) return;
    for (const auto& [labels, v] : it->second.values) f(labels, v);
}

void metrics::for_each_histogram(std::string_view name,
                                 const std::function<void(std::string_view, const std::vector<double>&,
                                                          const std::vector<std::uint64_t>&, std::uint64_t)>& f) const {
    auto it = families_.find(name);
    if (it == families_.end() || it->second.type != kind::histogram) return;
    for (const auto& [labels, h] : it->second.hists) f(labels, it->second.bounds, h.buckets, h.count);
}

std::optional<std::string> label_value(std::string_view labels, std::string_view name) {
    std::size_t i = 0;
    while (i < labels.size()) {
        const auto eq = labels.find("=\"", i);
        if (eq == std::string_view::npos) return std::nullopt;
        const auto key = labels.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < labels.size() && labels[j] != '"'; ++j) {
            if (labels[j] != '\\') {
                value += labels[j];
                continue;
            }
            if (++j == labels.size()) return std::nullopt;
            value += labels[j] == 'n' ? '\n' : labels[j];
        }
        if (j == labels.size()) return std::nullopt;  // no closing quote
        if (key == name) return value;
        i = j + 1;
        if (i < labels.size() && labels[i] != ',') return std::nullopt;
        ++i;
    }
    return std::nullopt;
}

// --- the probes ----------------------------------------------------------------

namespace {

using seconds = std::chrono::seconds;

std::int64_t age_s(health_inputs::time_point now, health_inputs::time_point then) {
    return std::chrono::duration_cast<seconds>(now - then).count();
}

bool within(const health_inputs& in, const std::optional<health_inputs::time_point>& t, seconds limit) {
    return t && in.now - *t <= limit;
}

bool control_answers(const health_inputs& in) {
    return !in.control_failing && within(in, in.control_ok, control_recent);
}

}  // namespace

metrics_route route_metrics_request(std::string_view method, std::string_view target) {
    if (method != "GET" && method != "HEAD") return metrics_route::method_not_allowed;
    target = target.substr(0, target.find('?'));
    if (target == "/metrics") return metrics_route::metrics;
    if (target == "/healthz") return metrics_route::healthz;
    if (target == "/readyz") return metrics_route::readyz;
    return metrics_route::not_found;
}

probe_answer liveness(const health_inputs& in) {
    // Before the start-up checks pass (Redis unreachable, retried) the worker is alive.
    if (!in.started) return {true, "ok: starting"};
    // The sampler's round ends, answered or not, within its command timeout:
    // a round that has not come for long means the event loop is stuck.
    const auto last_round = in.sampler_round ? std::max(*in.sampler_round, *in.started) : *in.started;
    if (in.now - last_round > wedged_after)
        return {false, "depth sampler made no round for " + std::to_string(age_s(in.now, last_round)) + " s"};
    // The fetcher: only while Redis answers (Redis down is not the process's
    // fault) and it has free slots to read for (a full worker waits).
    if (in.running && !in.slots_full_now && control_answers(in)) {
        auto last = *in.started;
        if (in.fetch_ok) last = std::max(last, *in.fetch_ok);
        if (in.slots_full) last = std::max(last, *in.slots_full);
        if (in.now - last > wedged_after)
            return {false, "fetcher made no progress for " + std::to_string(age_s(in.now, last)) +
                               " s while Redis answers and slots are free"};
    }
    return {true, "ok"};
}

probe_answer readiness(const health_inputs& in) {
    if (!in.started) return {false, "starting: the start-up checks have not passed (is Redis reachable?)"};
    if (!in.running) return {false, "draining: stopping, takes no new jobs"};
    if (!control_answers(in)) {
        if (in.control_failing) return {false, "redis: the control connection's last round trip failed"};
        return {false, "redis: no round trip on the control connection for " +
                           (in.control_ok ? std::to_string(age_s(in.now, *in.control_ok)) + " s" : "ever")};
    }
    if (in.fetch_failing) return {false, "redis: the fetcher's last read failed"};
    if (in.slots_full_now) return {true, "ok: every slot busy"};
    if (in.fetch_ok && *in.fetch_ok >= *in.started && in.now - *in.fetch_ok <= fetch_recent) return {true, "ok"};
    const auto since = in.fetch_ok && *in.fetch_ok >= *in.started ? *in.fetch_ok : *in.started;
    return {false, "fetcher: no completed read for " + std::to_string(age_s(in.now, since)) + " s"};
}

}  // namespace outq
