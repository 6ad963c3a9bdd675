#include "outq/encoding.hpp"

#include <cstdint>
#include <cstring>

namespace outq {

std::string base64_encode(std::string_view in) {
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += table[v >> 18];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += table[v & 63];
    }
    if (i < in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += table[v >> 18];
        out += table[(v >> 12) & 63];
        out += i + 1 < in.size() ? table[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    if (in.size() % 4 == 0 && !in.empty() && in.back() == '=') {
        in.remove_suffix(1);
        if (in.back() == '=') in.remove_suffix(1);
    }
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(in.size() * 3 / 4);
    unsigned bits = 0;
    int count = 0;
    for (const char c : in) {
        const int v = value(c);
        if (v < 0) return std::nullopt;
        bits = (bits << 6) | static_cast<unsigned>(v);
        count += 6;
        if (count >= 8) {
            count -= 8;
            out += static_cast<char>((bits >> count) & 0xFF);
        }
    }
    return out;
}

namespace {

// The length of the well-formed UTF-8 sequence at in[i], or 0 when it is
// ill-formed; `maximal` is then the length of its maximal subpart (at least 1):
// the bytes that start a sequence that could still have been well-formed.
std::size_t sequence_at(std::string_view in, std::size_t i, std::size_t& maximal) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
    const unsigned char b0 = byte(i);
    maximal = 1;
    if (b0 < 0x80) return 1;
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // bounds of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        length = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        length = 3;
        if (b0 == 0xE0) low = 0xA0;   // no overlong forms
        if (b0 == 0xED) high = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        length = 4;
        if (b0 == 0xF0) low = 0x90;   // no overlong forms
        if (b0 == 0xF4) high = 0x8F;  // nothing above U+10FFFF
    } else {
        return 0;  // a continuation byte, C0, C1 or F5..FF
    }
    for (std::size_t k = 1; k < length; ++k) {
        if (i + k >= in.size()) return 0;
        const unsigned char b = byte(i + k);
        const unsigned char lo = k == 1 ? low : 0x80, hi = k == 1 ? high : 0xBF;
        if (b < lo || b > hi) return 0;
        maximal = k + 1;
    }
    return length;
}

}  // namespace

std::size_t invalid_utf8_at(std::string_view in) {
    std::size_t maximal = 0;
    for (std::size_t i = 0; i < in.size();) {
        // ASCII, the common case, eight bytes at a time.
        while (i + 8 <= in.size()) {
            std::uint64_t word;
            std::memcpy(&word, in.data() + i, sizeof word);
            if (word & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= in.size()) break;
        const std::size_t n = sequence_at(in, i, maximal);
        if (n == 0) return i;
        i += n;
    }
    return std::string_view::npos;
}

bool is_valid_utf8(std::string_view in) {
    return invalid_utf8_at(in) == std::string_view::npos;
}

std::string to_valid_utf8(std::string_view in) {
    if (is_valid_utf8(in)) return std::string(in);
    std::string out;
    out.reserve(in.size() + 8);
    std::size_t maximal = 0;
    for (std::size_t i = 0; i < in.size();) {
        const std::size_t n = sequence_at(in, i, maximal);
        if (n == 0) {
            out += "\xEF\xBF\xBD";  // U+FFFD
            i += maximal;
        } else {
            out.append(in.substr(i, n));
            i += n;
        }
    }
    return out;
}

}  // namespace outq
