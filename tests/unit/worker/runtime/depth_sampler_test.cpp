// The depth sampler, one step() at a time, against a scripted Redis peer.
#include "runtime/depth_sampler.hpp"

#include <doctest/doctest.h>

#include "outq/clock.hpp"
#include "runtime_fixture.hpp"

using namespace outq;
using test::bulk;

namespace {

struct sampler_rig : test::rig {
    runtime::depth_sampler sampler{ex(), ctx, conn, stats};
    std::optional<bool> step() { return test::run(io, sampler.step()); }
};

bool has_line(const std::string& text, const std::string& line) {
    return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("depth sampler: one pipeline of five reads sets the queue gauges") {
    sampler_rig r;
    const auto old = std::to_string(wall_now_ms() - 60000) + "-0";
    r.peer.answer("XLEN", ":10\r\n")
        .answer("XPENDING", "*4\r\n:4\r\n" + bulk("1-0") + bulk("2-0") + "*0\r\n")
        .answer("ZCARD", ":3\r\n")
        .answer("XLEN", ":2\r\n")
        .answer("XRANGE", "*1\r\n" + test::stream_entry(old, {"job", "{}"}));
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.peer.received().size() == 5);
    CHECK(r.peer.received("XRANGE").at(0) ==
          test::scripted_redis::args{"XRANGE", r.ctx.queue_wide().jobs, "-", "+", "COUNT", "1"});
    CHECK(r.peer.unexpected().empty());
    const auto text = r.stats.render();
    CHECK(has_line(text, "outq_queue_waiting_jobs{queue=\"q\"} 6"));
    CHECK(has_line(text, "outq_queue_pending_jobs{queue=\"q\"} 4"));
    CHECK(has_line(text, "outq_queue_delayed_jobs{queue=\"q\"} 3"));
    CHECK(has_line(text, "outq_queue_dead_letters{queue=\"q\"} 2"));
    const std::string age_line = "\noutq_queue_oldest_waiting_age_seconds{queue=\"q\"} ";
    const auto at = text.find(age_line);
    REQUIRE(at != std::string::npos);
    const double age = std::stod(text.substr(at + age_line.size()));
    CHECK(age >= 60);
    CHECK(age < 70);
    CHECK(text.find("outq_redis_roundtrip_seconds_count{connection=\"control\"} 1") != std::string::npos);
    CHECK(r.sampler.last_ok());
    CHECK_FALSE(r.sampler.failing());
}

TEST_CASE("depth sampler: Redis trouble is a failed round; the gauges keep their last values") {
    sampler_rig r;
    r.peer.answer("XLEN", "-LOADING Redis is loading the dataset in memory\r\n")
        .answer("XPENDING", "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n")
        .answer("ZCARD", ":0\r\n")
        .answer("XLEN", ":0\r\n")
        .answer("XRANGE", "*0\r\n");
    CHECK(r.step() == std::optional<bool>(false));
    CHECK(r.sampler.failing());
    CHECK(r.sampler.last_round());
    CHECK_FALSE(r.sampler.last_ok());
    r.peer.close_on("XLEN");
    CHECK(r.step() == std::optional<bool>(false));
    CHECK(r.sampler.failing());
    CHECK(r.stats.render().find("outq_queue_waiting_jobs{") == std::string::npos);
}
