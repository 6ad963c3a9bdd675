#include "outq/json_util.hpp"

#include <cstring>

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace outq::json {

void append_quoted(std::string& out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    // Runs of characters that need no escape are appended whole.
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
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
            default: {
                const char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                out.append(u, sizeof u);
            }
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

std::string to_string(const rapidjson::Value& v) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    v.Accept(writer);
    return std::string(buffer.GetString(), buffer.GetSize());
}

namespace {

void skip_ws(std::string_view s, std::size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
}

// Moves `i` past the string starting at s[i] == '"'. Most of a job's bytes
// are in strings, so the closing quote is found with memchr: a quote ends the
// string unless an odd number of backslashes precedes it.
bool skip_string(std::string_view s, std::size_t& i) {
    const char* const begin = s.data();
    const char* const end = begin + s.size();
    const char* p = begin + i + 1;
    while (p < end) {
        const auto* q = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
        if (!q) return false;
        std::size_t backslashes = 0;
        for (const char* b = q; b > begin + i + 1 && b[-1] == '\\'; --b) ++backslashes;
        if (backslashes % 2 == 0) {
            i = static_cast<std::size_t>(q - begin) + 1;
            return true;
        }
        p = q + 1;
    }
    return false;
}

bool skip_value(std::string_view s, std::size_t& i) {
    if (i >= s.size()) return false;
    if (s[i] == '"') return skip_string(s, i);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < s.size()) {
            const char c = s[i];
            if (c == '"') {
                if (!skip_string(s, i)) return false;
                continue;
            }
            if (c == '{' || c == '[')
                ++depth;
            else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    ++i;
                    return true;
                }
            }
            ++i;
        }
        return false;
    }
    while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' && s[i] != '\t' &&
           s[i] != '\r')
        ++i;
    return true;
}

}  // namespace

std::optional<std::string_view> raw_member(std::string_view s, std::string_view key) {
    std::size_t i = 0;
    skip_ws(s, i);
    if (i >= s.size() || s[i] != '{') return std::nullopt;
    ++i;
    for (;;) {
        skip_ws(s, i);
        if (i >= s.size() || s[i] != '"') return std::nullopt;
        const std::size_t key_start = i + 1;
        if (!skip_string(s, i)) return std::nullopt;
        const std::string_view this_key = s.substr(key_start, i - 1 - key_start);
        skip_ws(s, i);
        if (i >= s.size() || s[i] != ':') return std::nullopt;
        ++i;
        skip_ws(s, i);
        const std::size_t value_start = i;
        if (!skip_value(s, i)) return std::nullopt;
        if (this_key == key) return s.substr(value_start, i - value_start);
        skip_ws(s, i);
        if (i >= s.size() || s[i] != ',') return std::nullopt;
        ++i;
    }
}

std::optional<std::string> scalar_member(std::string_view object_text, std::string_view key) {
    const auto raw = raw_member(object_text, key);
    if (!raw || raw->empty()) return std::nullopt;
    if (raw->size() >= 2 && raw->front() == '"' && raw->back() == '"' && raw->find('\\') == std::string_view::npos)
        return std::string(raw->substr(1, raw->size() - 2));  // the common case: nothing to decode
    rapidjson::Document d;  // only the member's own text: an escaped string or a number
    d.Parse(raw->data(), raw->size());
    if (d.HasParseError()) return std::nullopt;
    if (d.IsString()) return std::string(view(d));
    if (d.IsNumber()) return to_string(d);
    return std::nullopt;
}

std::string parse_error_text(rapidjson::ParseErrorCode code, std::size_t offset) {
    return std::string(rapidjson::GetParseError_En(code)) + " at offset " + std::to_string(offset);
}

}  // namespace outq::json
