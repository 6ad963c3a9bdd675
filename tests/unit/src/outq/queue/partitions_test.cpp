#include <doctest/doctest.h>

#include <set>

#include "outq/queue/partitions.hpp"
#include "outq/redis_cluster.hpp"

using namespace outq;

namespace {
redis::value str(std::string s) {
    redis::value v;
    v.type = redis::value::kind::string;
    v.str = std::move(s);
    return v;
}
redis::value integer(long long n) {
    redis::value v;
    v.type = redis::value::kind::integer;
    v.integer = n;
    return v;
}
}  // namespace

TEST_CASE("crc32 is zlib's") {
    // zlib.crc32(b"123456789") == 0xCBF43926, the check value of CRC-32/ISO-HDLC.
    CHECK(queue::crc32("123456789") == 0xCBF43926u);
    CHECK(queue::crc32("") == 0u);
    // python3 -c 'import zlib; print(zlib.crc32("order-42".encode()))'
    CHECK(queue::crc32("order-42") == 1475806942u);
    CHECK(queue::crc32("\xc3\xa9t\xc3\xa9") == 1154575572u);  // "été" as UTF-8 bytes
}

TEST_CASE("a job's partition is crc32 of its id mod the count") {
    CHECK(queue::partition_of("order-42", 1) == 0);
    CHECK(queue::partition_of("order-42", 6) == static_cast<int>(1475806942u % 6));
    std::set<int> seen;
    for (int i = 0; i < 600; ++i) seen.insert(queue::partition_of("job-" + std::to_string(i), 6));
    CHECK(seen.size() == 6);
}

TEST_CASE("a queue of one partition keeps the layout every queue had") {
    CHECK(queue::partition_tag("q", 0, 1) == "q");
    auto k = queue::partition_keys("q", 1);
    REQUIRE(k.size() == 1);
    CHECK(k[0].jobs == "outq:{q}:jobs");
    CHECK(k[0].control == "outq:{q}:control");
    CHECK(k[0].partition == 0);
}

TEST_CASE("partition tags spread over equal slot ranges, whatever CRC16 does with Q#i") {
    for (const char* q : {"default", "q", "orders", "x"}) {
        for (int count : {2, 3, 6, 12, 16}) {
            auto k = queue::partition_keys(q, count);
            REQUIRE(k.size() == static_cast<std::size_t>(count));
            std::set<std::string> tags;
            for (int i = 0; i < count; ++i) {
                const auto tag = queue::partition_tag(q, i, count);
                tags.insert(tag);
                CHECK(tag.rfind(std::string(q) + "#" + std::to_string(i), 0) == 0);
                CHECK(k[i].jobs == "outq:{" + tag + "}:jobs");
                CHECK(k[i].control == "outq:{" + std::string(q) + "}:control");
                CHECK(k[i].scope("p", "a") == "outq:{" + std::string(q) + "@p/a}:");
                const int slot = redis::cluster::key_slot(k[i].jobs);
                // Inside the i-th of `count` equal ranges, well away from its edges.
                const int lo = i * 16384 / count, hi = (i + 1) * 16384 / count;
                CHECK(slot >= lo + (hi - lo) / 4);
                CHECK(slot < hi - (hi - lo) / 4);
            }
            CHECK(tags.size() == static_cast<std::size_t>(count));
        }
    }
    // On a cluster of three equal primaries (0-5460, 5461-10922, 10923-16383),
    // six partitions put two on each.
    int per_shard[3] = {};
    for (int i = 0; i < 6; ++i) {
        const int slot = redis::cluster::key_slot(queue::partition_keys("default", 6)[i].jobs);
        ++per_shard[slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2];
    }
    CHECK(per_shard[0] == 2);
    CHECK(per_shard[1] == 2);
    CHECK(per_shard[2] == 2);
}

TEST_CASE("the tag rule is the documented one: Q#i, else the nearest of Q#i.1 … Q#i.255") {
    // Computed by the documented rule independently (clients/python/outq_client.py).
    const auto tag = queue::partition_tag("default", 0, 6);
    const int centre = 16384 / 12;
    int best = std::abs(redis::cluster::key_slot("default#0") - centre);
    std::string expect = "default#0";
    for (int n = 1; n < 256; ++n) {
        const auto c = "default#0." + std::to_string(n);
        const int d = std::abs(redis::cluster::key_slot(c) - centre);
        if (d < best) best = d, expect = c;
    }
    CHECK(tag == expect);
    // What clients/python/outq_client.py's partition_tag gives (python3 -c 'import outq_client as c;
    // print([c.partition_tag("default", i, 6) for i in range(6)])'): producers and workers agree.
    const std::vector<std::string> python{"default#0.84",  "default#1.32",  "default#2.69",
                                          "default#3.174", "default#4.168", "default#5.97"};
    for (int i = 0; i < 6; ++i) CHECK(queue::partition_tag("default", i, 6) == python[static_cast<std::size_t>(i)]);
}

TEST_CASE("a worker starts on a queue recorded with its own count, or records it on a new queue") {
    queue::partition_state s;
    std::vector<redis::value> replies{redis::value{}, integer(0), integer(0)};
    REQUIRE(queue::parse_partition_check(replies, s));
    CHECK_FALSE(s.recorded);
    auto v = queue::check_partitions("q", 6, s);
    CHECK(v.refusal.empty());
    CHECK(v.record);
    CHECK(queue::record_partitions_command("q", 6).args() ==
          std::vector<std::string>{"SET", "outq:{q}:partitions", "6", "NX", "GET"});

    replies[0] = str("6");
    REQUIRE(queue::parse_partition_check(replies, s));
    CHECK(*s.recorded == 6);
    v = queue::check_partitions("q", 6, s);
    CHECK(v.refusal.empty());
    CHECK_FALSE(v.record);
}

TEST_CASE("a worker of another count is refused, saying what to do") {
    queue::partition_state s;
    s.recorded = 6;
    auto v = queue::check_partitions("q", 3, s);
    CHECK(v.refusal.find("has 6 partitions") != std::string::npos);
    CHECK(v.refusal.find("queue_partitions to 6") != std::string::npos);
    // A queue of one partition with jobs in it cannot simply be split.
    s.recorded.reset();
    s.single_holds_jobs = true;
    v = queue::check_partitions("q", 6, s);
    CHECK(v.refusal.find("outq:{q}:jobs") != std::string::npos);
    CHECK(queue::check_partitions("q", 1, s).refusal.empty());
    // Two workers of different counts racing: the one that recorded second is refused.
    CHECK(queue::parse_record_partitions("q", 6, redis::value{}).empty());
    CHECK(queue::parse_record_partitions("q", 6, str("6")).empty());
    CHECK(queue::parse_record_partitions("q", 6, str("3")).find("has 3 partitions") != std::string::npos);
    CHECK_FALSE(queue::parse_record_partitions("q", 6, str("lots")).empty());
}

TEST_CASE("a count that is not one is an unexpected shape") {
    queue::partition_state s;
    std::vector<redis::value> replies{str("0"), integer(0), integer(0)};
    CHECK_FALSE(queue::parse_partition_check(replies, s));
    replies[0] = str("257");
    CHECK_FALSE(queue::parse_partition_check(replies, s));
    replies[0] = str("6");
    replies[1] = str("x");
    CHECK_FALSE(queue::parse_partition_check(replies, s));
    CHECK(queue::parse_partition_count("12") == 12);
    CHECK_FALSE(queue::parse_partition_count("12a"));
}
