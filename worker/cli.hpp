#pragma once
// The operator commands of the `outq` binary (everything but `run`). Their
// command lines are declared and parsed in options.hpp.
#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

#include "options.hpp"
#include "outq/config.hpp"
#include "outq/queue/admin.hpp"
#include "outq/queue_protocol.hpp"
#include "outq/redis_connection.hpp"

namespace outq::cli {

struct context {
    redis::connection& redis;
    std::string queue;
    const adapter_registry& adapters;
    const worker_config* config = nullptr;  // when --config was given (config_use::operator_commands)
    // The queue's partitions as outq:{Q}:partitions records them, read before
    // a command that needs them runs (queue/partitions.hpp).
    std::vector<outq::queue::keys> partitions;
    // The partition a job id lives in.
    const outq::queue::keys& home(std::string_view job_id) const;
    // What does not depend on the partition: account keys, the control channel.
    const outq::queue::keys& queue_wide() const { return partitions.front(); }
};

// One job of `outq enqueue`'s input: its JSON text and the line of the input
// where it starts; `error` says why it is not JSON (then `json` is empty).
struct input_job {
    std::size_t line = 0;
    std::string json;
    std::string error;
};
// Splits enqueue input: one JSON object, an array (each element a job), or JSON
// lines (blank lines skipped). Every line that is not JSON is an input_job
// with an error, so all of them can be reported. Input that parses as JSON but
// is neither an object nor an array is one job with an error, as is an array
// that does not parse (at the line of the error).
std::vector<input_job> split_jobs(std::string_view text);

using command_handler = boost::asio::awaitable<int> (*)(context&, const invocation&);

// The handler of an operator command; nullptr for run, version and help.
command_handler handler_for(const command_spec& command);

// The partition count of ctx.queue (outq:{Q}:partitions, else the config's,
// else 1) into ctx.partitions; the error when it cannot be read.
boost::asio::awaitable<std::optional<std::string>> load_partitions(context& ctx);
// Where a dead letter's job goes when replayed, and where its result is: the
// partition of its id, or, for a job without one, the partition it died in.
const outq::queue::keys& letter_home(const context& ctx, const outq::queue::admin::dead_letter& d);

// Every provider account of the queue with a limit window, a pause or a
// circuit (found with SCAN), and its state; `error` set when Redis failed.
boost::asio::awaitable<std::vector<outq::queue::admin::scope_state>> read_scopes(context& ctx, std::string& error);
// `outq resume`: the pause deleted (and published), then the jobs it held in
// every partition's delayed set due now.
struct resume_outcome {
    bool was_paused = false;
    std::size_t moved = 0;           // held jobs made due now
    outq::redis::value unpublished;  // the PUBLISH reply (an error: the workers were not told)
    std::string error;               // empty: done
};
boost::asio::awaitable<resume_outcome> resume_account(context& ctx, const std::string& provider,
                                                      const std::string& account);

// Every partition's dead letters, oldest first; false with `error` when Redis failed.
boost::asio::awaitable<bool> read_dead(context& ctx, std::vector<outq::queue::admin::dead_letter>& out,
                                       std::string& error);
// Every partition's replayed hash (dead letter entry id → the entry of its replay), by partition.
boost::asio::awaitable<bool> read_replayed_maps(context& ctx, std::vector<outq::queue::admin::field_list>& out,
                                                std::string& error);
// The entry a letter was replayed as (recorded in its home partition); empty: never replayed.
std::string replayed_as(const context& ctx, const std::vector<outq::queue::admin::field_list>& maps,
                        const outq::queue::admin::dead_letter& d);

boost::asio::awaitable<int> enqueue(context& ctx, const invocation& args);
boost::asio::awaitable<int> web(context& ctx, const invocation& args);
boost::asio::awaitable<int> show_result(context& ctx, const invocation& args);
boost::asio::awaitable<int> stats(context& ctx, const invocation& args);
boost::asio::awaitable<int> dead_list(context& ctx, const invocation& args);
boost::asio::awaitable<int> dead_show(context& ctx, const invocation& args);
boost::asio::awaitable<int> dead_replay(context& ctx, const invocation& args);
boost::asio::awaitable<int> pause(context& ctx, const invocation& args);
boost::asio::awaitable<int> resume(context& ctx, const invocation& args);
boost::asio::awaitable<int> cancel(context& ctx, const invocation& args);
// Format 1 to format 2, in place (docs/protocol.md, "Upgrading from format 1").
boost::asio::awaitable<int> migrate(context& ctx, const invocation& args);
boost::asio::awaitable<int> dead_delete(context& ctx, const invocation& args);
boost::asio::awaitable<int> dead_purge(context& ctx, const invocation& args);
boost::asio::awaitable<int> job_show(context& ctx, const invocation& args);
boost::asio::awaitable<int> job_retry_now(context& ctx, const invocation& args);
boost::asio::awaitable<int> list_jobs(context& ctx, const invocation& args);
boost::asio::awaitable<int> health(context& ctx, const invocation& args);
// The URL a worker listening on `listen` ("host:port", metrics_listen) answers
// on: a wildcard host (empty, 0.0.0.0, ::) is asked on the loopback.
std::string metrics_url_of_listen(std::string_view listen);

}  // namespace outq::cli
