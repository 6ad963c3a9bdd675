#pragma once
// Async HTTP/1.1 client on Boost.Beast: a keep-alive connection pool per
// origin, deadlines on connect and on the whole exchange, response size limits,
// and failures reported as distinct classes, in particular whether the request
// may have reached the provider (ambiguous) or certainly did not.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "outq/adapter.hpp"

namespace boost::asio::ssl {
class context;
}

namespace outq {

enum class http_failure {
    none,
    invalid_url,
    resolve,               // host name did not resolve
    connect,               // refused, unreachable
    tls,                   // handshake or certificate failure
    timeout_before_send,   // connect/handshake deadline
    timeout_after_send,    // the request was written, no complete answer in time
    closed_after_send,     // connection reset/closed after the request was written
    protocol,              // malformed response
    too_large,             // response body or headers over the limit
    cancelled,             // the client is shutting down
};

std::string_view to_string(http_failure f);

struct http_call_options {
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds request_timeout{30000};
    int max_connections = 64;  // per origin
    std::size_t max_response_bytes = 1 << 20;
};

struct http_result {
    http_failure failure = http_failure::none;
    std::string error;
    bool request_written = false;  // the provider may have seen the request
    inbound_response response;
    bool ok() const { return failure == http_failure::none; }
};

struct url_parts {
    bool tls = false;
    std::string host;
    std::uint16_t port = 80;
    std::string target = "/";
};
std::optional<url_parts> parse_http_url(std::string_view url);

// Maps a transport failure to an outcome class for the retry policy.
send_outcome outcome_from_failure(const http_result& r);

class http_client {
public:
    // `tls` may be null when no https URL is ever used.
    http_client(boost::asio::any_io_executor ex, boost::asio::ssl::context* tls);
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    boost::asio::awaitable<http_result> send(const outbound_request& request, const http_call_options& options);
    // Closes every connection, idle or busy; sends in progress end as `cancelled`.
    void shutdown();

    struct counters {
        std::uint64_t connections_opened = 0;
        std::uint64_t requests = 0;
        std::uint64_t reused = 0;
    };
    counters stats() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace outq
