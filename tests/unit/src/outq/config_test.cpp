#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

#include "outq/adapter.hpp"
#include "outq/config.hpp"
#include "register_all.hpp"

using namespace outq;

namespace {

adapter_registry registry() {
    adapter_registry r;
    adapters::register_builtin_adapters(r);
    return r;
}

std::string error_of(const std::string& text) {
    auto r = registry();
    try {
        parse_config(text, r);
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("the shipped example config loads") {
    auto r = registry();
    auto c = load_config_file(OUTQ_SOURCE_DIR "/deploy/outq.example.json", r);
    CHECK(c.queue == "default");
    CHECK(c.providers.count("webhook") == 1);
    CHECK(c.providers.at("webhook").accounts.count("demo") == 1);
}

TEST_CASE("defaults and overrides") {
    auto r = registry();
    auto c = parse_config(R"({
        // comments are allowed
        "queue": "mail", "concurrency": 10, "visibility_timeout_ms": 5000,
        "providers": {"webhook": {"retry": {"base_ms": 20, "max_attempts": 3},
                                  "accounts": {"a": {"url": "http://127.0.0.1:1/x"}}}},
    })",
                          r);
    CHECK(c.queue == "mail");
    CHECK(c.concurrency == 10);
    CHECK(c.fetch_batch == 128);
    CHECK(c.visibility_timeout.count() == 5000);
    CHECK(c.providers.at("webhook").retry.base.count() == 20);
    CHECK(c.providers.at("webhook").retry.max_attempts == 3);
    CHECK(c.providers.at("webhook").retry.cap.count() == 300000);
    CHECK(c.max_job_bytes == 1048576);
    CHECK(c.mover_poll.count() == 1000);
    CHECK(parse_config(R"({"mover_poll_ms": 5000})", r).mover_poll.count() == 5000);
    CHECK(c.redis.sentinel_nodes.empty());
    auto s = parse_config(R"({"redis": {"sentinel": {"master": "mymaster",
                                   "nodes": ["redis://127.0.0.1:26379", "redis://127.0.0.1:26380"]}}})",
                          r);
    CHECK(s.redis.sentinel_master == "mymaster");
    CHECK(s.redis.sentinel_nodes.size() == 2);
    CHECK(parse_config(R"({"max_job_bytes": 262144})", r).max_job_bytes == 262144);
    auto cl =
        parse_config(R"({"redis": {"cluster": {"nodes": ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]}}})", r);
    CHECK(cl.redis.cluster_nodes == std::vector<std::string>{"redis://10.0.0.1:7000", "redis://10.0.0.2:7000"});
}

TEST_CASE("every config error names its key") {
    CHECK(error_of(R"({"concurency": 5})") == "config: concurency: unknown key");
    CHECK(error_of(R"({"redis": {"urll": "x"}})") == "config: redis.urll: unknown key");
    CHECK(error_of(R"({"concurrency": "5"})") == "config: concurrency: must be an integer");
    CHECK(error_of(R"({"concurrency": 0})") == "config: concurrency: must be between 1 and 100000");
    CHECK(error_of(R"({"redis": {"sentinel": {"nodes": ["redis://h:26379"]}}})")
              .find("config: redis.sentinel.master: missing") == 0);
    CHECK(error_of(R"({"redis": {"sentinel": {"master": "m", "nodes": []}}})")
              .find("config: redis.sentinel.nodes: missing") == 0);
    CHECK(error_of(R"({"redis": {"cluster": {"nodes": []}}})").find("config: redis.cluster.nodes: missing") == 0);
    CHECK(error_of(R"({"redis": {"cluster": {"nodes": ["redis://a:1"], "slots": 1}}})") ==
          "config: redis.cluster.slots: unknown key");
    CHECK(error_of(R"({"redis": {"sentinel": {"master": "m", "nodes": ["redis://h:26379"]},
                                 "cluster": {"nodes": ["redis://a:1"]}}})")
              .find("config: redis.cluster.nodes: a cluster and a sentinel set at once") == 0);
    CHECK(error_of(R"({"mover_poll_ms": 50})") == "config: mover_poll_ms: must be between 100 and 60000");
    CHECK(error_of(R"({"max_job_bytes": 100})") == "config: max_job_bytes: must be between 1024 and 536870912");
    CHECK(error_of(R"({"queue": "a:b"})").find("config: queue:") == 0);
    CHECK(error_of(R"({"log_level": "loud"})").find("config: log_level:") == 0);
    CHECK(error_of(R"({"providers": {"fax": {}}})").find("config: providers.fax: unknown provider") == 0);
    CHECK(error_of(R"({"providers": {"webhook": {"accounts": {"a": {}}}}})") ==
          "config: providers.webhook.accounts.a.url: missing");
    CHECK(error_of(R"({"providers": {"webhook": {"accounts": {"a": {"url": "ftp://x"}}}}})")
              .find("config: providers.webhook.accounts.a.url:") == 0);
    CHECK(error_of(R"({"providers": {"webhook": {"accounts": {"a": {"url": "http://x/", "colour": 1}}}}})") ==
          "config: providers.webhook.accounts.a.colour: unknown key");
    CHECK(error_of(R"({"providers": {"webhook": {"retry": {"max_attempts": 0}}}})")
              .find("config: providers.webhook.retry.max_attempts:") == 0);
    CHECK(error_of("{ not json").find("config: invalid JSON") == 0);
}

TEST_CASE("secrets come from the environment or files, never from the file itself") {
    auto r = registry();
    setenv("OUTQ_TEST_TOKEN", "Bearer abc", 1);
    auto c = parse_config(R"({"providers": {"webhook": {"accounts": {"a": {"url": "http://x/",
        "headers": {"Authorization": {"env": "OUTQ_TEST_TOKEN"}, "X-Opt": {"env": "OUTQ_TEST_UNSET", "default": ""}}}}}}})",
                          r);
    (void)c;
    unsetenv("OUTQ_TEST_UNSET");
    CHECK(error_of(R"({"redis": {"password": {"env": "OUTQ_TEST_UNSET"}}})") ==
          "config: redis.password: environment variable OUTQ_TEST_UNSET is not set");
    const std::string path = "/tmp/outq-unit-secret.txt";
    std::ofstream(path) << "s3cret\n";
    auto c2 = parse_config(R"({"redis": {"password": {"file": "/tmp/outq-unit-secret.txt"}}})", r);
    CHECK(c2.redis.password == "s3cret");
    CHECK(error_of(R"({"redis": {"password": {"file": "/nonexistent/secret"}}})") ==
          "config: redis.password: cannot read secret file /nonexistent/secret");
}

