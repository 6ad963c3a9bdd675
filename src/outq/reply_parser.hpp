#pragma once
// Incremental RESP reply parser over hiredis' redisReader, building outq's
// redis::value tree directly. Part of the I/O layer (it needs hiredis); the
// values it produces and the commands are in resp.hpp (pure).
#include <cstddef>
#include <memory>
#include <string>

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

}  // namespace outq::redis
