#include <doctest/doctest.h>

#include "outq/redis_connection.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "fakes/scripted_redis.hpp"

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

// --- pub/sub, against a scripted peer ----------------------------------------

namespace {

using test::bulk;

std::string subscribed(std::string_view channel) {
    return "*3\r\n" + bulk("subscribe") + bulk(channel) + ":1\r\n";
}
std::string message(std::string_view channel, std::string_view payload) {
    return "*3\r\n" + bulk("message") + bulk(channel) + bulk(payload);
}
const std::string pong = "*2\r\n" + bulk("pong") + bulk("");

struct pubsub_rig {
    boost::asio::io_context io;
    test::scripted_redis peer{io};
    redis::connection conn{io.get_executor(), peer.options(std::chrono::milliseconds(300))};
    std::optional<redis::exec_result> subscribe(std::vector<std::string> channels = {"ch"}) {
        return test::run(io, conn.subscribe(channels));
    }
    std::optional<redis::push_result> next(std::chrono::milliseconds wait) {
        return test::run(io, conn.next_message(wait));
    }
};

}  // namespace

TEST_CASE("subscribe waits for its confirmation; messages then come one at a time, in order") {
    pubsub_rig r;
    r.peer.answer("SUBSCRIBE", subscribed("ch") + message("ch", "one") + message("ch", "two"));
    auto s = r.subscribe();
    REQUIRE(s);
    CHECK(s->ok());
    CHECK(s->replies.size() == 1);
    CHECK(r.conn.subscribed());
    CHECK(r.peer.received("SUBSCRIBE").at(0) == test::scripted_redis::args{"SUBSCRIBE", "ch"});
    auto one = r.next(std::chrono::milliseconds(1000));
    REQUIRE(one);
    REQUIRE(one->message);
    CHECK(one->message->channel == "ch");
    CHECK(one->message->payload == "one");
    auto two = r.next(std::chrono::milliseconds(1000));
    REQUIRE(two);
    REQUIRE(two->message);
    CHECK(two->message->payload == "two");
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("a quiet wait is no failure: no message, the connection kept, and a PING proves it alive") {
    pubsub_rig r;
    r.peer.answer("SUBSCRIBE", subscribed("ch"));
    REQUIRE(r.subscribe()->ok());
    const auto t0 = std::chrono::steady_clock::now();
    auto quiet = r.next(std::chrono::milliseconds(50));
    REQUIRE(quiet);
    CHECK(quiet->ok());
    CHECK_FALSE(quiet->message);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1000));
    CHECK(r.conn.subscribed());
    // A message that comes before the pong is kept for the next read.
    r.peer.answer("PING", message("ch", "early") + pong);
    auto ping = test::run(r.io, r.conn.ping_subscribed());
    REQUIRE(ping);
    CHECK(ping->ok());
    auto early = r.next(std::chrono::milliseconds(50));
    REQUIRE(early);
    REQUIRE(early->message);
    CHECK(early->message->payload == "early");
    CHECK(r.peer.connections() == 1);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("a lost subscriber connection, a missing pong or an unexpected reply closes it; subscribe dials again") {
    pubsub_rig r;
    r.peer.answer("SUBSCRIBE", subscribed("ch")).hang_on("PING");
    REQUIRE(r.subscribe()->ok());
    auto ping = test::run(r.io, r.conn.ping_subscribed());
    REQUIRE(ping);
    CHECK_FALSE(ping->ok());  // the command timeout passed without a pong
    CHECK_FALSE(r.conn.subscribed());
    auto after = r.next(std::chrono::milliseconds(50));
    REQUIRE(after);
    CHECK_FALSE(after->ok());
    r.peer.answer("SUBSCRIBE", "-NOPERM this user has no permissions to access the 'ch' channel\r\n");
    auto refused = r.subscribe();
    REQUIRE(refused);
    CHECK_FALSE(refused->ok());
    CHECK(refused->error.find("NOPERM") != std::string::npos);
    CHECK_FALSE(r.conn.subscribed());
    r.peer.answer("SUBSCRIBE", subscribed("ch")).close_on("PING");
    REQUIRE(r.subscribe()->ok());
    CHECK_FALSE(test::run(r.io, r.conn.ping_subscribed())->ok());
    CHECK(r.peer.connections() == 3);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("interrupt() ends a pending read at once") {
    pubsub_rig r;
    r.peer.answer("SUBSCRIBE", subscribed("ch"));
    REQUIRE(r.subscribe()->ok());
    boost::asio::steady_timer later(r.io);
    later.expires_after(std::chrono::milliseconds(30));
    later.async_wait([&](boost::system::error_code) { r.conn.interrupt(); });
    const auto t0 = std::chrono::steady_clock::now();
    auto got = r.next(std::chrono::milliseconds(4000));
    REQUIRE(got);
    CHECK_FALSE(got->ok());
    CHECK(got->ec == boost::asio::error::operation_aborted);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1000));
    CHECK_FALSE(r.conn.subscribed());
}

// --- failover: a node that is not the primary, and Sentinel ---------------------

#include "fakes/redis_values.hpp"

