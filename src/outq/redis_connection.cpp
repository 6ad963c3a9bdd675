#include "outq/redis_connection.hpp"

#include "outq/redis_cluster_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <charconv>
#include <deque>

#include "outq/detail/async_event.hpp"
#include "outq/log.hpp"
#include "outq/reply_parser.hpp"

namespace outq::redis {

namespace asio = boost::asio;
using asio::ip::tcp;
using detail::use_nothrow;

std::optional<endpoint> parse_url(std::string_view url, std::string& error) {
    endpoint ep;
    std::string_view rest;
    if (url.substr(0, 8) == "redis://") {
        rest = url.substr(8);
    } else if (url.substr(0, 9) == "rediss://") {
        rest = url.substr(9);
        ep.tls = true;
    } else {
        error = "redis URL must start with redis:// or rediss://";
        return std::nullopt;
    }
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        auto userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
            ep.user = std::string(userinfo.substr(0, colon));
            ep.password = std::string(userinfo.substr(colon + 1));
        } else {
            ep.password = std::string(userinfo);  // redis://secret@host: password only
        }
    }
    std::string_view hostport = rest;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        hostport = rest.substr(0, slash);
        auto db = rest.substr(slash + 1);
        if (!db.empty()) {
            auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), ep.db);
            if (ec != std::errc{} || p != db.data() + db.size() || ep.db < 0) {
                error = "redis URL: database must be a number";
                return std::nullopt;
            }
        }
    }
    std::string_view host = hostport;
    if (!hostport.empty() && hostport.front() == '[') {  // [::1]:6379
        auto close = hostport.find(']');
        if (close == std::string_view::npos) {
            error = "redis URL: unterminated IPv6 address";
            return std::nullopt;
        }
        host = hostport.substr(1, close - 1);
        hostport = hostport.substr(close + 1);
        if (!hostport.empty() && hostport.front() == ':')
            hostport = hostport.substr(0);
        else
            hostport = {};
    } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
        host = hostport.substr(0, colon);
        hostport = hostport.substr(colon);
    } else {
        hostport = {};
    }
    if (!hostport.empty()) {
        auto port = hostport.substr(1);
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc{} || ptr != port.data() + port.size() || p == 0 || p > 65535) {
            error = "redis URL: invalid port";
            return std::nullopt;
        }
        ep.port = static_cast<std::uint16_t>(p);
    }
    if (host.empty()) {
        error = "redis URL: missing host";
        return std::nullopt;
    }
    ep.host = std::string(host);
    return ep;
}

connection_options options_from(const redis_settings& settings) {
    std::string error;
    auto ep = parse_url(settings.url, error);
    if (!ep) throw config_error("config: redis.url: " + error);
    if (!settings.password.empty()) ep->password = settings.password;
    connection_options o;
    o.where = *ep;
    o.tls_ca_file = settings.tls_ca_file;
    o.tls_verify = settings.tls_verify;
    o.connect_timeout = settings.connect_timeout;
    o.command_timeout = settings.command_timeout;
    o.sentinel.master = settings.sentinel_master;
    for (const auto& url : settings.sentinel_nodes) {
        auto node = parse_url(url, error);
        if (!node) throw config_error("config: redis.sentinel.nodes: " + url + ": " + error);
        o.sentinel.nodes.push_back(*node);
    }
    for (const auto& url : settings.cluster_nodes) {
        auto node = parse_url(url, error);
        if (!node) throw config_error("config: redis.cluster.nodes: " + url + ": " + error);
        if (node->db != 0) throw config_error("config: redis.cluster.nodes: " + url + ": a cluster has only db 0");
        if (node->password.empty()) {
            node->user = ep->user;
            node->password = ep->password;
        }
        if (!settings.password.empty()) node->password = settings.password;
        o.cluster.push_back(*node);
    }
    return o;
}

