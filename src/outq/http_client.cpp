#include "outq/http_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <map>
#include <memory_resource>
#include <unordered_map>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "outq/detail/async_event.hpp"
#include "outq/encoding.hpp"
#include "outq/http_response_reader.hpp"
#include "outq/log.hpp"

namespace outq {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using detail::use_nothrow;

std::string_view to_string(http_failure f) {
    switch (f) {
        case http_failure::none:
            return "none";
        case http_failure::invalid_url:
            return "invalid_url";
        case http_failure::resolve:
            return "resolve";
        case http_failure::connect:
            return "connect";
        case http_failure::proxy:
            return "proxy";
        case http_failure::tls_handshake:
            return "tls_handshake";
        case http_failure::tls_certificate:
            return "tls_certificate";
        case http_failure::timeout_before_send:
            return "timeout_before_send";
        case http_failure::closed_before_send:
            return "closed_before_send";
        case http_failure::timeout_after_send:
            return "timeout_after_send";
        case http_failure::closed_after_send:
            return "closed_after_send";
        case http_failure::protocol:
            return "protocol";
        case http_failure::too_large:
            return "too_large";
        case http_failure::cancelled:
            return "cancelled";
        case http_failure::withdrawn:
            return "withdrawn";
    }
    return "unknown";
}

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// "http://user:pass@proxy:3128" → url + "Basic base64(user:pass)".
std::optional<url_parts> parse_proxy_url(std::string url, std::string& authorization) {
    if (url.find("://") == std::string::npos) url = "http://" + url;
    const auto scheme_end = url.find("://") + 3;
    const auto at = url.find('@', scheme_end);
    const auto slash = url.find('/', scheme_end);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
        authorization = "Basic " + base64_encode(url.substr(scheme_end, at - scheme_end));
        url.erase(scheme_end, at + 1 - scheme_end);
    }
    auto u = parse_http_url(url);
    if (u && u->tls) return std::nullopt;  // TLS to the proxy itself is not supported
    return u;
}

}  // namespace

proxy_config proxy_config_from_env(const char* (*getenv_fn)(const char*)) {
    auto get = [&](const char* upper, const char* lower_name) -> std::string {
        if (const char* v = getenv_fn(lower_name); v && *v) return v;
        if (const char* v = getenv_fn(upper); v && *v) return v;
        return {};
    };
    proxy_config p;
    if (auto v = get("HTTP_PROXY", "http_proxy"); !v.empty()) {
        p.http_proxy = parse_proxy_url(v, p.http_authorization);
        if (!p.http_proxy) log::warn("ignoring HTTP_PROXY: not an http:// URL", "value=" + log::value(v));
    }
    if (auto v = get("HTTPS_PROXY", "https_proxy"); !v.empty()) {
        p.https_proxy = parse_proxy_url(v, p.https_authorization);
        if (!p.https_proxy) log::warn("ignoring HTTPS_PROXY: not an http:// URL", "value=" + log::value(v));
    }
    std::string list = get("NO_PROXY", "no_proxy");
    std::size_t start = 0;
    while (start <= list.size()) {
        auto comma = list.find(',', start);
        if (comma == std::string::npos) comma = list.size();
        std::string item = lower(list.substr(start, comma - start));
        while (!item.empty() && item.front() == ' ') item.erase(0, 1);
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (!item.empty()) p.no_proxy.push_back(item);
        start = comma + 1;
    }
    return p;
}

const url_parts* choose_proxy(const proxy_config& proxies, const url_parts& target, const std::string** authorization) {
    const auto& proxy = target.tls ? proxies.https_proxy : proxies.http_proxy;
    if (!proxy) return nullptr;
    const std::string host = lower(target.host);
    for (auto entry : proxies.no_proxy) {
        if (entry == "*") return nullptr;
        // "host:port" entries only match that port.
        if (auto colon = entry.rfind(':');
            colon != std::string::npos && entry.find(']') == std::string::npos && entry.find(':') == colon) {
            if (entry.substr(colon + 1) != std::to_string(target.port)) continue;
            entry.resize(colon);
        }
        if (!entry.empty() && entry.front() == '.') entry.erase(0, 1);
        if (host == entry) return nullptr;
        if (host.size() > entry.size() && host.ends_with(entry) && host[host.size() - entry.size() - 1] == '.')
            return nullptr;
    }
    if (authorization) *authorization = target.tls ? &proxies.https_authorization : &proxies.http_authorization;
    return &*proxy;
}

