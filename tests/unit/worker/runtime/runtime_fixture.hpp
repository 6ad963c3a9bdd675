#pragma once
// What the component tests share: a worker configuration (one webhook
// account), the runtime context, a Redis connection to a scripted peer, the
// ledger; and, for the components that feed admission, the real chain behind
// it (writer, heartbeat, sender, dispatcher). Nothing is sent to a provider
// in these tests: the jobs admitted end as duplicates or dead letters.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <string>
#include <string_view>

#include "../../fakes/scripted_redis.hpp"
#include "outq/adapter.hpp"
#include "outq/config.hpp"
#include "outq/http_client.hpp"
#include "outq/metrics.hpp"
#include "outq/redis_connection.hpp"
#include "outq/token_cache.hpp"
#include "register_all.hpp"
#include "runtime/admission.hpp"
#include "runtime/context.hpp"
#include "runtime/dispatcher.hpp"
#include "runtime/heartbeat.hpp"
#include "runtime/ledger.hpp"
#include "runtime/sender.hpp"
#include "runtime/task_group.hpp"
#include "runtime/writer.hpp"

namespace outq::test {

struct rig_settings {
    int concurrency = 4;
    int fetch_batch = 10;
    int command_timeout_ms = 200;
    int visibility_timeout_ms = 3000;
};

inline worker_config rig_config(adapter_registry& adapters, const rig_settings& s) {
    adapters::register_builtin_adapters(adapters);
    return parse_config(R"({"queue": "q", "concurrency": )" + std::to_string(s.concurrency) + R"(, "fetch_batch": )" +
                            std::to_string(s.fetch_batch) + R"(, "visibility_timeout_ms": )" +
                            std::to_string(s.visibility_timeout_ms) + R"(, "redis": {"command_timeout_ms": )" +
                            std::to_string(s.command_timeout_ms) +
                            R"(}, "providers": {"webhook": {"accounts": {"a": {"url": "http://127.0.0.1:1/hook"}}}}})",
                        adapters);
}

// The context, a connection to the scripted peer and the ledger. Declared in
// the order they must be built; the components under test come after.
struct rig {
    boost::asio::io_context io;
    adapter_registry adapters;
    worker_config config;
    scripted_redis peer{io};
    runtime::context ctx;
    redis::connection conn;
    runtime::ledger held;
    metrics stats;

    explicit rig(rig_settings s = {})
        : config(rig_config(adapters, s)),
          ctx(config, adapters, "w1"),
          conn(io.get_executor(), peer.options(std::chrono::milliseconds(s.command_timeout_ms))),
          held(io.get_executor()) {}

    boost::asio::any_io_executor ex() { return io.get_executor(); }
};

// The start-up check of the partition count (queue/partitions.hpp): a queue
// that recorded one partition, as a queue that had a worker of this version.
inline scripted_redis& answer_partition_check(scripted_redis& peer) {
    return peer.answer("GET", "$1\r\n1\r\n").answer("XLEN", ":0\r\n").answer("ZCARD", ":0\r\n");
}

// The real collaborators behind admission. The limiter connection is never
// used: no job reaches the sender.
struct admission_chain {
    http_client http;
    token_cache tokens;
    redis::connection limiter;
    runtime::task_group sends;
    runtime::writers out;
    runtime::heartbeat beat;
    runtime::sender send;
    runtime::dispatcher dispatch;
    runtime::admission admit;

    explicit admission_chain(rig& r)
        : http(r.ex()),
          tokens(r.ex(), http),
          limiter(r.ex(), r.peer.options(std::chrono::milliseconds(200))),
          sends(r.ex(), {}),
          out(r.ex(), r.ctx, r.conn, r.stats),
          beat(r.ex(), r.ctx, r.conn, r.held),
          send(r.ex(), r.ctx, http, tokens, limiter, out, beat, r.stats),
          dispatch(r.ex(), r.ctx, send, out, limiter, sends, r.stats),
          admit(r.ex(), r.ctx, r.conn, r.held, out, dispatch) {}
};

// A job the webhook account accepts.
inline std::string webhook_job(std::string_view id) {
    return R"({"id":")" + std::string(id) + R"(","provider":"webhook","account":"a","message":{"text":"hi"}})";
}

// One entry of a completion script call, read back from its arguments.
struct written_outcome {
    std::string action;  // sent, dead, delay, ack
    std::string entry_id;
    std::string release_marker;  // "1" | "0"
    long long due = 0;
};

inline std::vector<written_outcome> completion_entries(const scripted_redis::args& a) {
    std::vector<written_outcome> out;
    std::size_t i = 3 + std::stoul(a.at(2));  // past the keys
    i += 4;                                   // group, result ttl, results maxlen, dead maxlen
    const std::size_t n = std::stoul(a.at(i++));
    i += 2;  // the consumer, gated
    for (std::size_t e = 0; e < n; ++e) {
        out.push_back({a.at(i), a.at(i + 1), a.at(i + 2), std::stoll(a.at(i + 3))});
        i += 4;
        for (int list = 0; list < 4; ++list) i += 1 + std::stoul(a.at(i));  // result, dead, delayed, event fields
    }
    return out;
}

// Writes what `w` holds (the peer answers that every outcome landed) and
// returns what the completion script call carried.
inline std::vector<written_outcome> write_all(rig& r, runtime::writer& w) {
    if (w.queued() == 0) return {};
    std::string reply = "*" + std::to_string(w.queued()) + "\r\n";
    for (std::size_t i = 0; i < w.queued(); ++i) reply += ":1\r\n";
    r.peer.answer_if(
        "the completion script",
        [](const scripted_redis::args& a) { return scripted_redis::is(a, "EVAL") || scripted_redis::is(a, "EVALSHA"); },
        reply);
    auto landed = run(r.io, w.step());
    REQUIRE(landed);
    REQUIRE(*landed);
    const auto& got = r.peer.received();
    for (auto it = got.rbegin(); it != got.rend(); ++it)
        if (scripted_redis::is(*it, "EVAL") || scripted_redis::is(*it, "EVALSHA")) return completion_entries(*it);
    FAIL("no completion script call");
    return {};
}

// True when some argument of `a` is `s`.
inline bool mentions(const scripted_redis::args& a, std::string_view s) {
    for (auto& x : a)
        if (x == s) return true;
    return false;
}

}  // namespace outq::test
