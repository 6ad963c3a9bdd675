#pragma once
// Minimal structured logging to stderr: one line per event, logfmt
// ("ts=… level=info msg=… key=value", which log shippers parse without config)
// or, with set_format(format::json), one JSON object per line with the same
// members. Callers write their fields as logfmt (`value()` quotes them); the
// JSON form is rendered from those, so every call site serves both.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outq::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3 };
enum class format { logfmt, json };

void set_level(level l);
bool parse_level(std::string_view text, level& out);
bool enabled(level l);
void set_format(format f);
bool parse_format(std::string_view text, format& out);
void write(level l, std::string_view message, std::string_view fields = {});

// Quotes a value for logfmt when it contains spaces, quotes, '=' or control
// characters; control characters are escaped (\n, \r, \t, \u00XX), so a line
// is always one line.
std::string value(std::string_view v);

// The key/value pairs of logfmt fields as `value()` writes them, unquoted and
// unescaped. Exposed for tests.
std::vector<std::pair<std::string, std::string>> parse_fields(std::string_view fields);
// One whole line (without its newline) in a format.
std::string render(format f, std::string_view ts, level l, std::string_view message, std::string_view fields);

inline void debug(std::string_view m, std::string_view f = {}) {
    if (enabled(level::debug)) write(level::debug, m, f);
}
inline void info(std::string_view m, std::string_view f = {}) {
    if (enabled(level::info)) write(level::info, m, f);
}
inline void warn(std::string_view m, std::string_view f = {}) {
    write(level::warn, m, f);
}
inline void error(std::string_view m, std::string_view f = {}) {
    write(level::error, m, f);
}

}  // namespace outq::log
