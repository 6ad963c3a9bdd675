#pragma once
// Start-up checks, before anything is fetched: the queue is of the format
// this worker knows (a new queue gets it written; a format 1 queue or an
// unknown format is refused, docs/protocol.md), the consumer group exists
// (created at id 0), the Redis user may run every command the worker needs
// (one harmless call of each; a missing permission is named and the worker
// refuses to start), the scripts are loaded (SCRIPT LOAD; without that
// permission they are sent with EVAL), and the eviction policy cannot drop
// the queue (anything but noeviction is warned about loudly).
#include <boost/asio/awaitable.hpp>

#include <string>

#include "context.hpp"
#include "outq/redis_connection.hpp"

namespace outq::runtime {

struct preflight_result {
    enum class kind { ready, retry, refuse };
    kind what = kind::retry;
    std::string error;  // for retry (Redis unreachable) and refuse (what an operator must fix)
};

boost::asio::awaitable<preflight_result> run_preflight(context& ctx, redis::connection& conn);

}  // namespace outq::runtime
