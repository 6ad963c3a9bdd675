#include "outq/config.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "outq/adapter.hpp"
#include "outq/json_util.hpp"
#include "outq/policy/circuit.hpp"
#include "outq/queue/partitions.hpp"

namespace outq {

config_node::config_node(const rapidjson::Value& value, std::string path) : value_(&value), path_(std::move(path)) {
    if (!value.IsObject()) throw config_error("config: " + path_ + ": must be an object");
}

std::string config_node::key_path(const char* key) const {
    return path_.empty() ? key : path_ + "." + key;
}

void config_node::fail(const char* key, const std::string& what) const {
    throw config_error("config: " + key_path(key) + ": " + what);
}

const rapidjson::Value* config_node::find(const char* key) const {
    used_.insert(key);
    auto* v = json::find(*value_, key);
    return v && !v->IsNull() ? v : nullptr;
}

bool config_node::has(const char* key) const {
    return json::find(*value_, key) != nullptr;
}

std::string config_node::string(const char* key, std::optional<std::string> fallback) const {
    auto* v = find(key);
    if (!v) {
        if (fallback) return *fallback;
        fail(key, "missing");
    }
    if (!v->IsString()) fail(key, "must be a string");
    return std::string(json::view(*v));
}

std::int64_t config_node::integer(const char* key, std::int64_t fallback, std::int64_t min, std::int64_t max) const {
    auto* v = find(key);
    if (!v) return fallback;
    if (!v->IsInt64()) fail(key, "must be an integer");
    const auto n = v->GetInt64();
    if (n < min || n > max) fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return n;
}

std::chrono::milliseconds config_node::millis(const char* key, std::chrono::milliseconds fallback, std::int64_t min_ms,
                                              std::int64_t max_ms) const {
    return std::chrono::milliseconds(integer(key, fallback.count(), min_ms, max_ms));
}

bool config_node::boolean(const char* key, bool fallback) const {
    auto* v = find(key);
    if (!v) return fallback;
    if (!v->IsBool()) fail(key, "must be true or false");
    return v->GetBool();
}

std::optional<config_node> config_node::object(const char* key) const {
    auto* v = find(key);
    if (!v) return std::nullopt;
    if (!v->IsObject()) fail(key, "must be an object");
    return config_node(*v, key_path(key));
}

std::optional<std::vector<std::string>> config_node::strings(const char* key) const {
    auto* v = find(key);
    if (!v) return std::nullopt;
    if (!v->IsArray()) fail(key, "must be an array of strings");
    std::vector<std::string> out;
    for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
        const auto& e = (*v)[i];
        if (!e.IsString()) fail((std::string(key) + "[" + std::to_string(i) + "]").c_str(), "must be a string");
        out.emplace_back(json::view(e));
    }
    return out;
}

std::vector<std::pair<std::string, config_node>> config_node::object_members() const {
    std::vector<std::pair<std::string, config_node>> out;
    for (auto& m : value_->GetObject()) {
        std::string name(json::view(m.name));
        used_.insert(name);
        if (!m.value.IsObject()) fail(name.c_str(), "must be an object");
        out.emplace_back(name, config_node(m.value, key_path(name.c_str())));
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> config_node::string_members() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& m : value_->GetObject()) {
        std::string name(json::view(m.name));
        used_.insert(name);
        if (!m.value.IsString()) fail(name.c_str(), "must be a string");
        out.emplace_back(name, std::string(json::view(m.value)));
    }
    return out;
}

void config_node::reject_unknown() const {
    for (auto& m : value_->GetObject()) {
        std::string name(json::view(m.name));
        if (!used_.count(name)) throw config_error("config: " + key_path(name.c_str()) + ": unknown key");
    }
}

