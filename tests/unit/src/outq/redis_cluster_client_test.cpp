// The cluster routing of a connection, against scripted nodes: the map read
// first, then MOVED, ASK and TRYAGAIN followed, one reply per command in order.
#include "outq/redis_cluster_client.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include "fakes/scripted_redis.hpp"

using namespace outq;
using test::bulk;

namespace {

// A CLUSTER SHARDS reply: one shard per (first slot, last slot, port).
std::string shards(std::vector<std::tuple<int, int, std::uint16_t>> list) {
    std::string out = "*" + std::to_string(list.size()) + "\r\n";
    for (auto [first, last, port] : list) {
        out += "*4\r\n" + bulk("slots") + "*2\r\n:" + std::to_string(first) + "\r\n:" + std::to_string(last) + "\r\n";
        out += bulk("nodes") + "*1\r\n*8\r\n" + bulk("port") + ":" + std::to_string(port) + "\r\n" + bulk("ip") +
               bulk("127.0.0.1") + bulk("role") + bulk("master") + bulk("health") + bulk("online");
    }
    return out;
}

struct two_nodes {
    boost::asio::io_context io;
    test::scripted_redis a{io}, b{io};
    redis::connection conn{io.get_executor(), options()};
    redis::connection_options options() {
        auto o = a.options(std::chrono::milliseconds(500));
        o.cluster = {a.options({}).where};  // one seed is enough
        return o;
    }
    std::optional<redis::exec_result> exec(std::vector<redis::command> cmds) { return test::run(io, conn.exec(cmds)); }
};

const int slot_k = redis::cluster::key_slot("k");  // 7629
const int slot_x = redis::cluster::key_slot("x");  // 16287

}  // namespace

TEST_CASE("a cluster connection reads the map from its seed and sends each command to its slot's primary") {
    two_nodes n;
    n.a.answer("CLUSTER SHARDS", shards({{0, 9999, n.a.port()}, {10000, 16383, n.b.port()}}))
        .answer("GET", bulk("on a"));
    n.b.answer("GET", bulk("on b"));
    auto r = n.exec({redis::command("GET").arg("x"), redis::command("GET").arg("k")});
    REQUIRE(r);
    REQUIRE(r->ok());
    REQUIRE(r->replies.size() == 2);
    CHECK(r->replies[0].str == "on b");  // x: slot 16287
    CHECK(r->replies[1].str == "on a");  // k: slot 7629
    REQUIRE(n.conn.cluster());
    CHECK(n.conn.cluster()->moved() == 0);
    CHECK(n.a.unexpected().empty());
    CHECK(n.b.unexpected().empty());
}

TEST_CASE("MOVED sends the command to the node named and reads the map again") {
    two_nodes n;
    const std::string moved = "-MOVED " + std::to_string(slot_k) + " 127.0.0.1:" + std::to_string(n.b.port()) + "\r\n";
    n.a.answer("CLUSTER SHARDS", shards({{0, 16383, n.a.port()}}))
        .answer("GET", moved)
        .answer("CLUSTER SHARDS", shards({{0, 16383, n.b.port()}}));
    n.b.answer("GET", bulk("v"));
    auto r = n.exec({redis::command("GET").arg("k")});
    REQUIRE(r);
    REQUIRE(r->ok());
    CHECK(r->replies.at(0).str == "v");
    CHECK(n.conn.cluster()->moved() == 1);
    CHECK(n.a.unexpected().empty());
    CHECK(n.b.unexpected().empty());
    CHECK(n.a.steps_left() == 0);
}

TEST_CASE("ASK sends ASKING and the command to the node named, once, and keeps the map") {
    two_nodes n;
    const std::string ask = "-ASK " + std::to_string(slot_k) + " 127.0.0.1:" + std::to_string(n.b.port()) + "\r\n";
    n.a.answer("CLUSTER SHARDS", shards({{0, 16383, n.a.port()}})).answer("GET", ask).answer("GET", bulk("back"));
    n.b.answer("ASKING", "+OK\r\n").answer("GET", bulk("migrated"));
    auto first = n.exec({redis::command("GET").arg("k")});
    REQUIRE(first);
    CHECK(first->replies.at(0).str == "migrated");
    auto second = n.exec({redis::command("GET").arg("k")});  // still a's slot
    REQUIRE(second);
    CHECK(second->replies.at(0).str == "back");
    CHECK(n.conn.cluster()->asked() == 1);
    CHECK(n.a.unexpected().empty());
    CHECK(n.b.unexpected().empty());
}

TEST_CASE("TRYAGAIN is sent again after a wait; a redirected transaction goes again whole") {
    two_nodes n;
    n.a.answer("CLUSTER SHARDS", shards({{0, 16383, n.a.port()}}))
        .answer("MSETNX", "-TRYAGAIN Multiple keys request during rehashing of slot\r\n")
        .answer("MSETNX", ":1\r\n")
        .answer("MULTI", "+OK\r\n")
        .answer("SET", "-TRYAGAIN Multiple keys request during rehashing of slot\r\n")
        .answer("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n")
        .answer("MULTI", "+OK\r\n")
        .answer("SET", "+QUEUED\r\n")
        .answer("EXEC", "*1\r\n+OK\r\n");
    auto r = n.exec({redis::command("MSETNX").arg("{k}a").arg("1").arg("{k}b").arg("2")});
    REQUIRE(r);
    CHECK(r->replies.at(0).integer == 1);
    auto t = n.exec({redis::command("MULTI"), redis::command("SET").arg("k").arg("1"), redis::command("EXEC")});
    REQUIRE(t);
    REQUIRE(t->replies.size() == 3);
    CHECK(t->replies[2].is_array());
    CHECK(n.conn.cluster()->waited() == 2);
    CHECK(n.a.unexpected().empty());
}

TEST_CASE("a command across slots is answered CROSSSLOT without being sent; SCAN walks every primary") {
    two_nodes n;
    n.a.answer("CLUSTER SHARDS", shards({{0, 9999, n.a.port()}, {10000, 16383, n.b.port()}}))
        .answer("SCAN", "*2\r\n" + bulk("0") + "*1\r\n" + bulk("k"));
    n.b.answer("SCAN", "*2\r\n" + bulk("5") + "*1\r\n" + bulk("x")).answer("SCAN", "*2\r\n" + bulk("0") + "*0\r\n");
    auto cross = n.exec({redis::command("MSETNX").arg("k").arg("1").arg("x").arg("2")});
    REQUIRE(cross);
    CHECK(cross->replies.at(0).error_is("CROSSSLOT"));
    std::vector<std::string> cursors;
    std::string cursor = "0";
    do {
        auto page = n.exec({redis::command("SCAN").arg(cursor).arg("MATCH").arg("*")});
        REQUIRE(page);
        REQUIRE(page->replies.at(0).is_array());
        cursor = page->replies[0].elements[0].str;
        cursors.push_back(cursor);
    } while (cursor != "0" && cursors.size() < 5);
    CHECK(cursors == std::vector<std::string>{"1:0", "1:5", "0"});
    CHECK(n.a.unexpected().empty());
    CHECK(n.b.unexpected().empty());
}