TEST_CASE("an array of strings, its secrets resolved element by element") {
    setenv("OUTQ_TEST_LIST_SECRET", "from-env", 1);
    rapidjson::Document d;
    d.Parse(R"({"list": ["a", {"env": "OUTQ_TEST_LIST_SECRET"}, "c"], "mixed": ["a", 2], "one": "a"})");
    resolve_secrets(d, d.GetAllocator(), "");
    config_node node(d, "x");
    CHECK(node.strings("list") == std::optional<std::vector<std::string>>({"a", "from-env", "c"}));
    CHECK_FALSE(node.strings("absent"));
    CHECK_THROWS_WITH_AS(node.strings("mixed"), "config: x.mixed[1]: must be a string", config_error);
    CHECK_THROWS_WITH_AS(node.strings("one"), "config: x.one: must be an array of strings", config_error);
    unsetenv("OUTQ_TEST_LIST_SECRET");
}

TEST_CASE("the operator commands' config resolves only the secrets of redis and queue") {
    auto r = registry();
    unsetenv("OUTQ_TEST_UNSET");
    setenv("OUTQ_TEST_REDIS_PW", "redis-pw", 1);
    setenv("OUTQ_TEST_QUEUE", "orders", 1);
    const std::string text = R"({
        "redis": {"url": "redis://10.0.0.1:6379/0", "password": {"env": "OUTQ_TEST_REDIS_PW"}},
        "queue": {"env": "OUTQ_TEST_QUEUE"}, "log_level": "warn", "concurrency": 10,
        "metrics_listen": {"env": "OUTQ_TEST_UNSET"},
        "providers": {"webhook": {"retry": {"max_attempts": 3},
            "accounts": {"a": {"url": "http://x/", "headers": {"Authorization": {"env": "OUTQ_TEST_UNSET"}}},
                         "b": {"url": {"file": "/nonexistent/secret"}}}},
                      "mews": {"accounts": {"hotel": {"client_token": {"env": "OUTQ_TEST_UNSET"}}}}}
    })";
    // `outq run` needs every secret.
    CHECK_THROWS_WITH_AS(parse_config(text, r), doctest::Contains("OUTQ_TEST_UNSET is not set"), config_error);
    auto c = parse_config(text, r, config_use::operator_commands);
    CHECK(c.redis.url == "redis://10.0.0.1:6379/0");
    CHECK(c.redis.password == "redis-pw");
    CHECK(c.queue == "orders");
    CHECK(c.log_level == log::level::warn);
    REQUIRE(c.providers.size() == 2);
    CHECK(c.providers.at("webhook").accounts.size() == 2);
    CHECK(c.providers.at("webhook").accounts.at("b")->name == "b");
    CHECK(c.providers.at("mews").accounts.count("hotel") == 1);
    // The secrets the operator commands use still have to resolve.
    auto operator_error = [&](const std::string& t) -> std::string {
        try {
            parse_config(t, r, config_use::operator_commands);
        } catch (const config_error& e) {
            return e.what();
        }
        return "";
    };
    CHECK(operator_error(R"({"redis": {"password": {"env": "OUTQ_TEST_UNSET"}}})") ==
          "config: redis.password: environment variable OUTQ_TEST_UNSET is not set");
    CHECK(operator_error(R"({"queue": {"env": "OUTQ_TEST_UNSET"}})") ==
          "config: queue: environment variable OUTQ_TEST_UNSET is not set");
    // What it reads is checked as strictly as ever, and a misspelt top-level key still names itself.
    CHECK(operator_error(R"({"redis": {"urll": "x"}})") == "config: redis.urll: unknown key");
    CHECK(operator_error(R"({"queu": "x"})") == "config: queu: unknown key");
    CHECK(operator_error(R"({"providers": {"fax": {}}})").find("config: providers.fax: unknown provider") == 0);
    unsetenv("OUTQ_TEST_REDIS_PW");
    unsetenv("OUTQ_TEST_QUEUE");
}