send_outcome outcome_from_failure(const http_result& r) {
    send_outcome o;
    o.error = std::string(to_string(r.failure)) + ": " + r.error;
    switch (r.failure) {
        case http_failure::timeout_after_send:
        case http_failure::closed_after_send:
        case http_failure::protocol:
        case http_failure::too_large:
            // The request went out and no readable answer came back: the provider may have acted.
            o.cls = outcome_class::ambiguous;
            break;
        case http_failure::invalid_url:
            o.cls = outcome_class::permanent;
            break;
        default:
            o.cls = outcome_class::retryable;
            break;
    }
    return o;
}

namespace {

constexpr std::uint32_t max_header_bytes = 16 * 1024;

struct wire_request {
    std::string_view method;  // both views outlive the exchange (the caller's request, the route)
    std::string_view host;    // Host header value
    std::string rest;         // header lines after the request line, blank line, body
};

// One keep-alive connection. Deadlines are a timer that closes the socket;
// Beast's tcp_stream did the same with a timer operation per read and write,
// which cost more than the exchange itself on a warm connection.
struct connection : std::enable_shared_from_this<connection> {
    explicit connection(asio::any_io_executor ex) : deadline(std::move(ex)) {}
    std::unique_ptr<tcp::socket> plain;
    std::unique_ptr<asio::ssl::stream<tcp::socket>> secure;
    asio::steady_timer deadline;
    std::uint64_t generation = 0;  // a stale expiry must not close the next exchange's socket
    bool timed_out = false;
    beast::flat_buffer buffer;
    std::chrono::steady_clock::time_point idle_since;
    bool reused = false;
    std::chrono::milliseconds idle_before{0};  // when reused: how long it sat in the pool before this request
    // Kept idle at most this long: a second less than the server's own idle
    // timeout when its last answer announced one (Keep-Alive: timeout=N).
    std::chrono::milliseconds server_idle_limit = std::chrono::milliseconds::max();
    bool absolute_form = false;       // plain HTTP through a proxy: request-target is the full URL
    std::string proxy_authorization;  // with absolute_form: the proxy's credentials, sent with every request
    std::string request_line;         // reused by every request on this connection
    std::size_t busy_slot = 0;        // index in http_client::impl::busy while in use

