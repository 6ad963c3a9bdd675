#include "outq/policy/fetch_size.hpp"

#include <algorithm>
#include <cmath>

namespace outq::policy {

int fetch_count(int wanted, double bytes_per_entry, std::size_t fetch_bytes) {
    if (wanted <= 0) return 0;
    const double per = std::max(bytes_per_entry, 1.0);
    const double fits = std::floor(static_cast<double>(fetch_bytes) / per);
    return static_cast<int>(std::clamp(fits, 1.0, static_cast<double>(wanted)));
}

double next_entry_bytes(double estimate, std::size_t bytes, std::size_t entries) {
    if (entries == 0) return estimate;
    const double seen = static_cast<double>(bytes) / static_cast<double>(entries);
    // Larger entries count at once (a read must not overshoot twice); smaller ones a quarter at a time.
    if (seen > estimate) return seen;
    return estimate + (seen - estimate) / 4;
}

std::size_t reply_limit(const worker_config& c) {
    return c.fetch_bytes + 2 * c.max_job_bytes + 64 * 1024;
}

}  // namespace outq::policy
