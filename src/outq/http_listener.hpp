#pragma once
// The listening half of outq's small HTTP servers (the worker's metrics and
// probes endpoint, `outq web`): one acceptor, a coroutine per connection that
// owns its stream, and stop() closing the acceptor and every open connection,
// so that an idle client cannot hold up an exit. What a connection is served
// is the caller's.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

namespace outq {

// "host:port" (host an IP address, [v6] in brackets; an empty host is every
// IPv4 address). Throws std::runtime_error naming `what` (the setting) otherwise.
boost::asio::ip::tcp::endpoint parse_listen_address(const std::string& address, std::string_view what);

class http_listener {
  public:
    // One connection: its stream, and whether its peer is on loopback.
    using session = std::function<boost::asio::awaitable<void>(boost::beast::tcp_stream&, bool peer_loopback)>;

    explicit http_listener(boost::asio::any_io_executor ex);
    // Throws std::runtime_error naming `what` when it cannot listen.
    void listen(const boost::asio::ip::tcp::endpoint& at, std::string_view what);
    unsigned short port() const;
    // Accepts until stop(), each connection served by `serve_one` in a coroutine of its own.
    boost::asio::awaitable<void> serve(session serve_one);
    void stop();

  private:
    boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket, session serve_one);

    boost::asio::any_io_executor executor_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::set<boost::beast::tcp_stream*> sessions_;  // open connections, closed by stop()
};

}  // namespace outq
