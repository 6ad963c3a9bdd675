#pragma once
// What this worker knows of its accounts' pauses: every pause it set (a 429,
// a provider's exhausted RateLimit) or met (a claim or a permit that found
// the account paused), or heard of on the control channel (another worker's
// pause, an operator's pause or resume), until when. Only for the
// outq_account_paused gauge: the pause itself lives in Redis, and every
// decision reads it there.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace outq::runtime {

class pause_board {
  public:
    using clock = std::chrono::steady_clock;

    // `pause_ms` left of the pause; negative: until resumed.
    void note(std::string_view provider, std::string_view account, std::int64_t pause_ms, clock::time_point now) {
        const auto until = pause_ms < 0 ? clock::time_point::max() : now + std::chrono::milliseconds(pause_ms);
        auto& at = until_[{std::string(provider), std::string(account)}];
        at = std::max(at, until);
    }
    // What Redis holds now, as the control channel says it (it may shorten
    // what was noted: an operator's pause replaces any other).
    void set(std::string_view provider, std::string_view account, std::int64_t pause_ms, clock::time_point now) {
        until_[{std::string(provider), std::string(account)}] =
            pause_ms < 0 ? clock::time_point::max() : now + std::chrono::milliseconds(pause_ms);
    }
    // The account was resumed.
    void clear(std::string_view provider, std::string_view account) {
        until_.erase({std::string(provider), std::string(account)});
    }
    bool paused(std::string_view provider, std::string_view account, clock::time_point now) const {
        auto it = until_.find({std::string(provider), std::string(account)});
        return it != until_.end() && it->second > now;
    }

  private:
    std::map<std::pair<std::string, std::string>, clock::time_point> until_;
};

}  // namespace outq::runtime
