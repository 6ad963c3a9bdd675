#pragma once
// The operator commands of the `outq` binary (everything but `run`). Their
// command lines are declared and parsed in options.hpp.
#include <boost/asio/awaitable.hpp>

#include <string>
#include <vector>

#include "options.hpp"
#include "outq/config.hpp"
#include "outq/redis_connection.hpp"

namespace outq::cli {

struct context {
    redis::connection& redis;
    std::string queue;
    const adapter_registry& adapters;
    const worker_config* config = nullptr;  // when --config was given (config_use::operator_commands)
};

using command_handler = boost::asio::awaitable<int> (*)(context&, const invocation&);

// The handler of an operator command; nullptr for run, version and help.
command_handler handler_for(const command_spec& command);

boost::asio::awaitable<int> enqueue(context& ctx, const invocation& args);
boost::asio::awaitable<int> show_result(context& ctx, const invocation& args);
boost::asio::awaitable<int> stats(context& ctx, const invocation& args);
boost::asio::awaitable<int> dead_list(context& ctx, const invocation& args);
boost::asio::awaitable<int> dead_show(context& ctx, const invocation& args);
boost::asio::awaitable<int> dead_replay(context& ctx, const invocation& args);
boost::asio::awaitable<int> pause(context& ctx, const invocation& args);
boost::asio::awaitable<int> resume(context& ctx, const invocation& args);

}  // namespace outq::cli