    tcp::socket& socket() { return secure ? secure->next_layer() : *plain; }
    void close() {
        boost::system::error_code ignored;
        socket().close(ignored);
    }
    void arm(std::chrono::milliseconds d) {
        timed_out = false;
        deadline.expires_after(d);
        deadline.async_wait([weak = weak_from_this(), gen = ++generation](boost::system::error_code ec) {
            if (ec) return;
            auto self = weak.lock();
            if (!self || self->generation != gen) return;
            self->timed_out = true;
            self->close();
        });
    }
    void disarm() {
        ++generation;
        deadline.cancel();
    }
    // The liveness check before a request goes out on a kept connection. An
    // idle connection the server closed shows as readable (EOF, a reset, a TLS
    // close_notify), and so does one that received bytes nobody asked for
    // since its last answer: either way it must not carry a request. Once the
    // request is written, a failure can no longer be told from a server that
    // acted on it, so the check is made every time, however short the idle
    // time (one `recv` per request).
    bool still_usable() {
        auto& sock = socket();
        if (!sock.is_open() || buffer.size() > 0) return false;
        char byte;
        const auto n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
};

using connection_ptr = std::shared_ptr<connection>;

struct origin_pool {
    explicit origin_pool(asio::any_io_executor ex) : freed(ex) {}
    std::vector<connection_ptr> idle;
    int total = 0;
    std::chrono::milliseconds idle_timeout{4000};  // from the settings of the latest request to this origin
    detail::async_event freed;
};

struct dns_entry {
    tcp::resolver::results_type results;
    std::chrono::steady_clock::time_point expires;
};

bool is_connection_closed(const boost::system::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string tls_profile_key(const tls_settings& t) {
    return t.ca_file + "|" + t.client_cert_file + "|" + t.client_key_file + "|" + (t.verify ? "v" : "n");
}

}  // namespace

// Connections in use (opening, or carrying a request), for shutdown to close:
// each knows its slot, so going in and out costs no allocation or search.
struct busy_list {
    std::vector<connection*> items;
    void insert(connection* c) {
        c->busy_slot = items.size();
        items.push_back(c);
    }
    void erase(connection* c) {
        const std::size_t i = c->busy_slot;
        items[i] = items.back();
        items[i]->busy_slot = i;
        items.pop_back();
    }
};

// What a request URL says about where to send it, parsed once per URL.
struct route {
    url_parts parts;
    std::string host_header;  // Host: host[:port], IPv6 literals in brackets
    std::string origin_key;   // scheme://host:port (TLS pools add the TLS profile)
};

struct http_client::impl {
    impl(asio::any_io_executor ex, proxy_config p) : executor(ex), proxies(std::move(p)) {}
    asio::any_io_executor executor;
    proxy_config proxies;
    std::unordered_map<std::string, std::unique_ptr<asio::ssl::context>> tls_contexts;
    std::unordered_map<std::string, std::unique_ptr<origin_pool>> pools;
    std::unordered_map<std::string, dns_entry> dns;
    busy_list busy;
    // Parsed request URLs. Shared so that clearing the map (it is capped: some
    // providers put an id in the path) never pulls one from under a request.
    std::unordered_map<std::string, std::shared_ptr<const route>> routes;
    counters stats;
    bool closed = false;
    const std::string user_agent = std::string("outq/") + OUTQ_VERSION;

    std::shared_ptr<const route> route_for(const std::string& url) {
        if (auto it = routes.find(url); it != routes.end()) return it->second;
        auto u = parse_http_url(url);
        if (!u) return nullptr;
        auto r = std::make_shared<route>();
        const bool default_port = u->port == (u->tls ? 443 : 80);
        r->host_header = (u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host) +
                         (default_port ? "" : ":" + std::to_string(u->port));
        r->origin_key = (u->tls ? "https://" : "http://") + u->host + ":" + std::to_string(u->port);
        r->parts = std::move(*u);
        if (routes.size() >= 1024) routes.clear();
        return routes.emplace(url, std::move(r)).first->second;
    }

    origin_pool& pool_for(const std::string& key) {
        auto it = pools.find(key);
        if (it == pools.end()) it = pools.emplace(key, std::make_unique<origin_pool>(executor)).first;
        return *it->second;
    }

    // One TLS context per profile: the system trust store plus the account's
    // CA bundle, its client certificate, TLS 1.2 at least.
    asio::ssl::context* tls_context(const tls_settings& t, std::string& error) {
        const auto key = tls_profile_key(t);
        if (auto it = tls_contexts.find(key); it != tls_contexts.end()) return it->second.get();
        auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
        ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                         asio::ssl::context::no_compression);
        SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
        boost::system::error_code ec;
        ctx->set_default_verify_paths(ec);
        if (!t.ca_file.empty()) ctx->load_verify_file(t.ca_file, ec);
        if (ec) {
            error = "CA bundle " + t.ca_file + ": " + ec.message();
            return nullptr;
        }
        if (!t.client_cert_file.empty()) {
            ctx->use_certificate_chain_file(t.client_cert_file, ec);
            if (!ec) ctx->use_private_key_file(t.client_key_file, asio::ssl::context::pem, ec);
            if (ec) {
                error = "client certificate " + t.client_cert_file + ": " + ec.message();
                return nullptr;
            }
        }
        ctx->set_verify_mode(t.verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
        auto* raw = ctx.get();
        tls_contexts.emplace(key, std::move(ctx));
        return raw;
    }

