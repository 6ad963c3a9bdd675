#include "outq/metrics_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <set>
#include <stdexcept>

#include "outq/detail/async_event.hpp"

namespace outq {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using detail::use_nothrow;

struct metrics_server::impl {
    impl(asio::any_io_executor ex, std::function<std::string()> r, std::function<probe_answer()> l,
         std::function<probe_answer()> rd)
        : executor(ex), acceptor(ex), render(std::move(r)), live(std::move(l)), ready(std::move(rd)) {}
    asio::any_io_executor executor;
    tcp::acceptor acceptor;
    std::function<std::string()> render;
    std::function<probe_answer()> live, ready;
    std::set<beast::tcp_stream*> sessions;  // closed by stop(), so an idle scraper cannot hold up exit

    asio::awaitable<void> session(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        sessions.insert(&stream);
        struct forget {
            impl& s;
            beast::tcp_stream* p;
            ~forget() { s.sessions.erase(p); }
        } guard{*this, &stream};
        beast::flat_buffer buffer;
        for (;;) {
            stream.expires_after(std::chrono::seconds(10));
            http::request<http::string_body> req;
            auto [rec, rn] = co_await http::async_read(stream, buffer, req, use_nothrow);
            if (rec) co_return;
            http::response<http::string_body> res;
            res.version(req.version());
            res.keep_alive(req.keep_alive());
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            std::string_view target = req.target();
            target = target.substr(0, target.find('?'));
            const bool head = req.method() == http::verb::head;
            if (req.method() != http::verb::get && !head) {
                res.result(http::status::method_not_allowed);
                res.set(http::field::allow, "GET, HEAD");
                res.body() = "method not allowed: only GET and HEAD\n";
            } else if (target == "/metrics") {
                res.result(http::status::ok);
                res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
                res.body() = render();
            } else if (target == "/healthz" || target == "/readyz") {
                const probe_answer a = target == "/healthz" ? live() : ready();
                res.result(a.ok ? http::status::ok : http::status::service_unavailable);
                res.body() = a.reason + "\n";
            } else {
                res.result(http::status::not_found);
                res.body() = "not found: /metrics, /healthz, /readyz\n";
            }
            res.prepare_payload();
            if (head) res.body().clear();  // the GET's Content-Length, no body
            auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
            if (wec || !res.keep_alive()) co_return;
        }
    }
};

metrics_server::metrics_server(asio::any_io_executor ex, std::function<std::string()> render,
                               std::function<probe_answer()> live, std::function<probe_answer()> ready)
    : impl_(std::make_unique<impl>(ex, std::move(render), std::move(live), std::move(ready))) {}
metrics_server::~metrics_server() = default;

void metrics_server::listen(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("metrics_listen: expected host:port, got " + address);
    boost::system::error_code ec;
    auto host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    auto ip = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (ec) throw std::runtime_error("metrics_listen: " + host + " is not an IP address");
    tcp::endpoint ep(ip, static_cast<unsigned short>(std::stoi(address.substr(colon + 1))));
    auto& a = impl_->acceptor;
    a.open(ep.protocol());
    a.set_option(tcp::acceptor::reuse_address(true));
    a.bind(ep, ec);
    if (ec) throw std::runtime_error("metrics_listen: cannot listen on " + address + ": " + ec.message());
    a.listen();
}

unsigned short metrics_server::port() const {
    return impl_->acceptor.local_endpoint().port();
}

asio::awaitable<void> metrics_server::serve() {
    auto& s = *impl_;
    while (s.acceptor.is_open()) {
        auto [ec, socket] = co_await s.acceptor.async_accept(use_nothrow);
        if (ec) {
            if (ec == asio::error::operation_aborted || !s.acceptor.is_open()) co_return;
            continue;
        }
        asio::co_spawn(s.executor, s.session(std::move(socket)), asio::detached);
    }
}

void metrics_server::stop() {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    for (auto* s : impl_->sessions) s->socket().close(ignored);
}

}  // namespace outq
