#pragma once
// Absolute http:// and https:// URLs, split into what a connection needs.
// Pure: adapters check their configured URLs with it, the HTTP client dials them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outq {

struct url_parts {
    bool tls = false;
    std::string host;
    std::uint16_t port = 80;
    std::string target = "/";
};
std::optional<url_parts> parse_http_url(std::string_view url);

}  // namespace outq
