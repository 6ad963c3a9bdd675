// libFuzzer target: what a provider (or a hostile server) answers, through the
// reader the HTTP client parses every response with (no socket): interim 1xx
// answers, framing, limits, the end of the connection, in chunks cut where the
// first byte says; then the Keep-Alive timeout the client would honour.
#include <boost/beast/http/field.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string_view>

#include "outq/http_response_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::size_t cut = std::min<std::size_t>(data[0], all.size());
    std::pmr::monotonic_buffer_resource memory;
    outq::http_response_reader reader(&memory, 64 * 1024, 8 * 1024);
    // As the exchange does: the bytes not taken are given again with the next ones.
    std::string pending(all.substr(0, cut));
    std::size_t used = reader.put(pending);
    pending.erase(0, used);
    if (reader.status() == outq::http_response_reader::state::reading) {
        pending.append(all.substr(cut));
        used = reader.put(pending);
        if (reader.status() == outq::http_response_reader::state::reading) reader.put_eof();
    }
    if (reader.status() == outq::http_response_reader::state::complete) {
        auto& res = reader.response();
        (void)res.result_int();
        (void)res.body().size();
        (void)reader.keep_alive();
        (void)outq::keep_alive_timeout(res[boost::beast::http::field::keep_alive]);
    } else {
        (void)reader.error();
    }
    return 0;
}
