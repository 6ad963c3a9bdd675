#pragma once
// What a Redis error reply means for the caller: wait and try again, follow a
// redirect, load a script, or stop and tell an operator. Pure.
#include <string>
#include <string_view>

#include "outq/resp.hpp"

namespace outq::queue {

enum class error_kind {
    none,       // not an error reply
    transient,  // LOADING, BUSY, TRYAGAIN, MASTERDOWN, CLUSTERDOWN, READONLY, OOM: passes by waiting
    redirect,   // MOVED, ASK: the key lives elsewhere (Redis Cluster)
    noscript,   // NOSCRIPT: the script cache was emptied (restart, SCRIPT FLUSH): send the body
    permanent,  // NOPERM, WRONGTYPE, a script error…: waiting does not heal it; an operator must act
};

error_kind classify_error(const redis::value& v);
std::string_view to_string(error_kind k);

// The first error reply among `replies`, or nullptr.
const redis::value* first_error(const std::vector<redis::value>& replies);

// What a redirect met by a worker without redis.cluster means, and what to set.
std::string redirect_hint();

// "NOPERM" from "NOPERM this user has no permissions…" (the code of an error reply).
std::string_view error_code(const redis::value& v);

}  // namespace outq::queue
