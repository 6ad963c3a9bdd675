// outq: the worker and its operator commands. main owns the io_context and the
// signals; everything else takes an executor.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli.hpp"
#include "outq/log.hpp"
#include "register_all.hpp"
#include "runtime/runtime.hpp"

namespace asio = boost::asio;

namespace {

const char* usage = R"(usage: outq COMMAND [options]

commands:
  run                          run the worker until SIGTERM/SIGINT
  enqueue [FILE|-]             enqueue jobs: a JSON object, an array, or JSON lines (stdin by default)
  result JOB_ID                show a job's result
  stats                        queue length, pending, delayed and dead counts
  dead list                    list dead letters, newest first (--limit N, filters)
  dead show ID                 one dead letter by job id or entry id
  dead replay [ID]             send dead letters again (filters, --all, --dry-run, --force)
  pause PROVIDER ACCOUNT       every worker holds off this account (--for 10m, --reason TEXT)
  resume PROVIDER ACCOUNT      lift a pause
  version                      print the version

options:
  --config FILE     worker configuration (default: $OUTQ_CONFIG); `run` needs it
  --redis URL       Redis URL (default: $OUTQ_REDIS_URL, else the config's redis.url)
  --queue NAME      queue name (default: the config's, else "default")
  --json            machine-readable output
filters for dead list/replay:
  --provider P  --account A  --class C  --since TIME  --until TIME   (TIME: RFC 3339 or unix ms)
)";

// Flags that take no value.
bool is_flag(std::string_view name) {
    return name == "json" || name == "dry-run" || name == "all" || name == "force" || name == "help";
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> words;
    outq::cli::arguments args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("--", 0) == 0 && a.size() > 2) {
            std::string name = a.substr(2), value;
            if (auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            } else if (!is_flag(name)) {
                if (i + 1 >= argc) {
                    std::fprintf(stderr, "outq: --%s needs a value\n", name.c_str());
                    return 2;
                }
                value = argv[++i];
            }
            if (name == "json") args.json = true;
            args.options.emplace_back(name, value);
        } else {
            words.push_back(a);
        }
    }
    if (words.empty() || args.has("help") || words[0] == "help") {
        std::fputs(usage, words.empty() && !args.has("help") ? stderr : stdout);
        return words.empty() && !args.has("help") ? 2 : 0;
    }
    const std::string command = words[0];
    if (command == "version") {
        std::printf("outq %s\n", OUTQ_VERSION);
        return 0;
    }
    std::string sub;
    std::size_t first_positional = 1;
    if (command == "dead") {
        if (words.size() < 2) {
            std::fprintf(stderr, "outq: dead needs list, show or replay\n");
            return 2;
        }
        sub = words[1];
        first_positional = 2;
    }
    args.positional.assign(words.begin() + static_cast<long>(std::min(first_positional, words.size())), words.end());

    outq::adapter_registry adapters;
    outq::adapters::register_builtin_adapters(adapters);

    std::optional<outq::worker_config> config;
    std::string config_file = args.get("config", std::getenv("OUTQ_CONFIG") ? std::getenv("OUTQ_CONFIG") : "");
    try {
        // Only `run` needs the providers' secrets; the operator commands resolve those of redis and queue.
        if (!config_file.empty())
            config = outq::load_config_file(
                config_file, adapters,
                command == "run" ? outq::config_use::worker : outq::config_use::operator_commands);
    } catch (const outq::config_error& e) {
        std::fprintf(stderr, "outq: %s\n", e.what());
        return 2;
    }
    if (command == "run" && !config) {
        std::fprintf(stderr, "outq: run needs --config FILE (or OUTQ_CONFIG); see deploy/outq.example.json\n");
        return 2;
    }
    outq::worker_config effective = config ? *config : outq::worker_config{};
    if (const char* url = std::getenv("OUTQ_REDIS_URL"); url && *url) effective.redis.url = url;
    if (args.has("redis")) effective.redis.url = args.get("redis");
    if (args.has("queue")) effective.queue = args.get("queue");
    outq::log::set_level(effective.log_level);

    std::string url_error;
    auto endpoint = outq::redis::parse_url(effective.redis.url, url_error);
    if (!endpoint) {
        std::fprintf(stderr, "outq: redis.url: %s\n", url_error.c_str());
        return 2;
    }
    if (!effective.redis.password.empty()) endpoint->password = effective.redis.password;

    asio::io_context io(1);  // one thread: coroutines never race, Asio skips locking
    if (command == "run") {
        try {
            outq::worker_runtime runtime(io.get_executor(), effective, adapters);
            asio::signal_set signals(io, SIGINT, SIGTERM);
            int signals_seen = 0;
            std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int sig) {
                if (ec) return;
                if (++signals_seen == 1) {
                    outq::log::info("signal received: draining", "signal=" + std::to_string(sig));
                    runtime.stop();
                } else {
                    outq::log::warn("second signal: stopping now", "signal=" + std::to_string(sig));
                    runtime.stop_now();
                }
                signals.async_wait(on_signal);
            };
            signals.async_wait(on_signal);
            bool finished = false;
            asio::co_spawn(io, runtime.run(), [&](std::exception_ptr e) {
                finished = true;
                signals.cancel();
                if (e) std::rethrow_exception(e);
            });
            io.run();
            return finished ? runtime.exit_code() : 1;
        } catch (const outq::config_error& e) {
            std::fprintf(stderr, "outq: %s\n", e.what());
            return 2;
        } catch (const std::exception& e) {
            outq::log::error("worker failed", "error=" + outq::log::value(e.what()));
            return 1;
        }
    }

    outq::redis::connection_options options;
    options.where = *endpoint;
    options.tls_ca_file = effective.redis.tls_ca_file;
    options.tls_verify = effective.redis.tls_verify;
    options.connect_timeout = effective.redis.connect_timeout;
    options.command_timeout = effective.redis.command_timeout;
    outq::redis::connection redis(io.get_executor(), options);
    outq::cli::context ctx{redis, effective.queue, adapters, config ? &*config : nullptr};

    asio::awaitable<int> (*handler)(outq::cli::context&, const outq::cli::arguments&) = nullptr;
    if (command == "enqueue")
        handler = outq::cli::enqueue;
    else if (command == "result")
        handler = outq::cli::show_result;
    else if (command == "stats")
        handler = outq::cli::stats;
    else if (command == "dead" && sub == "list")
        handler = outq::cli::dead_list;
    else if (command == "dead" && sub == "show")
        handler = outq::cli::dead_show;
    else if (command == "dead" && sub == "replay")
        handler = outq::cli::dead_replay;
    else if (command == "pause")
        handler = outq::cli::pause;
    else if (command == "resume")
        handler = outq::cli::resume;
    if (!handler) {
        std::fprintf(stderr, "outq: unknown command '%s%s%s'\n\n%s", command.c_str(), sub.empty() ? "" : " ",
                     sub.c_str(), usage);
        return 2;
    }
    int exit_code = 1;
    asio::co_spawn(io, handler(ctx, args), [&](std::exception_ptr e, int code) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                std::fprintf(stderr, "outq: %s\n", ex.what());
            }
            exit_code = 1;
            return;
        }
        exit_code = code;
    });
    io.run();
    return exit_code;
}
