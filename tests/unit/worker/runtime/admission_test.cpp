// Admission against a scripted Redis peer: the claim round trip and what
// each verdict turns a delivery into, read back from the writer's script call.
// No case here reaches the sender.
#include "runtime/admission.hpp"

#include <doctest/doctest.h>

#include <boost/asio/steady_timer.hpp>

#include "outq/clock.hpp"
#include "runtime_fixture.hpp"

using namespace outq;
using namespace std::chrono_literals;
using test::bulk;
using test::scripted_redis;

namespace {

boost::asio::awaitable<bool> admit_all(runtime::admission& a, std::vector<queue::stream_entry> entries) {
    co_await a.admit(std::move(entries), runtime::ledger::clock::now());
    co_return true;
}

struct admission_rig : test::rig {
    test::admission_chain chain{*this};

    std::optional<bool> admit(std::vector<queue::stream_entry> entries) {
        return test::run(io, admit_all(chain.admit, std::move(entries)));
    }
    std::vector<test::written_outcome> written() { return test::write_all(*this, chain.out.at(0)); }
};

queue::stream_entry entry(std::string id, std::string job) {
    queue::stream_entry e;
    e.id = std::move(id);
    e.fields.emplace_back("job", std::move(job));
    return e;
}

}  // namespace

TEST_CASE("admission: bad jobs become dead letters without any claim") {
    admission_rig r;
    REQUIRE(r.admit(
        {entry("1-0", "{}"), entry("2-0", R"({"id":"j-2","provider":"webhook","account":"nobody","message":{}})")}));
    CHECK(r.peer.received().empty());
    CHECK(r.held.held() == 2);
    auto out = r.written();
    REQUIRE(out.size() == 2);
    CHECK(out[0].action == "dead");
    CHECK(out[0].entry_id == "1-0");
    CHECK(out[0].release_marker == "0");  // never claimed
    CHECK(out[1].action == "dead");
    CHECK(out[1].entry_id == "2-0");
    CHECK(r.held.held() == 0);
}