    asio::awaitable<std::optional<tcp::resolver::results_type>> resolve(const std::string& host, std::uint16_t port,
                                                                        std::chrono::milliseconds ttl, http_result& r) {
        const auto key = host + ":" + std::to_string(port);
        const auto now = std::chrono::steady_clock::now();
        if (auto it = dns.find(key); it != dns.end() && it->second.expires > now) co_return it->second.results;
        ++stats.dns_lookups;
        tcp::resolver resolver(executor);
        auto [ec, results] = co_await resolver.async_resolve(host, std::to_string(port), use_nothrow);
        if (ec) {
            r.failure = http_failure::resolve;
            r.error = "cannot resolve " + host + ": " + ec.message();
            co_return std::nullopt;
        }
        if (ttl.count() > 0) dns[key] = dns_entry{results, now + ttl};
        co_return results;
    }

    // CONNECT host:port through the proxy on an open TCP stream.
    asio::awaitable<bool> open_tunnel(connection& c, const url_parts& target, const std::string& authorization,
                                      const http_settings& o, http_result& r) {
        auto& stream = c.socket();
        const std::string authority = target.host + ":" + std::to_string(target.port);
        http::request<http::empty_body> req{http::verb::connect, authority, 11};
        req.set(http::field::host, authority);
        req.set(http::field::user_agent, user_agent);
        if (!authorization.empty()) req.set(http::field::proxy_authorization, authorization);
        c.arm(o.connect_timeout);
        auto [wec, wn] = co_await http::async_write(stream, req, use_nothrow);
        if (wec) {
            r.failure = c.timed_out ? http_failure::timeout_before_send : http_failure::proxy;
            r.error = "proxy CONNECT to " + authority + ": " + wec.message();
            co_return false;
        }
        beast::flat_buffer buffer;
        http::response_parser<http::empty_body> parser;
        parser.skip(true);  // a CONNECT answer has no body to wait for
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_nothrow);
        c.disarm();
        if (rec) {
            r.failure = c.timed_out ? http_failure::timeout_before_send : http_failure::proxy;
            r.error = "proxy CONNECT to " + authority + ": " + rec.message();
            co_return false;
        }
        if (parser.get().result_int() != 200) {
            r.failure = http_failure::proxy;
            r.error = "proxy refused CONNECT to " + authority + ": HTTP " + std::to_string(parser.get().result_int());
            co_return false;
        }
        co_return true;
    }