TEST_CASE("replies that say the node is not the primary, and Sentinel's answers") {
    using namespace test_values;
    CHECK(redis::failover::says_not_primary(error("READONLY You can't write against a read only replica.")));
    CHECK(redis::failover::says_not_primary(error("MASTERDOWN Link with MASTER is down")));
    CHECK(redis::failover::says_not_primary(
        error("UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)")));
    CHECK_FALSE(redis::failover::says_not_primary(error("LOADING Redis is loading the dataset in memory")));
    CHECK_FALSE(redis::failover::says_not_primary(str("READONLY")));  // a value, not an error

    auto at = redis::failover::parse_master_address(arr({str("10.0.0.7"), str("6380")}));
    REQUIRE(at);
    CHECK(at->first == "10.0.0.7");
    CHECK(at->second == 6380);
    CHECK_FALSE(redis::failover::parse_master_address(nil));  // an unknown master's name
    CHECK_FALSE(redis::failover::parse_master_address(arr({str("h"), str("0")})));
    CHECK_FALSE(redis::failover::parse_master_address(arr({str("h"), str("70000")})));
    CHECK_FALSE(redis::failover::parse_master_address(arr({str("h")})));
    CHECK_FALSE(redis::failover::parse_master_address(error("ERR unknown command")));

    CHECK(redis::failover::parse_role(arr({str("master"), num(0), arr({})})) == "master");
    CHECK(redis::failover::parse_role(arr({str("slave"), str("h"), num(1)})) == "slave");
    CHECK(redis::failover::parse_role(error("NOPERM")).empty());
}

TEST_CASE("a READONLY reply closes the connection: the next call dials again") {
    boost::asio::io_context io;
    test::scripted_redis peer{io};
    peer.answer("SET", "-READONLY You can't write against a read only replica.\r\n").answer("SET", "+OK\r\n");
    redis::connection conn{io.get_executor(), peer.options(std::chrono::milliseconds(300))};
    auto first = test::run(io, conn.exec(redis::command("SET").arg("k").arg("v")));
    REQUIRE(first);
    REQUIRE(first->ok());
    CHECK(first->replies.at(0).is_error());  // returned as it is: the caller waits it out
    CHECK_FALSE(conn.is_connected());
    CHECK(conn.not_primary_replies() == 1);
    auto second = test::run(io, conn.exec(redis::command("SET").arg("k").arg("v")));
    REQUIRE(second);
    CHECK(second->replies.at(0).str == "OK");
    CHECK(peer.connections() == 2);
    CHECK(peer.unexpected().empty());
}

namespace {

std::string master_address(std::uint16_t port) {
    return "*2\r\n" + test::bulk("127.0.0.1") + test::bulk(std::to_string(port));
}

}  // namespace

TEST_CASE("with Sentinel, each dial asks the sentinels in turn and takes only a primary") {
    boost::asio::io_context io;
    test::scripted_redis down{io};  // a sentinel that does not know the name
    test::scripted_redis sentinel{io};
    test::scripted_redis data{io};
    down.answer("SENTINEL GET-MASTER-ADDR-BY-NAME", "*-1\r\n").answer("SENTINEL GET-MASTER-ADDR-BY-NAME", "*-1\r\n");
    sentinel.answer("SENTINEL GET-MASTER-ADDR-BY-NAME", master_address(data.port()))
        .answer("SENTINEL GET-MASTER-ADDR-BY-NAME", master_address(data.port()));
    data.answer("ROLE", "*3\r\n" + test::bulk("master") + ":0\r\n*0\r\n")
        .answer("PING", "+PONG\r\n")
        .answer("ROLE", "*3\r\n" + test::bulk("slave") + test::bulk("127.0.0.1") + ":1\r\n");
    auto options = data.options(std::chrono::milliseconds(300));
    options.where.port = 1;  // not used: Sentinel names the node
    options.sentinel.master = "mymaster";
    options.sentinel.nodes = {down.options({}).where, sentinel.options({}).where};
    redis::connection conn{io.get_executor(), options};
    auto ping = test::run(io, conn.exec(redis::command("PING")));
    REQUIRE(ping);
    REQUIRE(ping->ok());
    CHECK(ping->replies.at(0).str == "PONG");
    CHECK(conn.peer() == "127.0.0.1:" + std::to_string(data.port()));
    CHECK(sentinel.received("SENTINEL").at(0) ==
          test::scripted_redis::args{"SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"});
    // Stale news (the named node is a replica now): no connection, and the error says why.
    conn.close();
    auto stale = test::run(io, conn.exec(redis::command("PING")));
    REQUIRE(stale);
    CHECK_FALSE(stale->ok());
    CHECK(stale->error.find("not one (ROLE: slave)") != std::string::npos);
    CHECK(down.unexpected().empty());
    CHECK(sentinel.unexpected().empty());
    CHECK(data.unexpected().empty());
}

TEST_CASE("a +switch-master message names the new primary of its master only") {
    using redis::failover::parse_switch_master;
    CHECK(parse_switch_master("mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster") == "127.0.0.1:6380");
    CHECK_FALSE(parse_switch_master("other 127.0.0.1 6379 127.0.0.1 6380", "mymaster"));
    CHECK_FALSE(parse_switch_master("mymaster 127.0.0.1 6379 127.0.0.1", "mymaster"));
    CHECK_FALSE(parse_switch_master("mymaster 127.0.0.1 6379 127.0.0.1 63a0", "mymaster"));
    CHECK_FALSE(parse_switch_master("", "mymaster"));
    CHECK_FALSE(parse_switch_master("mymaster  6379 127.0.0.1 6380 x", "mymaster"));
}
