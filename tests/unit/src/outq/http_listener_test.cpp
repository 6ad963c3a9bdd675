#include "outq/http_listener.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

using namespace outq;

TEST_CASE("a listen address is host:port with an IP host, [v6] in brackets, empty for every IPv4 address") {
    CHECK(parse_listen_address("127.0.0.1:8080", "x").port() == 8080);
    CHECK(parse_listen_address("127.0.0.1:0", "x").port() == 0);
    CHECK(parse_listen_address("[::1]:9100", "x").address().to_string() == "::1");
    CHECK(parse_listen_address(":9100", "x").address().to_string() == "0.0.0.0");
    CHECK_THROWS_WITH_AS(parse_listen_address("localhost:80", "--listen"), "--listen: localhost is not an IP address",
                         std::runtime_error);
    CHECK_THROWS_AS(parse_listen_address("127.0.0.1", "x"), std::runtime_error);
    CHECK_THROWS_AS(parse_listen_address("127.0.0.1:70000", "x"), std::runtime_error);
    CHECK_THROWS_AS(parse_listen_address("127.0.0.1:80x", "x"), std::runtime_error);
}
