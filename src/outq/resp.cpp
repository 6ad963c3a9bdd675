#include "outq/resp.hpp"

#include <hiredis/hiredis.h>

#include <charconv>
#include <stdexcept>

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

void reply_parser::reader_deleter::operator()(void* r) const {
    redisReaderFree(static_cast<redisReader*>(r));
}

namespace {

// hiredis builds replies through these callbacks straight into outq's value
// tree: one allocation and copy per string instead of two (hiredis' own
// redisReply, then ours). A nested value lives inside its parent's elements,
// which are sized once when the array is created; only roots are freed.
value* place(const redisReadTask* task) {
    if (task->parent) {
        auto* parent = static_cast<value*>(task->parent->obj);
        return &parent->elements[static_cast<std::size_t>(task->idx)];
    }
    return new value();
}

void* create_string(const redisReadTask* task, char* str, size_t len) {
    value* v = place(task);
    v->type = task->type == REDIS_REPLY_ERROR    ? value::kind::error
              : task->type == REDIS_REPLY_STATUS ? value::kind::status
                                                 : value::kind::string;
    v->str.assign(str, len);
    return v;
}

void* create_array(const redisReadTask* task, int elements) {
    value* v = place(task);
    v->type = value::kind::array;
    v->elements.resize(elements > 0 ? static_cast<std::size_t>(elements) : 0);
    return v;
}

void* create_integer(const redisReadTask* task, long long n) {
    value* v = place(task);
    v->type = value::kind::integer;
    v->integer = n;
    return v;
}

void* create_nil(const redisReadTask* task) {
    value* v = place(task);
    v->type = value::kind::nil;
    return v;
}

void free_root(void* v) {
    delete static_cast<value*>(v);
}

redisReplyObjectFunctions value_functions = {create_string, create_array, create_integer, create_nil, free_root};

}  // namespace

reply_parser::reply_parser() {
    reset();
}
reply_parser::~reply_parser() = default;

void reply_parser::reset() {
    auto* r = redisReaderCreateWithFunctions(&value_functions);
    if (!r) throw std::bad_alloc();
    // Keep hiredis from holding on to large buffers between replies.
    r->maxbuf = 64 * 1024;
    reader_.reset(r);
    failed_ = false;
}

void reply_parser::feed(const char* data, std::size_t size) {
    if (redisReaderFeed(static_cast<redisReader*>(reader_.get()), data, size) != REDIS_OK) failed_ = true;
}

reply_parser::status reply_parser::next(value& out) {
    if (failed_) return status::protocol_error;
    void* reply = nullptr;
    if (redisReaderGetReply(static_cast<redisReader*>(reader_.get()), &reply) != REDIS_OK) {
        failed_ = true;
        return status::protocol_error;
    }
    if (!reply) return status::need_more;
    std::unique_ptr<value> root(static_cast<value*>(reply));
    out = std::move(*root);
    return status::ok;
}

std::string reply_parser::error_text() const {
    auto* r = static_cast<redisReader*>(reader_.get());
    return r && r->err ? std::string(r->errstr) : std::string("protocol error");
}

}  // namespace outq::redis
