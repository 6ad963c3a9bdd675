#include <doctest/doctest.h>

#include "outq/redis_connection.hpp"

using namespace outq;

TEST_CASE("redis URLs") {
    std::string err;
    auto a = redis::parse_url("redis://127.0.0.1:6380/2", err);
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 6380);
    CHECK(a->db == 2);
    CHECK_FALSE(a->tls);
    auto b = redis::parse_url("rediss://user:p%40ss@redis.example:6379", err);
    REQUIRE(b);
    CHECK(b->tls);
    CHECK(b->user == "user");
    CHECK(b->password == "p%40ss");
    CHECK(b->host == "redis.example");
    auto c = redis::parse_url("redis://:secret@localhost", err);
    REQUIRE(c);
    CHECK(c->user.empty());
    CHECK(c->password == "secret");
    CHECK(c->port == 6379);
    auto d = redis::parse_url("redis://[::1]:7000/1", err);
    REQUIRE(d);
    CHECK(d->host == "::1");
    CHECK(d->port == 7000);
    CHECK_FALSE(redis::parse_url("http://x", err));
    CHECK_FALSE(redis::parse_url("redis://host:99999", err));
    CHECK_FALSE(redis::parse_url("redis://host/abc", err));
    CHECK_FALSE(redis::parse_url("redis://", err));
}
