#include "outq/http_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <charconv>
#include <map>
#include <set>

#include "outq/detail/async_event.hpp"

namespace outq {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using detail::use_nothrow;

std::string_view to_string(http_failure f) {
    switch (f) {
        case http_failure::none: return "none";
        case http_failure::invalid_url: return "invalid_url";
        case http_failure::resolve: return "resolve";
        case http_failure::connect: return "connect";
        case http_failure::tls: return "tls";
        case http_failure::timeout_before_send: return "timeout_before_send";
        case http_failure::timeout_after_send: return "timeout_after_send";
        case http_failure::closed_after_send: return "closed_after_send";
        case http_failure::protocol: return "protocol";
        case http_failure::too_large: return "too_large";
        case http_failure::cancelled: return "cancelled";
    }
    return "unknown";
}

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
        u.target = std::string(url.substr(slash));
        if (u.target.front() == '?') u.target.insert(0, "/");
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

send_outcome outcome_from_failure(const http_result& r) {
    send_outcome o;
    o.error = std::string(to_string(r.failure)) + ": " + r.error;
    switch (r.failure) {
        case http_failure::timeout_after_send:
        case http_failure::closed_after_send: o.cls = outcome_class::ambiguous; break;
        case http_failure::protocol:
        case http_failure::too_large:
            // The provider answered, but not with something we can read: it may have acted.
            o.cls = outcome_class::ambiguous;
            break;
        case http_failure::invalid_url: o.cls = outcome_class::permanent; break;
        default: o.cls = outcome_class::retryable; break;
    }
    return o;
}

namespace {

struct connection {
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;
    std::chrono::steady_clock::time_point idle_since;
    bool reused = false;