void resolve_secrets(rapidjson::Value& value, rapidjson::Document::AllocatorType& alloc, const std::string& path,
                     secret_set* found) {
    if (value.IsArray()) {
        for (rapidjson::SizeType i = 0; i < value.Size(); ++i)
            resolve_secrets(value[i], alloc, path + "[" + std::to_string(i) + "]", found);
        return;
    }
    if (!value.IsObject()) return;
    auto* env = json::find(value, "env");
    auto* file = json::find(value, "file");
    const bool is_secret_ref = (env && env->IsString()) || (file && file->IsString());
    if (!is_secret_ref) {
        for (auto& m : value.GetObject())
            resolve_secrets(
                m.value, alloc,
                path.empty() ? std::string(json::view(m.name)) : path + "." + std::string(json::view(m.name)), found);
        return;
    }
    std::string resolved;
    if (env && env->IsString()) {
        const std::string name(json::view(*env));
        if (const char* e = std::getenv(name.c_str())) {
            resolved = e;
        } else if (auto* def = json::find(value, "default"); def && def->IsString()) {
            resolved = std::string(json::view(*def));
        } else {
            throw config_error("config: " + path + ": environment variable " + name + " is not set");
        }
    } else {
        const std::string name(json::view(*file));
        std::ifstream in(name, std::ios::binary);
        if (!in) throw config_error("config: " + path + ": cannot read secret file " + name);
        std::ostringstream ss;
        ss << in.rdbuf();
        resolved = ss.str();
        while (!resolved.empty() && (resolved.back() == '\n' || resolved.back() == '\r')) resolved.pop_back();
    }
    if (found) found->add(resolved);
    value.SetString(resolved.data(), static_cast<rapidjson::SizeType>(resolved.size()), alloc);
}

