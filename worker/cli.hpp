#pragma once
// The operator commands of the `outq` binary (everything but `run`).
#include <boost/asio/awaitable.hpp>

#include <string>
#include <vector>

#include "outq/config.hpp"
#include "outq/redis_connection.hpp"

namespace outq::cli {

struct arguments {
    std::vector<std::string> positional;                       // after the command words
    std::vector<std::pair<std::string, std::string>> options;  // --name value / --flag ""
    bool json = false;
    bool has(std::string_view name) const;
    std::string get(std::string_view name, std::string fallback = "") const;
};

struct context {
    redis::connection& redis;
    std::string queue;
    const adapter_registry& adapters;
    const worker_config* config = nullptr;  // when --config was given
};

boost::asio::awaitable<int> enqueue(context& ctx, const arguments& args);
boost::asio::awaitable<int> show_result(context& ctx, const arguments& args);
boost::asio::awaitable<int> stats(context& ctx, const arguments& args);
boost::asio::awaitable<int> dead_list(context& ctx, const arguments& args);
boost::asio::awaitable<int> dead_show(context& ctx, const arguments& args);
boost::asio::awaitable<int> dead_replay(context& ctx, const arguments& args);
boost::asio::awaitable<int> pause(context& ctx, const arguments& args);
boost::asio::awaitable<int> resume(context& ctx, const arguments& args);

}  // namespace outq::cli
