#pragma once
// RESP values and commands: a command is encoded here in the format of
// hiredis' redisFormatCommandArgv (see `command`); replies arrive as `value`s,
// parsed by reply_parser (reply_parser.hpp, the I/O layer, over hiredis) while
// the sockets belong to Asio (redis_connection). Pure code, no I/O, no hiredis.
#include <cstdint>
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

// A command is kept RESP-encoded as its arguments are added ("$<len>\r\n<arg>\r\n"
// each), so sending it is one copy behind a "*<count>\r\n" header, with no second
// pass and no sprintf: batches of completions build thousands of them and
// hiredis' redisFormatCommandArgv (one sprintf per argument) was the largest
// single cost of the worker. The encoding is checked byte for byte against
// redisFormatCommandArgv in the unit tests.
class command {
  public:
    command() = default;
    explicit command(std::string_view name) { arg(name); }
    // With room for `capacity` encoded bytes: one allocation for a large command.
    command(std::string_view name, std::size_t capacity) {
        encoded_.reserve(capacity);
        arg(name);
    }
    command& arg(std::string_view a);
    // One argument made of two pieces (a key prefix and an id), with no temporary string.
    command& arg(std::string_view a, std::string_view b);
    command& arg(long long n);
    command& arg(int n) { return arg(static_cast<long long>(n)); }
    command& arg(unsigned long n) { return arg(static_cast<long long>(n)); }
    command& arg(const char* a) { return arg(std::string_view(a)); }
    command& arg(const std::string& a) { return arg(std::string_view(a)); }
    // Appends every argument of `other` (already encoded: one copy).
    command& args_of(const command& other);

    std::size_t size() const { return count_; }
    // A copy of the arguments, for tests and diagnostics (decodes the buffer).
    std::vector<std::string> args() const;
    // Appends the RESP encoding of this command.
    void append_to(std::string& out) const;

  private:
    std::string encoded_;  // the arguments, each as a RESP bulk string
    std::uint32_t count_ = 0;
};

}  // namespace outq::redis
