#include "outq/web/guard.hpp"

#include <algorithm>
#include <cctype>

namespace outq::web {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool is_api(std::string_view path) {
    return path.rfind("/api/", 0) == 0;
}

}  // namespace

bool is_loopback_address(std::string_view a) {
    if (a.rfind("::ffff:", 0) == 0) a.remove_prefix(7);
    return a == "::1" || a.rfind("127.", 0) == 0;
}

std::vector<std::string> default_hosts(std::string_view listen_host, unsigned short port) {
    const std::string p = ":" + std::to_string(port);
    std::vector<std::string> out;
    const bool v6 = listen_host.find(':') != std::string_view::npos;
    out.push_back(lower(v6 ? "[" + std::string(listen_host) + "]" + p : std::string(listen_host) + p));
    if (is_loopback_address(listen_host))
        for (const char* h : {"localhost", "127.0.0.1", "[::1]"}) out.push_back(h + p);
    return out;
}

bool same_token(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    const std::size_t n = std::max(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
        const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
        diff |= static_cast<unsigned char>(x ^ y);
    }
    return diff == 0;
}

verdict check(const guard_settings& s, const std::vector<std::string>& hosts, const request_facts& r) {
    const std::string host = lower(r.host);
    if (std::find(hosts.begin(), hosts.end(), host) == hosts.end())
        return {421, "this server does not answer for Host " + std::string(r.host.substr(0, 100)) +
                         " (allowed: the address it listens on; --allow-host adds names)"};
    const bool mutation = r.method == "POST";
    if (!mutation && r.method != "GET" && r.method != "HEAD") return {405, "only GET, HEAD and POST"};
    const bool token_ok = !s.token.empty() && !r.token.empty() && same_token(r.token, s.token);
    if (mutation) {
        if (!is_api(r.path)) return {404, "not found"};
        if (s.read_only) return {403, "read-only: this server changes nothing"};
        if (s.token.empty()) return {403, "no operator token is configured: this server changes nothing"};
        if (!token_ok) return {401, "a change needs the operator token in the X-Outq-Token header"};
        return {};
    }
    if (is_api(r.path) && !r.peer_loopback && !token_ok)
        return {401, "off loopback every API request needs the operator token in the X-Outq-Token header"};
    return {};
}

}  // namespace outq::web
