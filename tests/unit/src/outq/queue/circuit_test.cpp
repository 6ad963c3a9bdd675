#include <doctest/doctest.h>

#include <string>

#include "fakes/redis_values.hpp"
#include "outq/queue/circuit.hpp"
#include "outq/queue_protocol.hpp"

using namespace outq;
using namespace outq::test_values;
using namespace std::chrono_literals;
using strings = std::vector<std::string>;

namespace {

const std::string scope = queue::keys("q").scope("webhook", "a");

}  // namespace

TEST_CASE("the circuit's keys are in the account's slot") {
    CHECK(queue::circuit_key(scope) == "outq:{q@webhook/a}:circuit");
    CHECK(queue::circuit_probe_key(scope) == "outq:{q@webhook/a}:circuit:probe");
}

TEST_CASE("record_failure declares the circuit, the pause and the probe and passes the limits") {
    auto a = queue::record_failure_command(queue::script{queue::circuit_failure_script, "sha"}, scope, 5, 5000ms,
                                           300000ms, "HTTP 503 from webhook")
                 .args();
    CHECK(a == strings{"EVALSHA", "sha", "3", "outq:{q@webhook/a}:circuit", "outq:{q@webhook/a}:pause",
                       "outq:{q@webhook/a}:circuit:probe", "5", "5000", "300000", "HTTP 503 from webhook", ""});
    // Without a loaded script: the body; a clock for tests.
    auto e =
        queue::record_failure_command(queue::script{queue::circuit_failure_script, ""}, scope, 0, 0ms, 0ms, "x", 1234)
            .args();
    REQUIRE(e.size() == 11);
    CHECK(e[0] == "EVAL");
    CHECK(e[1] == queue::circuit_failure_script);
    CHECK(strings(e.begin() + 6, e.end()) == strings{"1", "1", "1", "x", "1234"});  // at least 1 each
    const std::string body = queue::circuit_failure_script;
    // The pause is only ever extended (as the pause script): never one until resumed, never a longer one.
    CHECK(body.find("pause ~= -1 and pause < open_ms") != std::string::npos);
    CHECK(body.find("'circuit: ' .. ARGV[4]") != std::string::npos);
    CHECK(body.find("PEXPIRE") != std::string::npos);  // the hash never lingers
}

TEST_CASE("record_failure's reply is the circuit after the call") {
    queue::circuit_reply r;
    REQUIRE(queue::parse_circuit_reply(arr({str("open"), num(5), num(1), num(5000), num(5000), num(1)}), r));
    CHECK(r.state == "open");
    CHECK(r.failures == 5);
    CHECK(r.opens == 1);
    CHECK(r.open_ms == 5000);
    CHECK(r.remaining_ms == 5000);
    CHECK(r.opened);
    REQUIRE(queue::parse_circuit_reply(arr({str("closed"), num(2), num(0), num(0), num(0), num(0)}), r));
    CHECK_FALSE(r.opened);
    CHECK_FALSE(queue::parse_circuit_reply(error("NOSCRIPT No matching script"), r));
    CHECK_FALSE(queue::parse_circuit_reply(arr({str("open"), num(5)}), r));
    CHECK_FALSE(queue::parse_circuit_reply(arr({str("open"), num(5), str("1"), num(5000), num(5000), num(1)}), r));
    CHECK_FALSE(queue::parse_circuit_reply(arr({str(""), num(5), num(1), num(5000), num(5000), num(1)}), r));
}

TEST_CASE("record_success declares the same keys; its reply says what it closed") {
    auto a = queue::record_success_command(queue::script{queue::circuit_success_script, "sha"}, scope).args();
    CHECK(a == strings{"EVALSHA", "sha", "3", "outq:{q@webhook/a}:circuit", "outq:{q@webhook/a}:pause",
                       "outq:{q@webhook/a}:circuit:probe", ""});
    const std::string body = queue::circuit_success_script;
    // Only a circuit's pause is lifted, never an operator's or a 429's.
    CHECK(body.find("string.sub(pause, 1, 7) == 'circuit'") != std::string::npos);
    queue::success_reply r;
    REQUIRE(queue::parse_success_reply(arr({str("half_open"), num(1)}), r));
    CHECK(r.was == "half_open");
    CHECK(r.closed);
    REQUIRE(queue::parse_success_reply(arr({str("open"), num(0)}), r));
    CHECK_FALSE(r.closed);
    CHECK_FALSE(queue::parse_success_reply(arr({str("open")}), r));
    CHECK_FALSE(queue::parse_success_reply(error("BUSY"), r));
}

TEST_CASE("take_probe takes the lease with SET NX PX; its reply is a verdict and a wait") {
    auto a = queue::take_probe_command(queue::script{queue::circuit_probe_script, "sha"}, scope, "pod-1:7", 45000ms, 99)
                 .args();
    CHECK(a == strings{"EVALSHA", "sha", "2", "outq:{q@webhook/a}:circuit", "outq:{q@webhook/a}:circuit:probe",
                       "pod-1:7", "45000", "99"});
    const std::string body = queue::circuit_probe_script;
    CHECK(body.find("'NX', 'PX'") != std::string::npos);
    queue::probe_reply r;
    REQUIRE(queue::parse_probe_reply(arr({str("busy"), num(1200)}), r));
    CHECK(r.verdict == "busy");
    CHECK(r.wait_ms == 1200);
    CHECK_FALSE(queue::parse_probe_reply(arr({str("won")}), r));
    CHECK_FALSE(queue::parse_probe_reply(nil, r));
}

TEST_CASE("the circuit hash reads for stats; open or half-open by the time given") {
    CHECK(queue::read_circuit_command(scope).args() == strings{"HGETALL", "outq:{q@webhook/a}:circuit"});
    std::optional<queue::circuit_record> c;
    std::string why;
    REQUIRE(queue::parse_circuit_record(arr({}), c, why));
    CHECK_FALSE(c);
    REQUIRE(queue::parse_circuit_record(arr({str("failures"), str("3"), str("state"), str("closed")}), c, why));
    REQUIRE(c);
    CHECK(c->failures == 3);
    CHECK(c->phase(0) == "closed");
    CHECK(c->remaining_ms(0) == 0);
    REQUIRE(queue::parse_circuit_record(
        arr({str("state"), str("open"), str("opened_at"), str("100"), str("open_ms"), str("50"), str("opens"), str("1"),
             str("reason"), str("boom"), str("failures"), str("5")}),
        c, why));
    CHECK(c->phase(149) == "open");
    CHECK(c->remaining_ms(149) == 1);
    CHECK(c->phase(150) == "half_open");
    CHECK(c->reason == "boom");
    CHECK_FALSE(queue::parse_circuit_record(error("WRONGTYPE Operation"), c, why));
    CHECK(why == "WRONGTYPE Operation");
    CHECK_FALSE(queue::parse_circuit_record(arr({str("state")}), c, why));
    CHECK_FALSE(queue::parse_circuit_record(arr({str("open_ms"), str("5s")}), c, why));
    CHECK(why == "unexpected circuit field open_ms: '5s' is not an integer");
}
