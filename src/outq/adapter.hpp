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
    std::string_view token;  // the account's current access token, for adapters with token_request
};

// An access token from a provider's token endpoint (OAuth 2.0 client
// credentials and the like). The runtime caches it per account, refreshes it
// before `expires_in` runs out, and fetches it once however many sends wait.
struct access_token {
    std::string value;
    std::chrono::milliseconds expires_in{0};  // 0: unknown (kept until the provider rejects it)
};

struct token_result {
    std::optional<access_token> token;
    send_outcome failure;  // when no token: classified like a send (auth, retryable, …)
};

// One job of a batch, as the adapter sees it.
struct batch_item {
    const job* j = nullptr;
    int attempt_number = 1;
};

// One page of a lookup for messages that ambiguous sends may have delivered
// (reconciliation). The adapter only reads the page; which candidate counts
// (not claimed by another job, the only one) is the runtime's decision.
struct reconcile_page {
    enum class kind { page, failed };
    kind what = kind::failed;
    // Per job of the lookup, in order: the provider message ids on this page
    // that could be its message (its text, sent by this integration, created
    // at or after its ambiguous attempt).
    std::vector<std::vector<std::string>> candidates;
    std::string cursor;  // not empty: older messages that could match are on the next page
    // For failed: what the answer was (its class, Retry-After, error), as a send's would be.
    send_outcome failure;
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
    // `now` is the time the answer came in: a Retry-After date, a quota window
    // and the like are measured from it (adapters never read the clock).
    virtual send_outcome classify(const inbound_response& response, const account_settings& account,
                                  unix_ms now) const = 0;
    virtual retry_settings default_retry() const { return {}; }
    // The provider's documented limit, used when the config sets none.
    virtual rate_limit_settings default_rate_limit() const { return {}; }

    // --- optional: access tokens ---------------------------------------------
    // The token endpoint request of an account, or nullopt when the account
    // needs no fetched token (static token, Basic auth…).
    virtual std::optional<outbound_request> token_request(const account_settings&) const { return std::nullopt; }
    virtual token_result parse_token_response(const inbound_response& response, const account_settings&,
                                              unix_ms now) const;
    // True when `outcome` says the token was stale: the runtime drops it,
    // fetches a new one and sends again once, without counting an attempt.
    virtual bool token_rejected(const inbound_response&, const account_settings&) const { return false; }

    // --- optional: batching -----------------------------------------------------
    // More than 1: jobs of one account may share one request, up to this many,
    // waiting at most batch_wait to fill it.
    virtual std::size_t max_batch(const account_settings&) const { return 1; }
    virtual std::chrono::milliseconds batch_wait(const account_settings&) const { return std::chrono::milliseconds(0); }
    virtual outbound_request build_batch_request(const std::vector<batch_item>& items, const account_settings& account,
                                                 const attempt_context& attempt) const;
    // One outcome per item, in order. A request-level answer (401, 429, 5xx…)
    // gives every item the same outcome; `halve_batch` asks for the batch to
    // be sent again at once as two halves, using no attempt (too heavy, or
    // refused as a whole for one message in it that the halves will find).
    virtual std::vector<send_outcome> classify_batch(const inbound_response& response,
                                                     const std::vector<batch_item>& items,
                                                     const account_settings& account, unix_ms now,
                                                     bool& halve_batch) const;
    // The answer that asked for halves said the request was too heavy (the
    // lane's batches then stay smaller: policy/batching.hpp).
    virtual bool batch_too_heavy(const inbound_response&) const { return false; }
    // Jobs with the same key that the provider refused on their own (a 400 or
    // 403 for one message) are sent on their own from then on, so that one bad
    // destination does not fail a batch again (Mews: the message thread).
    virtual std::string batch_key(const job&) const { return {}; }

    // --- optional: reconciliation of ambiguous sends ------------------------------
    // Jobs with the same key are looked up together, in one walk of pages
    // (Mews: the message thread). Empty: the provider cannot be asked.
    virtual std::string reconcile_key(const job&) const { return {}; }
    // A page of what the provider has for `jobs` (one key), newest first,
    // reaching back to `since` (the earliest of their ambiguous attempts).
    virtual std::optional<outbound_request> reconcile_request(const std::vector<const job*>&, const account_settings&,
                                                              unix_ms since, std::string_view cursor) const {
        return std::nullopt;
    }
    // `since`: each job's ambiguous attempt, in order. `now`: when the answer came.
    virtual reconcile_page parse_reconcile(const inbound_response&, const std::vector<const job*>&,
                                           const account_settings&, const std::vector<unix_ms>& since,
                                           unix_ms now) const {
        return {};
    }
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

// An HTTP-date (RFC 9110 §5.6.7) in any of its three forms, IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT")
// or asctime ("Sun Nov  6 08:49:37 1994"), as unix milliseconds. Strict: the
// exact layout, case-sensitive names, a date that exists (no 30 Feb), the day
// name of that date, second 60 only as a leap second (23:59:60 on the last day
// of a month, read as the next day's 00:00:00). RFC 850's two-digit year is the
// latest year with those digits that is at most 50 years after `now`. Years
// before 1970 are valid dates. nullopt when it is not an HTTP-date.
std::optional<unix_ms> parse_http_date(std::string_view value, unix_ms now);

// Retry-After (RFC 9110 §10.2.3): delay-seconds (leading zeros allowed; more
// than 999999999 s saturates) or an HTTP-date. Returns the delay from `now`;
// nullopt when invalid (the caller then backs off as it would without one). A
// date in the past, however far (1969 included), gives zero: retry now.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, unix_ms now);

// A provider's own word that its rate limit is used up before it says 429:
// how long until its window resets, when the answer says no requests remain.
// Read from, in order: `RateLimit: ...;r=0;t=N` (IETF httpapi draft, structured
// field), `RateLimit-Remaining: 0` with `RateLimit-Reset: N` (earlier drafts,
// delta-seconds), `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset-After: N`
// or `X-RateLimit-Reset: N` (delta-seconds, or unix seconds when N is a date
// after 2001). nullopt when requests remain, or the headers are absent or
// invalid.
std::optional<std::chrono::milliseconds> rate_limit_exhausted_for(const inbound_response& response, unix_ms now);

}  // namespace outq
