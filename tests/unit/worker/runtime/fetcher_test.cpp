// The fetcher, one step() at a time, against a scripted Redis peer. Its
// admission chain is the real one; the peer's claim replies make every job
// a duplicate, so nothing reaches the sender.
#include "runtime/fetcher.hpp"

#include <doctest/doctest.h>

#include "runtime_fixture.hpp"

using namespace outq;
using namespace std::chrono_literals;
using test::array;
using test::bulk;
using test::scripted_redis;

namespace {

struct fetcher_rig : test::rig {
    // The blocking reads have their own connection; claims go over `conn`.
    redis::connection fetch_conn{ex(), peer.options(200ms)};
    test::admission_chain chain{*this};
    runtime::task_group loops{ex(), {}};
    runtime::fetcher fetch{ex(), ctx, ctx.queue_wide(), fetch_conn, conn, held, chain.admit, loops};

    std::optional<bool> step() { return test::run(io, fetch.step()); }

    // An XREADGROUP reply: the jobs stream with these entries.
    std::string read_reply(std::initializer_list<std::string> entries) {
        return array({array({bulk(ctx.queue_wide().jobs), array(entries)})});
    }
};

}  // namespace

TEST_CASE("fetcher: the entries read go through admission: slots, claim commands, outcomes for the writer") {
    fetcher_rig r;
    r.peer.answer("XREADGROUP", r.read_reply({test::stream_entry("1-0", {"job", test::webhook_job("j-1")}),
                                              test::stream_entry("2-0", {"job", "not json"})}));
    // The claim of j-1 (2-0 is a dead letter before any claim): a key exists
    // (MSETNX sets nothing), no pause; claimed alone, it has a result (a duplicate).
    r.peer.answer("MSETNX", ":0\r\n").answer("PTTL", ":-2\r\n");
    r.peer.answer("SET", bulk(R"({"status":"sent","id":"j-1"})"));
    auto ok = r.step();
    REQUIRE(ok);
    CHECK(*ok);

    auto& got = r.peer.received();
    REQUIRE(got.size() == 4);
    CHECK(got[0] == scripted_redis::args{"XREADGROUP", "GROUP", "outq.v2", "w1", "COUNT", "4", "BLOCK", "300",
                                         "STREAMS", r.ctx.queue_wide().jobs, ">"});
    REQUIRE(got[1].size() == 3);
    CHECK(got[1][0] == "MSETNX");
    CHECK(got[1][1] == r.ctx.queue_wide().result("j-1"));
    CHECK(got[1][2].rfind(R"({"status":"sending","entry":"1-0","since":)", 0) == 0);
    CHECK(got[2] == scripted_redis::args{"PTTL", r.ctx.queue_wide().scope("webhook", "a") + "pause"});
    CHECK(r.peer.unexpected().empty());

    // Both held until their outcomes are written: the duplicate and the dead letter.
    CHECK(r.held.held() == 2);
    REQUIRE(r.held.holds({"1-0"}));
    REQUIRE(r.held.holds({"2-0"}));
    CHECK(r.held.entries().at({"1-0"}).job_id == "j-1");
    CHECK_FALSE(r.held.entries().at({"1-0"}).holds_marker);
    CHECK(r.chain.out.queued() == 2);
    CHECK(r.chain.sends.running() == 0);
    auto out = test::write_all(r, r.chain.out.at(0));
    REQUIRE(out.size() == 2);
    CHECK(out[0].entry_id == "2-0");
    CHECK(out[0].action == "dead");
    CHECK(out[1].entry_id == "1-0");
    CHECK(out[1].action == "ack");
    CHECK(out[1].release_marker == "0");
    CHECK(r.held.written() == 2);
}

TEST_CASE("fetcher: reads as many as the free concurrency allows, and nothing when none is free") {
    fetcher_rig r;  // concurrency 4, fetch_batch 10
    auto a = r.held.open({"7-0"}, runtime::ledger::clock::now());
    r.peer.answer("XREADGROUP", "*-1\r\n");  // the block ended with nothing
    CHECK(r.step() == std::optional<bool>(true));
    REQUIRE(r.peer.received().size() == 1);
    CHECK(r.peer.received()[0][5] == "3");

    auto b = r.held.open({"8-0"}, runtime::ledger::clock::now());
    auto c = r.held.open({"9-0"}, runtime::ledger::clock::now());
    auto d = r.held.open({"10-0"}, runtime::ledger::clock::now());
    CHECK(r.step() == std::optional<bool>(true));
    CHECK(r.peer.received().size() == 1);
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("fetcher: NOGROUP recreates the group with XGROUP CREATE … MKSTREAM, and the format key with it") {
    fetcher_rig r;
    r.peer.answer("XREADGROUP",
                  "-NOGROUP No such key 'outq:{q}:jobs' or consumer group 'outq' in XREADGROUP with GROUP option\r\n");
    r.peer.answer("SET", "+OK\r\n").answer("GET", bulk("2")).answer("XGROUP CREATE", "+OK\r\n");
    auto ok = r.step();
    REQUIRE(ok);
    CHECK(*ok);
    auto& got = r.peer.received();
    REQUIRE(got.size() == 4);
    CHECK(got[1] == scripted_redis::args{"SET", r.ctx.queue_wide().format, "2", "NX"});
    CHECK(got[3] == scripted_redis::args{"XGROUP", "CREATE", r.ctx.queue_wide().jobs, "outq.v2", "0", "MKSTREAM"});
    CHECK(r.held.held() == 0);

    // Created meanwhile by another worker: fine too. Refused: trouble.
    r.peer.answer("XREADGROUP", "-NOGROUP No such key\r\n")
        .answer("SET", "$-1\r\n")
        .answer("GET", bulk("2"))
        .answer("XGROUP CREATE", "-BUSYGROUP Consumer Group name already exists\r\n");
    CHECK(r.step() == std::optional<bool>(true));
    r.peer.answer("XREADGROUP", "-NOGROUP No such key\r\n")
        .answer("SET", "$-1\r\n")
        .answer("GET", bulk("2"))
        .answer("XGROUP CREATE", "-NOPERM this user has no permissions to run the 'xgroup|create' command\r\n");
    CHECK(r.step() == std::optional<bool>(false));
    CHECK(r.peer.unexpected().empty());
}

TEST_CASE("fetcher: OOM, LOADING, a bad reply or a lost connection: step() is false and nothing is admitted") {
    fetcher_rig r;
    for (const char* reply : {"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
                              "-LOADING Redis is loading the dataset in memory\r\n", ":1\r\n"}) {
        CAPTURE(reply);
        r.peer.answer("XREADGROUP", reply);
        CHECK(r.step() == std::optional<bool>(false));
    }
    r.peer.close_on("XREADGROUP");
    CHECK(r.step() == std::optional<bool>(false));
    CHECK(r.peer.received().size() == 4);  // no claim, no XGROUP
    CHECK(r.held.held() == 0);
    CHECK(r.chain.out.queued() == 0);
    CHECK(r.peer.unexpected().empty());
}
