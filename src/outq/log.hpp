#pragma once
// Minimal structured logging to stderr: one line per event, logfmt style
// ("ts=… level=info msg=… key=value"), which log shippers parse without config.
#include <string>
#include <string_view>

namespace outq::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(level l);
bool parse_level(std::string_view text, level& out);
bool enabled(level l);
void write(level l, std::string_view message, std::string_view fields = {});

// Quotes a value for logfmt when it contains spaces, quotes or '='.
std::string value(std::string_view v);

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