namespace failover {

bool says_not_primary(const value& v) {
    if (!v.is_error()) return false;
    for (std::string_view prefix : {"READONLY", "MASTERDOWN", "UNBLOCKED"})
        if (std::string_view(v.str).substr(0, prefix.size()) == prefix) return true;
    return false;
}

std::optional<std::string> parse_switch_master(std::string_view payload, std::string_view master) {
    std::vector<std::string_view> words;
    while (!payload.empty()) {
        const auto space = payload.find(' ');
        words.push_back(payload.substr(0, space));
        if (space == std::string_view::npos) break;
        payload.remove_prefix(space + 1);
    }
    if (words.size() != 5 || words[0] != master || words[3].empty() || words[4].empty()) return std::nullopt;
    for (char c : words[4])
        if (c < '0' || c > '9') return std::nullopt;
    return std::string(words[3]) + ":" + std::string(words[4]);
}

std::optional<std::pair<std::string, std::uint16_t>> parse_master_address(const value& v) {
    if (v.type != value::kind::array || v.elements.size() != 2) return std::nullopt;
    const auto& host = v.elements[0];
    const auto& port = v.elements[1];
    if (!host.is_string() || !port.is_string() || host.str.empty()) return std::nullopt;
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.str.data(), port.str.data() + port.str.size(), p);
    if (ec != std::errc{} || ptr != port.str.data() + port.str.size() || p == 0 || p > 65535) return std::nullopt;
    return std::pair{host.str, static_cast<std::uint16_t>(p)};
}

std::string parse_role(const value& v) {
    if (v.type != value::kind::array || v.elements.empty() || !v.elements[0].is_string()) return {};
    return v.elements[0].str;
}

}  // namespace failover

struct connection::impl {
    impl(asio::any_io_executor ex, connection_options o)
        : executor(ex), options(std::move(o)), deadline(ex), idle(ex), wait_timer(ex) {}

    asio::any_io_executor executor;
    connection_options options;
    std::unique_ptr<asio::ssl::context> ssl_ctx;
    std::unique_ptr<tcp::socket> plain;
    std::unique_ptr<asio::ssl::stream<tcp::socket>> secure;
    reply_parser parser;
    std::string out;
    std::vector<char> in = std::vector<char>(64 * 1024);
    asio::steady_timer deadline;
    std::uint64_t generation = 0;  // bumps at every close, so a stale deadline cannot close a new socket
    bool busy = false;
    detail::async_event idle;
    bool timed_out = false;
    std::int64_t id = 0;
    bool name_refused_logged = false;
    // Pub/sub: a subscribed connection, the messages read ahead of a reply
    // waited for, and the quiet wait of next_message (which, unlike the
    // deadline, ends a read without closing the connection).
    bool subscribed = false;
    std::deque<pushed_message> kept;
    asio::steady_timer wait_timer;
    std::uint64_t wait_seq = 0;
    bool wait_over = false;
    bool interrupted = false;
    std::uint64_t not_primary = 0;
    std::string dialled;  // host:port of the last dial

