#include <doctest/doctest.h>

#include "outq/reply_parser.hpp"

using namespace outq;

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

TEST_CASE("replies on a subscribed connection: message, confirmation, pong, or other") {
    redis::reply_parser p;
    const std::string wire =
        "*3\r\n$9\r\nsubscribe\r\n$4\r\nchan\r\n:1\r\n"
        "*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nv1\tok\r\n"
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        "-NOPERM no permissions to access the channel\r\n"
        "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$4\r\nchan\r\n$1\r\nx\r\n"
        "*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n:5\r\n";
    p.feed(wire.data(), wire.size());
    std::vector<redis::value> got;
    redis::value v;
    while (p.next(v) == redis::reply_parser::status::ok) got.push_back(v);
    REQUIRE(got.size() == 6);
    using kind = redis::pubsub_reply::kind;
    const auto sub = redis::classify_pubsub(got[0]);
    CHECK(sub.what == kind::subscribe);
    CHECK(sub.channel == "chan");
    const auto msg = redis::classify_pubsub(got[1]);
    CHECK(msg.what == kind::message);
    CHECK(msg.channel == "chan");
    CHECK(msg.payload == "v1\tok");
    CHECK(redis::classify_pubsub(got[2]).what == kind::pong);
    CHECK(redis::classify_pubsub(got[3]).what == kind::other);  // an error
    CHECK(redis::classify_pubsub(got[4]).what == kind::other);  // a pattern message: never subscribed to
    CHECK(redis::classify_pubsub(got[5]).what == kind::other);  // a payload that is not a string
    CHECK(redis::classify_pubsub(redis::value{}).what == kind::other);
}

TEST_CASE("an array header claiming two billion elements costs nothing until they arrive") {
    // Found by the fuzz target redis_reply: the elements were allocated from the header.
    redis::reply_parser p;
    const std::string head = "*2000000000\r\n:1\r\n*3\r\n$1\r\na\r\n";
    p.feed(head.data(), head.size());
    redis::value v;
    CHECK(p.next(v) == redis::reply_parser::status::need_more);
    // And a whole nested reply still lands in place, element by element.
    redis::reply_parser q;
    const std::string wire = "*3\r\n*2\r\n:1\r\n*1\r\n$2\r\nxy\r\n$1\r\nb\r\n*0\r\n";
    q.feed(wire.data(), wire.size());
    REQUIRE(q.next(v) == redis::reply_parser::status::ok);
    REQUIRE(v.elements.size() == 3);
    CHECK(v.elements[0].elements[0].integer == 1);
    CHECK(v.elements[0].elements[1].elements[0].str == "xy");
    CHECK(v.elements[1].str == "b");
    CHECK(v.elements[2].is_array());
    CHECK(v.elements[2].elements.empty());
}
