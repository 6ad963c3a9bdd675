#include <doctest/doctest.h>

#include <map>

#include "outq/encoding.hpp"
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

TEST_CASE("base64") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("user:pw") == "dXNlcjpwdw==");
}

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
