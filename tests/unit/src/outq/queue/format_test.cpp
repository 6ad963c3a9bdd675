#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"
#include "outq/queue/format.hpp"

using namespace outq;
using namespace outq::test_values;
using verdict = queue::format_verdict::kind;

namespace {

redis::value groups(std::vector<std::string> names) {
    std::vector<redis::value> out;
    for (auto& n : names) out.push_back(arr({str("name"), str(n), str("consumers"), str("0")}));
    return arr(std::move(out));
}

}  // namespace

TEST_CASE("the format check is one GET and one XINFO GROUPS") {
    const queue::keys k("q");
    auto cmds = queue::format_check_commands(k);
    REQUIRE(cmds.size() == 2);
    CHECK(cmds[0].args() == std::vector<std::string>{"GET", "outq:{q}:format"});
    CHECK(cmds[1].args() == std::vector<std::string>{"XINFO", "GROUPS", "outq:{q}:jobs"});
}

TEST_CASE("format 2 goes; a new queue is claimed; format 1 and anything else are refused") {
    CHECK(queue::read_format({str("2"), groups({"outq.v2"})}).what == verdict::current);
    CHECK(queue::read_format({str("2"), groups({"outq", "outq.v2"})}).what == verdict::current);  // migrated
    CHECK(queue::read_format({nil, error("ERR no such key")}).what == verdict::new_queue);
    CHECK(queue::read_format({nil, groups({})}).what == verdict::new_queue);  // a stream without workers yet
    CHECK(queue::read_format({nil, groups({"outq"})}).what == verdict::format1);
    auto three = queue::read_format({str("3"), groups({})});
    CHECK(three.what == verdict::unknown);
    CHECK(three.text == "3");
    CHECK(queue::read_format({str("migrating"), groups({"outq"})}).what == verdict::unknown);
    CHECK(queue::read_format({error("NOPERM x"), groups({})}).what == verdict::error);
    CHECK(queue::read_format({nil, error("WRONGTYPE x")}).what == verdict::error);
    CHECK(queue::read_format({nil}).what == verdict::error);
    // A user that may not read the queue's keys is refused at once: waiting does not heal it.
    CHECK(queue::read_format({error("NOPERM this user has no permissions"), groups({})}).permanent);
    CHECK(queue::read_format({nil, error("NOPERM this user has no permissions")}).permanent);
    CHECK_FALSE(queue::read_format({error("LOADING Redis is loading"), groups({})}).permanent);
    // A cluster node that does not own the slot: refused with what to do, not retried for ever.
    auto moved = queue::read_format({error("MOVED 5718 127.0.0.1:7001"), error("MOVED 5718 127.0.0.1:7001")});
    CHECK(moved.permanent);
    CHECK(queue::refusal_text(queue::keys("q"), moved).find("does not own the queue's slot") != std::string::npos);
}

TEST_CASE("a new queue is claimed with SET NX and read back") {
    const queue::keys k("q");
    auto cmds = queue::claim_new_queue_commands(k);
    REQUIRE(cmds.size() == 2);
    CHECK(cmds[0].args() == std::vector<std::string>{"SET", "outq:{q}:format", "2", "NX"});
    CHECK(queue::claimed_new_queue({status("OK"), str("2")}));
    CHECK(queue::claimed_new_queue({nil, str("2")}));  // another worker of format 2 was first
    CHECK_FALSE(queue::claimed_new_queue({nil, str("3")}));
}

TEST_CASE("a refusal names the queue, the format found and what to do") {
    const queue::keys k("q");
    queue::format_verdict v;
    v.what = verdict::format1;
    CHECK(queue::refusal_text(k, v).find("outq migrate") != std::string::npos);
    v.what = verdict::unknown;
    v.text = "migrating";
    CHECK(queue::refusal_text(k, v).find("run it again") != std::string::npos);
}
