#include "outq/resp.hpp"

#include <charconv>

namespace outq::redis {

bool value::error_is(std::string_view code) const {
    return type == kind::error && str.size() >= code.size() && std::string_view(str).substr(0, code.size()) == code &&
           (str.size() == code.size() || str[code.size()] == ' ');
}

namespace {

void append_decimal(std::string& out, unsigned long long n) {
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, static_cast<std::size_t>(p - buf));
}

}  // namespace

command& command::arg(std::string_view a) {
    return arg(a, {});
}

command& command::arg(std::string_view a, std::string_view b) {
    if (encoded_.empty()) encoded_.reserve(128);  // most commands fit: one allocation
    encoded_.push_back('$');
    append_decimal(encoded_, a.size() + b.size());
    encoded_.append("\r\n", 2);
    encoded_.append(a);
    encoded_.append(b);
    encoded_.append("\r\n", 2);
    ++count_;
    return *this;
}

command& command::arg(long long n) {
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n);
    return arg(std::string_view(buf, static_cast<std::size_t>(p - buf)));
}

command& command::args_of(const command& other) {
    encoded_.append(other.encoded_);
    count_ += other.count_;
    return *this;
}

std::vector<std::string> command::args() const {
    std::vector<std::string> out;
    out.reserve(count_);
    std::size_t pos = 0;
    while (pos < encoded_.size()) {  // "$<len>\r\n<payload>\r\n", written by arg()
        const std::size_t crlf = encoded_.find('\r', pos);
        std::size_t len = 0;
        std::from_chars(encoded_.data() + pos + 1, encoded_.data() + crlf, len);
        out.emplace_back(encoded_, crlf + 2, len);
        pos = crlf + 2 + len + 2;
    }
    return out;
}

void command::append_to(std::string& out) const {
    out.push_back('*');
    append_decimal(out, count_);
    out.append("\r\n", 2);
    out.append(encoded_);
}

}  // namespace outq::redis
