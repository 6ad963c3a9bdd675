#include "outq/http_response_reader.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <cctype>

namespace outq {

namespace http = boost::beast::http;

std::optional<std::chrono::seconds> keep_alive_timeout(std::string_view v) {
    // Comma-separated name=value parameters, names case-insensitive.
    while (!v.empty()) {
        const auto comma = v.find(',');
        std::string_view item = v.substr(0, comma);
        v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        constexpr std::string_view name = "timeout";
        if (item.size() <= name.size()) continue;
        bool same = true;
        for (std::size_t i = 0; i < name.size(); ++i)
            same = same && static_cast<char>(std::tolower(static_cast<unsigned char>(item[i]))) == name[i];
        if (!same) continue;
        item.remove_prefix(name.size());
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        if (item.empty() || item.front() != '=') continue;
        item.remove_prefix(1);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        long long seconds = 0;
        std::size_t digits = 0;
        while (digits < item.size() && item[digits] >= '0' && item[digits] <= '9' && digits < 9)
            seconds = seconds * 10 + (item[digits++] - '0');
        if (digits == 0) return std::nullopt;
        return std::chrono::seconds(seconds);
    }
    return std::nullopt;
}

http_response_reader::http_response_reader(std::pmr::memory_resource* fields_memory, std::uint64_t max_body_bytes,
                                           std::uint32_t max_header_bytes)
    : fields_memory_(fields_memory), max_body_(max_body_bytes), max_header_(max_header_bytes) {
    start_message();
}

void http_response_reader::start_message() {
    // A parser reads one message: each interim response has had its own.
    parser_.emplace(std::piecewise_construct, std::make_tuple(), std::make_tuple(fields_allocator(fields_memory_)));
    parser_->body_limit(max_body_);
    parser_->header_limit(max_header_);
    parser_->eager(true);
}

void http_response_reader::fail(http_failure f, std::string error) {
    state_ = state::failed;
    failure_ = f;
    error_ = std::move(error);
}

std::size_t http_response_reader::put(std::string_view bytes) {
    std::size_t used = 0;
    while (state_ == state::reading && used < bytes.size()) {
        boost::system::error_code ec;
        const std::size_t n = parser_->put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
        used += n;
        if (n > 0) got_some_ = true;
        if (ec == http::error::need_more) break;  // an incomplete header: wait for the rest
        if (ec == http::error::body_limit || ec == http::error::header_limit) {
            fail(http_failure::too_large, "read response: " + ec.message());
        } else if (ec) {
            fail(http_failure::protocol, "read response: " + ec.message());
        } else if (parser_->is_done()) {
            message_done();
        } else if (n == 0) {
            break;  // no progress without more bytes
        }
    }
    return used;
}

void http_response_reader::put_eof() {
    if (state_ != state::reading) return;
    if (!parser_->got_some()) {
        fail(http_failure::closed_after_send, interim_ > 0 ? "connection closed after " + std::to_string(interim_) +
                                                                 " interim (1xx) response(s), before the final response"
                                                           : "read response: connection closed before any answer");
        return;
    }
    boost::system::error_code ec;
    parser_->put_eof(ec);
    if (ec == http::error::partial_message)
        fail(http_failure::closed_after_send, "read response: connection closed in the middle of the response");
    else if (ec)
        fail(http_failure::protocol, "read response: " + ec.message());
    else if (parser_->is_done())
        message_done();
}

void http_response_reader::message_done() {
    const unsigned status = parser_->get().result_int();
    if (status == 101) {
        // Never asked for (no Upgrade is sent): what follows is another protocol.
        fail(http_failure::protocol, "101 Switching Protocols to a request that asked for no upgrade");
        return;
    }
    if (status >= 100 && status < 200) {
        // An interim answer (100 Continue, 103 Early Hints…): the final one follows.
        if (++interim_ > max_interim_responses) {
            fail(http_failure::protocol,
                 "more than " + std::to_string(max_interim_responses) + " interim (1xx) responses");
            return;
        }
        start_message();
        return;
    }
    if (status < 100 || status > 599) {
        fail(http_failure::protocol, "response status " + std::to_string(status) + " out of range");
        return;
    }
    state_ = state::complete;
}

}  // namespace outq
