#pragma once
// Who may do what on `outq web` (docs/operations.md, "Web dashboard"): a pure
// decision per request from what the request says and how the server runs.
//
// - The Host header must name the server as it listens (or `localhost` on its
//   port, or a configured name): a page of another site that a DNS name
//   rebound to 127.0.0.1 sends its own host, and is refused.
// - Off loopback (a peer that is not 127.0.0.0/8 or ::1), every API request,
//   reads included, carries the operator token: dead letters hold personal data.
//   The page itself (HTML, script, style) holds none and is served to anyone
//   the Host check lets through; it asks for the token.
// - A mutating request (POST) always carries the token in the X-Outq-Token
//   header, never in a cookie, so another site's form cannot forge one (no
//   CSRF: a browser sends a custom header only from a script of the same origin).
// - Read-only mode, or no token configured, refuses every mutation.
#include <string>
#include <string_view>
#include <vector>

namespace outq::web {

struct guard_settings {
    std::string token;  // empty: no mutations at all, and no listening off loopback
    bool read_only = false;
    std::vector<std::string> allowed_hosts;  // Host header values accepted (host:port), besides the defaults
};

struct request_facts {
    std::string_view method;  // GET, HEAD, POST, …
    std::string_view path;    // without the query
    std::string_view host;    // the Host header
    std::string_view token;   // the X-Outq-Token header (empty: none)
    bool peer_loopback = true;
};

struct verdict {
    int status = 200;    // 200: go on; else the answer
    std::string reason;  // why not, for the body
    bool ok() const { return status == 200; }
};

// The Host values a server listening on `host`:`port` accepts by default:
// that host:port, and localhost / 127.0.0.1 / [::1] on the port when it
// listens on loopback.
std::vector<std::string> default_hosts(std::string_view listen_host, unsigned short port);

// The request's fate. `hosts`: default_hosts() plus the configured ones.
verdict check(const guard_settings& settings, const std::vector<std::string>& hosts, const request_facts& r);

// Equal strings, in a time that does not depend on where they differ.
bool same_token(std::string_view a, std::string_view b);

// Whether an address (as Asio prints it) is loopback: 127.0.0.0/8, ::1, ::ffff:127.x.
bool is_loopback_address(std::string_view address);

}  // namespace outq::web
