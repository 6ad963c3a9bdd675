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
}

TEST_CASE("every config error names its key") {
    CHECK(error_of(R"({"concurency": 5})") == "config: concurency: unknown key");
    CHECK(error_of(R"({"redis": {"urll": "x"}})") == "config: redis.urll: unknown key");
    CHECK(error_of(R"({"concurrency": "5"})") == "config: concurrency: must be an integer");
    CHECK(error_of(R"({"concurrency": 0})") == "config: concurrency: must be between 1 and 100000");
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
