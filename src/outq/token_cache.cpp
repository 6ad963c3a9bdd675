#include "outq/token_cache.hpp"

#include <algorithm>
#include <unordered_map>

#include "outq/detail/async_event.hpp"
#include "outq/log.hpp"

namespace outq {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

std::chrono::milliseconds refresh_margin(std::chrono::milliseconds expires_in) {
    using std::chrono::milliseconds;
    return std::clamp<milliseconds>(expires_in / 10, milliseconds(5000), milliseconds(60000));
}

namespace {

struct entry {
    explicit entry(asio::any_io_executor ex) : fetched(ex) {}
    std::string value;
    bool has_token = false;
    clock_type::time_point refresh_at = clock_type::time_point::max();
    bool fetching = false;
    std::uint64_t round = 0;  // bumps at every finished fetch
    token_result last;        // outcome of the last fetch, for the waiters of that round
    detail::async_event fetched;
};

}  // namespace

struct token_cache::impl {
    impl(asio::any_io_executor ex, http_client& h) : executor(ex), http(h) {}
    asio::any_io_executor executor;
    http_client& http;
    std::unordered_map<const account_settings*, std::unique_ptr<entry>> entries;
    std::uint64_t fetches = 0;

    entry& entry_for(const account_settings& a) {
        auto& e = entries[&a];
        if (!e) e = std::make_unique<entry>(executor);
        return *e;
    }
};

token_cache::token_cache(asio::any_io_executor ex, http_client& http)
    : impl_(std::make_unique<impl>(std::move(ex), http)) {}
token_cache::~token_cache() = default;

std::uint64_t token_cache::fetches() const {
    return impl_->fetches;
}

std::string_view token_cache::current(const account_settings& account) const {
    auto it = impl_->entries.find(&account);
    return it != impl_->entries.end() && it->second->has_token ? std::string_view(it->second->value)
                                                               : std::string_view();
}

void token_cache::invalidate(const account_settings& account, std::string_view stale) {
    auto& e = impl_->entry_for(account);
    if (e.has_token && e.value == stale) {
        e.has_token = false;
        e.value.clear();
    }
}

asio::awaitable<token_result> token_cache::get(const adapter& a, const account_settings& account) {
    auto& s = *impl_;
    auto& e = s.entry_for(account);
    if (e.has_token && clock_type::now() < e.refresh_at) {
        token_result r;
        r.token = access_token{e.value, {}};
        co_return r;
    }
    if (e.fetching) {
        // Someone is fetching: wait for that round's result instead of asking again.
        const auto round = e.round;
        while (e.fetching && e.round == round) co_await e.fetched.wait();
        if (e.has_token) {
            token_result r;
            r.token = access_token{e.value, {}};
            co_return r;
        }
        co_return e.last;
    }
    e.fetching = true;
    token_result result;
    auto request = a.token_request(account);
    if (!request) {
        result.failure.cls = outcome_class::permanent;
        result.failure.error = "account " + account.name + " has no token endpoint";
    } else {
        ++s.fetches;
        auto response = co_await s.http.send(*request, account.http, account.tls);
        if (!response.ok()) {
            result.failure = outcome_from_failure(response);
            result.failure.error = "token endpoint: " + result.failure.error;
            // A token request is safe to repeat: nothing was sent on the job's behalf.
            if (result.failure.cls == outcome_class::ambiguous) result.failure.cls = outcome_class::retryable;
        } else {
            result = a.parse_token_response(response.response, account, wall_now_ms());
        }
    }
    if (result.token) {
        e.value = result.token->value;
        e.has_token = true;
        e.refresh_at = result.token->expires_in.count() > 0
                           ? clock_type::now() + result.token->expires_in - refresh_margin(result.token->expires_in)
                           : clock_type::time_point::max();
        log::debug("access token fetched",
                   "provider=" + std::string(a.name()) + " account=" + log::value(account.name));
    } else {
        e.has_token = false;
        log::warn("token endpoint failed", "provider=" + std::string(a.name()) + " account=" +
                                               log::value(account.name) + " error=" + log::value(result.failure.error));
    }
    e.last = result;
    e.fetching = false;
    ++e.round;
    e.fetched.notify_all();
    co_return result;
}

}  // namespace outq
