#include "outq/log.hpp"

#include <atomic>
#include <cstdio>

#include "outq/clock.hpp"

namespace outq::log {

namespace {
std::atomic<int> g_level{static_cast<int>(level::info)};
const char* names[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_level(level l) {
    g_level = static_cast<int>(l);
}

bool parse_level(std::string_view text, level& out) {
    for (int i = 0; i < 4; ++i) {
        if (text == names[i]) {
            out = static_cast<level>(i);
            return true;
        }
    }
    return false;
}

bool enabled(level l) {
    return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed);
}

std::string value(std::string_view v) {
    bool needs_quotes = v.empty();
    for (char c : v)
        if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\\') needs_quotes = true;
    if (!needs_quotes) return std::string(v);
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    out += '"';
    return out;
}

void write(level l, std::string_view message, std::string_view fields) {
    if (!enabled(l)) return;
    std::string line =
        "ts=" + format_rfc3339(wall_now_ms()) + " level=" + names[static_cast<int>(l)] + " msg=" + value(message);
    if (!fields.empty()) {
        line += ' ';
        line += fields;
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace outq::log
