// libFuzzer target: what a provider (or a hostile server) puts in the headers
// outq reads for time: Retry-After, HTTP dates and the RateLimit fields.
#include <cstddef>
#include <cstdint>
#include <string>

#include "outq/adapter.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    constexpr outq::unix_ms now = 1764583200000;  // 2025-12-01
    (void)outq::parse_http_date(text, now);
    (void)outq::parse_retry_after(text, now);
    // The same bytes as each of the rate-limit headers, and split as a pair.
    const auto cut = text.find('\n');
    const std::string first = text.substr(0, cut), second = cut == std::string::npos ? "" : text.substr(cut + 1);
    for (const char* name : {"RateLimit", "RateLimit-Remaining", "X-RateLimit-Remaining"}) {
        outq::inbound_response r;
        r.status = 200;
        r.headers.push_back({name, first});
        r.headers.push_back({"RateLimit-Reset", second});
        r.headers.push_back({"X-RateLimit-Reset", second});
        r.headers.push_back({"X-RateLimit-Reset-After", second});
        (void)outq::rate_limit_exhausted_for(r, now);
    }
    return 0;
}