    // Asks the sentinels in turn where the primary is.
    asio::awaitable<exec_result> find_primary(std::string& host, std::uint16_t& port) {
        exec_result r;
        std::string errors;
        for (const auto& node : options.sentinel.nodes) {
            connection_options o;
            o.where = node;
            o.tls_ca_file = options.tls_ca_file;
            o.tls_verify = options.tls_verify;
            o.connect_timeout = options.connect_timeout;
            o.command_timeout = options.connect_timeout;
            connection sentinel(executor, o);
            auto a =
                co_await sentinel.exec(command("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(options.sentinel.master));
            std::string why;
            if (!a.ok()) {
                why = a.error;
            } else if (auto found = failover::parse_master_address(a.replies[0])) {
                host = found->first;
                port = found->second;
                co_return r;
            } else {
                why =
                    a.replies[0].is_error() ? a.replies[0].str : "does not know the master " + options.sentinel.master;
            }
            errors += (errors.empty() ? "" : "; ") + node.host + ":" + std::to_string(node.port) + ": " + why;
        }
        r.ec = asio::error::make_error_code(asio::error::host_not_found);
        r.error = "no sentinel named the primary of " + options.sentinel.master + " (" + errors + ")";
        co_return r;
    }

    tcp::socket& lowest() { return secure ? secure->next_layer() : *plain; }
    bool connected() const { return (plain && plain->is_open()) || (secure && secure->next_layer().is_open()); }

    void close_socket() {
        ++generation;
        boost::system::error_code ignored;
        if (plain) plain->close(ignored);
        if (secure) secure->next_layer().close(ignored);
        plain.reset();
        secure.reset();
        parser.reset();
        subscribed = false;
        kept.clear();
    }

    // Ends the socket's operations without destroying it (a coroutine may be
    // suspended in one): they complete with an error, and their caller closes.
    void shut_socket() {
        boost::system::error_code ignored;
        if (plain) plain->close(ignored);
        if (secure) secure->next_layer().close(ignored);
    }

    exec_result transport_failure(boost::system::error_code ec, std::string_view what) {
        exec_result r;
        if (interrupted) {
            r.ec = asio::error::make_error_code(asio::error::operation_aborted);
            r.error = "redis: interrupted";
        } else if (timed_out) {
            r.ec = asio::error::make_error_code(asio::error::timed_out);
            r.error = "redis deadline exceeded";
        } else {
            r.ec = ec;
            r.error = "redis " + std::string(what) + ": " + ec.message();
        }
        return r;
    }

    // Reads one reply (any shape) into `v`.
    asio::awaitable<exec_result> read_one(value& v) {
        for (;;) {
            const auto st = parser.next(v);
            if (st == reply_parser::status::ok) co_return exec_result{};
            if (st == reply_parser::status::protocol_error) {
                exec_result r;
                r.ec = asio::error::make_error_code(asio::error::invalid_argument);
                r.error = "redis protocol error: " + parser.error_text();
                co_return r;
            }
            auto [ec, n] = co_await read_some();
            if (ec) co_return transport_failure(ec, "read");
            parser.feed(in.data(), n);
        }
    }

    // Writes `c` and reads replies under the command timeout until one that
    // `done` accepts; messages that come first are kept. Closes on failure.
    template <class Done>
    asio::awaitable<exec_result> subscriber_round(const command& c, std::size_t expected, Done done,
                                                  std::string_view name) {
        out.clear();
        c.append_to(out);
        arm_deadline(options.command_timeout);
        exec_result r;
        const auto wec = co_await write_all();
        if (wec) {
            r = transport_failure(wec, "write");
        } else {
            while (r.replies.size() < expected) {
                value v;
                auto got = co_await read_one(v);
                if (!got.ok()) {
                    r = std::move(got);
                    break;
                }
                const auto p = classify_pubsub(v);
                if (p.what == pubsub_reply::kind::message) {
                    kept.push_back({std::string(p.channel), std::string(p.payload)});
                } else if (done(p)) {
                    r.replies.push_back(std::move(v));
                } else if (p.what == pubsub_reply::kind::other) {
                    r.ec = asio::error::make_error_code(asio::error::invalid_argument);
                    r.error = "unexpected reply to " + std::string(name) + ": " +
                              (v.is_error() ? v.str : std::string("not a pub/sub reply"));
                    break;
                }
            }
        }
        deadline.cancel();
        if (!r.ok()) close_socket();
        co_return r;
    }

    void arm_deadline(std::chrono::milliseconds d) {
        timed_out = false;
        deadline.expires_after(d);
        deadline.async_wait([this, gen = generation](boost::system::error_code ec) {
            if (ec || gen != generation) return;
            timed_out = true;
            boost::system::error_code ignored;
            if (plain) plain->close(ignored);
            if (secure) secure->next_layer().close(ignored);
        });
    }

    asio::awaitable<boost::system::error_code> write_all() {
        if (secure) {
            auto [ec, n] = co_await asio::async_write(*secure, asio::buffer(out), use_nothrow);
            co_return ec;
        }
        auto [ec, n] = co_await asio::async_write(*plain, asio::buffer(out), use_nothrow);
        co_return ec;
    }

    asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some() {
        if (secure) {
            auto [ec, n] = co_await secure->async_read_some(asio::buffer(in), use_nothrow);
            co_return std::pair{ec, n};
        }
        auto [ec, n] = co_await plain->async_read_some(asio::buffer(in), use_nothrow);
        co_return std::pair{ec, n};
    }

    // Reads until `count` replies were parsed.
    asio::awaitable<exec_result> read_replies(std::size_t count) {
        exec_result r;
        r.replies.reserve(count);
        std::size_t read = 0;
        while (r.replies.size() < count) {
            value v;
            auto st = parser.next(v);
            if (st == reply_parser::status::ok) {
                r.replies.push_back(std::move(v));
                continue;
            }
            if (st == reply_parser::status::protocol_error) {
                r.ec = asio::error::make_error_code(asio::error::invalid_argument);
                r.error = "redis protocol error: " + parser.error_text();
                co_return r;
            }
            auto [ec, n] = co_await read_some();
            if (ec) {
                r.ec = timed_out ? asio::error::make_error_code(asio::error::timed_out) : ec;
                r.error = timed_out ? "redis deadline exceeded" : "redis read: " + ec.message();
                co_return r;
            }
            read += n;
            if (options.max_reply_bytes != 0 && read > options.max_reply_bytes) {
                r.ec = asio::error::make_error_code(asio::error::message_size);
                r.error = "redis reply longer than " + std::to_string(options.max_reply_bytes) + " bytes: not read";
                r.too_large = true;
                r.replies.clear();
                co_return r;
            }
            parser.feed(in.data(), n);
        }
        co_return r;
    }

    asio::awaitable<exec_result> round_trip(const std::vector<command>& commands) {
        out.clear();
        for (auto& c : commands) c.append_to(out);
        exec_result r;
        if (auto ec = co_await write_all()) {
            r.ec = timed_out ? asio::error::make_error_code(asio::error::timed_out) : ec;
            r.error = timed_out ? "redis deadline exceeded" : "redis write: " + ec.message();
            co_return r;
        }
        co_return co_await read_replies(commands.size());
    }

    asio::awaitable<exec_result> connect() {
        exec_result r;
        close_socket();
        endpoint ep = options.where;
        const bool via_sentinel = !options.sentinel.empty();
        if (via_sentinel) {
            auto found = co_await find_primary(ep.host, ep.port);
            if (!found.ok()) co_return found;
        }
        dialled = ep.host + ":" + std::to_string(ep.port);
        arm_deadline(options.connect_timeout);
        tcp::resolver resolver(executor);
        auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use_nothrow);
        if (rec) {
            r.ec = rec;
            r.error = "resolve " + ep.host + ": " + rec.message();
            co_return r;
        }
        if (ep.tls) {
            if (!ssl_ctx) {
                ssl_ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
                ssl_ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                                     asio::ssl::context::no_tlsv1_1);
                boost::system::error_code ec;
                if (options.tls_ca_file.empty())
                    ssl_ctx->set_default_verify_paths(ec);
                else
                    ssl_ctx->load_verify_file(options.tls_ca_file, ec);
                if (ec) {
                    r.ec = ec;
                    r.error = "TLS CA " + options.tls_ca_file + ": " + ec.message();
                    ssl_ctx.reset();
                    co_return r;
                }
                ssl_ctx->set_verify_mode(options.tls_verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
            }
            secure = std::make_unique<asio::ssl::stream<tcp::socket>>(executor, *ssl_ctx);
            if (options.tls_verify) secure->set_verify_callback(asio::ssl::host_name_verification(ep.host));
            SSL_set_tlsext_host_name(secure->native_handle(), ep.host.c_str());
        } else {
            plain = std::make_unique<tcp::socket>(executor);
        }
        // The deadline's closure applies to the socket created above.
        arm_deadline(options.connect_timeout);
        auto [cec, endpoint] = co_await asio::async_connect(lowest(), results, use_nothrow);
        if (cec) {
            r.ec = timed_out ? asio::error::make_error_code(asio::error::timed_out) : cec;
            r.error = "connect " + ep.host + ":" + std::to_string(ep.port) + ": " +
                      (timed_out ? std::string("timed out") : cec.message());
            close_socket();
            co_return r;
        }
        boost::system::error_code ignored;
        lowest().set_option(tcp::no_delay(true), ignored);
        if (secure) {
            auto [hec] = co_await secure->async_handshake(asio::ssl::stream_base::client, use_nothrow);
            if (hec) {
                r.ec = hec;
                r.error =
                    "TLS handshake with " + ep.host + ": " + (timed_out ? std::string("timed out") : hec.message());
                close_socket();
                co_return r;
            }
        }
        std::vector<command> hello;
        if (!ep.password.empty()) {
            command auth("AUTH");
            if (!ep.user.empty()) auth.arg(ep.user);
            auth.arg(ep.password);
            hello.push_back(std::move(auth));
        }
        if (ep.db != 0) hello.push_back(command("SELECT").arg(ep.db));
        // CLIENT SETNAME and CLIENT ID are conveniences: a user without the
        // CLIENT command still works (the name is missing from CLIENT LIST).
        const std::size_t optional_from = hello.size();
        if (!options.client_name.empty()) hello.push_back(command("CLIENT").arg("SETNAME").arg(options.client_name));
        const std::size_t id_at = options.want_client_id ? hello.size() : std::size_t(-1);
        if (options.want_client_id) hello.push_back(command("CLIENT").arg("ID"));
        // Sentinel's answer may be stale (a failover under way): only a primary will do.
        const std::size_t role_at = via_sentinel ? hello.size() : std::size_t(-1);
        if (via_sentinel) hello.push_back(command("ROLE"));
        id = 0;
        if (!hello.empty()) {
            auto hr = co_await round_trip(hello);
            if (!hr.ok()) {
                close_socket();
                co_return hr;
            }
            for (std::size_t i = 0; i < hr.replies.size(); ++i) {
                auto& v = hr.replies[i];
                if (i == id_at && v.type == value::kind::integer) id = v.integer;
                if (i == role_at) {
                    if (failover::parse_role(v) == "master") continue;
                    r.ec = asio::error::make_error_code(asio::error::connection_refused);
                    r.error = "sentinel named " + dialled + " as the primary of " + options.sentinel.master +
                              ", but it is not one (ROLE: " + (v.is_error() ? v.str : failover::parse_role(v)) + ")";
                    close_socket();
                    co_return r;
                }
                if (v.is_error() && i >= optional_from) {
                    if (!name_refused_logged)
                        log::warn("redis refused CLIENT SETNAME/ID; going on without them",
                                  "client=" + log::value(options.client_name) + " error=" + log::value(v.str));
                    name_refused_logged = true;
                    continue;
                }
                if (v.is_error()) {
                    r.ec = asio::error::make_error_code(asio::error::access_denied);
                    r.error = "redis handshake: " + v.str;
                    close_socket();
                    co_return r;
                }
            }
        }
        deadline.cancel();
        co_return r;
    }
};

connection::connection(asio::any_io_executor ex, connection_options options)
    : impl_(std::make_unique<impl>(ex, options)) {
    if (!impl_->options.cluster.empty()) cluster_ = std::make_unique<cluster_router>(ex, std::move(options));
}

connection::~connection() {
    if (impl_) impl_->close_socket();
}

void connection::close() {
    if (cluster_) cluster_->close();
    impl_->close_socket();
}
void connection::redial() {
    if (cluster_) return;  // a cluster announces its moves itself (MOVED)
    impl_->shut_socket();
}
bool connection::is_connected() const {
    return cluster_ ? cluster_->is_connected() : impl_->connected();
}
const connection_options& connection::options() const {
    return impl_->options;
}

asio::awaitable<exec_result> connection::exec(const command& c, std::optional<std::chrono::milliseconds> timeout) {
    std::vector<command> one;
    one.push_back(c);
    co_return co_await exec(one, timeout);
}

asio::awaitable<exec_result> connection::exec(const std::vector<command>& commands,
                                              std::optional<std::chrono::milliseconds> timeout) {
    co_return co_await exec(commands, timeout, on_stale::fail);
}

asio::awaitable<exec_result> connection::subscribe(const std::vector<std::string>& channels) {
    // A cluster delivers every PUBLISH to every node: one node's subscription is enough.
    if (cluster_) co_return co_await cluster_->any_node().subscribe(channels);
    auto& s = *impl_;
    s.interrupted = false;
    if (!s.connected()) {
        auto cr = co_await s.connect();
        if (!cr.ok()) co_return cr;
    }
    command c("SUBSCRIBE");
    for (auto& ch : channels) c.arg(ch);
    auto r = co_await s.subscriber_round(
        c, channels.size(), [](const pubsub_reply& p) { return p.what == pubsub_reply::kind::subscribe; }, "SUBSCRIBE");
    if (r.ok()) s.subscribed = true;
    co_return r;
}

asio::awaitable<exec_result> connection::ping_subscribed() {
    if (cluster_) co_return co_await cluster_->any_node().ping_subscribed();
    auto& s = *impl_;
    if (!s.subscribed || !s.connected()) co_return s.transport_failure(asio::error::not_connected, "PING");
    co_return co_await s.subscriber_round(
        command("PING"), 1, [](const pubsub_reply& p) { return p.what == pubsub_reply::kind::pong; }, "PING");
}

asio::awaitable<push_result> connection::next_message(std::chrono::milliseconds wait) {
    if (cluster_) co_return co_await cluster_->any_node().next_message(wait);
    auto& s = *impl_;
    push_result r;
    if (!s.kept.empty()) {
        r.message = std::move(s.kept.front());
        s.kept.pop_front();
        co_return r;
    }
    if (!s.subscribed || !s.connected()) {
        auto f = s.transport_failure(asio::error::not_connected, "read");
        r.ec = f.ec;
        r.error = s.subscribed || s.interrupted ? f.error : "redis: not subscribed";
        co_return r;
    }
    s.wait_over = false;
    s.wait_timer.expires_after(wait);
    s.wait_timer.async_wait([&s, seq = ++s.wait_seq](boost::system::error_code ec) {
        if (ec || seq != s.wait_seq || !s.connected()) return;
        s.wait_over = true;
        boost::system::error_code ignored;
        s.lowest().cancel(ignored);  // ends the read; the socket stays open
    });
    for (;;) {
        value v;
        const auto st = s.parser.next(v);
        if (st == reply_parser::status::ok) {
            const auto p = classify_pubsub(v);
            if (p.what == pubsub_reply::kind::message) {
                r.message = pushed_message{std::string(p.channel), std::string(p.payload)};
                break;
            }
            if (p.what != pubsub_reply::kind::other) continue;  // a late confirmation or pong
            r.ec = asio::error::make_error_code(asio::error::invalid_argument);
            r.error = "unexpected reply on a subscribed connection: " +
                      (v.is_error() ? v.str : std::string("not a pub/sub reply"));
            break;
        }
        if (st == reply_parser::status::protocol_error) {
            r.ec = asio::error::make_error_code(asio::error::invalid_argument);
            r.error = "redis protocol error: " + s.parser.error_text();
            break;
        }
        if (s.wait_over) break;  // quiet: nothing within the wait
        auto [ec, n] = co_await s.read_some();
        if (ec) {
            if (s.wait_over && !s.interrupted && ec == asio::error::operation_aborted) break;
            auto f = s.transport_failure(ec, "read");
            r.ec = f.ec;
            r.error = std::move(f.error);
            break;
        }
        s.parser.feed(s.in.data(), n);
    }
    ++s.wait_seq;
    s.wait_timer.cancel();
    if (!r.ok()) s.close_socket();
    co_return r;
}

void connection::interrupt() {
    if (cluster_) cluster_->any_node().interrupt();
    impl_->interrupted = true;
    impl_->wait_timer.cancel();
    impl_->shut_socket();
}

bool connection::subscribed() const {
    if (cluster_) return cluster_->any_node().subscribed();
    return impl_->subscribed && impl_->connected();
}

std::int64_t connection::client_id() const {
    return !cluster_ && impl_->connected() ? impl_->id : 0;
}

std::uint64_t connection::not_primary_replies() const {
    return cluster_ ? cluster_->not_primary_replies() : impl_->not_primary;
}

std::string connection::peer() const {
    return cluster_ ? cluster_->peer() : impl_->dialled;
}

const cluster_router* connection::cluster() const {
    return cluster_.get();
}

asio::awaitable<exec_result> connection::exec(const std::vector<command>& commands,
                                              std::optional<std::chrono::milliseconds> timeout, on_stale stale) {
    if (cluster_) co_return co_await cluster_->exec(commands, timeout, stale);
    auto& s = *impl_;
    while (s.busy) co_await s.idle.wait();
    s.busy = true;
    struct release {
        impl& s;
        ~release() {
            s.busy = false;
            s.idle.notify_all();
        }
    } guard{s};

    for (int round = 0;; ++round) {
        const bool reused = s.connected();
        if (!reused) {
            auto cr = co_await s.connect();
            if (!cr.ok()) co_return cr;
        }
        s.arm_deadline(timeout.value_or(s.options.command_timeout));
        auto r = co_await s.round_trip(commands);
        s.deadline.cancel();
        if (r.ok()) {
            // Not the primary any more: the replies are returned as they are (the
            // callers wait such errors out), and the next call dials again.
            for (const auto& v : r.replies)
                if (failover::says_not_primary(v)) {
                    ++s.not_primary;
                    s.close_socket();
                    break;
                }
            co_return r;
        }
        s.close_socket();
        // A connection that sat open while the server restarted fails on its
        // first use: once, for commands that may run twice, try a fresh one.
        const bool stale_peer = reused && r.replies.empty() && !s.timed_out && !r.too_large;
        if (stale == on_stale::retry_once && stale_peer && round == 0) continue;
        co_return r;
    }
}

}  // namespace outq::redis
