#include "outq/policy/lanes.hpp"

#include <doctest/doctest.h>

using namespace outq;
using namespace std::chrono_literals;
using policy::lane_view;

namespace {

policy::lane_settings settings(int concurrency, int reserve) {
    auto s = policy::default_lane_settings(concurrency);
    s.reserve = reserve;
    return s;
}

// Gives slots one at a time, the way the dispatcher does, until none may
// start; returns how many each lane got.
std::vector<int> fill(std::vector<lane_view> lanes, const policy::lane_settings& s) {
    std::vector<int> got(lanes.size(), 0);
    std::size_t cursor = 0;
    while (auto i = policy::next_lane(lanes, cursor, s)) {
        auto& l = lanes[*i];
        l.in_flight += l.next_size;
        l.ready -= l.next_size;
        if (l.ready == 0) l.next_size = 0;
        got[*i] += 1;
        cursor = *i + 1;
    }
    return got;
}

}  // namespace

TEST_CASE("lanes: defaults keep a reserve and never all slots") {
    auto s = policy::default_lane_settings(64);
    CHECK(s.reserve == 8);
    CHECK(s.buffer == 1024);
    CHECK(s.queue == 512);
    CHECK(policy::default_lane_settings(1000).buffer == 4000);
    CHECK(policy::default_lane_settings(1).reserve == 0);
    CHECK(policy::default_lane_settings(4).reserve == 1);
}

TEST_CASE("lanes: a lone trusted lane may use every slot (work-conserving)") {
    auto s = settings(10, 2);
    auto got = fill({{0, 100, 1, true}}, s);
    CHECK(got[0] == 10);
}

TEST_CASE("lanes: a lane not known to be healthy never takes the reserve") {
    auto s = settings(10, 2);
    auto got = fill({{0, 100, 1, false, 1000}}, s);
    CHECK(got[0] == 8);
    // Two untrusted lanes share the unreserved slots (the second's first request
    // may go into the reserve, once); a trusted one still finds the rest of it.
    got = fill({{0, 100, 1, false, 1000}, {0, 100, 1, false, 1000}, {0, 0, 0, true}}, s);
    CHECK(got[0] + got[1] <= 9);
}

TEST_CASE("lanes: a new lane proves itself with one request even when untrusted ones hold the rest") {
    auto s = settings(64, 8);
    std::vector<lane_view> lanes{{56, 200, 1, false, 1000}, {0, 3000, 1, false}};
    auto got = fill(lanes, s);
    CHECK(got[0] == 0);
    CHECK(got[1] == 1);
}

TEST_CASE("lanes: a hanging lane holding its slots leaves the reserve to a healthy one") {
    auto s = settings(64, 8);
    // The hanging lane took what it could before the healthy one had work.
    std::vector<lane_view> lanes{{56, 200, 1, false}, {0, 3000, 1, true}};
    auto got = fill(lanes, s);
    CHECK(got[0] == 0);
    CHECK(got[1] == 8);
}

TEST_CASE("lanes: while others wait, a lane at its fair share starts nothing more") {
    auto s = settings(12, 0);
    auto got = fill({{0, 100, 1, true}, {0, 100, 1, true}, {0, 100, 1, true}}, s);
    CHECK(got == std::vector<int>{4, 4, 4});
    // Above its share already (it was alone before): the others get every freed slot.
    std::vector<lane_view> lanes{{10, 100, 1, true}, {0, 100, 1, true}};
    auto totals = policy::totals_of(lanes);
    CHECK(!policy::may_start(lanes[0], totals, s));
    lanes[0].in_flight = 9;  // one freed
    totals = policy::totals_of(lanes);
    CHECK(!policy::may_start(lanes[0], totals, s));
    CHECK(policy::may_start(lanes[1], totals, s));
}

