#pragma once
// Worker configuration: one JSON file (comments allowed), secrets resolved from
// the environment or files at load time (for the operator commands only the
// ones they use: config_use). Every error names the key.
#include <rapidjson/document.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "outq/log.hpp"
#include "outq/policy/circuit_settings.hpp"
#include "outq/policy/lanes.hpp"
#include "outq/rate_limit.hpp"
#include "outq/redact.hpp"
#include "outq/retry_policy.hpp"

namespace outq {

class adapter_registry;

struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A view of one JSON object of the config that remembers which keys were read,
// so `reject_unknown` can name a misspelt key.
class config_node {
  public:
    config_node(const rapidjson::Value& value, std::string path);

    const std::string& path() const { return path_; }
    std::string key_path(const char* key) const;
    bool has(const char* key) const;

    std::string string(const char* key, std::optional<std::string> fallback = std::nullopt) const;
    std::int64_t integer(const char* key, std::int64_t fallback, std::int64_t min, std::int64_t max) const;
    std::chrono::milliseconds millis(const char* key, std::chrono::milliseconds fallback, std::int64_t min_ms,
                                     std::int64_t max_ms) const;
    bool boolean(const char* key, bool fallback) const;
    // A nested object, or nullopt when the key is absent.
    std::optional<config_node> object(const char* key) const;
    // Every member of this object whose value is an object (maps such as accounts).
    std::vector<std::pair<std::string, config_node>> object_members() const;
    // An array of strings, or nullopt when the key is absent; an element of
    // another type fails naming it ("key[2]").
    std::optional<std::vector<std::string>> strings(const char* key) const;
    // Every member of this object whose value is a string (maps such as headers).
    std::vector<std::pair<std::string, std::string>> string_members() const;
    // Marks a key as known without reading it.
    void skip(const char* key) const { used_.insert(key); }
    // Throws config_error naming the first key nobody read.
    void reject_unknown() const;

    [[noreturn]] void fail(const char* key, const std::string& what) const;

