#pragma once
// The provider adapter interface: a small, pure description of one provider's
// API. Adapters never do I/O: they validate a job, build the HTTP request and
// classify the answer; the runtime does the sending. They are registered by an
// explicit list called from main (adapters/register_all.cpp).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outq/clock.hpp"
#include "outq/config.hpp"
#include "outq/job.hpp"
#include "outq/outcome.hpp"
#include "outq/retry_policy.hpp"

namespace outq {

struct http_header {
    std::string name;
    std::string value;
};

struct outbound_request {
    std::string method = "POST";
    std::string url;  // absolute: http(s)://host[:port]/path
    std::vector<http_header> headers;
    std::string body;
};

struct inbound_response {
    int status = 0;
    std::vector<http_header> headers;
    std::string body;
    // Case-insensitive header lookup; empty when absent.
    std::string_view header(std::string_view name) const;
};

struct attempt_context {
    int attempt_number = 1;  // 1 for the first HTTP attempt
    unix_ms now = 0;
};

class adapter {
public:
    virtual ~adapter() = default;
    virtual std::string_view name() const = 0;
    // Reads one account's provider-specific keys; throws config_error naming
    // the key. The loader fills in the transport part (http, tls) afterwards.
    virtual std::shared_ptr<account_settings> load_account(const config_node& node,
                                                                 const std::string& account_name) const = 0;
    // Checks the provider-specific `message`; returns an error naming the field.
    virtual std::optional<std::string> validate(const job& j) const = 0;
    virtual outbound_request build_request(const job& j, const account_settings& account,
                                           const attempt_context& attempt) const = 0;
    virtual send_outcome classify(const inbound_response& response, const account_settings& account) const = 0;
    virtual retry_settings default_retry() const { return {}; }
    // The provider's documented limit, used when the config sets none.
    virtual rate_limit_settings default_rate_limit() const { return {}; }
};

class adapter_registry {
public:
    void add(std::unique_ptr<adapter> a);  // throws std::logic_error on a duplicate name
    const adapter* find(std::string_view name) const;
    std::vector<std::string_view> names() const;

private:
    std::vector<std::unique_ptr<adapter>> adapters_;
};

// The usual reading of an HTTP status: 2xx success, 429 rate-limited, 408 and
// 5xx retryable, 401/403 auth, other 4xx permanent. Adapters refine it.
outcome_class classify_http_status(int status);

// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date (IMF-fixdate,
// RFC 850 or asctime form). Returns the delay from `now`; nullopt when invalid.
// A date in the past gives zero.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, unix_ms now);

}  // namespace outq
