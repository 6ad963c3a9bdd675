#include <doctest/doctest.h>

#include "outq/queue/ownership.hpp"

using namespace outq;
using namespace std::chrono_literals;

TEST_CASE("the refresh claims only this consumer's entries") {
    queue::keys k("q");
    std::vector<queue::held_entry> held{{"1-0"}, {"2-0"}, {"3-0"}};
    auto a = queue::refresh_command(k, queue::script{queue::refresh_script, "sha"}, "me", held).args();
    CHECK(a == std::vector<std::string>{"EVALSHA", "sha", "1", "outq:{q}:jobs", "outq.v2", "me", "1-0", "2-0", "3-0"});
    const std::string body = queue::refresh_script;
    // The owner is read before the claim, and a min-idle-0 XCLAIM only follows it.
    CHECK(body.find("XPENDING") < body.find("XCLAIM"));
    CHECK(body.find("row[2] == ARGV[2]") != std::string::npos);
    CHECK(body.find("PEXPIRE") == std::string::npos);  // markers have no TTL in format 2
}

TEST_CASE("the refresh reply lists the entries lost to another consumer") {
    redis::value reply;
    reply.type = redis::value::kind::array;
    redis::value id;
    id.type = redis::value::kind::string;
    id.str = "2-0";
    reply.elements.push_back(id);
    std::vector<std::string> lost;
    REQUIRE(queue::parse_refresh_reply(reply, lost));
    CHECK(lost == std::vector<std::string>{"2-0"});
    redis::value err;
    err.type = redis::value::kind::error;
    CHECK_FALSE(queue::parse_refresh_reply(err, lost));
}
