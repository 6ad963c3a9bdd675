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

}  // namespace outq
