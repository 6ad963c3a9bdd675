#include "outq/policy/fetch_size.hpp"

#include <doctest/doctest.h>

using namespace outq;

TEST_CASE("fetch size: COUNT is what fits in fetch_bytes at the entries' average size, 1 to what is wanted") {
    CHECK(policy::fetch_count(128, 300, 16 << 20) == 128);
    CHECK(policy::fetch_count(128, 1 << 20, 16 << 20) == 16);
    CHECK(policy::fetch_count(128, 50.0 * (1 << 20), 16 << 20) == 1);
    CHECK(policy::fetch_count(1, 300, 16 << 20) == 1);
    CHECK(policy::fetch_count(0, 300, 16 << 20) == 0);
    CHECK(policy::fetch_count(10, 0, 16 << 20) == 10);
}

TEST_CASE("fetch size: the estimate jumps to larger entries at once and comes down a quarter at a time") {
    CHECK(policy::next_entry_bytes(2048, 0, 0) == 2048);
    CHECK(policy::next_entry_bytes(2048, 10 << 20, 10) == doctest::Approx(1 << 20));
    CHECK(policy::next_entry_bytes(1 << 20, 300 * 4, 4) == doctest::Approx((1 << 20) + (300.0 - (1 << 20)) / 4));
}

TEST_CASE("fetch size: the reply limit leaves room for the budget and two of the largest jobs") {
    worker_config c;
    c.fetch_bytes = 16 << 20;
    c.max_job_bytes = 1 << 20;
    CHECK(policy::reply_limit(c) == (16u << 20) + (2u << 20) + 64 * 1024);
}
