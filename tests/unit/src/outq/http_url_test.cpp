#include <doctest/doctest.h>

#include "outq/http_url.hpp"

using namespace outq;

TEST_CASE("http URLs") {
    auto u = parse_http_url("https://api.example.com/v1/x?y=1");
    REQUIRE(u);
    CHECK(u->tls);
    CHECK(u->port == 443);
    CHECK(u->host == "api.example.com");
    CHECK(u->target == "/v1/x?y=1");
    auto v = parse_http_url("http://127.0.0.1:8080");
    REQUIRE(v);
    CHECK(v->port == 8080);
    CHECK(v->target == "/");
    auto w = parse_http_url("http://[::1]:9/p");
    REQUIRE(w);
    CHECK(w->host == "::1");
    CHECK(parse_http_url("http://x?y=1")->target == "/?y=1");  // a query without a path gets one
    CHECK_FALSE(parse_http_url("ftp://x/"));
    CHECK_FALSE(parse_http_url("http://user:pw@x/"));
    CHECK_FALSE(parse_http_url("http://x:0/"));
    CHECK_FALSE(parse_http_url("http:///p"));
}