  private:
    const rapidjson::Value* find(const char* key) const;
    const rapidjson::Value* value_;
    std::string path_;
    mutable std::set<std::string> used_;
};

struct redis_settings {
    std::string url = "redis://127.0.0.1:6379/0";
    std::string password;  // resolved secret, overrides the URL's
    std::string tls_ca_file;
    bool tls_verify = true;
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds command_timeout{5000};
    // Redis Sentinel: the primary of `sentinel_master` as the sentinels name it
    // (redis:// or rediss:// URLs of the sentinels; their own user and password
    // in the URL). Empty: `url` is the node.
    std::string sentinel_master;
    std::vector<std::string> sentinel_nodes;
    // Redis Cluster: URLs of some of its nodes (any one is enough to find the
    // others); user, password and TLS are those of `url`. Empty: no cluster.
    std::vector<std::string> cluster_nodes;
};

// Transport settings of a provider, overridable per account.
struct http_settings {
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds tls_handshake_timeout{5000};
    std::chrono::milliseconds request_timeout{30000};
    int max_connections = 64;  // per origin
    std::size_t max_response_bytes = 1 << 20;
    // An idle keep-alive connection is closed after this. Below the idle
    // timeout of common servers (Node.js and Apache httpd 5 s, AWS ALB 60 s,
    // nginx 75 s) so that the client, not the server, ends an idle connection:
    // a server closing it as a request goes out makes that request ambiguous.
    std::chrono::milliseconds idle_timeout{4000};
    std::chrono::milliseconds dns_cache{60000};  // resolved addresses are reused this long (0: every dial)
    bool forward_traceparent = false;            // send a job's W3C traceparent on (one-job) requests
};

struct tls_settings {
    std::string ca_file;           // extra CA bundle, trusted besides the system store
    std::string client_cert_file;  // mTLS
    std::string client_key_file;
    bool verify = true;  // false: no peer verification (loudly logged)
    bool is_default() const { return ca_file.empty() && client_cert_file.empty() && verify; }
};

// One account of a provider, as its adapter parsed it from the config; the
// transport part (http, tls) is read by the config loader for every adapter.
struct account_settings {
    virtual ~account_settings() = default;
    std::string name;
    http_settings http;
    tls_settings tls;
    rate_limit_settings limits;
    // The account's circuit breaker; probe_timeout is always resolved here.
    policy::circuit_settings circuit;
};

struct provider_settings {
    retry_settings retry;
    http_settings http;
    rate_limit_settings limits;
    // The accounts' default; probe_timeout 0: derived from each account's http timeouts.
    policy::circuit_settings circuit;
    std::map<std::string, std::shared_ptr<const account_settings>, std::less<>> accounts;
};

struct worker_config {
    redis_settings redis;
    std::string queue = "default";
    // The queue's partitions (queue/partitions.hpp): 1 keeps it in one slot;
    // more spread it over a Redis Cluster's primaries.
    int queue_partitions = 1;
    std::string consumer;  // empty: hostname-pid
    int concurrency = 256;
    int fetch_batch = 128;
    // The bytes one read of new jobs should bring at most (policy/fetch_size.hpp):
    // the read's COUNT follows the entries' sizes, and a reply far over it is
    // not read (its entries are inspected in Redis, where an oversized job stays).
    std::size_t fetch_bytes = 16 << 20;
    // How concurrency is shared between provider accounts (lanes); the
    // defaults follow `concurrency` (policy::default_lane_settings).
    policy::lane_settings lanes = policy::default_lane_settings(256);
    std::chrono::milliseconds visibility_timeout{60000};
    // A job taken over this many times without any outcome (every worker that
    // held it died or was killed: a poison message) becomes a dead letter.
    int max_deliveries = 10;
    // A job field longer than this is a validation dead letter, never parsed or
    // sent: what one delivery can cost in memory is bounded, so pods can be sized.
    std::size_t max_job_bytes = 1 << 20;
    // Every credential the config read from the environment or a file, so that
    // a provider answer echoing one is redacted before it is stored or logged.
    secret_set secrets;
    std::chrono::milliseconds shutdown_grace{15000};
    // How often the worker writes its snapshot and activity for `outq web`
    // (queue/activity.hpp): one pipeline each time, none of it per job.
    std::chrono::milliseconds snapshot_interval{5000};
    // How often a mover reads its delayed set's earliest due time when it has
    // not heard of a sooner one: delayed copies this worker writes, and those
    // `outq resume` / `outq job retry-now` announce (control channel), wake
    // it at their time; this bounds how late any other write is met.
    std::chrono::milliseconds mover_poll{1000};
    log::level log_level = log::level::info;
    log::format log_format = log::format::logfmt;
    // "job sent" lines at info level: at most this many a second, the rest
    // counted on the next one (not_logged=N); 0: none.
    int log_sent_per_second = 20;
    std::string metrics_listen;  // "host:port" for /metrics and /healthz; empty: off
    std::int64_t result_ttl_seconds = 7 * 24 * 3600;
    std::int64_t results_stream_maxlen = 100000;
    std::int64_t dead_maxlen = 0;  // 0: never trimmed
    std::map<std::string, provider_settings, std::less<>> providers;
};

// Replaces every {"env": NAME[, "default": V]} and {"file": PATH} object in the
// document by the string it names. Throws config_error naming the key.
// `found`, when given, gets every value read from the environment or a file.
void resolve_secrets(rapidjson::Value& value, rapidjson::Document::AllocatorType& alloc, const std::string& path,
                     secret_set* found = nullptr);

// What a config is loaded for.
enum class config_use {
    // `outq run`: every key is read and checked, every secret resolved.
    worker,
    // The operator commands: only redis.*, queue and log_level are read (their
    // secrets resolved, redis.password included) and, of the providers, their
    // names and their accounts' names; no other secret is resolved and the
    // provider settings are not checked (`outq run` does that). The accounts
    // carry their names only.
    operator_commands,
};

worker_config parse_config(std::string_view text, const adapter_registry& adapters,
                           config_use use = config_use::worker);
worker_config load_config_file(const std::string& file, const adapter_registry& adapters,
                               config_use use = config_use::worker);

}  // namespace outq
