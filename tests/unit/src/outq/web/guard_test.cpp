#include <doctest/doctest.h>

#include "outq/web/guard.hpp"

using namespace outq::web;

namespace {
request_facts get(std::string_view path, std::string_view host = "127.0.0.1:8080") {
    request_facts r;
    r.method = "GET";
    r.path = path;
    r.host = host;
    return r;
}
}  // namespace

TEST_CASE("a Host the server does not listen as is refused: DNS rebinding") {
    guard_settings s;
    const auto hosts = default_hosts("127.0.0.1", 8080);
    CHECK(check(s, hosts, get("/api/overview")).ok());
    CHECK(check(s, hosts, get("/api/overview", "localhost:8080")).ok());
    CHECK(check(s, hosts, get("/api/overview", "LOCALHOST:8080")).ok());
    CHECK(check(s, hosts, get("/api/overview", "evil.example:8080")).status == 421);
    CHECK(check(s, hosts, get("/", "evil.example:8080")).status == 421);
    CHECK(check(s, hosts, get("/api/overview", "127.0.0.1:9999")).status == 421);
    CHECK(check(s, hosts, get("/api/overview", "")).status == 421);
    // Off loopback only the address listened on, and the names configured.
    const auto wide = default_hosts("10.0.0.5", 8080);
    CHECK(wide == std::vector<std::string>{"10.0.0.5:8080"});
    CHECK(default_hosts("::1", 80).front() == "[::1]:80");
}

TEST_CASE("a change needs the token in its header; read-only and no token refuse every change") {
    guard_settings s;
    s.token = "s3cret";
    const auto hosts = default_hosts("127.0.0.1", 8080);
    auto post = get("/api/dead/replay");
    post.method = "POST";
    CHECK(check(s, hosts, post).status == 401);
    post.token = "wrong";
    CHECK(check(s, hosts, post).status == 401);
    post.token = "s3cre";
    CHECK(check(s, hosts, post).status == 401);
    post.token = "s3cret";
    CHECK(check(s, hosts, post).ok());
    s.read_only = true;
    CHECK(check(s, hosts, post).status == 403);
    s.read_only = false;
    s.token.clear();
    CHECK(check(s, hosts, post).status == 403);  // no token configured: nothing changes
    auto del = get("/api/dead/replay");
    del.method = "DELETE";
    CHECK(check(s, hosts, del).status == 405);
}

TEST_CASE("off loopback every API read needs the token; the page itself does not") {
    guard_settings s;
    s.token = "s3cret";
    const auto hosts = default_hosts("10.0.0.5", 8080);
    auto r = get("/api/dead", "10.0.0.5:8080");
    r.peer_loopback = false;
    CHECK(check(s, hosts, r).status == 401);
    r.token = "s3cret";
    CHECK(check(s, hosts, r).ok());
    auto page = get("/", "10.0.0.5:8080");
    page.peer_loopback = false;
    CHECK(check(s, hosts, page).ok());
}

TEST_CASE("tokens compare whole, and loopback addresses are told apart") {
    CHECK(same_token("abc", "abc"));
    CHECK_FALSE(same_token("abc", "abd"));
    CHECK_FALSE(same_token("abc", "abcd"));
    CHECK_FALSE(same_token("", "a"));
    CHECK(is_loopback_address("127.0.0.1"));
    CHECK(is_loopback_address("127.8.9.1"));
    CHECK(is_loopback_address("::1"));
    CHECK(is_loopback_address("::ffff:127.0.0.1"));
    CHECK_FALSE(is_loopback_address("10.0.0.1"));
    CHECK_FALSE(is_loopback_address("::ffff:10.0.0.1"));
}
