#include <doctest/doctest.h>

#include "outq/redis_connection.hpp"
#include "outq/reply_parser.hpp"
#include "outq/resp.hpp"

#include <hiredis/hiredis.h>

#include <random>

using namespace outq;

TEST_CASE("commands are encoded as RESP arrays of bulk strings") {
    std::string out;
    redis::command("SET").arg("k").arg("v a\r\nl").append_to(out);
    CHECK(out == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\nv a\r\nl\r\n");
    out.clear();
    redis::command("EXPIRE").arg("k").arg(60LL).append_to(out);
    CHECK(out == "*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n60\r\n");
    out.clear();
    redis::command("SET").arg("k").arg(std::string_view("\0x", 2)).append_to(out);
    CHECK(out == std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\0x\r\n", 28));  // binary-safe
}

TEST_CASE("replies split across reads are reassembled") {
    redis::reply_parser p;
    const std::string wire = "+OK\r\n:42\r\n$5\r\nhello\r\n$-1\r\n-ERR bad thing\r\n*2\r\n$1\r\na\r\n*1\r\n:7\r\n";
    std::vector<redis::value> got;
    for (char c : wire) {  // one byte at a time: the worst fragmentation
        p.feed(&c, 1);
        redis::value v;
        while (p.next(v) == redis::reply_parser::status::ok) got.push_back(v);
    }
    REQUIRE(got.size() == 6);
    CHECK(got[0].type == redis::value::kind::status);
    CHECK(got[0].str == "OK");
    CHECK(got[1].integer == 42);
    CHECK(got[2].str == "hello");
    CHECK(got[3].is_nil());
    CHECK(got[4].is_error());
    CHECK(got[4].error_is("ERR"));
    CHECK_FALSE(got[4].error_is("ER"));
    REQUIRE(got[5].is_array());
    CHECK(got[5].elements[0].str == "a");
    CHECK(got[5].elements[1].elements[0].integer == 7);
}

TEST_CASE("garbage from the network is a protocol error, not a crash") {
    redis::reply_parser p;
    const std::string wire = "?garbage\r\n";
    p.feed(wire.data(), wire.size());
    redis::value v;
    CHECK(p.next(v) == redis::reply_parser::status::protocol_error);
    p.reset();
    p.feed("+OK\r\n", 5);
    CHECK(p.next(v) == redis::reply_parser::status::ok);
}

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

TEST_CASE("command encoding matches hiredis' redisFormatCommandArgv byte for byte") {
    // hiredis is the reference encoder; outq encodes the same bytes without sprintf.
    std::mt19937 rng(12345);
    for (int round = 0; round < 500; ++round) {
        const int argc = 1 + static_cast<int>(rng() % 40);
        redis::command c;
        std::vector<std::string> args;
        for (int i = 0; i < argc; ++i) {
            std::string a(rng() % (i % 7 == 0 ? 2000 : 30), '\0');
            for (auto& ch : a) ch = static_cast<char>(rng() % 256);
            args.push_back(a);
            if (i % 5 == 4) {
                const long long n = static_cast<long long>(rng()) - (1LL << 31);
                args.back() = std::to_string(n);
                c.arg(n);
            } else {
                c.arg(a);
            }
        }
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        char* expected = nullptr;
        const int n = redisFormatCommandArgv(&expected, argc, argv.data(), lens.data());
        REQUIRE(n > 0);
        std::string out;
        c.append_to(out);
        CHECK(out == std::string(expected, static_cast<std::size_t>(n)));
        redisFreeCommand(expected);
        CHECK(c.args() == args);
        CHECK(c.size() == args.size());
    }
}

TEST_CASE("args_of appends another command's arguments") {
    redis::command fields;
    fields.arg("a").arg("1");
    redis::command c("HSET");
    c.arg("k").args_of(fields).arg("b");
    CHECK(c.args() == std::vector<std::string>{"HSET", "k", "a", "1", "b"});
    CHECK(c.size() == 5);
}
