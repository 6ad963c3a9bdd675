#include "outq/http_listener.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <stdexcept>

#include "outq/detail/async_event.hpp"

namespace outq {

namespace asio = boost::asio;
using asio::ip::tcp;

tcp::endpoint parse_listen_address(const std::string& address, std::string_view what) {
    const std::string name(what);
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error(name + ": expected host:port, got " + address);
    auto host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (ec) throw std::runtime_error(name + ": " + host + " is not an IP address");
    unsigned long port = 70000;
    try {
        std::size_t used = 0;
        port = std::stoul(address.substr(colon + 1), &used);
        if (used != address.size() - colon - 1) port = 70000;
    } catch (const std::exception&) {
    }
    if (port > 65535) throw std::runtime_error(name + ": bad port in " + address);
    return {ip, static_cast<unsigned short>(port)};
}

http_listener::http_listener(asio::any_io_executor ex) : executor_(ex), acceptor_(ex) {}

void http_listener::listen(const tcp::endpoint& at, std::string_view what) {
    boost::system::error_code ec;
    acceptor_.open(at.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(at, ec);
    if (ec)
        throw std::runtime_error(std::string(what) + ": cannot listen on " + at.address().to_string() + ":" +
                                 std::to_string(at.port()) + ": " + ec.message());
    acceptor_.listen();
}

unsigned short http_listener::port() const {
    return acceptor_.local_endpoint().port();
}

asio::awaitable<void> http_listener::run_session(tcp::socket socket, session serve_one) {
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    const bool loopback = !ec && peer.address().is_loopback();
    boost::beast::tcp_stream stream(std::move(socket));
    sessions_.insert(&stream);
    struct forget {
        std::set<boost::beast::tcp_stream*>& open;
        boost::beast::tcp_stream* p;
        ~forget() { open.erase(p); }
    } guard{sessions_, &stream};
    co_await serve_one(stream, loopback);
}

asio::awaitable<void> http_listener::serve(session serve_one) {
    while (acceptor_.is_open()) {
        auto [ec, socket] = co_await acceptor_.async_accept(detail::use_nothrow);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
            continue;
        }
        asio::co_spawn(executor_, run_session(std::move(socket), serve_one), asio::detached);
    }
}

void http_listener::stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto* s : sessions_) s->socket().close(ignored);
}

}  // namespace outq