TEST_CASE("the circuit breaker: defaults, provider to account inheritance, the probe lease from the timeouts") {
    auto r = registry();
    auto c = parse_config(R"({"providers": {"webhook": {
        "circuit": {"failures": 3, "open_ms": 1000},
        "accounts": {
            "a": {"url": "http://127.0.0.1:1/a"},
            "b": {"url": "http://127.0.0.1:1/b", "http": {"request_timeout_ms": 10000},
                  "circuit": {"max_open_ms": 60000}},
            "c": {"url": "http://127.0.0.1:1/c", "circuit": {"enabled": false, "probe_timeout_ms": 2000}}}}}})",
                          r);
    const auto& p = c.providers.at("webhook");
    CHECK(p.circuit.failures == 3);
    CHECK(p.circuit.probe_timeout.count() == 0);  // resolved per account
    const auto& a = p.accounts.at("a")->circuit;
    CHECK(a.enabled);
    CHECK(a.failures == 3);
    CHECK(a.open.count() == 1000);
    CHECK(a.max_open.count() == 300000);
    CHECK(a.probe_timeout.count() == 5000 + 5000 + 30000 + 5000);
    const auto& b = p.accounts.at("b")->circuit;
    CHECK(b.failures == 3);  // inherited
    CHECK(b.max_open.count() == 60000);
    CHECK(b.probe_timeout.count() == 5000 + 5000 + 10000 + 5000);  // the account's own request timeout
    const auto& cc = p.accounts.at("c")->circuit;
    CHECK_FALSE(cc.enabled);
    CHECK(cc.probe_timeout.count() == 2000);

    auto d = parse_config(R"({"providers": {"webhook": {"accounts": {"a": {"url": "http://127.0.0.1:1/a"}}}}})", r);
    const auto& def = d.providers.at("webhook").accounts.at("a")->circuit;
    CHECK(def.enabled);
    CHECK(def.failures == 5);
    CHECK(def.open.count() == 5000);
    CHECK(def.max_open.count() == 300000);
}

TEST_CASE("circuit errors name their key") {
    CHECK(error_of(R"({"providers": {"webhook": {"circuit": {"failures": 0}}}})") ==
          "config: providers.webhook.circuit.failures: must be between 1 and 1000000");
    CHECK(error_of(R"({"providers": {"webhook": {"circuit": {"enabled": "yes"}}}})") ==
          "config: providers.webhook.circuit.enabled: must be true or false");
    CHECK(error_of(R"({"providers": {"webhook": {"circuit": {"open_ms": 10000, "max_open_ms": 5000}}}})") ==
          "config: providers.webhook.circuit.max_open_ms: max_open_ms (5000) must not be below open_ms (10000)");
    // An account's opening above the max it inherits.
    CHECK(error_of(R"({"providers": {"webhook": {"accounts": {"a": {"url": "http://x/",
                       "circuit": {"open_ms": 600000}}}}}})") ==
          "config: providers.webhook.accounts.a.circuit.open_ms: max_open_ms (300000) must not be below open_ms "
          "(600000)");
    CHECK(error_of(R"({"providers": {"webhook": {"circuit": {"threshold": 3}}}})") ==
          "config: providers.webhook.circuit.threshold: unknown key");
    CHECK(error_of(R"({"providers": {"webhook": {"circuit": 5}}})") ==
          "config: providers.webhook.circuit: must be an object");
}