    asio::awaitable<connection_ptr> open(const url_parts& u, const http_settings& o, const tls_settings& t,
                                         http_result& r) {
        auto c = std::make_shared<connection>(executor);
        if (u.tls) {
            std::string error;
            auto* ctx = tls_context(t, error);
            if (!ctx) {
                r.failure = http_failure::tls_handshake;
                r.error = error;
                co_return nullptr;
            }
            c->secure = std::make_unique<asio::ssl::stream<tcp::socket>>(executor, *ctx);
        } else {
            c->plain = std::make_unique<tcp::socket>(executor);
        }
        busy.insert(c.get());
        struct unbusy {
            impl& s;
            connection* c;
            ~unbusy() { s.busy.erase(c); }
        } guard{*this, c.get()};

        const std::string* proxy_auth = nullptr;
        const url_parts* proxy = choose_proxy(proxies, u, &proxy_auth);
        const url_parts& dial = proxy ? *proxy : u;
        auto endpoints = co_await resolve(dial.host, dial.port, o.dns_cache, r);
        if (!endpoints) co_return nullptr;
        c->arm(o.connect_timeout);
        auto [cec, ep] = co_await asio::async_connect(c->socket(), *endpoints, use_nothrow);
        c->disarm();
        if (cec) {
            dns.erase(dial.host + ":" + std::to_string(dial.port));  // maybe stale: look it up afresh next time
            r.failure = closed         ? http_failure::cancelled
                        : c->timed_out ? http_failure::timeout_before_send
                                       : http_failure::connect;
            r.error = std::string(proxy ? "connect to proxy " : "connect to ") + dial.host + ":" +
                      std::to_string(dial.port) + ": " + (c->timed_out ? std::string("timed out") : cec.message());
            co_return nullptr;
        }
        boost::system::error_code ignored;
        c->socket().set_option(tcp::no_delay(true), ignored);
        if (proxy && u.tls && !co_await open_tunnel(*c, u, *proxy_auth, o, r)) co_return nullptr;
        c->absolute_form = proxy && !u.tls;
        if (c->absolute_form && proxy_auth) c->proxy_authorization = *proxy_auth;
        if (c->secure) {
            SSL* ssl = c->secure->native_handle();
            if (!is_ip_literal(u.host) && !SSL_set_tlsext_host_name(ssl, u.host.c_str())) {
                r.failure = http_failure::tls_handshake;
                r.error = "cannot set SNI for " + u.host;
                co_return nullptr;
            }
            // OpenSSL checks the name itself, so a mismatch is reported as such.
            auto* param = SSL_get0_param(ssl);
            if (is_ip_literal(u.host))
                X509_VERIFY_PARAM_set1_ip_asc(param, u.host.c_str());
            else
                X509_VERIFY_PARAM_set1_host(param, u.host.c_str(), 0);
            c->arm(o.tls_handshake_timeout);
            auto [hec] = co_await c->secure->async_handshake(asio::ssl::stream_base::client, use_nothrow);
            c->disarm();
            if (hec) {
                const long verify = SSL_get_verify_result(ssl);
                if (closed) {
                    r.failure = http_failure::cancelled;
                } else if (c->timed_out) {
                    r.failure = http_failure::timeout_before_send;
                } else if (verify != X509_V_OK) {
                    r.failure = http_failure::tls_certificate;
                    r.error = "certificate of " + u.host + " rejected: " + X509_verify_cert_error_string(verify);
                    co_return nullptr;
                } else {
                    r.failure = http_failure::tls_handshake;
                }
                r.error = "TLS handshake with " + u.host + ": " + hec.message();
                co_return nullptr;
            }
        }
        ++stats.connections_opened;
        co_return c;
    }

