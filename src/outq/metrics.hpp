#pragma once
// Process metrics in the Prometheus text format: counters and gauges keyed by
// name and labels, plus a latency histogram. Single-threaded like the rest of
// the worker, so plain integers suffice.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace outq {

class metrics {
  public:
    // name{labels}, e.g. inc("outq_jobs_total", "provider=\"mews\",status=\"sent\"").
    void inc(std::string_view name, std::string_view labels = {}, std::uint64_t by = 1);
    void set(std::string_view name, std::string_view labels, std::int64_t value);
    // Send latency in milliseconds.
    void observe_send_ms(std::int64_t ms);
    // Prometheus exposition text (version 0.0.4).
    std::string render() const;

  private:
    // name{labels} in a buffer reused by every call: an existing series costs no allocation.
    std::string_view key_of(std::string_view name, std::string_view labels);
    std::string scratch_;
    static constexpr std::array<std::int64_t, 10> bucket_bounds_ms{5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000};
    std::map<std::string, std::uint64_t, std::less<>> counters_;
    std::map<std::string, std::int64_t, std::less<>> gauges_;
    std::array<std::uint64_t, bucket_bounds_ms.size()> buckets_{};
    std::uint64_t send_count_ = 0;
    std::int64_t send_sum_ms_ = 0;
};

// A label value with Prometheus escaping: provider="a\"b".
std::string label(std::string_view name, std::string_view value);
// The same, appended to `out` after a comma when `out` is not empty.
void append_label(std::string& out, std::string_view name, std::string_view value);

}  // namespace outq
