#pragma once
// The sentinel watch: with redis.sentinel, a subscriber connection to one of
// the sentinels on `+switch-master`. When Sentinel announces a new primary of
// this worker's master, the switch hook is called (the runtime makes every
// Redis connection dial again, asking Sentinel), so the worker moves at once
// instead of when the old primary first answers READONLY — or never, while a
// partitioned old primary still takes writes that its promoted replica will
// not have. A lost connection is dialled again with a backoff, the next
// sentinel first; a quiet one is checked with a PING every ping interval.
//
// Owns: its subscriber connection (re-made for each sentinel), its timer,
// backoff, log throttle and count.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "context.hpp"
#include "outq/backoff.hpp"
#include "outq/log_throttle.hpp"
#include "outq/redis_connection.hpp"

namespace outq::runtime {

class sentinel_watch {
  public:
    using switch_hook = std::function<void(const std::string& primary)>;
    static constexpr std::chrono::milliseconds default_ping_interval{15000};

    sentinel_watch(boost::asio::any_io_executor ex, context& ctx, redis::sentinel_options sentinels,
                   redis::connection_options base, std::chrono::milliseconds ping_interval = default_ping_interval);

    void on_switch(switch_hook hook) { on_switch_ = std::move(hook); }

    boost::asio::awaitable<void> run();
    void stop();
    // One round: subscribe to the next sentinel when not subscribed, else the
    // next message (waiting at most the ping interval), or a PING when none
    // came. False on trouble (the connection is closed then).
    boost::asio::awaitable<bool> step();

    std::uint64_t switches() const { return switches_; }

  private:
    void trouble(std::string_view what, const std::string& error);

    boost::asio::any_io_executor executor_;
    context& ctx_;
    redis::sentinel_options sentinels_;
    redis::connection_options base_;
    std::chrono::milliseconds ping_interval_;
    std::unique_ptr<redis::connection> conn_;
    std::size_t next_ = 0;  // the sentinel to subscribe to next
    switch_hook on_switch_ = [](const std::string&) {};
    bool stopping_ = false;
    boost::asio::steady_timer timer_;
    outq::backoff backoff_;
    log::throttle trouble_log_;
    std::uint64_t switches_ = 0;
};

}  // namespace outq::runtime
