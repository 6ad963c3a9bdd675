#include "scripted_redis.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cctype>
#include <sstream>

#include "outq/detail/async_event.hpp"
#include "outq/reply_parser.hpp"

namespace outq::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using detail::use_nothrow;

namespace {

bool same_word(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

// "EVALSHA 1a2b… 5 outq:{q}:jobs …", each argument cut short, for failure notes.
std::string describe(const scripted_redis::args& a) {
    std::string out;
    for (std::size_t i = 0; i < a.size() && i < 6; ++i) {
        if (i) out += ' ';
        out += a[i].size() > 40 ? a[i].substr(0, 40) + "…" : a[i];
    }
    if (a.size() > 6) out += " …(" + std::to_string(a.size()) + " args)";
    return out;
}

scripted_redis::args to_args(const redis::value& v) {
    scripted_redis::args a;
    for (auto& e : v.elements) a.push_back(e.type == redis::value::kind::integer ? std::to_string(e.integer) : e.str);
    return a;
}

}  // namespace

bool scripted_redis::is(const args& a, std::string_view name) {
    std::size_t i = 0;
    std::istringstream words{std::string(name)};
    for (std::string w; words >> w; ++i)
        if (i >= a.size() || !same_word(a[i], w)) return false;
    return i > 0;
}

scripted_redis::scripted_redis(asio::io_context& io)
    : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io, accept_loop(), asio::detached);
}

scripted_redis::~scripted_redis() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& w : sockets_)
        if (auto s = w.lock()) s->close(ignored);
}

scripted_redis& scripted_redis::add(std::string what, matcher match, action act, std::string bytes) {
    script_.push_back({std::move(what), std::move(match), act, std::move(bytes)});
    return *this;
}

scripted_redis& scripted_redis::answer(std::string command, std::string reply) {
    auto m = [command](const args& a) { return is(a, command); };
    return add(command, m, action::reply, std::move(reply));
}

scripted_redis& scripted_redis::answer_if(std::string what, matcher match, std::string reply) {
    return add(std::move(what), std::move(match), action::reply, std::move(reply));
}

scripted_redis& scripted_redis::close_on(std::string command) {
    auto m = [command](const args& a) { return is(a, command); };
    return add(command, m, action::close, {});
}

scripted_redis& scripted_redis::hang_on(std::string command) {
    auto m = [command](const args& a) { return is(a, command); };
    return add(command, m, action::hang, {});
}

redis::connection_options scripted_redis::options(std::chrono::milliseconds command_timeout) const {
    redis::connection_options o;
    o.where.host = "127.0.0.1";
    o.where.port = port_;
    o.connect_timeout = std::chrono::milliseconds(1000);
    o.command_timeout = command_timeout;
    return o;  // no password, db 0, no client name: no handshake commands
}

std::vector<scripted_redis::args> scripted_redis::received(std::string_view command) const {
    std::vector<args> out;
    for (auto& a : received_)
        if (is(a, command)) out.push_back(a);
    return out;
}

asio::awaitable<void> scripted_redis::accept_loop() {
    for (;;) {
        auto socket = std::make_shared<tcp::socket>(acceptor_.get_executor());
        auto [ec] = co_await acceptor_.async_accept(*socket, use_nothrow);
        if (ec) co_return;
        ++connections_;
        sockets_.push_back(socket);
        asio::co_spawn(acceptor_.get_executor(), serve(socket), asio::detached);
    }
}

asio::awaitable<void> scripted_redis::serve(std::shared_ptr<tcp::socket> socket) {
    redis::reply_parser parser;
    std::array<char, 16 * 1024> buffer;
    bool hung = false;
    for (;;) {
        auto [ec, n] = co_await socket->async_read_some(asio::buffer(buffer), use_nothrow);
        if (ec) co_return;  // the client closed it (or its deadline did)
        parser.feed(buffer.data(), n);
        for (;;) {
            redis::value request;
            const auto st = parser.next(request);
            if (st == redis::reply_parser::status::need_more) break;
            if (st == redis::reply_parser::status::protocol_error || !request.is_array()) {
                unexpected_.push_back("unparseable request: " + parser.error_text());
                socket->close(ec);
                co_return;
            }
            received_.push_back(to_args(request));
            const auto& a = received_.back();
            if (hung) continue;
            std::string reply;
            if (script_.empty() || !script_.front().match(a)) {
                unexpected_.push_back(describe(a) + (script_.empty()
                                                         ? " (script ended)"
                                                         : " (the script expects " + script_.front().what + ")"));
                reply = "-ERR scripted_redis: unscripted command\r\n";
            } else {
                step s = std::move(script_.front());
                script_.pop_front();
                if (s.act == action::close) {
                    socket->close(ec);
                    co_return;
                }
                if (s.act == action::hang) {
                    hung = true;
                    continue;
                }
                reply = std::move(s.bytes);
            }
            auto [wec, written] = co_await asio::async_write(*socket, asio::buffer(reply), use_nothrow);
            if (wec) co_return;
        }
    }
}

std::string bulk(std::string_view s) {
    return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

std::string array(std::initializer_list<std::string> elements) {
    std::string out = "*" + std::to_string(elements.size()) + "\r\n";
    for (auto& e : elements) out += e;
    return out;
}

std::string stream_entry(std::string_view id, std::initializer_list<std::string_view> fields_and_values) {
    std::string fields = "*" + std::to_string(fields_and_values.size()) + "\r\n";
    for (auto f : fields_and_values) fields += bulk(f);
    return "*2\r\n" + bulk(id) + fields;
}

}  // namespace outq::test
