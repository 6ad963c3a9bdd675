// Redis Cluster decisions fed replies captured from a real cluster.
#include "outq/redis_cluster.hpp"

#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"
#include "outq/reply_parser.hpp"

using namespace outq;
using namespace outq::redis::cluster;
using namespace outq::test_values;

namespace {

// Captured from redis-server 7.0.15: a 3-primary cluster, one replica (loading) of the first.
const std::string shards_reply =
    "*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "5e83bf3116172a3a96b22fe0be3c8e53f014e0f2\r\n$4\r\nport\r\n:27101\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n"
    ":0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "49468a16730bec406dd0d0f97d20bc983c17e214\r\n$4\r\nport\r\n:27104\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n"
    ":0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n"
    "*1\r\n*14\r\n$2\r\nid\r\n$40\r\n3106ac2ec0fc01cf4ac5e628556193990b279952\r\n$4\r\nport\r\n:27102\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    "$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*4\r\n$5\r\nslots\r\n*2\r\n"
    ":10923\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "73b5e2b96280715495bc5a108bed5f21927e6c7a\r\n$4\r\nport\r\n:27103\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n"
    ":0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

const std::string slots_reply =
    "*3\r\n*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:27101\r\n$40\r\n"
    "5e83bf3116172a3a96b22fe0be3c8e53f014e0f2\r\n*0\r\n*3\r\n:5461\r\n:10922\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":27102\r\n$40\r\n3106ac2ec0fc01cf4ac5e628556193990b279952\r\n*0\r\n*3\r\n:10923\r\n:16383\r\n*4\r\n"
    "$9\r\n127.0.0.1\r\n:27103\r\n$40\r\n73b5e2b96280715495bc5a108bed5f21927e6c7a\r\n*0\r\n";

redis::value parse(const std::string& wire) {
    redis::reply_parser p;
    p.feed(wire.data(), wire.size());
    redis::value v;
    REQUIRE(p.next(v) == redis::reply_parser::status::ok);
    return v;
}

std::vector<std::string> words(std::initializer_list<const char*> w) {
    return {w.begin(), w.end()};
}

}  // namespace

TEST_CASE("the slot of a key is CRC16 (XMODEM) of its hash tag, as Redis computes it") {
    CHECK(crc16("123456789") == 0x31C3);  // the cluster spec's check value
    // Slots as `CLUSTER KEYSLOT` answered on redis-server 7.0.15.
    CHECK(key_slot("foo") == 12182);
    CHECK(key_slot("outq:{q0}:jobs") == 3387);
    CHECK(key_slot("{user1000}.following") == key_slot("user1000"));
    CHECK(key_slot("foo{}{bar}") == key_slot("foo{}{bar}"));  // an empty tag: the whole key
    CHECK(key_slot("foo{}{bar}") != key_slot("bar"));
    CHECK(key_slot("foo{{bar}}zap") == key_slot("{bar"));  // the first { and the first } after it
    CHECK(key_slot("foo{bar}{zap}") == key_slot("bar"));
    CHECK(key_slot("") == 0);
    // Every key of one queue shares its tag; an account's keys have their own.
    CHECK(key_slot("outq:{default}:jobs") == key_slot("outq:{default}:result:order-42"));
    CHECK(key_slot("outq:{default@mews/a}:leases") == key_slot("default@mews/a"));
}

