#pragma once
// Async HTTP/1.1 client on Boost.Beast: a keep-alive connection pool per origin
// (and TLS profile and proxy), cached DNS, verified TLS with SNI and hostname
// checks, HTTP CONNECT proxies, deadlines on connect, handshake and the whole
// exchange, response size limits — and failures reported as distinct classes,
// in particular whether the request may have reached the provider (ambiguous)
// or certainly did not.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outq/adapter.hpp"
#include "outq/config.hpp"
#include "outq/http_url.hpp"

namespace outq {

enum class http_failure {
    none,
    invalid_url,
    resolve,              // the host name did not resolve
    connect,              // refused, unreachable
    proxy,                // the proxy refused the tunnel or failed
    tls_handshake,        // TLS failed for another reason than the certificate
    tls_certificate,      // the peer's certificate was rejected: expired, self-signed, wrong host…
    timeout_before_send,  // connect/handshake deadline, or a write that took no byte: nothing was sent
    closed_before_send,   // the connection failed before any byte of the request was written
    timeout_after_send,   // the request was written, no complete answer in time
    closed_after_send,    // connection reset/closed after the request was written
    protocol,             // malformed response
    too_large,            // response body or headers over the limit
    cancelled,            // the client is shutting down
    withdrawn,            // the caller's last check before the write said no: nothing was sent
};

std::string_view to_string(http_failure f);

struct http_result {
    http_failure failure = http_failure::none;
    std::string error;
    bool request_written = false;  // the provider may have seen the request
    inbound_response response;
    bool ok() const { return failure == http_failure::none; }
};

// Outbound proxies from HTTPS_PROXY / HTTP_PROXY / NO_PROXY (or lower case).
struct proxy_config {
    std::optional<url_parts> http_proxy;
    std::optional<url_parts> https_proxy;
    std::string http_authorization;  // "Basic …" from credentials in the proxy URL
    std::string https_authorization;
    std::vector<std::string> no_proxy;  // host names, .domains, IPs; "*" for all
};
// `getenv` is a parameter so tests can pass their own environment.
proxy_config proxy_config_from_env(const char* (*getenv_fn)(const char*));
// The proxy a request to `target` goes through, or nullptr for a direct connection.
const url_parts* choose_proxy(const proxy_config& proxies, const url_parts& target, const std::string** authorization);

// Maps a transport failure to an outcome class for the retry policy.
send_outcome outcome_from_failure(const http_result& r);

class http_client {
  public:
    http_client(boost::asio::any_io_executor ex, proxy_config proxies = {});
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    // `may_write`, when given, is asked once the connection is ready, right
    // before the first byte of the request is written; false ends the send as
    // `withdrawn` (nothing written). The runtime uses it to confirm, as late as
    // possible, that no other worker took the job over meanwhile.
    boost::asio::awaitable<http_result> send(const outbound_request& request, const http_settings& http,
                                             const tls_settings& tls, const std::function<bool()>* may_write = nullptr);
    // Closes idle connections older than the idle timeout (or than the
    // shorter one their server announced).
    void evict_idle();
    // Closes every connection, idle or busy; sends in progress end as `cancelled`.
    void shutdown();

    struct counters {
        std::uint64_t connections_opened = 0;
        std::uint64_t requests = 0;
        std::uint64_t reused = 0;
        std::uint64_t dns_lookups = 0;
        // Idle connections the liveness check found closed (or with bytes
        // nobody asked for) and closed unused.
        std::uint64_t stale_closed = 0;
        // Requests sent again at once on a fresh connection because the reused
        // one failed before any byte of them was written: never a duplicate.
        std::uint64_t resent_before_write = 0;
        // Exchanges on a reused connection that was closed or reset after the
        // request was written: ambiguous, reported (not sent again) to the caller.
        std::uint64_t ambiguous_after_reuse = 0;
    };
    counters stats() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace outq
