#pragma once
// A scripted Redis peer for component tests: bytes in, bytes out, no
// redis-server. It listens on 127.0.0.1 (a free port) on the test's own
// io_context, parses each request with outq's reply parser (a request is a
// RESP array of bulk strings, which hiredis reads like any reply), records
// it, and answers it from a script: a queue of steps, each matching the next
// command (by name, or a predicate) and saying what to do with it — send raw
// RESP reply bytes, close the connection, or never answer (the client's
// deadline then ends the wait).
//
// A command that matches no step (or comes after the script ended) is
// answered with an error and noted in `unexpected()`: tests check it is empty.
// Commands after a "never answer" on the same connection are recorded but not
// answered (replies come in order: nothing can follow the missing one).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outq/redis_connection.hpp"

namespace outq::test {

class scripted_redis {
  public:
    using args = std::vector<std::string>;
    using matcher = std::function<bool(const args&)>;

    explicit scripted_redis(boost::asio::io_context& io);
    ~scripted_redis();
    scripted_redis(const scripted_redis&) = delete;
    scripted_redis& operator=(const scripted_redis&) = delete;

    // The next command must be `command` (its first words, case-insensitive:
    // "EVALSHA", "XGROUP CREATE"); it is answered with `reply`, raw RESP.
    scripted_redis& answer(std::string command, std::string reply);
    // The next command must satisfy `match` (`what` names it in failure notes).
    scripted_redis& answer_if(std::string what, matcher match, std::string reply);
    // The next command must be `command`; the connection is closed unanswered.
    scripted_redis& close_on(std::string command);
    // The next command must be `command`; it is never answered.
    scripted_redis& hang_on(std::string command);

    std::uint16_t port() const { return port_; }
    // Options of a client connection to this peer.
    redis::connection_options options(std::chrono::milliseconds command_timeout) const;

    // Every command received, in order, as its arguments.
    const std::vector<args>& received() const { return received_; }
    // Those named `command` (as in answer()).
    std::vector<args> received(std::string_view command) const;
    // Notes on commands that matched no step of the script.
    const std::vector<std::string>& unexpected() const { return unexpected_; }
    std::size_t steps_left() const { return script_.size(); }
    // Connections accepted so far.
    int connections() const { return connections_; }

    // True when `a` is the command `name` ("SCRIPT LOAD": its first two words).
    static bool is(const args& a, std::string_view name);

  private:
    enum class action { reply, close, hang };
    struct step {
        std::string what;
        matcher match;
        action act = action::reply;
        std::string bytes;
    };
    scripted_redis& add(std::string what, matcher match, action act, std::string bytes);
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(std::shared_ptr<boost::asio::ip::tcp::socket> socket);

    boost::asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    std::deque<step> script_;
    std::vector<args> received_;
    std::vector<std::string> unexpected_;
    std::vector<std::weak_ptr<boost::asio::ip::tcp::socket>> sockets_;
    int connections_ = 0;
};

// RESP reply builders, for readable scripts.
std::string bulk(std::string_view s);                            // "$3\r\n2-0\r\n"
std::string array(std::initializer_list<std::string> elements);  // elements already encoded
// A stream entry as XREADGROUP / XAUTOCLAIM return it: [id, [field, value, …]].
std::string stream_entry(std::string_view id, std::initializer_list<std::string_view> fields_and_values);

// Runs `task` on `io` until it completes (or `limit` passes: then nullopt).
// Rethrows what the task threw.
template <class T>
std::optional<T> run(boost::asio::io_context& io, boost::asio::awaitable<T> task,
                     std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    struct state {
        std::optional<T> value;
        std::exception_ptr error;
    };
    auto s = std::make_shared<state>();
    io.restart();
    boost::asio::co_spawn(io, std::move(task), [s, &io](std::exception_ptr e, T v) {
        if (e)
            s->error = e;
        else
            s->value = std::move(v);
        io.stop();
    });
    io.run_for(limit);
    if (s->error) std::rethrow_exception(s->error);
    return std::move(s->value);
}

}  // namespace outq::test