namespace {

retry_settings read_retry(const config_node& parent, retry_settings r) {
    auto node = parent.object("retry");
    if (!node) return r;
    r.base = node->millis("base_ms", r.base, 1, 86400000);
    r.cap = node->millis("cap_ms", r.cap, 1, 7 * 86400000LL);
    r.max_attempts = static_cast<int>(node->integer("max_attempts", r.max_attempts, 1, max_job_attempts));
    r.max_rate_limited = static_cast<int>(node->integer("max_rate_limited", r.max_rate_limited, 1, 100000));
    r.max_retry_after = node->millis("max_retry_after_ms", r.max_retry_after, 0, 7 * 86400000LL);
    node->reject_unknown();
    return r;
}

http_settings read_http(const config_node& parent, http_settings h) {
    auto node = parent.object("http");
    if (!node) return h;
    h.connect_timeout = node->millis("connect_timeout_ms", h.connect_timeout, 1, 600000);
    h.tls_handshake_timeout = node->millis("tls_handshake_timeout_ms", h.tls_handshake_timeout, 1, 600000);
    h.request_timeout = node->millis("request_timeout_ms", h.request_timeout, 1, 3600000);
    h.max_connections = static_cast<int>(node->integer("max_connections", h.max_connections, 1, 10000));
    h.max_response_bytes = static_cast<std::size_t>(
        node->integer("max_response_bytes", static_cast<std::int64_t>(h.max_response_bytes), 1024, 1LL << 30));
    h.idle_timeout = node->millis("idle_timeout_ms", h.idle_timeout, 100, 3600000);
    h.dns_cache = node->millis("dns_cache_ms", h.dns_cache, 0, 86400000);
    h.forward_traceparent = node->boolean("forward_traceparent", h.forward_traceparent);
    node->reject_unknown();
    return h;
}

rate_limit_settings read_limits(const config_node& parent, rate_limit_settings l) {
    auto node = parent.object("rate_limit");
    if (!node) return l;
    l.requests = static_cast<int>(node->integer("requests", l.requests, 0, 1000000));
    l.window = node->millis("per_ms", l.window, 1, 86400000);
    l.max_in_flight = static_cast<int>(node->integer("max_in_flight", l.max_in_flight, 0, 100000));
    l.burst = static_cast<int>(node->integer("burst", l.burst, 1, 1000000));
    node->reject_unknown();
    return l;
}

// The `circuit` block, over the settings it inherits (the provider's, for an account).
policy::circuit_settings read_circuit(const config_node& parent, policy::circuit_settings c) {
    auto node = parent.object("circuit");
    if (!node) return c;
    c.enabled = node->boolean("enabled", c.enabled);
    c.failures = static_cast<int>(node->integer("failures", c.failures, 1, 1000000));
    c.open = node->millis("open_ms", c.open, 1, 86400000);
    c.max_open = node->millis("max_open_ms", c.max_open, 1, 7 * 86400000LL);
    c.probe_timeout = node->millis("probe_timeout_ms", c.probe_timeout, 1, 3600000);
    if (c.max_open < c.open)
        node->fail(node->has("max_open_ms") ? "max_open_ms" : "open_ms",
                   "max_open_ms (" + std::to_string(c.max_open.count()) + ") must not be below open_ms (" +
                       std::to_string(c.open.count()) + ")");
    node->reject_unknown();
    return c;
}

// An account's circuit with its probe lease resolved: unless set, the longest
// exchange of the account plus 5 s.
policy::circuit_settings resolve_circuit(policy::circuit_settings c, const http_settings& h) {
    if (c.probe_timeout.count() == 0)
        c.probe_timeout = policy::default_probe_timeout(h.connect_timeout, h.tls_handshake_timeout, h.request_timeout);
    return c;
}

bool readable(const std::string& file) {
    return std::ifstream(file).good();
}

tls_settings read_tls(const config_node& parent) {
    tls_settings t;
    auto node = parent.object("tls");
    if (!node) return t;
    t.ca_file = node->string("ca_file", "");
    t.client_cert_file = node->string("client_cert_file", "");
    t.client_key_file = node->string("client_key_file", "");
    t.verify = node->boolean("verify", true);
    for (auto [key, file] : {std::pair{"ca_file", &t.ca_file}, std::pair{"client_cert_file", &t.client_cert_file},
                             std::pair{"client_key_file", &t.client_key_file}})
        if (!file->empty() && !readable(*file)) node->fail(key, "cannot read " + *file);
    if (t.client_cert_file.empty() != t.client_key_file.empty())
        node->fail("client_cert_file", "client_cert_file and client_key_file go together");
    if (!t.verify)
        log::warn("TLS peer verification is OFF: anyone on the network path can read and change these requests",
                  "config=" + node->path() + ".verify");
    node->reject_unknown();
    return t;
}

// redis.* and queue: all the operator commands need to reach the queue.
void read_connection(const config_node& root, worker_config& c) {
    if (auto r = root.object("redis")) {
        c.redis.url = r->string("url", c.redis.url);
        c.redis.password = r->string("password", "");
        c.redis.tls_ca_file = r->string("tls_ca_file", "");
        c.redis.tls_verify = r->boolean("tls_verify", true);
        c.redis.connect_timeout = r->millis("connect_timeout_ms", c.redis.connect_timeout, 1, 600000);
        c.redis.command_timeout = r->millis("command_timeout_ms", c.redis.command_timeout, 1, 600000);
        if (auto s = r->object("sentinel")) {
            c.redis.sentinel_master = s->string("master", "");
            if (c.redis.sentinel_master.empty())
                s->fail("master", "missing: the name Sentinel monitors the primary by");
            auto nodes = s->strings("nodes");
            if (!nodes || nodes->empty()) s->fail("nodes", "missing: the sentinels' URLs (redis://host:26379)");
            c.redis.sentinel_nodes = std::move(*nodes);
            s->reject_unknown();
        }
        if (auto cl = r->object("cluster")) {
            if (!c.redis.sentinel_master.empty())
                cl->fail("nodes", "a cluster and a sentinel set at once: a cluster fails over by itself");
            auto nodes = cl->strings("nodes");
            if (!nodes || nodes->empty())
                cl->fail("nodes", "missing: URLs of one or more of the cluster's nodes (redis://host:6379)");
            c.redis.cluster_nodes = std::move(*nodes);
            cl->reject_unknown();
        }
        r->reject_unknown();
    }
    c.queue = root.string("queue", c.queue);
    // '#' and '@' separate a queue's partitions and accounts in key names.
    if (c.queue.empty() || c.queue.find_first_of("{}:#@ ") != std::string::npos)
        root.fail("queue", "must be a non-empty name without '{', '}', ':', '#', '@' or spaces");
    c.queue_partitions = static_cast<int>(root.integer("queue_partitions", 1, 1, queue::max_partitions));
}

void read_log_level(const config_node& root, worker_config& c) {
    const auto level = root.string("log_level", "info");
    if (!log::parse_level(level, c.log_level)) root.fail("log_level", "must be debug, info, warn or error");
    const auto format = root.string("log_format", "logfmt");
    if (!log::parse_format(format, c.log_format)) root.fail("log_format", "must be logfmt or json");
}

const adapter& known_provider(const adapter_registry& adapters, const config_node& node, const std::string& name) {
    const adapter* a = adapters.find(name);
    if (!a) {
        std::string known;
        for (auto n : adapters.names()) known += (known.empty() ? "" : ", ") + std::string(n);
        throw config_error("config: " + node.path() + ": unknown provider (known: " + known + ")");
    }
    return *a;
}

void check_account_name(const config_node& accounts, const std::string& account_name) {
    if (account_name.empty() || account_name.find_first_of("{} ") != std::string::npos)
        accounts.fail(account_name.c_str(), "account names cannot be empty or contain '{', '}' or spaces");
}

// The operator commands' part of a config: redis, queue, log_level, and the
// provider and account names. Every other top-level key is known but not read.
worker_config parse_operator_config(rapidjson::Document& doc, const adapter_registry& adapters) {
    for (const char* key : {"redis", "queue", "log_level", "log_format"})
        if (auto it = doc.FindMember(key); it != doc.MemberEnd()) resolve_secrets(it->value, doc.GetAllocator(), key);
    config_node root(doc, "");
    worker_config c;
    read_connection(root, c);
    read_log_level(root, c);
    for (const char* key : {"consumer", "metrics_listen", "concurrency", "fetch_batch", "lanes", "log_sent_per_second",
                            "visibility_timeout_ms", "max_deliveries", "max_job_bytes", "shutdown_grace_ms", "results",
                            "dead", "snapshot_interval_ms", "fetch_bytes", "mover_poll_ms"})
        root.skip(key);
    if (auto providers = root.object("providers")) {
        for (auto& [name, node] : providers->object_members()) {
            known_provider(adapters, node, name);
            provider_settings p;
            if (auto accounts = node.object("accounts")) {
                for (auto& [account_name, account_node] : accounts->object_members()) {
                    check_account_name(*accounts, account_name);
                    auto settings = std::make_shared<account_settings>();
                    settings->name = account_name;
                    p.accounts.emplace(account_name, std::move(settings));
                }
            }
            c.providers.emplace(name, std::move(p));
        }
    }
    root.reject_unknown();
    return c;
}

}  // namespace

