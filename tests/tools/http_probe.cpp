// http_probe: drives outq's http_client from the command line, for the
// integration tests (TLS, pooling, timeouts, proxies against real local
// servers) and the HTTP client benchmark. Prints one JSON summary.
//
//   http_probe --url URL [--count N] [--concurrency C] [--max-connections M]
//              [--ca FILE] [--cert FILE --key FILE] [--insecure]
//              [--connect-timeout-ms T] [--request-timeout-ms T] [--max-response-bytes B]
//              [--method POST] [--body TEXT] [--header "Name: value"]... [--pause-ms T]
//              [--idle-timeout-ms T] [--dns-cache-ms T] [--bodies]
//
// --bodies adds "bodies": every answer's whole body (or "<failure>: error"), in the
// order the requests were issued (use it with --concurrency 1).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "outq/http_client.hpp"
#include "outq/json_util.hpp"

namespace asio = boost::asio;
using namespace outq;

namespace {

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct summary {
    long ok = 0;
    std::map<std::string, long> failures;
    std::map<int, long> statuses;
    std::string last_error;
    std::string first_body;
    std::vector<std::string> bodies;  // with --bodies
    std::string request_id;
    std::string retry_after;
    bool request_written_on_failure = false;
};

}  // namespace

int main(int argc, char** argv) {
    std::string url, method = "POST", body = "{}";
    long count = 1, concurrency = 1, pause_ms = 0;
    bool keep_bodies = false;
    http_settings http;
    tls_settings tls;
    outbound_request prototype;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--url")
            url = next();
        else if (a == "--count")
            count = std::stol(next());
        else if (a == "--concurrency")
            concurrency = std::stol(next());
        else if (a == "--max-connections")
            http.max_connections = std::stoi(next());
        else if (a == "--ca")
            tls.ca_file = next();
        else if (a == "--cert")
            tls.client_cert_file = next();
        else if (a == "--key")
            tls.client_key_file = next();
        else if (a == "--insecure")
            tls.verify = false;
        else if (a == "--connect-timeout-ms")
            http.connect_timeout = std::chrono::milliseconds(std::stol(next()));
        else if (a == "--handshake-timeout-ms")
            http.tls_handshake_timeout = std::chrono::milliseconds(std::stol(next()));
        else if (a == "--request-timeout-ms")
            http.request_timeout = std::chrono::milliseconds(std::stol(next()));
        else if (a == "--idle-timeout-ms")
            http.idle_timeout = std::chrono::milliseconds(std::stol(next()));
        else if (a == "--dns-cache-ms")
            http.dns_cache = std::chrono::milliseconds(std::stol(next()));
        else if (a == "--max-response-bytes")
            http.max_response_bytes = std::stoul(next());
        else if (a == "--method")
            method = next();
        else if (a == "--body")
            body = next();
        else if (a == "--pause-ms")
            pause_ms = std::stol(next());
        else if (a == "--bodies")
            keep_bodies = true;
        else if (a == "--header") {
            auto h = next();
            auto colon = h.find(':');
            if (colon == std::string::npos) return 2;
            auto value = h.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            prototype.headers.push_back({h.substr(0, colon), value});
        } else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (url.empty()) return 2;
    prototype.url = url;
    prototype.method = method;
    prototype.body = body;
    prototype.headers.push_back({"Content-Type", "application/json"});

    asio::io_context io(1);
    http_client client(io.get_executor(),
                       proxy_config_from_env([](const char* n) -> const char* { return std::getenv(n); }));
    summary s;
    long issued = 0, running = 0;
    const double cpu_start = cpu_seconds();
    const auto wall_start = std::chrono::steady_clock::now();

    auto worker = [&]() -> asio::awaitable<void> {
        asio::steady_timer pause(io);
        while (issued < count) {
            ++issued;
            auto r = co_await client.send(prototype, http, tls);
            if (r.ok()) {
                ++s.ok;
                ++s.statuses[r.response.status];
                if (s.first_body.empty()) s.first_body = excerpt(r.response.body, 200);
                if (auto v = r.response.header("Request-Id"); !v.empty()) s.request_id = std::string(v);
                if (auto v = r.response.header("Retry-After"); !v.empty()) s.retry_after = std::string(v);
                if (keep_bodies) s.bodies.push_back(r.response.body);
            } else {
                ++s.failures[std::string(to_string(r.failure))];
                s.last_error = r.error;
                s.request_written_on_failure = r.request_written;
                if (keep_bodies) s.bodies.push_back(std::string(to_string(r.failure)) + ": " + r.error);
            }
            if (pause_ms > 0) {
                pause.expires_after(std::chrono::milliseconds(pause_ms));
                co_await pause.async_wait(asio::use_awaitable);
            }
        }
        if (--running == 0) client.shutdown();
    };
    for (long i = 0; i < concurrency; ++i) {
        ++running;
        asio::co_spawn(io, worker(), asio::detached);
    }
    io.run();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    const double cpu = cpu_seconds() - cpu_start;
    auto st = client.stats();

    std::string out = "{\"ok\":" + std::to_string(s.ok) + ",\"failures\":{";
    bool first = true;
    for (auto& [k, v] : s.failures) {
        out += (first ? "" : ",");
        json::append_quoted(out, k);
        out += ":" + std::to_string(v);
        first = false;
    }
    out += "},\"statuses\":{";
    first = true;
    for (auto& [k, v] : s.statuses) {
        out += (first ? "\"" : ",\"") + std::to_string(k) + "\":" + std::to_string(v);
        first = false;
    }
    out += "},\"last_error\":";
    json::append_quoted(out, s.last_error);
    out += ",\"first_body\":";
    json::append_quoted(out, s.first_body);
    out += ",\"request_id\":";
    json::append_quoted(out, s.request_id);
    out += ",\"retry_after\":";
    json::append_quoted(out, s.retry_after);
    out += ",\"request_written_on_failure\":" + std::string(s.request_written_on_failure ? "true" : "false");
    if (keep_bodies) {
        out += ",\"bodies\":[";
        for (std::size_t i = 0; i < s.bodies.size(); ++i) {
            if (i) out += ",";
            json::append_quoted(out, s.bodies[i]);
        }
        out += "]";
    }
    out += ",\"connections_opened\":" + std::to_string(st.connections_opened) +
           ",\"reused\":" + std::to_string(st.reused) + ",\"requests\":" + std::to_string(st.requests) +
           ",\"dns_lookups\":" + std::to_string(st.dns_lookups) +
           ",\"stale_closed\":" + std::to_string(st.stale_closed) +
           ",\"resent_before_write\":" + std::to_string(st.resent_before_write) +
           ",\"ambiguous_after_reuse\":" + std::to_string(st.ambiguous_after_reuse);
    char perf[160];
    std::snprintf(perf, sizeof perf, ",\"wall_seconds\":%.4f,\"cpu_seconds\":%.4f,\"requests_per_second\":%.1f", wall,
                  cpu, wall > 0 ? static_cast<double>(s.ok) / wall : 0.0);
    out += perf;
    std::snprintf(perf, sizeof perf, ",\"cpu_us_per_request\":%.2f}",
                  s.ok > 0 ? cpu * 1e6 / static_cast<double>(s.ok) : 0.0);
    out += perf;
    std::puts(out.c_str());
    return 0;
}
