#include "outq/metrics_server.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "outq/detail/async_event.hpp"
#include "outq/http_listener.hpp"

namespace outq {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using detail::use_nothrow;

struct metrics_server::impl {
    impl(asio::any_io_executor ex, std::function<std::string()> r, std::function<probe_answer()> l,
         std::function<probe_answer()> rd)
        : listener(ex), render(std::move(r)), live(std::move(l)), ready(std::move(rd)) {}
    http_listener listener;
    std::function<std::string()> render;
    std::function<probe_answer()> live, ready;

    asio::awaitable<void> session(beast::tcp_stream& stream) {
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
            const bool head = req.method() == http::verb::head;
            const auto route = route_metrics_request(req.method_string(), req.target());
            if (route == metrics_route::method_not_allowed) {
                res.result(http::status::method_not_allowed);
                res.set(http::field::allow, "GET, HEAD");
                res.body() = "method not allowed: only GET and HEAD\n";
            } else if (route == metrics_route::metrics) {
                res.result(http::status::ok);
                res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
                res.body() = render();
            } else if (route == metrics_route::healthz || route == metrics_route::readyz) {
                const probe_answer a = route == metrics_route::healthz ? live() : ready();
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
    impl_->listener.listen(parse_listen_address(address, "metrics_listen"), "metrics_listen");
}

unsigned short metrics_server::port() const {
    return impl_->listener.port();
}

asio::awaitable<void> metrics_server::serve() {
    co_await impl_->listener.serve(
        [this](beast::tcp_stream& stream, bool) -> asio::awaitable<void> { co_await impl_->session(stream); });
}

void metrics_server::stop() {
    impl_->listener.stop();
}

}  // namespace outq
