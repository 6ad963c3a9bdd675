#pragma once
// Access tokens of provider accounts (OAuth 2.0 client credentials and the
// like): fetched through the adapter's token_request, cached in memory per
// account, refreshed before they expire, and fetched once however many sends
// wait for them (single flight). A token endpoint failure is a classified
// outcome, never an exception.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string_view>

#include "outq/adapter.hpp"
#include "outq/http_client.hpp"

namespace outq {

class token_cache {
  public:
    token_cache(boost::asio::any_io_executor ex, http_client& http);
    ~token_cache();

    // The account's token; fetches one when there is none or it is about to expire.
    boost::asio::awaitable<token_result> get(const adapter& a, const account_settings& account);
    // The provider rejected `stale`: forget it (unless a newer one already replaced it).
    void invalidate(const account_settings& account, std::string_view stale);

    std::uint64_t fetches() const;
    // The account's cached token, empty when there is none (to redact it from answers).
    std::string_view current(const account_settings& account) const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// When a token of lifetime `expires_in` should be refreshed: a tenth of its
// life early, at least 5 s and at most 60 s before it runs out.
std::chrono::milliseconds refresh_margin(std::chrono::milliseconds expires_in);

}  // namespace outq
