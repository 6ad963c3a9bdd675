// libFuzzer target: what a browser, a script or an attacker sends to `outq web`:
// the request as Beast parses it (no socket), then everything outq decides from
// it — the Host/token/method guard, the query string and the dead-letter filter.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "outq/web/api.hpp"
#include "outq/web/guard.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    parser.header_limit(16 * 1024);
    parser.eager(true);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (!parser.is_header_done()) return 0;
    const auto& req = parser.get();
    const std::string_view target = req.target();
    const auto q = target.find('?');
    outq::web::request_facts facts;
    const std::string method(req.method_string());
    facts.method = method;
    facts.path = target.substr(0, q);
    facts.host = req[http::field::host];
    facts.token = req["X-Outq-Token"];
    facts.peer_loopback = size % 2 == 0;
    outq::web::guard_settings settings;
    settings.token = "fuzz-token";
    settings.read_only = size % 3 == 0;
    (void)outq::web::check(settings, outq::web::default_hosts("127.0.0.1", 8080), facts);
    if (q != std::string_view::npos) {
        const auto params = outq::web::parse_query(target.substr(q + 1));
        std::string error;
        if (auto dq = outq::web::read_dead_query(params, error)) {
            outq::queue::admin::dead_letter d;
            d.entry_id = "1-0";
            d.fields = {{"error", std::string(req.body())}, {"http_status", "422"}, {"job", std::string(facts.path)}};
            (void)outq::web::matches(*dq, d);
        }
    }
    (void)outq::web::url_decode(facts.path);
    return 0;
}
