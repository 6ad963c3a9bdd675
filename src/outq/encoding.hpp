#pragma once
// Small encoders shared by the HTTP client, adapters and the CLI.
#include <string>
#include <string_view>

namespace outq {

std::string base64_encode(std::string_view in);

// Whether `in` is well-formed UTF-8 (no overlong forms, surrogates or code
// points above U+10FFFF).
bool is_valid_utf8(std::string_view in);

// `in` with every ill-formed sequence replaced by U+FFFD, one per maximal
// subpart (Unicode's recommended practice, what Python's errors="replace" and
// browsers do); well-formed text is returned unchanged.
std::string to_valid_utf8(std::string_view in);

}  // namespace outq