TEST_CASE("admission: a marker another delivery holds delays the job, its marker left alone") {
    admission_rig r;
    r.peer.answer("MSETNX", ":0\r\n").answer("PTTL", ":-2\r\n");
    r.peer.answer("SET", bulk(R"({"status":"sending","entry":"9-0","since":1})"));  // a twin, in flight elsewhere
    r.peer.answer("EVAL", ":0\r\n");  // its entry is still pending: not taken over
    const auto before = wall_now_ms();
    REQUIRE(r.admit({entry("1-0", test::webhook_job("j-1"))}));
    const auto after = wall_now_ms();
    auto alone = r.peer.received("SET").at(0);
    CHECK(alone.at(1) == r.ctx.queue_wide().result("j-1"));
    CHECK(alone.at(3) == "NX");
    CHECK(alone.at(4) == "GET");
    CHECK(test::mentions(r.peer.received("EVAL").at(0), "9-0"));
    CHECK_FALSE(r.held.entries().at({"1-0"}).holds_marker);
    auto out = r.written();
    REQUIRE(out.size() == 1);
    CHECK(out[0].action == "delay");
    CHECK(out[0].release_marker == "0");
    CHECK(out[0].due >= before + 1000);  // visibility/4, at least 1 s
    CHECK(out[0].due <= after + 1000);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("admission: a marker whose entry is gone is taken over") {
    admission_rig r;
    r.peer.answer("MSETNX", ":0\r\n").answer("PTTL", ":-2\r\n");
    r.peer.answer("SET", bulk(R"({"status":"sending","entry":"9-0","since":1})"));
    r.peer.answer("EVAL", ":1\r\n");  // 9-0 is not pending: its marker was left behind
    const std::string job =
        R"({"id":"j-1","provider":"webhook","account":"a","not_before":4102444800000,"message":{"text":"hi"}})";
    REQUIRE(r.admit({entry("1-0", job)}));
    CHECK(r.held.entries().at({"1-0"}).holds_marker);
    auto out = r.written();
    REQUIRE(out.size() == 1);
    CHECK(out[0].action == "delay");
    CHECK(out[0].release_marker == "1");
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("admission: a reclaimed delivery finds its own marker and keeps it") {
    admission_rig r;
    const std::string job =
        R"({"id":"j-1","provider":"webhook","account":"a","not_before":4102444800000,"message":{"text":"hi"}})";
    r.peer.answer("MSETNX", ":0\r\n").answer("PTTL", ":-2\r\n");
    r.peer.answer("SET",
                  bulk(R"({"status":"sending","entry":"1-0","since":1})"));  // set by this entry's earlier delivery
    REQUIRE(r.admit({entry("1-0", job)}));
    CHECK(r.peer.received("SET").size() == 1);
    CHECK(r.peer.received("EVAL").empty());
    CHECK(r.held.entries().at({"1-0"}).holds_marker);
    auto out = r.written();  // not_before is in 2100: back to the delayed set until then
    REQUIRE(out.size() == 1);
    CHECK(out[0].action == "delay");
    CHECK(out[0].due == 4102444800000);
    CHECK(out[0].release_marker == "1");
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("admission: a job whose result exists is acknowledged as a duplicate") {
    admission_rig r;
    r.peer.answer("MSETNX", ":0\r\n").answer("PTTL", ":-2\r\n");
    r.peer.answer("SET", bulk(R"({"status":"sent","id":"j-1","attempts":1})"));
    REQUIRE(r.admit({entry("1-0", test::webhook_job("j-1"))}));
    CHECK_FALSE(r.held.entries().at({"1-0"}).holds_marker);
    auto out = r.written();
    REQUIRE(out.size() == 1);
    CHECK(out[0].action == "ack");
    CHECK(out[0].release_marker == "0");
    CHECK(test::mentions(
        r.peer.received("EVALSHA").empty() ? r.peer.received("EVAL").back() : r.peer.received("EVALSHA").back(),
        "duplicate"));
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("admission: a paused account puts the job back until the pause ends") {
    admission_rig r;
    r.peer.answer("MSETNX", ":1\r\n").answer("PTTL", ":5000\r\n");
    const auto before = wall_now_ms();
    REQUIRE(r.admit({entry("1-0", test::webhook_job("j-1"))}));
    const auto after = wall_now_ms();
    auto out = r.written();
    REQUIRE(out.size() == 1);
    CHECK(out[0].action == "delay");
    CHECK(out[0].release_marker == "1");
    CHECK(out[0].due >= before + 5000);
    CHECK(out[0].due <= after + 5250);
    CHECK(r.chain.sends.running() == 0);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("admission: while draining, entries are put back at once, with no claim") {
    admission_rig r;
    r.ctx.current = runtime::stage::draining;
    const auto before = wall_now_ms();
    REQUIRE(r.admit({entry("1-0", test::webhook_job("j-1")), entry("2-0", test::webhook_job("j-2"))}));
    const auto after = wall_now_ms();
    CHECK(r.peer.received().empty());
    auto out = r.written();
    REQUIRE(out.size() == 2);
    for (auto& o : out) {
        CHECK(o.action == "delay");
        CHECK(o.release_marker == "0");
        CHECK(o.due >= before);
        CHECK(o.due <= after);
    }
}

TEST_CASE("admission: a claim error is retried until it answers") {
    admission_rig r;
    r.peer.answer("MSETNX", "-OOM command not allowed when used memory > 'maxmemory'.\r\n").answer("PTTL", ":-2\r\n");
    r.peer.answer("MSETNX", ":0\r\n").answer("PTTL", ":-2\r\n");
    r.peer.answer("SET", test::bulk(R"({"status":"dead","id":"j-1"})"));
    REQUIRE(r.admit({entry("1-0", test::webhook_job("j-1"))}));
    CHECK(r.peer.received("MSETNX").size() == 2);
    auto out = r.written();
    REQUIRE(out.size() == 1);
    CHECK(out[0].action == "ack");  // a result exists: a duplicate
    CHECK(out[0].release_marker == "0");
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("admission: a claim left unanswered when the drain began abandons the entries") {
    admission_rig r;
    r.peer.hang_on("MSETNX");
    boost::asio::steady_timer signal(r.io, 50ms);
    signal.async_wait([&](boost::system::error_code) { r.ctx.current = runtime::stage::draining; });
    REQUIRE(r.admit({entry("1-0", test::webhook_job("j-1"))}));
    CHECK(r.held.held() == 0);
    CHECK(r.held.abandoned() == 1);
    CHECK(r.chain.out.queued() == 0);
    CHECK(r.peer.received("MSETNX").size() == 1);  // no second try
}
