// libFuzzer target: a job as a producer writes it (any bytes in the stream's
// `job` field) through the parser and every adapter's validator.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"
#include "outq/job.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = outq::parse_job(text, "1700000000000-0");
    if (parsed.ok()) {
        if (const auto* a = outq::fuzz::registry().find(parsed.value->provider)) (void)a->validate(*parsed.value);
    }
    return 0;
}
