#pragma once
// One log line per ongoing condition per interval, with the count of the lines
// held back, instead of a line per failed attempt. Pure: `now` is passed in.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "outq/log.hpp"

namespace outq::log {

class throttle {
  public:
    using clock = std::chrono::steady_clock;
    explicit throttle(std::chrono::milliseconds interval = std::chrono::milliseconds(10000)) : interval_(interval) {}

    // Another occurrence of the condition: returns the number of occurrences
    // held back since the last line when this one is to be logged, nullopt
    // when it is held back.
    std::optional<std::uint64_t> admit(clock::time_point now) {
        if (!active_ || now - last_ >= interval_) {
            const auto held = held_;
            active_ = true;
            last_ = now;
            held_ = 0;
            return held;
        }
        ++held_;
        return std::nullopt;
    }
    // The condition ended. True when a line was written about it (so the
    // caller may say it recovered); `held` gets the occurrences held back since.
    bool clear(std::uint64_t* held = nullptr) {
        if (held) *held = held_;
        const bool was = active_;
        active_ = false;
        held_ = 0;
        return was;
    }
    bool active() const { return active_; }

  private:
    std::chrono::milliseconds interval_;
    bool active_ = false;
    clock::time_point last_{};
    std::uint64_t held_ = 0;
};

// A periodic line (the progress line) written only when it says something
// new, and once every `every`-th time when it keeps saying the same (a sign
// of life). Pure: the caller offers each line and writes it when told to.
class repeat_filter {
  public:
    explicit repeat_filter(int every = 60) : every_(every) {}
    bool pass(const std::string& line) {
        if (line == last_ && ++unchanged_ < every_) return false;
        unchanged_ = 0;
        last_ = line;
        return true;
    }

  private:
    int every_;
    int unchanged_ = 0;
    std::string last_;
};

// Writes `message` through `t`: at most one line per interval, carrying
// `repeated=N` when N lines were held back.
inline void write_throttled(throttle& t, level l, std::string_view message, std::string_view fields,
                            throttle::clock::time_point now = throttle::clock::now()) {
    auto held = t.admit(now);
    if (!held || !enabled(l)) return;
    if (*held == 0) {
        write(l, message, fields);
        return;
    }
    std::string f(fields);
    if (!f.empty()) f += ' ';
    f += "repeated=" + std::to_string(*held);
    write(l, message, f);
}

}  // namespace outq::log
