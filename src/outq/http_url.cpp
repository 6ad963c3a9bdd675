#include "outq/http_url.hpp"

#include <charconv>

namespace outq {

std::optional<url_parts> parse_http_url(std::string_view url) {
    url_parts u;
    if (url.substr(0, 7) == "http://") {
        url.remove_prefix(7);
    } else if (url.substr(0, 8) == "https://") {
        url.remove_prefix(8);
        u.tls = true;
        u.port = 443;
    } else {
        return std::nullopt;
    }
    auto slash = url.find_first_of("/?");
    auto authority = url.substr(0, slash);
    if (slash != std::string_view::npos) {
        const auto rest = url.substr(slash);
        u.target = rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
    }
    if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no credentials in URLs
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return std::nullopt;
            port = authority.substr(close + 2);
        }
    } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }
    if (host.empty()) return std::nullopt;
    if (!port.empty()) {
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc{} || ptr != port.data() + port.size() || p == 0 || p > 65535) return std::nullopt;
        u.port = static_cast<std::uint16_t>(p);
    }
    u.host = std::string(host);
    return u;
}

}  // namespace outq