    // One exchange on one connection. `retry_safe` is set only when the
    // request certainly never left: a reused connection that failed before
    // the kernel took a single byte of it. Any later failure is the caller's
    // to judge (ambiguous): it is never sent again here.
    asio::awaitable<void> exchange(connection& c, const wire_request& req, const url_parts& u, const http_settings& o,
                                   http_result& r, bool& retry_safe, bool& keep_alive,
                                   const std::function<bool()>* may_write) {
        retry_safe = false;
        keep_alive = false;
        if (may_write && !(*may_write)()) {
            // Nothing was written: the connection stays clean for the next request.
            r.failure = http_failure::withdrawn;
            r.error = "withdrawn by the caller before any byte was written";
            keep_alive = true;
            co_return;
        }
        // The request line depends on the connection (absolute-form through a proxy);
        // its buffer is the connection's, reused from one request to the next.
        std::string& line = c.request_line;
        line.clear();
        line += req.method;
        line += ' ';
        if (c.absolute_form) line.append("http://").append(req.host);
        line += u.target;
        line += " HTTP/1.1\r\n";
        if (!c.proxy_authorization.empty())
            line.append("Proxy-Authorization: ").append(c.proxy_authorization).append("\r\n");
        c.arm(o.request_timeout);
        boost::system::error_code wec;
        std::size_t written = 0;
        if (c.secure) {
            line += req.rest;  // one TLS record rather than two
            std::tie(wec, written) = co_await asio::async_write(*c.secure, asio::buffer(line), use_nothrow);
        } else {
            const std::array<asio::const_buffer, 2> wire{asio::buffer(line), asio::buffer(req.rest)};
            std::tie(wec, written) = co_await asio::async_write(*c.plain, wire, use_nothrow);
        }
        // Failures say whether the connection was a kept one: the evidence of
        // a keep-alive race in the attempt's history.
        auto reused_note = [&c]() -> std::string {
            return c.reused ? " (on a keep-alive connection idle " + std::to_string(c.idle_before.count()) + " ms)"
                            : std::string();
        };
        if (wec) {
            c.disarm();
            // Plain TCP: `written` is what the kernel took; none means the
            // server cannot have a byte of it. TLS: what the TLS layer took,
            // which may not have reached the kernel: counted as written, so a
            // TLS write failure is never taken for "nothing left".
            r.request_written = written > 0;
            if (closed) {
                r.failure = http_failure::cancelled;
            } else if (c.timed_out) {
                r.failure = written > 0 ? http_failure::timeout_after_send : http_failure::timeout_before_send;
            } else if (written == 0) {
                r.failure = http_failure::closed_before_send;
                retry_safe = c.reused;  // a stale keep-alive connection: a fresh one may carry it
            } else {
                r.failure = http_failure::closed_after_send;
                if (c.reused) ++stats.ambiguous_after_reuse;
            }
            r.error = "write: " + wec.message() + reused_note();
            co_return;
        }
        r.request_written = true;
        // Every answer from here on is the provider's to this request. The
        // header fields are parsed into an arena in this coroutine's frame
        // rather than one heap block per field; headers over its size (or
        // interim responses') spill to the heap.
        std::array<std::byte, 2048> arena;
        std::pmr::monotonic_buffer_resource fields_memory(arena.data(), arena.size());
        http_response_reader reader(&fields_memory, o.max_response_bytes, max_header_bytes);
        boost::system::error_code rec;
        bool eof = false;
        for (;;) {
            if (c.buffer.size() > 0) {
                const auto data = c.buffer.data();
                c.buffer.consume(reader.put({static_cast<const char*>(data.data()), data.size()}));
            }
            if (reader.status() != http_response_reader::state::reading) break;
            if (eof) {
                reader.put_eof();
                break;
            }
            // As Beast's own reads do: what the buffer has room for, at least
            // 512 bytes and at most 64 KiB per read.
            const std::size_t room = std::clamp<std::size_t>(c.buffer.capacity() - c.buffer.size(), 512, 65536);
            std::size_t n = 0;
            if (c.secure) {
                std::tie(rec, n) = co_await c.secure->async_read_some(c.buffer.prepare(room), use_nothrow);
            } else {
                std::tie(rec, n) = co_await c.plain->async_read_some(c.buffer.prepare(room), use_nothrow);
            }
            c.buffer.commit(n);
            if (rec == asio::error::eof) {
                eof = true;  // what came before it is parsed first
                rec = {};
            } else if (rec) {
                break;
            }
        }
        c.disarm();
        if (reader.status() != http_response_reader::state::complete) {
            if (closed) {
                r.failure = http_failure::cancelled;
            } else if (c.timed_out) {
                r.failure = http_failure::timeout_after_send;
                r.error = "no complete response within " + std::to_string(o.request_timeout.count()) + " ms";
            } else if (rec) {
                r.failure = is_connection_closed(rec) ? http_failure::closed_after_send : http_failure::protocol;
                r.error = "read response: " + rec.message();
            } else {
                r.failure = reader.failure();
                r.error = reader.error();
            }
            if (r.error.empty()) r.error = "read response: " + rec.message();
            r.error += reused_note();
            // A kept connection closed under the request: the server may have
            // dropped it as the request went out, or acted on it and then
            // failed. It cannot be told which, so it is not sent again here.
            if (c.reused && r.failure == http_failure::closed_after_send) ++stats.ambiguous_after_reuse;
            co_return;
        }
        auto& res = reader.response();
        r.response.status = static_cast<int>(res.result_int());
        r.response.headers.reserve(8);
        c.server_idle_limit = std::chrono::milliseconds::max();
        for (auto& f : res) {
            // Framing and per-connection headers are the client's business, not the adapter's.
            switch (f.name()) {
                case http::field::keep_alive:
                    if (auto t = keep_alive_timeout(f.value())) {
                        // Stop using it before the server closes it: a second
                        // before, or half way for a timeout under 2 s.
                        const std::chrono::milliseconds server = *t;
                        c.server_idle_limit =
                            server - std::min<std::chrono::milliseconds>(server / 2, std::chrono::seconds(1));
                    }
                    continue;
                case http::field::content_length:
                case http::field::transfer_encoding:
                case http::field::connection:
                case http::field::date:
                case http::field::server:
                    continue;
                default:
                    r.response.headers.push_back({std::string(f.name_string()), std::string(f.value())});
            }
        }
        r.response.body = std::move(res.body());
        // Bytes after the final response answer nothing that was asked: a
        // connection that has them could hand them to the next request.
        keep_alive = reader.keep_alive() && c.buffer.size() == 0;
    }