TEST_CASE("the keys of each command outq sends, by position") {
    CHECK(command_keys(words({"GET", "k"})) == words({"k"}));
    CHECK(command_keys(words({"EVALSHA", "abc", "2", "k1", "k2", "a1"})) == words({"k1", "k2"}));
    CHECK(command_keys(words({"EVAL", "return 1", "0", "a1"})).empty());
    CHECK(command_keys(words({"EVAL", "return 1", "x"})).empty());  // a bad count: no keys claimed
    CHECK(command_keys(words({"XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "BLOCK", "5", "STREAMS", "s1", ">"})) ==
          words({"s1"}));
    CHECK(command_keys(words({"XREAD", "STREAMS", "a", "b", "0", "0"})) == words({"a", "b"}));
    CHECK(command_keys(words({"XINFO", "GROUPS", "s"})) == words({"s"}));
    CHECK(command_keys(words({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"})) == words({"s"}));
    CHECK(command_keys(words({"MSETNX", "a", "1", "b", "2"})) == words({"a", "b"}));
    CHECK(command_keys(words({"DEL", "a", "b"})) == words({"a", "b"}));
    for (auto keyless : {"PING", "INFO", "SCAN", "PUBLISH", "MULTI", "EXEC", "ROLE", "CLIENT"})
        CHECK(command_keys({keyless, "x", "y"}).empty());
    CHECK(command_keys(words({"xack", "s", "g", "1-0"})) == words({"s"}));  // names in any case
    CHECK_FALSE(command_slot(words({"PING"})).slot);
    CHECK(command_slot(words({"MSETNX", "outq:{q}:result:a", "1", "outq:{q}:result:b", "2"})).slot == key_slot("q"));
    auto cross = command_slot(words({"MSETNX", "a", "1", "b", "2"}));
    CHECK(cross.cross);
}

TEST_CASE("CLUSTER SHARDS of a real cluster: three primaries, the slot ranges, a replica that is loading") {
    auto r = parse_shards(parse(shards_reply), "10.0.0.1");
    REQUIRE(r.map);
    const auto& m = *r.map;
    REQUIRE(m.primaries().size() == 3);
    CHECK(m.served() == slot_count);
    CHECK(m.owner(0)->port == 27101);
    CHECK(m.owner(5460)->port == 27101);
    CHECK(m.owner(5461)->port == 27102);
    CHECK(m.owner(16383)->port == 27103);
    CHECK(m.owner(0)->host == "127.0.0.1");
    CHECK(m.owner(0)->id == "5e83bf3116172a3a96b22fe0be3c8e53f014e0f2");
    REQUIRE(m.replicas().size() == 1);
    CHECK(m.replicas()[0].port == 27104);
    CHECK_FALSE(m.replicas()[0].primary);
    CHECK_FALSE(m.replicas()[0].healthy);  // health: loading
}

TEST_CASE("CLUSTER SLOTS of the same cluster gives the same map") {
    auto shards = parse_shards(parse(shards_reply), "h");
    auto slots = parse_slots(parse(slots_reply), "h");
    REQUIRE(shards.map);
    REQUIRE(slots.map);
    for (int s = 0; s < slot_count; ++s) {
        REQUIRE(slots.map->owner(s));
        REQUIRE(*slots.map->owner(s) == *shards.map->owner(s));
    }
    CHECK(slots.map->owner(7000)->id == "3106ac2ec0fc01cf4ac5e628556193990b279952");
}

TEST_CASE("a node whose address the reply leaves empty or '?' is the address the client reached") {
    auto reply = arr({arr({num(0), num(16383), arr({str(""), num(7000), str("id0")})})});
    auto r = parse_slots(reply, "10.1.2.3");
    REQUIRE(r.map);
    CHECK(r.map->owner(9)->host == "10.1.2.3");
    auto q = parse_slots(arr({arr({num(0), num(16383), arr({str("?"), num(7000)})})}), "h");
    REQUIRE(q.map);
    CHECK(q.map->owner(9)->host == "h");
}

TEST_CASE("a map reply of another shape is refused, saying what was wrong, never half a map") {
    CHECK(parse_shards(str("x"), "h").error == "CLUSTER SHARDS: not an array");
    CHECK(parse_shards(error("ERR This instance has cluster support disabled"), "h").error ==
          "ERR This instance has cluster support disabled");
    CHECK(parse_slots(arr({arr({num(0), num(16384), arr({str("a"), num(1)})})}), "h").error ==
          "CLUSTER SLOTS: a range out of bounds or a node without host and port");
    CHECK_FALSE(parse_slots(arr({arr({num(5), num(4), arr({str("a"), num(1)})})}), "h").map);
    CHECK_FALSE(parse_slots(arr({arr({num(0), num(9), arr({str("a"), num(70000)})})}), "h").map);
    CHECK_FALSE(parse_slots(arr({arr({num(0), num(9)})}), "h").map);
    auto shard_without_primary =
        arr({arr({str("slots"), arr({num(0), num(9)}), str("nodes"),
                  arr({arr({str("port"), num(1), str("ip"), str("a"), str("role"), str("replica")})})})});
    CHECK(parse_shards(shard_without_primary, "h").error == "CLUSTER SHARDS: a shard that serves slots has no primary");
    auto odd_map = arr({arr({str("slots"), arr({num(0), num(9)}), str("nodes")})});
    CHECK_FALSE(parse_shards(odd_map, "h").map);
    // A partial map is a map: slots nobody serves say so (CLUSTERDOWN until fixed).
    auto partial = parse_slots(arr({arr({num(0), num(99), arr({str("a"), num(1)})})}), "h");
    REQUIRE(partial.map);
    CHECK(partial.map->served() == 100);
    CHECK_FALSE(partial.map->owner(100));
}

TEST_CASE("MOVED and ASK name the slot and the node; TRYAGAIN, CLUSTERDOWN and LOADING ask to wait") {
    // Captured: a GET of a key another primary serves, and one of a slot being migrated.
    auto moved = read_redirect(parse("-MOVED 7450 127.0.0.1:27102\r\n"), "h");
    CHECK(moved.what == redirect::kind::moved);
    CHECK(moved.slot == 7450);
    CHECK(moved.to.host == "127.0.0.1");
    CHECK(moved.to.port == 27102);
    auto ask = read_redirect(parse("-ASK 3387 127.0.0.1:27102\r\n"), "h");
    CHECK(ask.what == redirect::kind::ask);
    CHECK(ask.slot == 3387);
    auto v6 = read_redirect(error("MOVED 1 ::1:7000"), "h");
    CHECK(v6.to.host == "::1");
    CHECK(v6.to.port == 7000);
    CHECK(read_redirect(error("MOVED 1 :7000"), "10.0.0.9").to.host == "10.0.0.9");
    CHECK(read_redirect(error("MOVED 1 ?:7000"), "10.0.0.9").to.host == "10.0.0.9");
    for (auto wait : {"TRYAGAIN Multiple keys request during rehashing of slot", "CLUSTERDOWN The cluster is down",
                      "LOADING Redis is loading the dataset in memory"})
        CHECK(read_redirect(error(wait), "h").what == redirect::kind::try_again);
    for (auto not_one : {"MOVED", "MOVED x 1:2", "MOVED 16384 a:1", "MOVED 1 a", "MOVED 1 a:0", "ASK 1",
                         "ERR unknown command", "MOVEDX 1 a:1"})
        CHECK(read_redirect(error(not_one), "h").what == redirect::kind::none);
    CHECK(read_redirect(str("MOVED 1 a:1"), "h").what == redirect::kind::none);  // not an error reply
}

TEST_CASE("a MOVED slot is served by the node it names until the map is read again") {
    auto m = *parse_slots(parse(slots_reply), "h").map;
    node n{"127.0.0.1", 27199, "", true, true};
    m.move(3387, n);
    CHECK(m.owner(3387)->port == 27199);
    CHECK(m.owner(3386)->port == 27101);
    CHECK(m.primaries().size() == 4);
    m.move(3388, n);
    CHECK(m.primaries().size() == 4);  // the same node, not added twice
}

TEST_CASE("a pipeline is split by the primary of each command's slot, keeping order within each") {
    auto m = *parse_slots(parse(slots_reply), "h").map;
    const int q = m.owner_index(key_slot("q0"));            // 27101
    const int a = m.owner_index(key_slot("q0@webhook/a"));  // an account's keys
    REQUIRE(q != a);
    std::vector<std::vector<std::string>> cmds{
        words({"MSETNX", "outq:{q0}:result:x", "m", "outq:{q0}:result:y", "m"}),
        words({"PTTL", "outq:{q0@webhook/a}:paused"}),
        words({"PING"}),
        words({"EVALSHA", "s", "1", "outq:{q0}:jobs", "arg"}),
        words({"MSETNX", "a", "1", "b", "2"}),
        words({"MULTI"}),
        words({"XACK", "outq:{q0}:jobs", "g", "1-0"}),
        words({"XDEL", "outq:{q0}:jobs", "1-0"}),
        words({"EXEC"}),
    };
    auto plan = plan_pipeline(cmds, m);
    REQUIRE(plan.groups.size() == 2);
    CHECK(plan.groups[0].primary == q);
    CHECK(plan.groups[0].commands == std::vector<std::size_t>{0, 2, 3, 5, 6, 7, 8});  // PING rides along
    CHECK(plan.groups[1].primary == a);
    CHECK(plan.groups[1].commands == std::vector<std::size_t>{1});
    REQUIRE(plan.refused.size() == 1);
    CHECK(plan.refused[0].command == 4);
    CHECK(plan.refused[0].reason == "keys that hash to different slots");
}

TEST_CASE("a transaction across slots, a slot nobody serves and keyless commands with no map are refused") {
    auto m = *parse_slots(arr({arr({num(0), num(99), arr({str("a"), num(1)})})}), "h").map;
    std::vector<std::vector<std::string>> cmds{words({"MULTI"}), words({"SET", "{q0}x", "1"}),
                                               words({"SET", "{q1}y", "1"}), words({"EXEC"}), words({"GET", "foo"})};
    auto plan = plan_pipeline(cmds, m);
    CHECK(plan.groups.empty());
    REQUIRE(plan.refused.size() == 5);
    CHECK(plan.refused[0].reason == "a transaction whose keys hash to different slots");
    CHECK(plan.refused[4].reason == "slot 12182 is served by no primary");
    auto alone = plan_pipeline({words({"PING"})}, slot_map{});
    REQUIRE(alone.refused.size() == 1);
    CHECK(alone.refused[0].reason == "no primary known");
    auto scan = plan_pipeline({words({"SCAN", "0", "MATCH", "outq:{q@*", "COUNT", "1000"})}, m);
    REQUIRE(scan.refused.size() == 1);
    CHECK(scan.refused[0].reason == "SCAN reads the keys of one node; on a cluster it would miss the others'");
    auto keyless = plan_pipeline({words({"PING"}), words({"INFO"})}, m);
    REQUIRE(keyless.groups.size() == 1);
    CHECK(keyless.groups[0].commands == std::vector<std::size_t>{0, 1});
}

TEST_CASE("SCAN over a cluster walks the primaries in turn, its cursor naming the primary") {
    auto start = read_scan_cursor("0");
    REQUIRE(start);
    CHECK(start->primary == 0);
    CHECK(start->cursor == "0");
    CHECK(next_scan_cursor(0, "17", 3) == "0:17");
    CHECK(next_scan_cursor(0, "0", 3) == "1:0");
    CHECK(next_scan_cursor(2, "0", 3) == "0");  // the last primary done: the walk is over
    auto mid = read_scan_cursor("1:17");
    REQUIRE(mid);
    CHECK(mid->primary == 1);
    CHECK(mid->cursor == "17");
    for (auto bad : {"17", "x:1", "1:x", "-1:0", ":"}) CHECK_FALSE(read_scan_cursor(bad));
}

TEST_CASE("each command's transaction span: its MULTI … EXEC block, or itself") {
    using span = std::pair<std::size_t, std::size_t>;
    auto spans = transaction_spans({words({"GET", "a"}), words({"multi"}), words({"SET", "b", "1"}), words({"EXEC"}),
                                    words({"PING"}), words({"MULTI"}), words({"SET", "c", "1"})});
    CHECK(spans == std::vector<span>{{0, 0}, {1, 3}, {1, 3}, {1, 3}, {4, 4}, {5, 6}, {5, 6}});  // the last unterminated
    CHECK(is_command(words({"scan", "0"}), "SCAN"));
    CHECK_FALSE(is_command({}, "SCAN"));
}
