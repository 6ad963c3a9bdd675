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

// A command's arguments live in one buffer (one or two allocations per
// command instead of one per argument): batches of completions build
// thousands of them.
class command {
  public:
    command() = default;
    explicit command(std::string_view name) { arg(name); }
    command& arg(std::string_view a) {
        data_.append(a);
        ends_.push_back(static_cast<std::uint32_t>(data_.size()));
        return *this;
    }
    command& arg(long long n);
    command& arg(int n) { return arg(static_cast<long long>(n)); }
    command& arg(unsigned long n) { return arg(static_cast<long long>(n)); }
    command& arg(const char* a) { return arg(std::string_view(a)); }
    command& arg(const std::string& a) { return arg(std::string_view(a)); }

    std::size_t size() const { return ends_.size(); }
    std::string_view operator[](std::size_t i) const {
        const std::uint32_t begin = i == 0 ? 0 : ends_[i - 1];
        return std::string_view(data_).substr(begin, ends_[i] - begin);
    }
    // A copy of the arguments, for tests and diagnostics.
    std::vector<std::string> args() const;
    // Appends the RESP encoding of this command.
    void append_to(std::string& out) const;

  private:
    std::string data_;
    std::vector<std::uint32_t> ends_;
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