    static bool expired(const origin_pool& pool, const connection& c, std::chrono::steady_clock::time_point now) {
        return now - c.idle_since >= std::min(pool.idle_timeout, c.server_idle_limit);
    }

    // Closes the idle connections past their time. `all`: look at each one;
    // otherwise only when the oldest is past the pool's timeout (connections
    // go back at the end of `idle`, so the front is the oldest), and take_idle
    // checks a shorter limit a server announced on the one it takes.
    void close_expired(origin_pool& pool, std::chrono::steady_clock::time_point now, bool all) {
        if (pool.idle.empty() || (!all && now - pool.idle.front()->idle_since < pool.idle_timeout)) return;
        std::erase_if(pool.idle, [&](connection_ptr& c) {
            if (!expired(pool, *c, now)) return false;
            c->close();
            --pool.total;
            return true;
        });
    }

    // A warm idle connection, or nullptr. Not a coroutine: the common case
    // costs no coroutine frame.
    connection_ptr take_idle(origin_pool& pool) {
        if (closed) return nullptr;
        const auto now = std::chrono::steady_clock::now();
        close_expired(pool, now, /*all=*/false);
        while (!pool.idle.empty()) {
            auto candidate = std::move(pool.idle.back());  // the most recently used is the warmest
            pool.idle.pop_back();
            if (expired(pool, *candidate, now)) {
                candidate->close();
                --pool.total;
                continue;
            }
            if (candidate->still_usable()) {
                candidate->reused = true;
                candidate->idle_before =
                    std::chrono::duration_cast<std::chrono::milliseconds>(now - candidate->idle_since);
                ++stats.reused;
                return candidate;
            }
            ++stats.stale_closed;
            candidate->close();
            --pool.total;
        }
        return nullptr;
    }

