#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <map>

#include "outq/http_client.hpp"

using namespace outq;

namespace {
std::map<std::string, std::string> fake_env;
const char* fake_getenv(const char* name) {
    auto it = fake_env.find(name);
    return it == fake_env.end() ? nullptr : it->second.c_str();
}
url_parts target(const char* url) {
    return *parse_http_url(url);
}
}  // namespace

TEST_CASE("proxies come from the environment and NO_PROXY exempts hosts") {
    fake_env = {{"HTTPS_PROXY", "http://u:p@proxy.corp:3128"},
                {"http_proxy", "proxy.corp:8080"},
                {"NO_PROXY", "localhost, .internal.example,10.0.0.5,api.example.com:8443"}};
    auto p = proxy_config_from_env(fake_getenv);
    REQUIRE(p.https_proxy);
    CHECK(p.https_proxy->host == "proxy.corp");
    CHECK(p.https_proxy->port == 3128);
    CHECK(p.https_authorization == "Basic dTpw");
    REQUIRE(p.http_proxy);
    CHECK(p.http_proxy->port == 8080);
    const std::string* auth = nullptr;
    CHECK(choose_proxy(p, target("https://api.mews.com/x"), &auth) == &*p.https_proxy);
    CHECK(*auth == "Basic dTpw");
    CHECK(choose_proxy(p, target("http://api.mews.com/x"), &auth) == &*p.http_proxy);
    CHECK(choose_proxy(p, target("https://localhost/x"), &auth) == nullptr);
    CHECK(choose_proxy(p, target("https://a.internal.example/x"), &auth) == nullptr);
    CHECK(choose_proxy(p, target("https://internal.example/x"), &auth) == nullptr);
    CHECK(choose_proxy(p, target("https://notinternal.example/x"), &auth) != nullptr);
    CHECK(choose_proxy(p, target("https://10.0.0.5/x"), &auth) == nullptr);
    CHECK(choose_proxy(p, target("https://api.example.com:8443/x"), &auth) == nullptr);
    CHECK(choose_proxy(p, target("https://api.example.com/x"), &auth) != nullptr);  // other port
    fake_env = {{"HTTPS_PROXY", "http://proxy:1"}, {"NO_PROXY", "*"}};
    CHECK(choose_proxy(proxy_config_from_env(fake_getenv), target("https://x.y/"), &auth) == nullptr);
    fake_env = {};
    CHECK(choose_proxy(proxy_config_from_env(fake_getenv), target("https://x.y/"), &auth) == nullptr);
}

namespace {
// Parameters by value: they live in the coroutine frame (a capturing lambda's would not).
boost::asio::awaitable<void> send_into(http_client& client, outbound_request req, std::vector<http_result>& out) {
    const http_settings http;  // named: GCC 12 mishandles temporaries inside co_await arguments
    const tls_settings tls;
    out.push_back(co_await client.send(req, http, tls));
}
}  // namespace

TEST_CASE("headers that would split the request are refused before any connection") {
    boost::asio::io_context io;
    http_client client(io.get_executor());
    std::vector<http_result> results;
    for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{{"X-Ok", "a\r\nInjected: 1"},
                                                                               {"Bad Name", "v"},
                                                                               {"Bad:Name", "v"},
                                                                               {"X\tTab", "v"},
                                                                               {std::string("X\0Nul", 5), "v"},
                                                                               {"", "v"},
                                                                               {"X-Ok", std::string("a\0b", 3)}}) {
        outbound_request req;
        req.url = "http://127.0.0.1:9/";  // never dialled
        req.headers.push_back({name, value});
        boost::asio::co_spawn(io, send_into(client, std::move(req), results), boost::asio::detached);
    }
    io.run();
    REQUIRE(results.size() == 7);
    for (auto& r : results) {
        CHECK(r.failure == http_failure::invalid_url);
        CHECK(r.error.find("cannot be sent") != std::string::npos);
        CHECK_FALSE(r.request_written);
    }
}

TEST_CASE("transport failures map to retryable or ambiguous") {
    http_result r;
    r.failure = http_failure::connect;
    CHECK(outcome_from_failure(r).cls == outcome_class::retryable);
    r.failure = http_failure::timeout_before_send;
    CHECK(outcome_from_failure(r).cls == outcome_class::retryable);
    r.failure = http_failure::closed_before_send;  // not a byte of the request was written
    CHECK(outcome_from_failure(r).cls == outcome_class::retryable);
    r.failure = http_failure::timeout_after_send;
    CHECK(outcome_from_failure(r).cls == outcome_class::ambiguous);
    r.failure = http_failure::closed_after_send;
    CHECK(outcome_from_failure(r).cls == outcome_class::ambiguous);
    r.failure = http_failure::invalid_url;
    CHECK(outcome_from_failure(r).cls == outcome_class::permanent);
}
