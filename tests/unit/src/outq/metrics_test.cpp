#include "outq/metrics.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

using namespace outq;
using namespace std::chrono_literals;

namespace {

bool has_line(const std::string& text, const std::string& line) {
    return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("metrics: every family has HELP and TYPE; totals are counters named _total") {
    metrics m;
    const auto text = m.render();
    for (const char* family : {"outq_jobs_total", "outq_http_requests_total", "outq_send_duration_seconds",
                               "outq_queue_waiting_jobs", "outq_redis_roundtrip_seconds", "outq_ready"}) {
        CHECK(text.find(std::string("# HELP ") + family + " ") != std::string::npos);
        CHECK(text.find(std::string("# TYPE ") + family + " ") != std::string::npos);
    }
    CHECK(has_line(text, "# TYPE outq_http_requests_total counter"));
    CHECK(has_line(text, "# TYPE outq_queue_waiting_jobs gauge"));
    CHECK(has_line(text, "# TYPE outq_send_duration_seconds histogram"));
    // Every counter ends in _total; no family is a gauge named like a total.
    std::size_t at = 0;
    while ((at = text.find("# TYPE ", at)) != std::string::npos) {
        const auto end = text.find('\n', at);
        const auto line = text.substr(at + 7, end - at - 7);
        const auto space = line.find(' ');
        const auto name = line.substr(0, space), type = line.substr(space + 1);
        CHECK_MESSAGE((type == "counter") == (name.size() > 6 && name.substr(name.size() - 6) == "_total"), line);
        at = end;
    }
}

TEST_CASE("metrics: counters, totals kept elsewhere, gauges") {
    metrics m;
    m.inc("outq_jobs_total", "outcome=\"sent\"");
    m.inc("outq_jobs_total", "outcome=\"sent\"", 2);
    m.set_total("outq_http_requests_total", {}, 41);
    m.set_total("outq_http_requests_total", {}, 42);
    m.set("outq_queue_waiting_jobs", "queue=\"q\"", 5);
    m.set("outq_redis_last_ok_age_seconds", {}, 1.5);
    const auto text = m.render();
    CHECK(has_line(text, "outq_jobs_total{outcome=\"sent\"} 3"));
    CHECK(has_line(text, "outq_http_requests_total 42"));
    CHECK(has_line(text, "outq_queue_waiting_jobs{queue=\"q\"} 5"));
    CHECK(has_line(text, "outq_redis_last_ok_age_seconds 1.5"));
}

TEST_CASE("metrics: a family that is not declared, or of another type, is a programming error") {
    metrics m;
    CHECK_THROWS_AS(m.inc("outq_no_such_total"), std::logic_error);
    CHECK_THROWS_AS(m.inc("outq_queue_waiting_jobs"), std::logic_error);  // a gauge
    CHECK_THROWS_AS(m.set("outq_jobs_total", {}, 1), std::logic_error);   // a counter
    CHECK_THROWS_AS(m.observe("outq_in_flight_jobs", {}, 1), std::logic_error);
}

TEST_CASE("metrics: the send histogram per provider and account, cumulative buckets in seconds") {
    metrics m;
    m.allow_scope("webhook", "a");
    std::string l;
    m.append_scope_labels(l, "webhook", "a");
    m.observe("outq_send_duration_seconds", l, 0.003);
    m.observe("outq_send_duration_seconds", l, 0.2);
    m.observe("outq_send_duration_seconds", l, 100);
    const auto text = m.render();
    CHECK(has_line(text, "outq_send_duration_seconds_bucket{provider=\"webhook\",account=\"a\",le=\"0.005\"} 1"));
    CHECK(has_line(text, "outq_send_duration_seconds_bucket{provider=\"webhook\",account=\"a\",le=\"0.1\"} 1"));
    CHECK(has_line(text, "outq_send_duration_seconds_bucket{provider=\"webhook\",account=\"a\",le=\"0.25\"} 2"));
    CHECK(has_line(text, "outq_send_duration_seconds_bucket{provider=\"webhook\",account=\"a\",le=\"30\"} 2"));
    CHECK(has_line(text, "outq_send_duration_seconds_bucket{provider=\"webhook\",account=\"a\",le=\"+Inf\"} 3"));
    CHECK(has_line(text, "outq_send_duration_seconds_count{provider=\"webhook\",account=\"a\"} 3"));
    CHECK(has_line(text, "outq_send_duration_seconds_sum{provider=\"webhook\",account=\"a\"} 100.203"));
}

TEST_CASE("metrics: label values only from the configuration; anything else is _unknown_") {
    metrics m;
    m.allow_scope("webhook", "a");
    m.allow_scope("mews", "hotel-1");
    auto labels = [&](std::string_view p, std::string_view a) {
        std::string out;
        m.append_scope_labels(out, p, a);
        return out;
    };
    CHECK(labels("webhook", "a") == "provider=\"webhook\",account=\"a\"");
    CHECK(labels("webhook", "hotel-1") == "provider=\"webhook\",account=\"_unknown_\"");  // another provider's
    CHECK(labels("webhook", "x\"y") == "provider=\"webhook\",account=\"_unknown_\"");
    CHECK(labels("nope", "a") == "provider=\"_unknown_\",account=\"_unknown_\"");
    std::string after = "queue=\"q\"";
    m.append_scope_labels(after, "mews", "hotel-1");
    CHECK(after == "queue=\"q\",provider=\"mews\",account=\"hotel-1\"");
    // A thousand job-made accounts are one series.
    for (int i = 0; i < 1000; ++i) m.inc("outq_jobs_total", labels("webhook", "acct" + std::to_string(i)));
    CHECK(has_line(m.render(), "outq_jobs_total{provider=\"webhook\",account=\"_unknown_\"} 1000"));
}

TEST_CASE("metrics: label values are escaped") {
    CHECK(label("reason", "a\"b\\c\nd") == "reason=\"a\\\"b\\\\c\\nd\"");
}

namespace {

health_inputs healthy_worker() {
    health_inputs in;
    in.now = std::chrono::steady_clock::time_point{} + 10000s;
    in.started = in.now - 100s;
    in.fetch_ok = in.now - 1s;
    in.control_ok = in.now - 5s;
    in.sampler_round = in.now - 5s;
    return in;
}

}  // namespace

TEST_CASE("readiness: not before the start-up checks passed (no Redis round trip yet)") {
    health_inputs in;
    in.now = std::chrono::steady_clock::time_point{} + 10s;
    CHECK_FALSE(readiness(in).ok);
    CHECK(liveness(in).ok);  // alive while it retries
}

TEST_CASE("readiness: Redis answers and the fetcher read recently, or every slot is busy") {
    auto in = healthy_worker();
    CHECK(readiness(in).ok);
    CHECK(liveness(in).ok);
    // Every slot busy, no read for long: legitimately waiting, ready and alive.
    in.fetch_ok = in.now - 90s;
    in.slots_full_now = true;
    in.slots_full = in.now;
    CHECK(readiness(in).ok);
    CHECK(liveness(in).ok);
    // Slots free again but no read for 90 s: not ready.
    in.slots_full_now = false;
    in.slots_full = in.now - 80s;
    CHECK_FALSE(readiness(in).ok);
    CHECK(liveness(in).ok);
}

TEST_CASE("readiness fails at once when the fetcher's last read failed (a lost primary)") {
    auto in = healthy_worker();
    in.fetch_failing = true;  // its last good read was a second ago, the control connection quiet
    CHECK_FALSE(readiness(in).ok);
    CHECK(readiness(in).reason == "redis: the fetcher's last read failed");
    CHECK(liveness(in).ok);
    in.slots_full_now = true;  // busy slots do not make a failing read fine
    CHECK_FALSE(readiness(in).ok);
}

TEST_CASE("readiness fails while Redis does not answer; liveness does not") {
    auto in = healthy_worker();
    in.control_failing = true;
    CHECK_FALSE(readiness(in).ok);
    CHECK(liveness(in).ok);
    in.control_failing = false;
    in.control_ok = in.now - 600s;  // an outage of ten minutes: the fetcher cannot read either
    in.fetch_ok = in.now - 600s;
    CHECK_FALSE(readiness(in).ok);
    CHECK(liveness(in).ok);
}

TEST_CASE("readiness: draining is not ready; still alive") {
    auto in = healthy_worker();
    in.running = false;
    CHECK_FALSE(readiness(in).ok);
    CHECK(liveness(in).ok);
}

TEST_CASE("liveness fails when a loop made no progress for long") {
    auto in = healthy_worker();
    // Redis answers, slots are free, the fetcher has not completed a read for 6 minutes: wedged.
    in.fetch_ok = in.now - 360s;
    in.started = in.now - 3600s;
    auto a = liveness(in);
    CHECK_FALSE(a.ok);
    CHECK(a.reason.find("fetcher") != std::string::npos);
    // The depth sampler's rounds end even when Redis is down: none for 6 minutes is a stuck loop.
    in = healthy_worker();
    in.started = in.now - 3600s;
    in.sampler_round = in.now - 360s;
    in.control_ok = in.now - 360s;
    a = liveness(in);
    CHECK_FALSE(a.ok);
    CHECK(a.reason.find("sampler") != std::string::npos);
}

TEST_CASE("metrics: outq_account_circuit_open per configured account, 1 open or half-open, 0 closed") {
    metrics m;
    m.allow_scope("webhook", "a");
    set_account_circuit_open(m, "webhook", "a", true);
    set_account_circuit_open(m, "webhook", "b", false);  // not configured: _unknown_
    auto text = m.render();
    CHECK(has_line(text, "# TYPE outq_account_circuit_open gauge"));
    CHECK(has_line(text, "outq_account_circuit_open{provider=\"webhook\",account=\"a\"} 1"));
    CHECK(has_line(text, "outq_account_circuit_open{provider=\"webhook\",account=\"_unknown_\"} 0"));
    set_account_circuit_open(m, "webhook", "a", false);
    CHECK(has_line(m.render(), "outq_account_circuit_open{provider=\"webhook\",account=\"a\"} 0"));
}

TEST_CASE("metrics: label_value reads back what append_label wrote") {
    std::string l;
    append_label(l, "provider", "mews");
    append_label(l, "account", "a\"b\\c\nd");
    CHECK(label_value(l, "provider") == "mews");
    CHECK(label_value(l, "account") == "a\"b\\c\nd");
    CHECK_FALSE(label_value(l, "class"));
    CHECK_FALSE(label_value("provider=\"unterminated", "provider"));
    CHECK_FALSE(label_value("", "provider"));
}

TEST_CASE("metrics endpoint: the route is decided from the method and the path alone") {
    CHECK(route_metrics_request("GET", "/metrics") == metrics_route::metrics);
    CHECK(route_metrics_request("HEAD", "/metrics?x=1") == metrics_route::metrics);
    CHECK(route_metrics_request("GET", "/healthz") == metrics_route::healthz);
    CHECK(route_metrics_request("GET", "/readyz?") == metrics_route::readyz);
    CHECK(route_metrics_request("GET", "/metrics/") == metrics_route::not_found);
    CHECK(route_metrics_request("GET", "") == metrics_route::not_found);
    CHECK(route_metrics_request("POST", "/metrics") == metrics_route::method_not_allowed);
    CHECK(route_metrics_request("get", "/metrics") == metrics_route::method_not_allowed);
}
