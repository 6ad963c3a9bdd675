#include "outq/queue/oversized.hpp"

#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"

using namespace outq;
using namespace outq::test_values;
namespace oversized = outq::queue::oversized;

TEST_CASE("oversized: the script sizes the consumer's entries after the last one it read, in Redis") {
    const queue::keys k("q");
    const auto c = oversized::inspect_command(k, "w1", "5-0", 64, 1 << 20).args();
    REQUIRE(c.size() == 11);
    CHECK(c[0] == "EVAL");
    CHECK(c[2] == "1");
    CHECK(c[3] == "outq:{q}:jobs");
    CHECK(c[4] == "outq.v2");
    CHECK(c[5] == "w1");
    CHECK(c[6] == "(5-0");
    CHECK(c[7] == "64");
    CHECK(c[8] == std::to_string(1 << 20));
    CHECK(c[9] == "4096");
    CHECK(oversized::inspect_command(k, "w1", "", 64, 1 << 20).args()[6] == "-");
}

TEST_CASE("oversized: stubs for entries too large, sizes for the rest, read back a budget at a time") {
    auto reply = arr({arr({str("6-0"), num(300), num(320)}),
                      arr({str("7-0"), num(52428800), num(52428830),
                           arr({str("job"), str("{\"id\":\"big\""), str("attempts"), str("1")})}),
                      arr({str("8-0"), num(900), num(950)}), arr({str("9-0"), num(800), num(820)})});
    std::vector<oversized::inspected> found;
    REQUIRE(oversized::parse_inspection(reply, 2, found));
    REQUIRE(found.size() == 4);
    CHECK_FALSE(found[0].stub);
    REQUIRE(found[1].stub);
    CHECK(found[1].stub->id == "7-0");
    CHECK(found[1].stub->partition == 2);
    CHECK(found[1].stub->stub->job_bytes == 52428800);
    CHECK(found[1].stub->fields.size() == 2);
    CHECK(found[1].sizes.entry_bytes == 52428830);

    // 320 + 950 fit in 1,500; 820 more do not.
    const auto groups = oversized::read_groups(found, 1500);
    REQUIRE(groups.size() == 2);
    CHECK(groups[0] == std::vector<std::string>{"6-0", "8-0"});
    CHECK(groups[1] == std::vector<std::string>{"9-0"});
    // An entry larger than the budget is read alone.
    CHECK(oversized::read_groups(found, 100).size() == 3);

    const auto cmds = oversized::read_commands(queue::keys("q"), groups[0]);
    REQUIRE(cmds.size() == 2);
    CHECK(cmds[1].args() == std::vector<std::string>{"XRANGE", "outq:{q}:jobs", "8-0", "8-0"});
    std::vector<redis::value> replies{arr({arr({str("6-0"), arr({str("job"), str("{}")})})}), arr({})};
    std::vector<queue::stream_entry> entries;
    REQUIRE(oversized::parse_reads(replies, 2, entries));
    REQUIRE(entries.size() == 1);  // 8-0 is gone (deleted meanwhile)
    CHECK(entries[0].partition == 2);
    CHECK_FALSE(entries[0].stub);

    auto bad = arr({arr({str("6-0"), str("x")})});
    CHECK_FALSE(oversized::parse_inspection(bad, 0, found));
    auto err_reply = error("NOSCRIPT");
    CHECK_FALSE(oversized::parse_inspection(err_reply, 0, found));
}
