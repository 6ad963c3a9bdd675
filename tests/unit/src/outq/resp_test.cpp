#include <doctest/doctest.h>

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
