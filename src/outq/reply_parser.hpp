#pragma once
// Incremental RESP reply parser over hiredis' redisReader, building outq's
// redis::value tree directly. Part of the I/O layer (it needs hiredis); the
// values it produces and the commands are in resp.hpp (pure).
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "outq/resp.hpp"

namespace outq::redis {

// Incremental reply parser over hiredis' redisReader.
class reply_parser {
  public:
    reply_parser();
    ~reply_parser();
    reply_parser(const reply_parser&) = delete;
    reply_parser& operator=(const reply_parser&) = delete;

    enum class status { ok, need_more, protocol_error };
    void feed(const char* data, std::size_t size);
    // Takes the next complete reply into `out`.
    status next(value& out);
    std::string error_text() const;
    void reset();

  private:
    struct reader_deleter {
        void operator()(void* r) const;
    };
    std::unique_ptr<void, reader_deleter> reader_;
    bool failed_ = false;
};

// What a reply read on a subscribed connection (RESP2) is: a message
// [message, channel, payload], a confirmation [subscribe, channel, count], the
// answer to a PING [pong, data], or anything else (an error, another shape).
// The views point into `v`.
struct pubsub_reply {
    enum class kind { message, subscribe, pong, other };
    kind what = kind::other;
    std::string_view channel;  // message, subscribe
    std::string_view payload;  // message
};
pubsub_reply classify_pubsub(const value& v);

}  // namespace outq::redis
