// libFuzzer target: what a scraper, a probe or anyone on the cluster network
// sends to the worker's metrics endpoint: the request as Beast parses it (the
// parser's limits as the server sets them, no socket), then the route outq
// decides from its method and target.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>

#include "outq/metrics.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    http::request_parser<http::string_body> parser;
    parser.eager(true);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (!parser.is_header_done()) return 0;
    const auto& req = parser.get();
    const auto route = outq::route_metrics_request(req.method_string(), req.target());
    // A route is one of the five, whatever the bytes.
    if (static_cast<int>(route) < 0 || static_cast<int>(route) > 4) __builtin_trap();
    return 0;
}
