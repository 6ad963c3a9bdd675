// outq: the worker and its operator commands. main owns the io_context and the
// signals; everything else takes an executor.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli.hpp"
#include "outq/log.hpp"
#include "register_all.hpp"
#include "runtime/runtime.hpp"

namespace asio = boost::asio;

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    // glibc raises its mmap threshold after the first large free, and then large
    // buffers (a job, a request body, a Redis reply) fragment the heap: RSS crept
    // from 307 to 466 MiB over 8 waves of the same 256 KiB jobs and was never
    // returned (scripts/bench/pod_memory.py). A fixed 128 KiB threshold keeps each
    // in its own mapping, given back when freed; pod memory is sized on that.
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    const std::vector<std::string> words(argv + 1, argv + argc);
    const outq::cli::invocation args = outq::cli::parse_command_line(words);
    using action = outq::cli::invocation::action;
    switch (args.what) {
        case action::help: {
            std::string help = outq::cli::general_help();
            if (args.command)
                help = outq::cli::command_help(*args.command);
            else if (!args.group.empty())
                help = outq::cli::group_help(args.group);
            std::fputs(help.c_str(), stdout);
            return 0;
        }
        case action::version:
            break;
        case action::usage_error:
            if (words.empty()) {
                std::fputs(outq::cli::general_help().c_str(), stderr);
            } else {
                std::fprintf(stderr, "outq: %s\n%s\n", args.error.c_str(), args.hint().c_str());
            }
            return 2;
        case action::run:
            break;
    }
    if (args.what == action::version || args.command->name == "version") {
        if (args.json)
            std::printf("{\"version\": \"%s\"}\n", OUTQ_VERSION);
        else
            std::printf("outq %s\n", OUTQ_VERSION);
        return 0;
    }
    const std::string command(args.command->name);

    outq::adapter_registry adapters;
    outq::adapters::register_builtin_adapters(adapters);

    std::optional<outq::worker_config> config;
    const std::string config_file =
        args.options.string("config").value_or(std::getenv("OUTQ_CONFIG") ? std::getenv("OUTQ_CONFIG") : "");
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
    if (auto url = args.options.string("redis")) effective.redis.url = *url;
    if (auto queue = args.options.string("queue")) {
        if (queue->empty() || queue->find_first_of("{}:#@ ") != std::string::npos) {
            std::fprintf(stderr, "outq: --queue: must be a non-empty name without '{', '}', ':', '#', '@' or spaces\n");
            return 2;
        }
        effective.queue = *queue;
    }
    outq::log::set_level(effective.log_level);
    outq::log::set_format(effective.log_format);

    outq::redis::connection_options options;
    try {
        options = outq::redis::options_from(effective.redis);
    } catch (const outq::config_error& e) {
        std::fprintf(stderr, "outq: %s\n", e.what());
        return 2;
    }

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

    outq::redis::connection redis(io.get_executor(), options);
    outq::cli::context ctx{redis, effective.queue, adapters, config ? &*config : nullptr, {}};

    const outq::cli::command_handler handler = outq::cli::handler_for(*args.command);
    if (!handler) {  // every command but run, version and help has one
        std::fprintf(stderr, "outq: no handler for '%s'\n", command.c_str());
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
