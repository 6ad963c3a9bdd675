#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include "runtime/ledger.hpp"

using namespace outq;
using runtime::ledger;
using runtime::slot;

TEST_CASE("a slot ends exactly once: written, abandoned, or by its destructor") {
    boost::asio::io_context io;
    ledger l(io.get_executor());
    const auto t = ledger::clock::now();
    {
        slot a = l.open({"1-0"}, t);
        REQUIRE(a);
        CHECK(l.held() == 1);
        CHECK_FALSE(l.open({"1-0"}, t));  // held already: a second delivery of it is refused
        slot b = std::move(a);
        CHECK_FALSE(a);
        CHECK(l.held() == 1);
        b.written();
        CHECK_FALSE(b);
        b.written();  // a second end changes nothing
        CHECK(l.held() == 0);
        CHECK(l.written() == 1);
        slot c = l.open({"2-0"}, t);
        slot d = l.open({"3-0"}, t);
        c.abandon();
        CHECK(l.abandoned() == 1);
        CHECK(l.held() == 1);
    }  // d goes out of scope: abandoned
    CHECK(l.held() == 0);
    CHECK(l.abandoned() == 2);
    CHECK(l.written() == 1);
}

TEST_CASE("waiting for a permit gives the concurrency slot back") {
    boost::asio::io_context io;
    ledger l(io.get_executor());
    const auto t = ledger::clock::now();
    slot a = l.open({"1-0"}, t);
    slot b = l.open({"2-0"}, t);
    a.set_waiting(true);
    a.set_waiting(true);
    CHECK(l.held() == 2);
    CHECK(l.active() == 1);
    a.written();  // closing a waiting slot ends its wait too
    CHECK(l.active() == 1);
    b.set_waiting(true);
    CHECK(l.active() == 0);
    b.set_waiting(false);
    CHECK(l.active() == 1);
}

TEST_CASE("confirmations and losses are per entry, and a lost entry stays lost") {
    boost::asio::io_context io;
    ledger l(io.get_executor());
    const auto t = ledger::clock::now();
    slot a = l.open({"1-0"}, t);
    // Many slots opened after it: the handle survives rehashing.
    std::vector<slot> more;
    for (int i = 0; i < 1000; ++i) more.push_back(l.open({"x-" + std::to_string(i)}, t));
    l.confirm({"1-0"}, t + std::chrono::seconds(5));
    CHECK(a.state().confirmed == t + std::chrono::seconds(5));
    l.confirm({"1-0"}, t + std::chrono::seconds(1));  // never backwards
    CHECK(a.state().confirmed == t + std::chrono::seconds(5));
    l.mark_lost({"1-0"});
    l.confirm({"1-0"}, t + std::chrono::seconds(9));
    CHECK(a.state().lost);
    CHECK(a.state().confirmed == t + std::chrono::seconds(5));
    CHECK(a.entry_id() == "1-0");
}

TEST_CASE("the same entry id in two partitions' streams is two deliveries") {
    boost::asio::io_context io;
    ledger l(io.get_executor());
    const auto t = ledger::clock::now();
    slot a = l.open({"1-0", 0}, t);
    slot b = l.open({"1-0", 1}, t);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(b.partition() == 1);
    CHECK(b.entry_id() == "1-0");
    CHECK(l.held() == 2);
    CHECK_FALSE(l.open({"1-0", 1}, t));
    l.mark_lost({"1-0", 1});
    CHECK(b.state().lost);
    CHECK_FALSE(a.state().lost);
}

TEST_CASE("room reserved for a read in flight is given back by its handle") {
    boost::asio::io_context io;
    ledger l(io.get_executor());
    {
        auto r = l.reserve(40);
        CHECK(r.size() == 40);
        CHECK(l.reserved() == 40);
        auto moved = std::move(r);
        CHECK(l.reserved() == 40);
        {
            auto other = l.reserve(2);
            CHECK(l.reserved() == 42);
        }
        CHECK(l.reserved() == 40);
    }
    CHECK(l.reserved() == 0);
}
