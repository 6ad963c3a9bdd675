// A lane's batch limit: halved below a request too heavy, grown back slowly.
#include "outq/policy/batching.hpp"

#include <doctest/doctest.h>

using outq::policy::batch_limit_after;
using outq::policy::batch_limit_of;

TEST_CASE("batch limit: a 408 halves it below that request, and it stays there until batches go well") {
    CHECK(batch_limit_of(0, 100) == 100);
    int limit = batch_limit_after(0, 100, 20, /*too_heavy=*/true, false);
    CHECK(limit == 10);
    CHECK(batch_limit_after(limit, 100, 10, true, false) == 5);  // another 408 on a half
    CHECK(batch_limit_after(5, 100, 1, true, false) == 5);       // one message cannot be split
    CHECK(batch_limit_after(10, 100, 10, false, false) == 10);   // a failure: no change
    CHECK(batch_limit_after(10, 100, 4, false, true) == 10);     // a small batch proves nothing
}

TEST_CASE("batch limit: grown by a quarter per full batch answered well, back to the maximum") {
    int limit = 10;
    int steps = 0;
    while (limit != 0 && steps < 50) {
        const int sent = batch_limit_of(limit, 100);
        const int next = batch_limit_after(limit, 100, sent, false, true);
        if (next != 0) CHECK(next > limit);
        limit = next;
        ++steps;
    }
    CHECK(limit == 0);                                        // the adapter's maximum again
    CHECK(steps == 12);                                       // 10 12 15 18 22 27 33 41 51 63 78 97, then 100
    CHECK(batch_limit_after(1, 100, 1, false, true) == 2);    // at least one more
    CHECK(batch_limit_after(0, 100, 100, false, true) == 0);  // at the maximum already
}
