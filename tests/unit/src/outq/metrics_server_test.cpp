// The metrics endpoint over a real loopback socket: paths, methods, probes.
#include "outq/metrics_server.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <string>

using namespace outq;
namespace asio = boost::asio;

namespace {

struct endpoint_rig {
    asio::io_context io;
    probe_answer live{true, "ok"}, ready{false, "redis: the control connection's last round trip failed"};
    metrics_server server{io.get_executor(), [] { return std::string("# HELP x y\n# TYPE x gauge\nx 1\n"); },
                          [this] { return live; }, [this] { return ready; }};

    endpoint_rig() {
        server.listen("127.0.0.1:0");
        asio::co_spawn(io, server.serve(), asio::detached);
    }

    // The whole answer to one request sent with Connection: close.
    std::string exchange(const std::string& method, const std::string& target) {
        std::string answer;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                asio::ip::tcp::socket s(io);
                co_await s.async_connect({asio::ip::make_address("127.0.0.1"), server.port()}, asio::use_awaitable);
                const std::string req =
                    method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
                co_await asio::async_write(s, asio::buffer(req), asio::use_awaitable);
                char buf[4096];
                for (;;) {
                    boost::system::error_code ec;
                    const auto n =
                        co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
                    answer.append(buf, n);
                    if (ec) break;
                }
                server.stop();
            },
            asio::detached);
        io.run();
        io.restart();
        return answer;
    }
};

std::string status_line(const std::string& answer) {
    return answer.substr(0, answer.find("\r\n"));
}
std::string body(const std::string& answer) {
    const auto at = answer.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : answer.substr(at + 4);
}

}  // namespace

TEST_CASE("metrics endpoint: GET /metrics is the exposition text") {
    endpoint_rig r;
    const auto a = r.exchange("GET", "/metrics");
    CHECK(status_line(a) == "HTTP/1.1 200 OK");
    CHECK(a.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(body(a) == "# HELP x y\n# TYPE x gauge\nx 1\n");
}

TEST_CASE("metrics endpoint: HEAD answers like GET without a body") {
    endpoint_rig r;
    const auto a = r.exchange("HEAD", "/metrics");
    CHECK(status_line(a) == "HTTP/1.1 200 OK");
    CHECK(a.find("Content-Length: 30") != std::string::npos);
    CHECK(body(a).empty());
}

TEST_CASE("metrics endpoint: other methods are 405 with Allow") {
    for (const char* method : {"POST", "PUT", "DELETE"}) {
        endpoint_rig r;
        const auto a = r.exchange(method, "/metrics");
        CHECK(status_line(a) == "HTTP/1.1 405 Method Not Allowed");
        CHECK(a.find("Allow: GET, HEAD") != std::string::npos);
    }
}

TEST_CASE("metrics endpoint: /healthz and /readyz answer the probes apart, with the reason") {
    endpoint_rig r;
    auto a = r.exchange("GET", "/healthz");
    CHECK(status_line(a) == "HTTP/1.1 200 OK");
    CHECK(body(a) == "ok\n");
    endpoint_rig r2;
    a = r2.exchange("GET", "/readyz");
    CHECK(status_line(a) == "HTTP/1.1 503 Service Unavailable");
    CHECK(body(a) == "redis: the control connection's last round trip failed\n");
    endpoint_rig r3;
    CHECK(status_line(r3.exchange("GET", "/nothing")) == "HTTP/1.1 404 Not Found");
    endpoint_rig r4;
    CHECK(status_line(r4.exchange("GET", "/metrics?name[]=x")) == "HTTP/1.1 200 OK");
}