    beast::tcp_stream& lowest() { return secure ? secure->next_layer() : *plain; }
    void close() {
        boost::system::error_code ignored;
        lowest().socket().close(ignored);
    }
};

struct origin_pool {
    explicit origin_pool(asio::any_io_executor ex) : freed(ex) {}
    std::vector<std::unique_ptr<connection>> idle;
    int total = 0;
    detail::async_event freed;
};

constexpr auto idle_timeout = std::chrono::seconds(30);

bool is_timeout(const boost::system::error_code& ec) { return ec == beast::error::timeout; }

bool is_connection_closed(const boost::system::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

struct http_client::impl {
    impl(asio::any_io_executor ex, asio::ssl::context* tls) : executor(ex), tls(tls) {}
    asio::any_io_executor executor;
    asio::ssl::context* tls;
    std::map<std::string, std::unique_ptr<origin_pool>, std::less<>> pools;
    std::set<connection*> busy;
    counters stats;
    bool closed = false;
    const std::string user_agent = std::string("outq/") + OUTQ_VERSION;

    origin_pool& pool_for(const std::string& key) {
        auto it = pools.find(key);
        if (it == pools.end()) it = pools.emplace(key, std::make_unique<origin_pool>(executor)).first;
        return *it->second;
    }

    asio::awaitable<std::unique_ptr<connection>> open(const url_parts& u, const http_call_options& o,
                                                      http_result& r) {
        auto c = std::make_unique<connection>();
        if (u.tls) {
            if (!tls) {
                r.failure = http_failure::tls;
                r.error = "https is not enabled in this worker";
                co_return nullptr;
            }
            c->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(executor, *tls);
        } else {
            c->plain = std::make_unique<beast::tcp_stream>(executor);
        }
        busy.insert(c.get());
        struct unbusy {
            impl& s;
            connection* c;
            ~unbusy() { s.busy.erase(c); }
        } guard{*this, c.get()};

        tcp::resolver resolver(executor);
        auto [rec, endpoints] = co_await resolver.async_resolve(u.host, std::to_string(u.port), use_nothrow);
        if (rec) {
            r.failure = http_failure::resolve;
            r.error = "cannot resolve " + u.host + ": " + rec.message();
            co_return nullptr;
        }
        c->lowest().expires_after(o.connect_timeout);
        auto [cec, ep] = co_await c->lowest().async_connect(endpoints, use_nothrow);
        if (cec) {
            r.failure = closed ? http_failure::cancelled
                        : is_timeout(cec) ? http_failure::timeout_before_send
                                          : http_failure::connect;
            r.error = "connect to " + u.host + ":" + std::to_string(u.port) + ": " +
                      (is_timeout(cec) ? std::string("timed out") : cec.message());
            co_return nullptr;
        }
        c->lowest().socket().set_option(tcp::no_delay(true));
        if (c->secure) {
            if (!SSL_set_tlsext_host_name(c->secure->native_handle(), u.host.c_str())) {
                r.failure = http_failure::tls;
                r.error = "cannot set SNI for " + u.host;
                co_return nullptr;
            }
            c->secure->set_verify_callback(asio::ssl::host_name_verification(u.host));
            auto [hec] = co_await c->secure->async_handshake(asio::ssl::stream_base::client, use_nothrow);
            if (hec) {
                r.failure = is_timeout(hec) ? http_failure::timeout_before_send : http_failure::tls;
                r.error = "TLS handshake with " + u.host + ": " + hec.message();
                co_return nullptr;
            }
        }
        ++stats.connections_opened;
        co_return c;
    }

    // One exchange on one connection. `retry_safe` is set when failing here
    // proves the server never processed the request (stale keep-alive).
    asio::awaitable<void> exchange(connection& c, const http::request<http::string_body>& req,
                                   const http_call_options& o, http_result& r, bool& retry_safe,
                                   bool& keep_alive) {
        retry_safe = false;
        keep_alive = false;
        c.lowest().expires_after(o.request_timeout);
        boost::system::error_code wec;
        if (c.secure) std::tie(wec, std::ignore) = co_await http::async_write(*c.secure, req, use_nothrow);
        else std::tie(wec, std::ignore) = co_await http::async_write(*c.plain, req, use_nothrow);
        if (wec) {
            if (closed) {
                r.failure = http_failure::cancelled;
            } else if (is_timeout(wec)) {
                r.failure = http_failure::timeout_after_send;  // part of it may be out
                r.request_written = true;
            } else {
                r.failure = http_failure::closed_after_send;
                r.request_written = true;
                retry_safe = c.reused && is_connection_closed(wec);
            }
            r.error = "write: " + wec.message();
            co_return;
        }
        r.request_written = true;
        http::response_parser<http::string_body> parser;
        parser.body_limit(o.max_response_bytes);
        parser.header_limit(16 * 1024);
        boost::system::error_code rec;
        if (c.secure) std::tie(rec, std::ignore) = co_await http::async_read(*c.secure, c.buffer, parser, use_nothrow);
        else std::tie(rec, std::ignore) = co_await http::async_read(*c.plain, c.buffer, parser, use_nothrow);
        if (rec) {
            if (closed) r.failure = http_failure::cancelled;
            else if (is_timeout(rec)) r.failure = http_failure::timeout_after_send;
            else if (rec == http::error::body_limit || rec == http::error::header_limit) r.failure = http_failure::too_large;
            else if (is_connection_closed(rec)) r.failure = http_failure::closed_after_send;
            else r.failure = http_failure::protocol;
            r.error = "read response: " + rec.message();
            // A reused connection closed before a single byte of answer: the
            // server dropped an idle connection as we wrote. Replayable only
            // when the provider can deduplicate (Idempotency-Key).
            retry_safe = c.reused && r.failure == http_failure::closed_after_send && !parser.got_some() &&
                         req.find("Idempotency-Key") != req.end();
            co_return;
        }
        auto& res = parser.get();
        r.response.status = static_cast<int>(res.result_int());
        r.response.headers.reserve(8);
        for (auto& f : res) r.response.headers.push_back({std::string(f.name_string()), std::string(f.value())});
        r.response.body = std::move(res.body());
        keep_alive = res.keep_alive();
    }

    asio::awaitable<std::unique_ptr<connection>> acquire(origin_pool& pool, const url_parts& u,
                                                         const http_call_options& o, http_result& r,
                                                         bool fresh_only) {
        for (;;) {
            if (closed) {
                r.failure = http_failure::cancelled;
                r.error = "client is shutting down";
                co_return nullptr;
            }
            const auto now = std::chrono::steady_clock::now();
            while (!pool.idle.empty()) {
                auto candidate = std::move(pool.idle.back());
                pool.idle.pop_back();
                if (!fresh_only && now - candidate->idle_since < idle_timeout &&
                    candidate->lowest().socket().is_open()) {
                    candidate->reused = true;
                    ++stats.reused;
                    co_return candidate;
                }
                candidate->close();
                --pool.total;
                if (fresh_only) break;
            }
            if (pool.total < o.max_connections) {
                ++pool.total;
                r = http_result{};
                auto c = co_await open(u, o, r);
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

http_client::http_client(asio::any_io_executor ex, asio::ssl::context* tls)
    : impl_(std::make_unique<impl>(std::move(ex), tls)) {}
http_client::~http_client() = default;

http_client::counters http_client::stats() const { return impl_->stats; }

void http_client::shutdown() {
    auto& s = *impl_;
    s.closed = true;
    for (auto* c : s.busy) c->close();
    for (auto& [k, p] : s.pools) {
        for (auto& c : p->idle) c->close();
        p->idle.clear();
        p->freed.notify_all();
    }
}

asio::awaitable<http_result> http_client::send(const outbound_request& request, const http_call_options& o) {
    auto& s = *impl_;
    http_result r;
    auto u = parse_http_url(request.url);
    if (!u) {
        r.failure = http_failure::invalid_url;
        r.error = "invalid URL: " + request.url;
        co_return r;
    }
    http::request<http::string_body> req;
    req.method(http::string_to_verb(request.method));
    if (req.method() == http::verb::unknown) {
        r.failure = http_failure::invalid_url;
        r.error = "unknown HTTP method " + request.method;
        co_return r;
    }
    req.target(u->target);
    req.version(11);
    const bool default_port = u->port == (u->tls ? 443 : 80);
    req.set(http::field::host, default_port ? u->host : u->host + ":" + std::to_string(u->port));
    req.set(http::field::user_agent, s.user_agent);
    for (auto& h : request.headers) req.set(h.name, h.value);
    req.body() = request.body;
    req.keep_alive(true);
    req.prepare_payload();

    const std::string key = (u->tls ? "https://" : "http://") + u->host + ":" + std::to_string(u->port);
    auto& pool = s.pool_for(key);
    for (int round = 0; round < 2; ++round) {
        if (s.closed) {
            r.failure = http_failure::cancelled;
            r.error = "client is shutting down";
            co_return r;
        }
        // The retry after a stale keep-alive connection always dials afresh.
        auto c = co_await s.acquire(pool, *u, o, r, /*fresh_only=*/round > 0);
        if (!c) co_return r;
        s.busy.insert(c.get());
        ++s.stats.requests;
        r = http_result{};
        bool retry_safe = false, keep_alive = false;
        co_await s.exchange(*c, req, o, r, retry_safe, keep_alive);
        s.busy.erase(c.get());
        if (r.ok() && keep_alive && !s.closed) {
            c->idle_since = std::chrono::steady_clock::now();
            c->lowest().expires_never();
            pool.idle.push_back(std::move(c));
        } else {
            c->close();
            --pool.total;
        }
        pool.freed.notify_all();
        if (r.ok() || !retry_safe) co_return r;
        // Stale keep-alive connection: once more on a fresh one.
    }
    co_return r;
}

}  // namespace outq