worker_config parse_config(std::string_view text, const adapter_registry& adapters, config_use use) {
    rapidjson::Document doc;
    doc.Parse<json::config_flags>(text.data(), text.size());
    if (doc.HasParseError()) throw config_error("config: invalid JSON: " + json::parse_error_text(doc));
    if (!doc.IsObject()) throw config_error("config: the top level must be an object");
    if (use == config_use::operator_commands) return parse_operator_config(doc, adapters);
    worker_config c;
    resolve_secrets(doc, doc.GetAllocator(), "", &c.secrets);
    config_node root(doc, "");

    read_connection(root, c);
    c.consumer = root.string("consumer", "");
    c.metrics_listen = root.string("metrics_listen", "");
    c.concurrency = static_cast<int>(root.integer("concurrency", c.concurrency, 1, 100000));
    c.fetch_batch = static_cast<int>(root.integer("fetch_batch", c.fetch_batch, 1, 10000));
    c.fetch_bytes = static_cast<std::size_t>(
        root.integer("fetch_bytes", static_cast<std::int64_t>(c.fetch_bytes), 64 * 1024, 1LL << 30));
    c.lanes = policy::default_lane_settings(c.concurrency);
    if (auto l = root.object("lanes")) {
        c.lanes.reserve = static_cast<int>(l->integer("reserve", c.lanes.reserve, 0, c.concurrency - 1));
        c.lanes.queue = static_cast<int>(l->integer("queue", c.lanes.queue, 1, 1000000));
        c.lanes.buffer = static_cast<int>(l->integer("buffer", c.lanes.buffer, 1, 1000000));
        c.lanes.slow_after = l->millis("slow_after_ms", c.lanes.slow_after, 1, 3600000);
        c.lanes.start_window = static_cast<int>(l->integer("start_window", c.lanes.start_window, 1, c.concurrency));
        c.lanes.park_full = l->millis("park_ms", c.lanes.park_full, 1, 3600000);
        c.lanes.park_max = l->millis("park_max_ms", c.lanes.park_max, c.lanes.park_full.count(), 86400000);
        l->reject_unknown();
    }
    c.log_sent_per_second = static_cast<int>(root.integer("log_sent_per_second", c.log_sent_per_second, 0, 1000000));
    c.visibility_timeout = root.millis("visibility_timeout_ms", c.visibility_timeout, 300, 86400000);
    c.max_deliveries = static_cast<int>(root.integer("max_deliveries", c.max_deliveries, 2, 1000000));
    // 512 MiB is Redis' own largest string (proto-max-bulk-len).
    c.max_job_bytes = static_cast<std::size_t>(
        root.integer("max_job_bytes", static_cast<std::int64_t>(c.max_job_bytes), 1024, 512LL << 20));
    c.shutdown_grace = root.millis("shutdown_grace_ms", c.shutdown_grace, 0, 3600000);
    c.snapshot_interval = root.millis("snapshot_interval_ms", c.snapshot_interval, 100, 60000);
    c.mover_poll = root.millis("mover_poll_ms", c.mover_poll, 100, 60000);
    read_log_level(root, c);
    if (auto r = root.object("results")) {
        c.result_ttl_seconds = r->integer("ttl_seconds", c.result_ttl_seconds, 1, 10LL * 365 * 86400);
        c.results_stream_maxlen = r->integer("stream_maxlen", c.results_stream_maxlen, 1, 1LL << 40);
        r->reject_unknown();
    }
    if (auto d = root.object("dead")) {
        c.dead_maxlen = d->integer("maxlen", 0, 0, 1LL << 40);
        d->reject_unknown();
    }
    if (auto providers = root.object("providers")) {
        for (auto& [name, node] : providers->object_members()) {
            const adapter* a = &known_provider(adapters, node, name);
            provider_settings p;
            p.retry = read_retry(node, a->default_retry());
            p.http = read_http(node, p.http);
            p.limits = read_limits(node, a->default_rate_limit());
            p.circuit = read_circuit(node, p.circuit);
            if (auto accounts = node.object("accounts")) {
                for (auto& [account_name, account_node] : accounts->object_members()) {
                    check_account_name(*accounts, account_name);
                    auto settings = a->load_account(account_node, account_name);
                    settings->name = account_name;
                    settings->http = read_http(account_node, p.http);
                    settings->tls = read_tls(account_node);
                    settings->limits = read_limits(account_node, p.limits);
                    settings->circuit = resolve_circuit(read_circuit(account_node, p.circuit), settings->http);
                    account_node.reject_unknown();
                    p.accounts.emplace(account_name, std::move(settings));
                }
            }
            node.reject_unknown();
            c.providers.emplace(name, std::move(p));
        }
    }
    root.reject_unknown();
    return c;
}

worker_config load_config_file(const std::string& file, const adapter_registry& adapters, config_use use) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw config_error("config: cannot read " + file);
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), adapters, use);
}

}  // namespace outq
