#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "outq/http_response_reader.hpp"

using namespace outq;
using state = http_response_reader::state;

namespace {

// Feeds `wire` as a connection would, `step` bytes per read (0: all at once),
// keeping what the reader did not take in the buffer; `eof` closes after it.
struct fed {
    std::pmr::monotonic_buffer_resource memory;
    http_response_reader reader;
    std::string left;  // bytes after the final response
    explicit fed(std::string_view wire, std::size_t step = 0, bool eof = false, std::uint64_t max_body = 1 << 20)
        : reader(&memory, max_body, 16 * 1024) {
        std::string buffer;
        std::size_t pos = 0;
        while (reader.status() == state::reading) {
            if (pos < wire.size()) {
                const std::size_t n = step == 0 ? wire.size() - pos : std::min(step, wire.size() - pos);
                buffer.append(wire.substr(pos, n));
                pos += n;
            } else if (eof) {
                buffer.erase(0, reader.put(buffer));
                if (reader.status() == state::reading) reader.put_eof();
                break;
            } else {
                break;
            }
            buffer.erase(0, reader.put(buffer));
        }
        left = buffer;
    }
};

const std::string ok_200 = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}";

}  // namespace

TEST_CASE("a plain final response is complete, keeps the connection and leaves nothing") {
    for (std::size_t step : {0, 1, 5}) {
        fed f(ok_200, step);
        REQUIRE(f.reader.status() == state::complete);
        CHECK(f.reader.response().result_int() == 200);
        CHECK(f.reader.response().body() == "{\"a\":1}");
        CHECK(f.reader.keep_alive());
        CHECK(f.reader.interim_responses() == 0);
        CHECK(f.left.empty());
    }
}

TEST_CASE("100 Continue and 103 Early Hints are skipped: the final response is the answer") {
    const std::string wire =
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
        "Link: </app.js>; rel=preload\r\n\r\n" +
        ok_200;
    for (std::size_t step : {0, 1, 3, 26}) {
        fed f(wire, step);
        REQUIRE(f.reader.status() == state::complete);
        CHECK(f.reader.interim_responses() == 2);
        CHECK(f.reader.response().result_int() == 200);
        CHECK(f.reader.response().body() == "{\"a\":1}");
        // The interim response's headers are not the final one's.
        CHECK(f.reader.response().find("Link") == f.reader.response().end());
        CHECK(f.reader.keep_alive());
        CHECK(f.left.empty());
    }
}

TEST_CASE("an interim response alone is not an answer: more is awaited, and a close after it fails") {
    fed waiting("HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(waiting.reader.status() == state::reading);
    CHECK(waiting.reader.got_some());
    fed closed("HTTP/1.1 100 Continue\r\n\r\n", 0, /*eof=*/true);
    REQUIRE(closed.reader.status() == state::failed);
    CHECK(closed.reader.failure() == http_failure::closed_after_send);
    CHECK(closed.reader.error().find("interim") != std::string::npos);
}

TEST_CASE("101 Switching Protocols that nobody asked for is a protocol failure") {
    fed f("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello");
    REQUIRE(f.reader.status() == state::failed);
    CHECK(f.reader.failure() == http_failure::protocol);
    CHECK(f.reader.error().find("101") != std::string::npos);
    CHECK_FALSE(f.reader.keep_alive());
}

TEST_CASE("endless interim responses are a protocol failure") {
    std::string wire;
    for (int i = 0; i <= http_response_reader::max_interim_responses; ++i) wire += "HTTP/1.1 100 Continue\r\n\r\n";
    fed f(wire + ok_200);
    REQUIRE(f.reader.status() == state::failed);
    CHECK(f.reader.failure() == http_failure::protocol);
}

TEST_CASE("bytes after the final response are left over, never part of it") {
    fed f(ok_200 + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nxx");
    REQUIRE(f.reader.status() == state::complete);
    CHECK(f.reader.response().body() == "{\"a\":1}");
    CHECK(f.left == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nxx");
    // A 204 has no body whatever its Content-Length says: the bytes are extra.
    fed no_content("HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc");
    REQUIRE(no_content.reader.status() == state::complete);
    CHECK(no_content.reader.response().body().empty());
    CHECK(no_content.left == "abc");
}

TEST_CASE("framing decides whether the connection may carry another request") {
    // Body delimited by the end of the connection: complete at EOF, never kept.
    fed to_eof("HTTP/1.1 200 OK\r\n\r\nall of it", 4, /*eof=*/true);
    REQUIRE(to_eof.reader.status() == state::complete);
    CHECK(to_eof.reader.response().body() == "all of it");
    CHECK_FALSE(to_eof.reader.keep_alive());
    fed close("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(close.reader.status() == state::complete);
    CHECK_FALSE(close.reader.keep_alive());
    fed http10("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(http10.reader.status() == state::complete);
    CHECK_FALSE(http10.reader.keep_alive());
    fed chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 2);
    REQUIRE(chunked.reader.status() == state::complete);
    CHECK(chunked.reader.response().body() == "abc");
    CHECK(chunked.reader.keep_alive());
}

TEST_CASE("broken framing is a protocol failure; a truncated answer is a close after send") {
    fed both("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
    CHECK(both.reader.status() == state::failed);
    CHECK(both.reader.failure() == http_failure::protocol);
    fed garbage("HTTP/1.1 two hundred OK\r\n\r\n");
    CHECK(garbage.reader.failure() == http_failure::protocol);
    fed status("HTTP/1.1 700 Odd\r\nContent-Length: 0\r\n\r\n");
    CHECK(status.reader.failure() == http_failure::protocol);
    fed truncated("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 0, /*eof=*/true);
    CHECK(truncated.reader.failure() == http_failure::closed_after_send);
    fed nothing("", 0, /*eof=*/true);
    CHECK(nothing.reader.failure() == http_failure::closed_after_send);
    CHECK_FALSE(nothing.reader.got_some());
}

TEST_CASE("the idle timeout a server announces in Keep-Alive") {
    CHECK(keep_alive_timeout("timeout=5, max=100") == std::chrono::seconds(5));
    CHECK(keep_alive_timeout("max=100, Timeout = 75") == std::chrono::seconds(75));
    CHECK(keep_alive_timeout("timeout=0") == std::chrono::seconds(0));
    CHECK_FALSE(keep_alive_timeout("max=100"));
    CHECK_FALSE(keep_alive_timeout("timeout="));
    CHECK_FALSE(keep_alive_timeout("timeouts=5"));
    CHECK_FALSE(keep_alive_timeout(""));
}

TEST_CASE("limits on the body and the header are too_large") {
    fed body("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", 0, false, /*max_body=*/1000);
    CHECK(body.reader.failure() == http_failure::too_large);
    fed header("HTTP/1.1 200 OK\r\nX-Big: " + std::string(20000, 'x') + "\r\n\r\n");
    CHECK(header.reader.failure() == http_failure::too_large);
}
