#include "outq/queue/errors.hpp"

namespace outq::queue {

std::string_view error_code(const redis::value& v) {
    std::string_view s = v.str;
    auto space = s.find(' ');
    return space == std::string_view::npos ? s : s.substr(0, space);
}

error_kind classify_error(const redis::value& v) {
    if (!v.is_error()) return error_kind::none;
    const auto code = error_code(v);
    for (auto c : {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "OOM"})
        if (code == c) return error_kind::transient;
    if (code == "MOVED" || code == "ASK") return error_kind::redirect;
    if (code == "NOSCRIPT") return error_kind::noscript;
    return error_kind::permanent;
}

std::string redirect_hint() {
    return "this is a Redis Cluster node that does not own the queue's slot; name the cluster's nodes in "
           "redis.cluster.nodes instead of redis.url (docs/operations.md, Redis Cluster)";
}

std::string_view to_string(error_kind k) {
    switch (k) {
        case error_kind::none:
            return "none";
        case error_kind::transient:
            return "transient";
        case error_kind::redirect:
            return "redirect";
        case error_kind::noscript:
            return "noscript";
        case error_kind::permanent:
            return "permanent";
    }
    return "permanent";
}

const redis::value* first_error(const std::vector<redis::value>& replies) {
    for (auto& r : replies)
        if (r.is_error()) return &r;
    return nullptr;
}

}  // namespace outq::queue
