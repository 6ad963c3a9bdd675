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
    // Dates that do not exist are refused, not rolled over into the next month.
    CHECK_FALSE(parse_rfc3339("2026-02-30T10:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-04-31T10:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2100-02-29T10:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-01-00T10:00:00Z"));
    CHECK(parse_rfc3339("2024-02-29T00:00:00Z") == 1709164800000);
    CHECK(format_rfc3339(1795341600250) == "2026-11-22T10:00:00.250Z");
    CHECK(format_rfc3339(0) == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("civil dates: days since the epoch and back, month lengths, leap years") {
    CHECK(days_from_civil(1970, 1, 1) == 0);
    CHECK(days_from_civil(1969, 12, 31) == -1);
    CHECK(days_from_civil(2000, 3, 1) == 11017);
    CHECK(days_from_civil(1, 1, 1) == -719162);
    for (std::int64_t d : {-719162LL, -1LL, 0LL, 59LL, 11016LL, 11017LL, 20779LL, 2932896LL}) {
        const auto c = civil_from_days(d);
        CHECK(days_from_civil(c.year, c.month, c.day) == d);
    }
    const auto leap_day = civil_from_days(days_from_civil(2024, 2, 29));
    CHECK((leap_day.year == 2024 && leap_day.month == 2 && leap_day.day == 29));
    CHECK(is_leap_year(2000));
    CHECK(is_leap_year(2024));
    CHECK_FALSE(is_leap_year(1900));
    CHECK_FALSE(is_leap_year(2100));
    CHECK_FALSE(is_leap_year(2023));
    CHECK(days_in_month(2024, 2) == 29);
    CHECK(days_in_month(2100, 2) == 28);
    CHECK(days_in_month(2021, 4) == 30);
    CHECK(days_in_month(2021, 12) == 31);
    CHECK(days_in_month(2021, 0) == 0);
    CHECK(days_in_month(2021, 13) == 0);
}
