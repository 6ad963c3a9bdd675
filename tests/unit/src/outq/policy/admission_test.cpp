#include <doctest/doctest.h>

#include "outq/policy/admission.hpp"
#include "register_all.hpp"

using namespace outq;
using namespace std::chrono_literals;

namespace {

struct fixture {
    adapter_registry registry;
    worker_config config;
    fixture() {
        adapters::register_builtin_adapters(registry);
        config = parse_config(R"({"max_deliveries": 3, "providers": {"webhook": {"accounts": {"a": {
            "url": "http://127.0.0.1:9/in"}}}}})",
                              registry);
    }
    policy::admission inspect(std::string job_json, int deliveries = 1, bool has_job = true) {
        env = {};
        env.entry_id = "7-0";
        env.job_json = std::move(job_json);
        env.has_job_field = has_job;
        env.deliveries = deliveries;
        return policy::inspect(env, config, registry);
    }
    queue::envelope env;
};

}  // namespace

TEST_CASE("admission takes on a valid job and says where it goes") {
    fixture f;
    auto a = f.inspect(R"({"id":"j","provider":"webhook","account":"a","message":{"text":"x"}})");
    REQUIRE(a.what == policy::admission::kind::send);
    CHECK(a.parsed->id == "j");
    CHECK(a.provider == f.registry.find("webhook"));
    CHECK(a.account == f.config.providers.at("webhook").accounts.at("a").get());
    CHECK(f.env.first_entry.empty());
}

TEST_CASE("a job without an id keeps its first entry id") {
    fixture f;
    auto a = f.inspect(R"({"provider":"webhook","account":"a","message":{"text":"x"}})");
    REQUIRE(a.what == policy::admission::kind::send);
    CHECK(a.parsed->id == "7-0");
    CHECK(f.env.first_entry == "7-0");
}

TEST_CASE("admission refuses bad entries as validation dead letters, naming what is wrong") {
    fixture f;
    auto none = f.inspect("", 1, false);
    CHECK(none.what == policy::admission::kind::dead);
    CHECK(none.dead_class == "validation");
    CHECK(none.error.find("no 'job' field") != std::string::npos);

    auto provider = f.inspect(R"({"id":"j","provider":"nope","account":"a","message":{}})");
    CHECK(provider.dead_class == "validation");
    CHECK(provider.error == "job.provider: unknown provider 'nope'");
    CHECK(provider.job_id == "j");

    auto account = f.inspect(R"({"id":"j","provider":"webhook","account":"zz","message":{}})");
    CHECK(account.error.find("no account 'zz'") != std::string::npos);

    auto broken = f.inspect("{not json");
    CHECK(broken.what == policy::admission::kind::dead);
    CHECK(broken.dead_class == "validation");
}

TEST_CASE("a job delivered more than max_deliveries times is a poison dead letter, before it is parsed") {
    fixture f;
    auto a = f.inspect(R"({"id":"p","provider":"webhook","account":"a","message":{"text":"x"}})", 4);
    CHECK(a.what == policy::admission::kind::dead);
    CHECK(a.poison);
    CHECK(a.dead_class == "attempts_exhausted");
    CHECK(a.job_id == "p");
    CHECK(a.provider_name == "webhook");
    CHECK(a.error.find("max_deliveries 3") != std::string::npos);
    // Exactly max_deliveries is still allowed.
    CHECK(f.inspect(R"({"id":"p","provider":"webhook","account":"a","message":{"text":"x"}})", 3).what ==
          policy::admission::kind::send);
}

TEST_CASE("a job longer than max_job_bytes is a validation dead letter naming the limit, not parsed") {
    fixture f;
    f.config.max_job_bytes = 1024;
    std::string text(1100, 'x');
    std::string big = R"({"id":"big","provider":"webhook","account":"a","message":{"text":")" + text + R"("}})";
    auto a = f.inspect(big);
    CHECK(a.what == policy::admission::kind::dead);
    CHECK(a.dead_class == "validation");
    CHECK(a.error == "job: " + std::to_string(big.size()) + " bytes, more than max_job_bytes (1024)");
    CHECK(a.job_id == "big");
    CHECK(a.provider_name == "webhook");
    CHECK(a.account_name == "a");
    CHECK_FALSE(a.parsed);
    // At the limit exactly it is taken on.
    std::string fits = R"({"id":"fits","provider":"webhook","account":"a","message":{"text":""}})";
    fits.insert(fits.size() - 3, std::string(1024 - fits.size(), 'y'));
    REQUIRE(fits.size() == 1024);
    auto taken = f.inspect(fits);
    CHECK_MESSAGE(taken.what == policy::admission::kind::send, taken.error);
}

