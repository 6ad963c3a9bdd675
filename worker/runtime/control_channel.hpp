#pragma once
// The control channel: this worker's one subscriber connection, on the
// queue's control channel (queue/control.hpp, docs/protocol.md). It hears what
// other workers and the operator say about the accounts — a pause set by a
// 429, `outq pause`, `outq resume`, a circuit or a limit change — and about
// delayed jobs made due sooner (`due`, for the movers), and tells
// the runtime: the pause board is updated (a pause noted as Redis now holds
// it, a resume clears the account) and the message hook is called (a part
// asleep on that account wakes on it). Messages of accounts the
// configuration does not name, and messages it cannot read, are ignored.
//
// A message is only a wake-up: one published while the connection was down
// is lost. So after every subscribe, the first one included, the resync hook
// is called: whoever sleeps on an account reads its keys again. A quiet
// connection is checked with a PING every ping interval (a peer gone without
// a word is found); a lost one is dialled again with a backoff, logged once
// per interval with a count. stop() ends a blocked read at once.
//
// Owns: the subscriber connection, its timer, backoff and log throttles, the
// hooks, its counts.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "context.hpp"
#include "outq/backoff.hpp"
#include "outq/log_throttle.hpp"
#include "outq/queue/control.hpp"
#include "outq/redis_connection.hpp"
#include "pause_board.hpp"

namespace outq::runtime {

// What a message does to the pause board: a pause is set to what was left of
// it when published (the message is Redis' state after the change, so it
// replaces what the board knew); a resume clears the account; a circuit or a
// limit change leaves the board alone.
void apply_to_board(pause_board& board, const queue::control_message& m, pause_board::clock::time_point now);

class control_channel {
  public:
    using message_hook = std::function<void(const queue::control_message&)>;
    using resync_hook = std::function<void()>;
    static constexpr std::chrono::milliseconds default_ping_interval{15000};

    control_channel(boost::asio::any_io_executor ex, context& ctx, redis::connection& conn,
                    std::chrono::milliseconds ping_interval = default_ping_interval);

    // Called for every message of a configured account, after the board was updated.
    void on_message(message_hook hook) { on_message_ = std::move(hook); }
    // Called after every (re)subscribe: messages may have been missed.
    void on_resync(resync_hook hook) { on_resync_ = std::move(hook); }

    boost::asio::awaitable<void> run();
    void stop();
    // One round: subscribe when not subscribed (then the resync hook), else
    // the next message (waiting at most the ping interval) applied, or a PING
    // when none came. False on Redis trouble: the connection is closed, and
    // the next round subscribes again.
    boost::asio::awaitable<bool> step();

    const std::string& channel() const { return channel_; }
    std::uint64_t heard() const { return heard_; }      // messages applied
    std::uint64_t ignored() const { return ignored_; }  // unreadable, or of an account not configured
    std::uint64_t subscribes() const { return subscribes_; }

  private:
    void handle(const std::string& payload);
    void trouble(std::string_view what, const std::string& error);

    context& ctx_;
    redis::connection& conn_;
    std::chrono::milliseconds ping_interval_;
    std::string channel_;
    message_hook on_message_ = [](const queue::control_message&) {};
    resync_hook on_resync_ = [] {};
    bool stopping_ = false;
    boost::asio::steady_timer timer_;
    outq::backoff backoff_;
    log::throttle trouble_log_;
    log::throttle bad_message_log_;
    std::uint64_t heard_ = 0;
    std::uint64_t ignored_ = 0;
    std::uint64_t subscribes_ = 0;
};

}  // namespace outq::runtime
