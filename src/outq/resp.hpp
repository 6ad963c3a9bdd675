#pragma once
// RESP framing through hiredis: commands are encoded with
// redisFormatCommandArgv and replies parsed with a redisReader, while the
// sockets belong to Asio (redis_connection). Pure code, no I/O.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace outq::redis {

struct value {
    enum class kind { nil, string, integer, array, error, status };
    kind type = kind::nil;
    std::string str;  // string, error and status
    long long integer = 0;
    std::vector<value> elements;

    bool is_nil() const { return type == kind::nil; }
    bool is_error() const { return type == kind::error; }
    bool is_string() const { return type == kind::string || type == kind::status; }
    bool is_array() const { return type == kind::array; }
    // "NOGROUP No such key…" → true for prefix "NOGROUP".
    bool error_is(std::string_view code) const;
};

class command {
public:
    command() = default;
    explicit command(std::string_view name) { arg(name); }
    command& arg(std::string_view a) {
        args_.emplace_back(a);
        return *this;
    }
    command& arg(long long n) {
        args_.push_back(std::to_string(n));
        return *this;
    }
    command& arg(int n) { return arg(static_cast<long long>(n)); }
    command& arg(unsigned long n) { return arg(static_cast<long long>(n)); }
    command& arg(const char* a) { return arg(std::string_view(a)); }
    command& arg(const std::string& a) { return arg(std::string_view(a)); }
    const std::vector<std::string>& args() const { return args_; }
    // Appends the RESP encoding of this command.
    void append_to(std::string& out) const;

private:
    std::vector<std::string> args_;
};

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
