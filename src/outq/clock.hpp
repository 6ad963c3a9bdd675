#pragma once
// Time helpers. Everything that decides uses explicit millisecond timestamps
// passed in by the caller, so decisions are testable with a fake clock.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outq {

using unix_ms = std::int64_t;

// Wall clock, unix epoch milliseconds.
unix_ms wall_now_ms();

// Parses an RFC 3339 timestamp ("2026-11-22T10:00:00Z", "…T10:00:00.250+01:00").
std::optional<unix_ms> parse_rfc3339(std::string_view text);

// Formats as "2026-11-22T10:00:00.250Z".
std::string format_rfc3339(unix_ms t);

// A day of the proleptic Gregorian calendar (years before 1 included).
struct civil_date {
    std::int64_t year = 1970;
    unsigned month = 1;  // 1..12
    unsigned day = 1;    // 1..31
};

// Days since 1970-01-01 of a date, and back (Howard Hinnant's algorithms).
// days_from_civil does not check the date: 30 Feb counts as 2 Mar.
std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day);
civil_date civil_from_days(std::int64_t days);

bool is_leap_year(std::int64_t year);
// 28..31; 0 for a month outside 1..12.
unsigned days_in_month(std::int64_t year, unsigned month);

}  // namespace outq
