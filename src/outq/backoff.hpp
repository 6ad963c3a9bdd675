#pragma once
// Bounded, jittered exponential backoff for trouble that passes (Redis down,
// refusing writes, a limiter that cannot answer). Pure: the caller passes the
// random number, so every delay is tested exactly. One instance per loop: two
// loops never share a backoff, nor the timer they sleep on.
#include <algorithm>
#include <chrono>

namespace outq {

class backoff {
  public:
    explicit backoff(std::chrono::milliseconds first = std::chrono::milliseconds(100),
                     std::chrono::milliseconds max = std::chrono::milliseconds(5000))
        : first_(first), max_(max), base_(first) {}

    // The next delay: the base (doubling from `first` to `max`) scaled by a
    // factor in [0.8, 1.2) so a fleet that failed together does not retry together.
    std::chrono::milliseconds next(double unit_random) {
        const auto base = base_;
        base_ = std::min(base_ * 2, max_);
        ++failures_;
        const double factor = 0.8 + 0.4 * std::clamp(unit_random, 0.0, 1.0);
        return std::chrono::milliseconds(static_cast<long long>(static_cast<double>(base.count()) * factor));
    }
    void reset() {
        base_ = first_;
        failures_ = 0;
    }
    int failures() const { return failures_; }

  private:
    std::chrono::milliseconds first_, max_, base_;
    int failures_ = 0;
};

}  // namespace outq
