#include <doctest/doctest.h>

#include "outq/clock.hpp"

using namespace outq;

TEST_CASE("RFC 3339 timestamps") {
    CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == 0);
    CHECK(parse_rfc3339("2026-11-22T10:00:00.250Z") == 1795341600250);
    CHECK(parse_rfc3339("2026-11-22T11:00:00+01:00") == 1795341600000);
    CHECK(parse_rfc3339("2026-11-22T10:00:00.1Z") == 1795341600100);
    CHECK_FALSE(parse_rfc3339("2026-11-22"));
    CHECK_FALSE(parse_rfc3339("2026-13-22T10:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-22T10:00:00"));
    CHECK_FALSE(parse_rfc3339("2026-11-22T10:00:00Zjunk"));
    CHECK(format_rfc3339(1795341600250) == "2026-11-22T10:00:00.250Z");
    CHECK(format_rfc3339(0) == "1970-01-01T00:00:00.000Z");
}
