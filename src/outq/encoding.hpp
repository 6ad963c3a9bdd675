#pragma once
// Small encoders shared by the HTTP client and adapters.
#include <string>
#include <string_view>

namespace outq {

std::string base64_encode(std::string_view in);

}  // namespace outq
