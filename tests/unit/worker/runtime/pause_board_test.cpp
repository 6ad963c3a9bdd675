// The pause board: what it says of an account's pause, and when the control
// channel vouches for it so that a claim need not read the pause key.
#include "runtime/pause_board.hpp"

#include <doctest/doctest.h>

using namespace outq;
using namespace std::chrono_literals;
using board_t = runtime::pause_board;

TEST_CASE("pause board: nothing is vouched for before the channel is up and the key was read once") {
    board_t b;
    const auto t0 = board_t::clock::now();
    CHECK_FALSE(b.vouched("webhook", "a", t0));
    auto t = b.before_read("webhook", "a");
    b.read("webhook", "a", t, -2, t0);
    CHECK_FALSE(b.vouched("webhook", "a", t0));  // read while the channel was down
    b.channel_up(t0);
    CHECK_FALSE(b.vouched("webhook", "a", t0));  // that read was before the subscribe
    t = b.before_read("webhook", "a");
    b.read("webhook", "a", t, -2, t0);
    CHECK(b.vouched("webhook", "a", t0));
    CHECK(b.pttl("webhook", "a", t0) == -2);
    CHECK_FALSE(b.vouched("webhook", "b", t0));  // each account is read once
}

TEST_CASE("pause board: messages keep a vouched account true; a read overtaken by a message does not count") {
    board_t b;
    const auto t0 = board_t::clock::now();
    b.channel_up(t0);
    auto t = b.before_read("webhook", "a");
    b.read("webhook", "a", t, -2, t0);
    b.set("webhook", "a", 1000, t0);  // another worker's 429
    CHECK(b.vouched("webhook", "a", t0));
    CHECK(b.pttl("webhook", "a", t0 + 400ms) == 600);
    CHECK(b.pttl("webhook", "a", t0 + 1500ms) == -2);  // the pause ran out, in Redis too
    b.clear("webhook", "a");
    CHECK(b.pttl("webhook", "a", t0) == -2);
    b.set("webhook", "a", -1, t0);
    CHECK(b.pttl("webhook", "a", t0 + 24h) == -1);

    // A read sent before a resume is heard: its reply (still paused) is older than the resume.
    t = b.before_read("webhook", "a");
    b.clear("webhook", "a");
    b.read("webhook", "a", t, -1, t0);
    CHECK(b.vouched("webhook", "a", t0));  // the resume is what Redis holds now
    CHECK_FALSE(b.paused("webhook", "a", t0));
    // The same for an account not vouched for yet: the read does not vouch.
    t = b.before_read("webhook", "b");
    b.clear("webhook", "b");
    b.read("webhook", "b", t, -1, t0);
    CHECK_FALSE(b.vouched("webhook", "b", t0));  // the next claim reads again
}

TEST_CASE("pause board: a resubscribe, a lost link, an unproven link, a closed circuit and time end the vouching") {
    board_t b;
    const auto t0 = board_t::clock::now();
    auto vouch = [&](board_t::clock::time_point at) {
        auto t = b.before_read("webhook", "a");
        b.read("webhook", "a", t, -2, at);
    };
    b.channel_up(t0);
    vouch(t0);
    b.channel_up(t0 + 1s);  // messages may have been missed in between
    CHECK_FALSE(b.vouched("webhook", "a", t0 + 1s));
    vouch(t0 + 1s);
    b.channel_down();
    CHECK_FALSE(b.vouched("webhook", "a", t0 + 1s));
    b.channel_up(t0 + 2s);
    vouch(t0 + 2s);
    CHECK(b.vouched("webhook", "a", t0 + 2s + board_t::link_proof));
    CHECK_FALSE(b.vouched("webhook", "a", t0 + 2s + board_t::link_proof + 1ms));  // no pong for too long
    b.channel_proven(t0 + 30s);
    CHECK(b.vouched("webhook", "a", t0 + 31s));
    b.channel_proven(t0 + 62s);
    CHECK_FALSE(b.vouched("webhook", "a", t0 + 62s));  // read again once a minute whatever is heard
    vouch(t0 + 62s);
    b.forget("webhook", "a");
    CHECK_FALSE(b.vouched("webhook", "a", t0 + 62s));
}

TEST_CASE("pause board: a pause read or noted counts for the gauge even when the read does not vouch") {
    board_t b;
    const auto t0 = board_t::clock::now();
    auto t = b.before_read("webhook", "a");
    b.read("webhook", "a", t, 5000, t0);  // channel down: not vouched, but paused
    CHECK(b.paused("webhook", "a", t0 + 4s));
    CHECK_FALSE(b.vouched("webhook", "a", t0));
    b.note("webhook", "a", 1000, t0);  // a shorter pause met does not shorten it
    CHECK(b.paused("webhook", "a", t0 + 4s));
}
