#include "outq/queue/depth.hpp"

#include <doctest/doctest.h>

#include "fakes/redis_values.hpp"

using namespace outq;
using namespace outq::test_values;

namespace {

std::vector<redis::value> replies(redis::value xlen, redis::value pending, redis::value delayed, redis::value dead,
                                  redis::value first) {
    return {std::move(xlen), std::move(pending), std::move(delayed), std::move(dead), std::move(first)};
}

redis::value entry(std::string id) {
    return arr({arr({str(std::move(id)), arr({str("job"), str("{}")})})});
}

}  // namespace

TEST_CASE("depth: five reads in one pipeline, no writes") {
    queue::keys k("q");
    const auto cmds = queue::depth_commands(k);
    REQUIRE(cmds.size() == 5);
    CHECK(cmds[0].args() == std::vector<std::string>{"XLEN", "outq:{q}:jobs"});
    CHECK(cmds[1].args() == std::vector<std::string>{"XPENDING", "outq:{q}:jobs", "outq.v2"});
    CHECK(cmds[2].args() == std::vector<std::string>{"ZCARD", "outq:{q}:delayed"});
    CHECK(cmds[3].args() == std::vector<std::string>{"XLEN", "outq:{q}:dead"});
    CHECK(cmds[4].args() == std::vector<std::string>{"XRANGE", "outq:{q}:jobs", "-", "+", "COUNT", "1"});
}

TEST_CASE("depth: waiting is the stream less what is pending; the oldest entry's age while any waits") {
    auto r = queue::read_depth(
        replies(num(7), arr({num(2), str("1000-0"), str("1500-0"), arr({})}), num(3), num(4), entry("1000-0")));
    REQUIRE(r.value);
    CHECK(r.value->stream_length == 7);
    CHECK(r.value->pending == 2);
    CHECK(r.value->waiting() == 5);
    CHECK(r.value->delayed == 3);
    CHECK(r.value->dead == 4);
    CHECK(r.value->oldest_waiting_at == std::optional<unix_ms>(1000));
    CHECK(r.value->oldest_waiting_age_seconds(3500) == doctest::Approx(2.5));
    CHECK(r.value->oldest_waiting_age_seconds(500) == 0);  // a clock behind the id: never negative
}

TEST_CASE("depth: nothing waiting has age 0, even with entries in flight") {
    auto r = queue::read_depth(
        replies(num(2), arr({num(2), str("1-0"), str("2-0"), arr({})}), num(0), num(0), entry("1-0")));
    REQUIRE(r.value);
    CHECK(r.value->waiting() == 0);
    CHECK_FALSE(r.value->oldest_waiting_at);
    CHECK(r.value->oldest_waiting_age_seconds(999999) == 0);
}

TEST_CASE("depth: a queue no worker started on (no stream, NOGROUP) is empty") {
    auto r = queue::read_depth(
        replies(num(0), error("NOGROUP No such key 'outq:{q}:jobs' or consumer group"), num(0), num(0), arr({})));
    REQUIRE(r.value);
    CHECK(r.value->waiting() == 0);
    CHECK(r.value->pending == 0);
    // Jobs enqueued before any worker created the group: all waiting.
    r = queue::read_depth(replies(num(3), error("NOGROUP x"), num(0), num(0), entry("42-1")));
    REQUIRE(r.value);
    CHECK(r.value->waiting() == 3);
    CHECK(r.value->oldest_waiting_at == std::optional<unix_ms>(42));
}

TEST_CASE("depth: an error or a reply of another shape is an error naming the read") {
    auto r =
        queue::read_depth(replies(error("WRONGTYPE Operation against a key"), arr({num(0)}), num(0), num(0), arr({})));
    CHECK_FALSE(r.value);
    CHECK(r.error == "XLEN jobs: WRONGTYPE Operation against a key");
    r = queue::read_depth(replies(num(1), str("x"), num(0), num(0), arr({})));
    CHECK_FALSE(r.value);
    CHECK(r.error.find("XPENDING") != std::string::npos);
    r = queue::read_depth(replies(num(1), arr({num(0), nil, nil, nil}), num(0), error("NOPERM no"), arr({})));
    CHECK(r.error == "XLEN dead: NOPERM no");
    r = queue::read_depth(replies(num(1), arr({num(0), nil, nil, nil}), num(0), num(0), entry("not-an-id")));
    CHECK(r.error.find("not a stream id") != std::string::npos);
    CHECK_FALSE(queue::read_depth({num(1)}).value);
}
