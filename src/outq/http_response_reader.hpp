#pragma once
// Reads the answer to one HTTP/1.1 request from the bytes its connection
// delivers, without touching a socket (the exchange feeds it; tests feed it
// strings). RFC 9110 §15.2: any number of interim 1xx responses may come
// before the final one; they are parsed and skipped. A 101 (Switching
// Protocols) was never asked for: a protocol failure. The final response's
// framing decides whether the connection may carry another request; whatever
// follows it in the bytes is not part of it and the caller must not reuse the
// connection.
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>

#include "outq/http_client.hpp"

namespace outq {

// The idle timeout a server announces in `Keep-Alive: timeout=5, max=100`
// (RFC 2068 §19.7.1.1; Apache httpd and Node.js send it): it closes an idle
// connection after that long. nullopt when the value names none.
std::optional<std::chrono::seconds> keep_alive_timeout(std::string_view header_value);

class http_response_reader {
  public:
    using fields_allocator = std::pmr::polymorphic_allocator<char>;
    using parser_type = boost::beast::http::response_parser<boost::beast::http::string_body, fields_allocator>;
    using message = parser_type::value_type;

    // Interim answers beyond this many before the final one: a protocol failure.
    static constexpr int max_interim_responses = 8;

    enum class state { reading, complete, failed };

    // The header fields of every message read are allocated from `fields_memory`.
    http_response_reader(std::pmr::memory_resource* fields_memory, std::uint64_t max_body_bytes,
                         std::uint32_t max_header_bytes);

    // Parses from the start of `bytes` and returns how many of them belong to
    // the answer (interim responses included). While reading, the rest is an
    // incomplete part to be given again with more bytes after it; once
    // complete, the rest came after the final response.
    std::size_t put(std::string_view bytes);
    // The peer closed its side: completes a response delimited by the end of
    // the connection, or fails.
    void put_eof();

    state status() const { return state_; }
    // When failed: protocol, too_large or closed_after_send, and why.
    http_failure failure() const { return failure_; }
    const std::string& error() const { return error_; }
    // Any byte of an answer arrived (of an interim response too).
    bool got_some() const { return got_some_; }
    int interim_responses() const { return interim_; }

    // The final response; valid when complete.
    message& response() { return parser_->get(); }
    // Complete, and the final response's framing lets the connection carry the
    // next request: HTTP/1.1 without `Connection: close` (or HTTP/1.0 with
    // keep-alive), and a length that did not need the end of the connection.
    bool keep_alive() const { return state_ == state::complete && parser_->keep_alive(); }

  private:
    void start_message();
    void message_done();
    void fail(http_failure f, std::string error);

    std::pmr::memory_resource* fields_memory_;
    std::uint64_t max_body_;
    std::uint32_t max_header_;
    std::optional<parser_type> parser_;
    state state_ = state::reading;
    http_failure failure_ = http_failure::none;
    std::string error_;
    bool got_some_ = false;
    int interim_ = 0;
};

}  // namespace outq
