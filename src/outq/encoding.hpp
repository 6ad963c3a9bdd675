#pragma once
// Small encoders shared by the HTTP client, adapters and the CLI.
#include <optional>
#include <string>
#include <string_view>

namespace outq {

std::string base64_encode(std::string_view in);

// Base64 (RFC 4648 §4, the standard alphabet); the '=' padding may be left out.
// nullopt when `in` is not base64 (another character, a misplaced '=', a
// length no encoding has).
std::optional<std::string> base64_decode(std::string_view in);

// Where the first byte is that is not part of a well-formed UTF-8 sequence
// (RFC 3629 §4: no overlong forms, no surrogates U+D800..U+DFFF, nothing above
// U+10FFFF); std::string_view::npos when all of `s` is UTF-8.
std::size_t invalid_utf8_at(std::string_view s);
// Whether `in` is well-formed UTF-8 (no overlong forms, surrogates or code
// points above U+10FFFF).
bool is_valid_utf8(std::string_view in);

// `in` with every ill-formed sequence replaced by U+FFFD, one per maximal
// subpart (Unicode's recommended practice, what Python's errors="replace" and
// browsers do); well-formed text is returned unchanged.
std::string to_valid_utf8(std::string_view in);

}  // namespace outq
