#pragma once
// A level-free wake-up for coroutines on one strand: waiters sleep until
// notify_all(), then re-check their condition. Built on a steady_timer that
// never expires by itself; cancelling it wakes every pending wait.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace outq::detail {

inline constexpr auto use_nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

class async_event {
  public:
    explicit async_event(boost::asio::any_io_executor ex) : timer_(std::move(ex)) {
        timer_.expires_at(boost::asio::steady_timer::time_point::max());
    }
    boost::asio::awaitable<void> wait() { co_await timer_.async_wait(use_nothrow); }
    void notify_all() { timer_.cancel(); }

  private:
    boost::asio::steady_timer timer_;
};

// Sleeps for `d`; returns false when woken early by cancellation.
inline boost::asio::awaitable<bool> sleep_for(boost::asio::steady_timer& timer, boost::asio::steady_timer::duration d) {
    timer.expires_after(d);
    auto [ec] = co_await timer.async_wait(use_nothrow);
    co_return !ec;
}

}  // namespace outq::detail
