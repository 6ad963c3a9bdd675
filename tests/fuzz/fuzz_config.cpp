// libFuzzer target: a configuration file. Every mistake must be a config_error
// naming its key, never a crash (exceptions of other types are bugs too).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"
#include "outq/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (auto use : {outq::config_use::worker, outq::config_use::operator_commands}) {
        try {
            (void)outq::parse_config(text, outq::fuzz::registry(), use);
        } catch (const outq::config_error&) {
        }
    }
    return 0;
}