TEST_CASE("claim verdicts: duplicate, busy twin, paused account, expired, not yet, go") {
    job j;
    j.id = "j";
    using kind = policy::claim_decision::kind;
    queue::claim_result done;
    done.verdict = queue::claim_verdict::done;
    done.pause_ms = 0;
    done.holds_marker = true;
    CHECK(policy::after_claim(done, j, 60s, 1000, 0.5).what == kind::duplicate);
    CHECK(policy::after_claim(done, j, 60s, 1000, 0.5).release_marker);

    queue::claim_result busy;
    busy.verdict = queue::claim_verdict::busy;
    busy.pause_ms = 0;
    busy.holds_marker = false;
    auto b = policy::after_claim(busy, j, 60s, 1000, 0.5);
    CHECK(b.what == kind::delay);
    CHECK(b.due == 1000 + 15000);                                    // a quarter of the visibility timeout
    CHECK_FALSE(b.release_marker);                                   // the twin's marker
    CHECK(policy::after_claim(busy, j, 1s, 1000, 0.5).due == 2000);  // at least a second

    queue::claim_result paused;
    paused.verdict = queue::claim_verdict::paused;
    paused.pause_ms = 5000;
    paused.holds_marker = true;
    auto p = policy::after_claim(paused, j, 60s, 1000, 0.0);
    CHECK(p.what == kind::delay);
    CHECK(p.due == 6000);
    queue::claim_result forever;
    forever.verdict = queue::claim_verdict::paused;
    forever.pause_ms = -1;
    forever.holds_marker = true;
    CHECK(policy::after_claim(forever, j, 60s, 1000, 0.0).due == 31000);

    queue::claim_result go;
    go.verdict = queue::claim_verdict::go;
    go.pause_ms = 0;
    go.holds_marker = true;
    CHECK(policy::after_claim(go, j, 60s, 1000, 0.5).what == kind::send);
    j.expires_at = 1000;
    CHECK(policy::after_claim(go, j, 60s, 1000, 0.5).what == kind::expired);
    j.expires_at.reset();
    j.not_before = 9000;
    auto later = policy::after_claim(go, j, 60s, 1000, 0.5);
    CHECK(later.what == kind::delay);
    CHECK(later.due == 9000);
}

TEST_CASE("a stub (a job too large to read, left in Redis) is a validation dead letter named from its first bytes") {
    fixture f;
    f.config.max_job_bytes = 1 << 20;
    f.env = {};
    f.env.entry_id = "7-0";
    f.env.job_json = R"({"id":"huge","provider":"webhook","account":"a","message":{"text":"xxxx)";
    f.env.has_job_field = true;
    f.env.stub = queue::stub_sizes{52428800, 52428840};
    auto a = policy::inspect(f.env, f.config, f.registry);
    CHECK(a.what == policy::admission::kind::dead);
    CHECK(a.dead_class == "validation");
    CHECK(a.error == "job: 52428800 bytes, more than max_job_bytes (1048576)");
    CHECK(a.job_id == "huge");
    CHECK(a.provider_name == "webhook");
    CHECK_FALSE(a.parsed);
    // Small job, other fields too long: said so.
    f.env.job_json = R"({"id":"j","provider":"webhook","account":"a","message":{}})";
    f.env.stub = queue::stub_sizes{60, 2 << 20};
    a = policy::inspect(f.env, f.config, f.registry);
    CHECK(a.what == policy::admission::kind::dead);
    CHECK(a.error.find("the stream entry: 2097152 bytes in its fields") == 0);
}
