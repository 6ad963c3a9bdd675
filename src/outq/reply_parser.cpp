#include "outq/reply_parser.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <new>

namespace outq::redis {

void reply_parser::reader_deleter::operator()(void* r) const {
    redisReaderFree(static_cast<redisReader*>(r));
}

namespace {

// hiredis builds replies through these callbacks straight into outq's value
// tree: one allocation and copy per string instead of two (hiredis' own
// redisReply, then ours). A nested value lives inside its parent's elements,
// which grow as the elements come (in order): an array header alone, such as
// `*70000000` from a broken or hostile peer, must not allocate gigabytes
// (found by the fuzz target redis_reply). Growing moves only siblings that are
// complete, which hiredis no longer points at. Only roots are freed.
constexpr std::size_t reserved_elements = 1024;

value* place(const redisReadTask* task) {
    if (task->parent) {
        auto* parent = static_cast<value*>(task->parent->obj);
        const auto i = static_cast<std::size_t>(task->idx);
        if (i >= parent->elements.size()) parent->elements.resize(i + 1);
        return &parent->elements[i];
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
    v->elements.reserve(
        std::min<std::size_t>(elements > 0 ? static_cast<std::size_t>(elements) : 0, reserved_elements));
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

pubsub_reply classify_pubsub(const value& v) {
    pubsub_reply out;
    if (!v.is_array() || v.elements.empty() || v.elements[0].type != value::kind::string) return out;
    const auto& e = v.elements;
    const std::string_view name = e[0].str;
    if (name == "message" && e.size() == 3 && e[1].type == value::kind::string && e[2].type == value::kind::string) {
        out.what = pubsub_reply::kind::message;
        out.channel = e[1].str;
        out.payload = e[2].str;
    } else if (name == "subscribe" && e.size() == 3 && e[1].type == value::kind::string &&
               e[2].type == value::kind::integer) {
        out.what = pubsub_reply::kind::subscribe;
        out.channel = e[1].str;
    } else if (name == "pong" && e.size() == 2) {
        out.what = pubsub_reply::kind::pong;
    }
    return out;
}

}  // namespace outq::redis