TEST_CASE("lanes: round robin from the cursor") {
    auto s = settings(100, 0);
    std::vector<lane_view> lanes{{0, 5, 1, true}, {0, 5, 1, true}, {0, 5, 1, true}};
    CHECK(policy::next_lane(lanes, 0, s) == 0u);
    CHECK(policy::next_lane(lanes, 1, s) == 1u);
    CHECK(policy::next_lane(lanes, 5, s) == 2u);
    lanes[2].ready = 0;
    lanes[2].next_size = 0;
    CHECK(policy::next_lane(lanes, 2, s) == 0u);
    CHECK(!policy::next_lane({}, 0, s));
}

TEST_CASE("lanes: a batch counts all its deliveries; one larger than the concurrency goes alone") {
    auto s = settings(10, 2);
    std::vector<lane_view> lanes{{0, 100, 100, true}};
    CHECK(policy::may_start(lanes[0], policy::totals_of(lanes), s));
    lanes[0].in_flight = 1;
    CHECK(!policy::may_start(lanes[0], policy::totals_of(lanes), s));
    // A new lane's batch larger than it may hold still goes, alone.
    std::vector<lane_view> fresh{{0, 1000, 1000, false}};
    CHECK(policy::may_start(fresh[0], policy::totals_of(fresh), s));
    fresh[0].in_flight = 1;
    CHECK(!policy::may_start(fresh[0], policy::totals_of(fresh), s));
}

TEST_CASE("lanes: an untrusted lane starts slow; answers double its window, failures halve it") {
    auto s = settings(64, 8);
    CHECK(policy::window_after(1, policy::request_result::answered_well, 64) == 2);
    CHECK(policy::window_after(40, policy::request_result::answered_well, 64) == 64);
    CHECK(policy::window_after(8, policy::request_result::failed, 64) == 4);
    CHECK(policy::window_after(1, policy::request_result::failed, 64) == 1);
    // A new lane that hangs keeps one request out, the rest of the slots stay with others.
    std::vector<lane_view> lanes{{0, 300, 1, false, 1}, {0, 0, 0, true, 1}};
    auto got = fill(lanes, s);
    CHECK(got[0] == 1);
    lanes[0].window = 16;
    got = fill(lanes, s);
    CHECK(got[0] == 16);
    // A lane held back by its window does not halve the others' share.
    std::vector<lane_view> two{{1, 300, 1, false, 1}, {0, 3000, 1, true, 1}};
    got = fill(two, s);
    CHECK(got[0] == 0);
    CHECK(got[1] == 63);
}

TEST_CASE("lanes: health follows what the requests came to and how long they take") {
    auto s = settings(10, 2);
    CHECK(policy::trusted_after(policy::request_result::answered_well, 20ms, s));
    CHECK(!policy::trusted_after(policy::request_result::answered_well, 1500ms, s));
    CHECK(!policy::trusted_after(policy::request_result::failed, 5ms, s));
    CHECK(policy::trusted_now(true, std::nullopt, s));
    CHECK(policy::trusted_now(true, 900ms, s));
    CHECK(!policy::trusted_now(true, 1100ms, s));
    CHECK(!policy::trusted_now(false, std::nullopt, s));
}

TEST_CASE("lanes: a full lane parks what it cannot keep, in arrival order") {
    auto s = settings(10, 2);
    CHECK(policy::admit_to_lane(2, 3, 0, 1000, std::nullopt, s).keep);
    auto a = policy::admit_to_lane(3, 3, 0, 1000, std::nullopt, s);
    auto b = policy::admit_to_lane(3, 3, 1, 1000, std::nullopt, s);
    CHECK(!a.keep);
    CHECK(a.due == 2000);
    CHECK(b.due == 2001);
}

TEST_CASE("lanes: a lane that hangs is asked again no sooner than it has hung, at most park_max") {
    auto s = settings(10, 2);
    CHECK(policy::park_due(0, 1000, 200ms, s) == 2000);
    CHECK(policy::park_due(0, 1000, 7000ms, s) == 8000);
    CHECK(policy::park_due(3, 1000, 3600000ms, s) == 31003);
}