    asio::awaitable<connection_ptr> acquire(origin_pool& pool, const url_parts& u, const http_settings& o,
                                            const tls_settings& t, http_result& r, bool fresh_only) {
        for (;;) {
            if (closed) {
                r.failure = http_failure::cancelled;
                r.error = "client is shutting down";
                co_return nullptr;
            }
            if (!fresh_only) {
                if (auto c = take_idle(pool)) co_return c;
            } else if (!pool.idle.empty()) {  // make room for a fresh one
                pool.idle.back()->close();
                pool.idle.pop_back();
                --pool.total;
            }
            if (pool.total < o.max_connections) {
                ++pool.total;
                r = http_result{};
                auto c = co_await open(u, o, t, r);
                if (!c) {
                    --pool.total;
                    pool.freed.notify_all();
                }
                co_return c;
            }
            co_await pool.freed.wait();
        }
    }
};

http_client::http_client(asio::any_io_executor ex, proxy_config proxies)
    : impl_(std::make_unique<impl>(std::move(ex), std::move(proxies))) {}
http_client::~http_client() = default;

http_client::counters http_client::stats() const {
    return impl_->stats;
}

void http_client::evict_idle() {
    const auto now = std::chrono::steady_clock::now();
    for (auto& [k, p] : impl_->pools) impl_->close_expired(*p, now, /*all=*/true);
}

void http_client::shutdown() {
    auto& s = *impl_;
    s.closed = true;
    for (auto* c : s.busy.items) c->close();
    for (auto& [k, p] : s.pools) {
        for (auto& c : p->idle) c->close();
        p->total -= static_cast<int>(p->idle.size());
        p->idle.clear();
        p->freed.notify_all();
    }
}

asio::awaitable<http_result> http_client::send(const outbound_request& request, const http_settings& o,
                                               const tls_settings& t, const std::function<bool()>* may_write) {
    auto& s = *impl_;
    http_result r;
    const auto route = s.route_for(request.url);
    if (!route) {
        r.failure = http_failure::invalid_url;
        r.error = "invalid URL: " + request.url;
        co_return r;
    }
    const url_parts* u = &route->parts;
    // The request is serialised here once, into one buffer: Beast's field map
    // and serializer cost more than the whole exchange on a keep-alive socket.
    wire_request req;
    if (request.method != "POST" && request.method != "PUT" && request.method != "PATCH" && request.method != "GET" &&
        request.method != "DELETE") {
        r.failure = http_failure::invalid_url;
        r.error = "unsupported HTTP method " + request.method;
        co_return r;
    }
    req.method = request.method;
    req.host = route->host_header;
    std::string& w = req.rest;
    w.reserve(160 + request.body.size() + request.headers.size() * 48);
    w += "Host: ";
    w += req.host;
    w += "\r\nUser-Agent: ";
    w += s.user_agent;
    w += "\r\n";
    for (auto& h : request.headers) {
        // A job's data ends up in headers (Idempotency-Key): no header injection.
        if (h.name.empty() || h.name.find_first_of(std::string_view(":\r\n\0 \t", 6)) != std::string::npos ||
            h.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
            r.failure = http_failure::invalid_url;
            r.error = "header " + h.name + " has a name or value that cannot be sent (line break or NUL)";
            co_return r;
        }
        // Framing headers are the client's to write.
        if (iequals(h.name, "Host") || iequals(h.name, "Content-Length") || iequals(h.name, "Transfer-Encoding") ||
            iequals(h.name, "Connection"))
            continue;
        w += h.name;
        w += ": ";
        w += h.value;
        w += "\r\n";
    }
    if (!request.body.empty() || request.method != "GET") {
        w += "Content-Length: ";
        w += std::to_string(request.body.size());
        w += "\r\n";
    }
    w += "\r\n";
    w += request.body;

    auto& pool = s.pool_for(u->tls ? route->origin_key + "#" + tls_profile_key(t) : route->origin_key);
    pool.idle_timeout = o.idle_timeout;
    for (int round = 0; round < 2; ++round) {
        // The retry after a kept connection that failed before the request
        // left always dials afresh.
        auto c = round == 0 ? s.take_idle(pool) : nullptr;
        if (!c) c = co_await s.acquire(pool, *u, o, t, r, /*fresh_only=*/round > 0);
        if (!c) co_return r;
        s.busy.insert(c.get());
        ++s.stats.requests;
        r = http_result{};
        bool retry_safe = false, keep_alive = false;
        co_await s.exchange(*c, req, *u, o, r, retry_safe, keep_alive, may_write);
        s.busy.erase(c.get());
        if ((r.ok() || r.failure == http_failure::withdrawn) && keep_alive && !s.closed) {
            c->idle_since = std::chrono::steady_clock::now();
            c->reused = false;
            pool.idle.push_back(std::move(c));
        } else {
            c->close();
            --pool.total;
        }
        pool.freed.notify_all();
        if (r.ok() || !retry_safe) co_return r;
        ++s.stats.resent_before_write;
    }
    co_return r;
}

}  // namespace outq
