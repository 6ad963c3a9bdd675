#include "outq/metrics.hpp"

#include <cstdio>

namespace outq {

std::string label(std::string_view name, std::string_view value) {
    std::string out;
    append_label(out, name, value);
    return out;
}

void append_label(std::string& out, std::string_view name, std::string_view value) {
    if (!out.empty()) out += ',';
    out += name;
    out += "=\"";
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    out += '"';
}

std::string_view metrics::key_of(std::string_view name, std::string_view labels) {
    scratch_.assign(name);
    if (!labels.empty()) {
        scratch_ += '{';
        scratch_ += labels;
        scratch_ += '}';
    }
    return scratch_;
}

namespace {

std::string_view family(std::string_view key) {
    return key.substr(0, key.find('{'));
}
}  // namespace

void metrics::inc(std::string_view name, std::string_view labels, std::uint64_t by) {
    const auto key = key_of(name, labels);
    if (auto it = counters_.find(key); it != counters_.end())
        it->second += by;
    else
        counters_.emplace(std::string(key), by);
}

void metrics::set(std::string_view name, std::string_view labels, std::int64_t value) {
    const auto key = key_of(name, labels);
    if (auto it = gauges_.find(key); it != gauges_.end())
        it->second = value;
    else
        gauges_.emplace(std::string(key), value);
}

void metrics::observe_send_ms(std::int64_t ms) {
    for (std::size_t i = 0; i < bucket_bounds_ms.size(); ++i)
        if (ms <= bucket_bounds_ms[i]) ++buckets_[i];
    ++send_count_;
    send_sum_ms_ += ms;
}

std::string metrics::render() const {
    std::string out;
    std::string_view last;
    for (auto& [k, v] : counters_) {
        if (family(k) != last) {
            last = family(k);
            out += "# TYPE " + std::string(last) + " counter\n";
        }
        out += k + " " + std::to_string(v) + "\n";
    }
    last = {};
    for (auto& [k, v] : gauges_) {
        if (family(k) != last) {
            last = family(k);
            out += "# TYPE " + std::string(last) + " gauge\n";
        }
        out += k + " " + std::to_string(v) + "\n";
    }
    out += "# TYPE outq_send_duration_seconds histogram\n";
    for (std::size_t i = 0; i < bucket_bounds_ms.size(); ++i) {
        char le[32];
        std::snprintf(le, sizeof le, "%g", static_cast<double>(bucket_bounds_ms[i]) / 1000.0);
        out +=
            "outq_send_duration_seconds_bucket{le=\"" + std::string(le) + "\"} " + std::to_string(buckets_[i]) + "\n";
    }
    out += "outq_send_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(send_count_) + "\n";
    char sum[40];
    std::snprintf(sum, sizeof sum, "%.3f", static_cast<double>(send_sum_ms_) / 1000.0);
    out += "outq_send_duration_seconds_sum " + std::string(sum) + "\n";
    out += "outq_send_duration_seconds_count " + std::to_string(send_count_) + "\n";
    return out;
}

}  // namespace outq
