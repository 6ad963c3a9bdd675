#include "outq/policy/batching.hpp"

#include <algorithm>

namespace outq::policy {

int batch_limit_after(int limit, int max, int sent, bool too_heavy, bool answered_well) {
    const int current = batch_limit_of(limit, max);
    if (too_heavy && sent > 1) return std::max(1, std::min(current, sent / 2));
    // Only a batch that filled the limit says the limit is light enough.
    if (!answered_well || sent < current || current >= max) return current >= max ? 0 : current;
    const int grown = std::min(max, current + std::max(1, current / 4));
    return grown >= max ? 0 : grown;
}

}  // namespace outq::policy
