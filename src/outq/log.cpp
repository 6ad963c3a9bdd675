#include "outq/log.hpp"

#include <atomic>
#include <cstdio>

#include "outq/clock.hpp"
#include "outq/encoding.hpp"
#include "outq/json_util.hpp"

namespace outq::log {

namespace {
std::atomic<int> g_level{static_cast<int>(level::info)};
std::atomic<int> g_format{static_cast<int>(format::logfmt)};
const char* names[] = {"debug", "info", "warn", "error"};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

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

void set_format(format f) {
    g_format = static_cast<int>(f);
}

bool parse_format(std::string_view text, format& out) {
    if (text == "logfmt") {
        out = format::logfmt;
        return true;
    }
    if (text == "json") {
        out = format::json;
        return true;
    }
    return false;
}

std::string value(std::string_view v) {
    static const char hex[] = "0123456789abcdef";
    bool needs_quotes = v.empty();
    for (unsigned char c : v)
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || c < 0x20 || c == 0x7f) needs_quotes = true;
    if (!needs_quotes) return std::string(v);
    std::string out = "\"";
    for (unsigned char c : v) {
        switch (c) {
            case '"':
            case '\\':
                out += '\\';
                out += static_cast<char>(c);
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
    return out;
}

std::vector<std::pair<std::string, std::string>> parse_fields(std::string_view f) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t i = 0;
    while (i < f.size()) {
        while (i < f.size() && f[i] == ' ') ++i;
        if (i >= f.size()) break;
        const auto eq = f.find('=', i);
        const auto space = f.find(' ', i);
        if (eq == std::string_view::npos || (space != std::string_view::npos && space < eq)) {
            // A word without '=': kept as a key with an empty value.
            const auto end = space == std::string_view::npos ? f.size() : space;
            out.emplace_back(std::string(f.substr(i, end - i)), std::string());
            i = end;
            continue;
        }
        std::string key(f.substr(i, eq - i));
        i = eq + 1;
        std::string val;
        if (i < f.size() && f[i] == '"') {
            ++i;
            while (i < f.size() && f[i] != '"') {
                if (f[i] == '\\' && i + 1 < f.size()) {
                    const char e = f[i + 1];
                    i += 2;
                    if (e == 'n') {
                        val += '\n';
                    } else if (e == 'r') {
                        val += '\r';
                    } else if (e == 't') {
                        val += '\t';
                    } else if (e == 'u' && i + 4 <= f.size() && hex_value(f[i]) == 0 && hex_value(f[i + 1]) == 0 &&
                               hex_value(f[i + 2]) >= 0 && hex_value(f[i + 3]) >= 0) {
                        val += static_cast<char>(hex_value(f[i + 2]) * 16 + hex_value(f[i + 3]));
                        i += 4;
                    } else {
                        val += e;
                    }
                } else {
                    val += f[i++];
                }
            }
            if (i < f.size()) ++i;  // the closing quote
        } else {
            const auto end = f.find(' ', i);
            val.assign(f.substr(i, (end == std::string_view::npos ? f.size() : end) - i));
            i = end == std::string_view::npos ? f.size() : end;
        }
        out.emplace_back(std::move(key), std::move(val));
    }
    return out;
}

std::string render(format fmt, std::string_view ts, level l, std::string_view message, std::string_view fields) {
    if (fmt == format::logfmt) {
        std::string line = "ts=" + std::string(ts) + " level=" + names[static_cast<int>(l)] + " msg=" + value(message);
        if (!fields.empty()) {
            line += ' ';
            line += fields;
        }
        return line;
    }
    // JSON: a line must be UTF-8 whatever a value held (a provider's words).
    auto add = [](std::string& out, std::string_view key, std::string_view v) {
        out += ',';
        json::append_quoted(out, is_valid_utf8(key) ? std::string(key) : to_valid_utf8(key));
        out += ':';
        json::append_quoted(out, is_valid_utf8(v) ? std::string(v) : to_valid_utf8(v));
    };
    std::string line = "{\"ts\":";
    json::append_quoted(line, ts);
    add(line, "level", names[static_cast<int>(l)]);
    add(line, "msg", message);
    for (auto& [k, v] : parse_fields(fields)) {
        if (k == "ts" || k == "level" || k == "msg") continue;  // never shadow the line's own
        add(line, k, v);
    }
    line += '}';
    return line;
}

void write(level l, std::string_view message, std::string_view fields) {
    if (!enabled(l)) return;
    std::string line = render(static_cast<format>(g_format.load(std::memory_order_relaxed)),
                              format_rfc3339(wall_now_ms()), l, message, fields);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace outq::log
