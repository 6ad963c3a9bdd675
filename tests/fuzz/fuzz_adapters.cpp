// libFuzzer target: a provider's answer (status, headers, body) through every
// adapter's classify, classify_batch and token parser, for an account of each.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "outq/config.hpp"
#include "outq/job.hpp"

namespace {

const outq::worker_config& config() {
    static const outq::worker_config c = outq::parse_config(R"({
  "providers": {
    "webhook": {"accounts": {"a": {"url": "http://127.0.0.1:1/hook"}}},
    "mews": {"accounts": {"a": {"platform_address": "http://127.0.0.1:1", "client_token": "c", "access_token": "t"}}},
    "mediaconnect": {"accounts": {"a": {"base_url": "http://127.0.0.1:1/capi",
      "token_url": "http://127.0.0.1:1/token", "client_id": "i", "client_secret": "s"}}},
    "onebox": {"accounts": {"a": {"host": "http://127.0.0.1:1", "token": "t"}}},
    "superoffice": {"accounts": {"a": {"base_url": "http://127.0.0.1:1/Cust1", "auth": "basic",
      "username": "u", "password": "p"}}}
  }
})",
                                                            outq::fuzz::registry());
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    outq::inbound_response r;
    // The first two bytes choose the status (100–599); the rest is the body,
    // and its first line also a Retry-After and a Content-Type.
    r.status = 100 + (data[0] << 8 | data[1]) % 500;
    r.body.assign(reinterpret_cast<const char*>(data) + 2, size - 2);
    const auto line = r.body.substr(0, r.body.find('\n'));
    r.headers.push_back({"Retry-After", line});
    r.headers.push_back({"Content-Type", "application/json"});
    constexpr outq::unix_ms now = 1764583200000;
    for (const auto& [name, provider] : config().providers) {
        const auto* a = outq::fuzz::registry().find(name);
        if (!a) continue;
        for (const auto& [account_name, account] : provider.accounts) {
            (void)a->classify(r, *account, now);
            (void)a->parse_token_response(r, *account, now);
            (void)a->token_rejected(r, *account);
            (void)a->batch_too_heavy(r);
            auto parsed =
                outq::parse_job(R"({"id":"j1","provider":")" + name + R"(","account":"a","message":{}})", "1-0");
            if (!parsed.ok()) continue;
            std::vector<outq::batch_item> items{{&*parsed.value, 1}, {&*parsed.value, 2}};
            bool halve = false;
            (void)a->classify_batch(r, items, *account, now, halve);
        }
    }
    return 0;
}
