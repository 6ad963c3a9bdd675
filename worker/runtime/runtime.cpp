// The worker runtime: which components exist, what they share, and in which
// order they start and stop.
//
// A queue of P partitions has P fetchers (each on its own connection), P
// reclaimers, P movers and P writers, one of each per partition; the other
// components serve every partition.
//
// Start: metrics endpoint → preflight (partition count, each partition's
// format and group, permissions, scripts, eviction policy; retried while
// Redis is unreachable, refused on a missing permission) → writers, heartbeat (they must outlive every delivery) →
// control channel (subscribed before the intake, so that a pause another
// worker or the operator sets is heard before this one sends; it lives until
// the end: parts asleep on an account while the worker drains still wake on
// a resume) → sentinel watch (with redis.sentinel) → fetchers, reclaimers,
// movers (the intake) → reporter, depth sampler, snapshotter. The
// probes: /healthz (liveness) and /readyz (readiness) are answered by
// outq::liveness and outq::readiness from what the loops last did.
//
// Stop (stop(), first SIGTERM): stage draining. The intake stops (a blocked
// read is ended with CLIENT UNBLOCK; what it returns is put back); waiting
// batches are sent; every delivery held is finished and written, or put
// back before any byte goes out. When the ledger is empty, or the grace
// period ends / a second signal comes (stage terminal: the HTTP client closes
// every connection, so sends in flight end at once; those whose request was
// written are written as ambiguous retries, the others put back; the writer
// gives up at a short final deadline), the writer, heartbeat, control
// channel and sentinel watch (their blocked reads end at once), reporter,
// depth sampler and snapshotter stop; the snapshotter writes the last counts
// and removes this worker's snapshot, and the counters are logged against
// what Redis shows.
#include "runtime.hpp"

#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <cstdlib>

#include "admission.hpp"
#include "context.hpp"
#include "control_channel.hpp"
#include "depth_sampler.hpp"
#include "dispatcher.hpp"
#include "fetcher.hpp"
#include "heartbeat.hpp"
#include "ledger.hpp"
#include "mover.hpp"
#include "outq/backoff.hpp"
#include "outq/detail/async_event.hpp"
#include "outq/http_client.hpp"
#include "outq/log_throttle.hpp"
#include "outq/metrics.hpp"
#include "outq/metrics_server.hpp"
#include "outq/policy/fetch_size.hpp"
#include "outq/queue/group.hpp"
#include "outq/queue/partitions.hpp"
#include "outq/redis_cluster_client.hpp"
#include "outq/redis_connection.hpp"
#include "outq/token_cache.hpp"
#include "preflight.hpp"
#include "reclaimer.hpp"
#include "reporter.hpp"
#include "sender.hpp"
#include "sentinel_watch.hpp"
#include "snapshotter.hpp"
#include "task_group.hpp"
#include "writer.hpp"

namespace outq {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace runtime {

context::context(const worker_config& c, const adapter_registry& a, std::string consumer_name)
    : config(c),
      adapters(a),
      partitions(queue::partition_keys(c.queue, c.queue_partitions)),
      consumer(std::move(consumer_name)),
      rng(std::random_device{}()) {
    writes.result_ttl_seconds = c.result_ttl_seconds;
    writes.results_stream_maxlen = c.results_stream_maxlen;
    writes.dead_maxlen = c.dead_maxlen;
}

}  // namespace runtime

namespace {

std::string default_consumer_name() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "outq");
    return std::string(host) + "-" + std::to_string(getpid());
}

redis::connection_options redis_options(const worker_config& c, std::string_view role, const std::string& consumer) {
    auto o = redis::options_from(c.redis);
    o.client_name = "outq-" + std::string(role) + "-" + consumer;
    for (auto& ch : o.client_name)
        if (ch == ' ') ch = '_';
    o.want_client_id = role.rfind("fetch", 0) == 0;  // fetch, or fetch<partition>: unblocked at stop
    return o;
}

// Label values only from the configuration: known before any component is built,
// so the series they set up at construction carry the configured names.
metrics scoped_metrics(const worker_config& c) {
    metrics m;
    for (const auto& [provider, settings] : c.providers)
        for (const auto& [account, unused] : settings.accounts) m.allow_scope(provider, account);
    return m;
}

}  // namespace

struct worker_runtime::impl {
    impl(asio::any_io_executor ex, const worker_config& c, const adapter_registry& a)
        : executor(ex),
          ctx(c, a, c.consumer.empty() ? default_consumer_name() : c.consumer),
          ctl_conn(ex, redis_options(c, "ctl", ctx.consumer)),
          limit_conn(ex, redis_options(c, "limit", ctx.consumer)),
          sub_conn(ex, redis_options(c, "sub", ctx.consumer)),
          http(ex, proxy_config_from_env([](const char* name) -> const char* { return std::getenv(name); })),
          tokens(ex, http),
          stats(scoped_metrics(c)),
          held(ex),
          intake(ex, [this](const std::string& task, const std::string&) { fail("component " + task + " failed"); }),
          loops(ex, [this](const std::string& task, const std::string&) { fail("component " + task + " failed"); }),
          sends(ex, {}),
          out(ex, ctx, ctl_conn, stats),
          beat(ex, ctx, ctl_conn, held),
          send(ex, ctx, http, tokens, limit_conn, out, beat, stats),
          dispatch(ex, ctx, send, out, limit_conn, sends, stats),
          admit(ex, ctx, ctl_conn, held, out, dispatch),
          report(
              ex, held, out, [this] { return reclaimed(); }, http, tokens, stats, [this] { return last_redis_ok(); },
              ctx),
          depth(ex, ctx, ctl_conn, stats),
          snap(ex, ctx, ctl_conn, stats, [this] { return snapshot_state(); }),
          control(ex, ctx, sub_conn),
          sentinels(ex, ctx, redis::options_from(c.redis).sentinel, redis_options(c, "sentinel", ctx.consumer)),
          stage_changed(ex),
          grace_timer(ex),
          preflight_timer(ex) {
        for (const auto& k : ctx.partitions) {
            auto role = ctx.partitions.size() == 1 ? std::string("fetch") : "fetch" + std::to_string(k.partition);
            auto options = redis_options(c, role, ctx.consumer);
            options.max_reply_bytes = policy::reply_limit(c);  // a read of huge jobs is not taken whole
            fetch_conns.push_back(std::make_unique<redis::connection>(ex, std::move(options)));
            fetch.push_back(
                std::make_unique<runtime::fetcher>(ex, ctx, k, *fetch_conns.back(), ctl_conn, held, admit, loops));
            reclaim.push_back(std::make_unique<runtime::reclaimer>(ex, ctx, k, ctl_conn, held, admit));
            move.push_back(std::make_unique<runtime::mover>(ex, ctx, k, ctl_conn));
            // A delayed copy this worker wrote wakes its partition's mover at its due time.
            out.at(static_cast<std::size_t>(k.partition)).on_delayed([m = move.back().get()](unix_ms due) {
                m->expect(due);
            });
        }
        // Sentinel named a new primary: every connection dials again (a call in flight fails and is retried).
        sentinels.on_switch([this](const std::string&) {
            for (auto* conn : {&ctl_conn, &limit_conn, &sub_conn}) conn->redial();
            for (auto& conn : fetch_conns) conn->redial();
        });
        control.on_message([this](const queue::control_message& m) {
            if (m.what != queue::control_message::kind::due) return dispatch.on_control(m);
            // Another process made delayed jobs due sooner: that partition's mover looks then.
            if (m.partition >= 0 && static_cast<std::size_t>(m.partition) < move.size())
                move[static_cast<std::size_t>(m.partition)]->expect(m.due_at);
        });
        control.on_resync([this] { dispatch.resync(); });
        stats.set("outq_concurrency_slots", {}, c.concurrency);
    }

    asio::any_io_executor executor;
    runtime::context ctx;
    std::vector<std::unique_ptr<redis::connection>> fetch_conns;  // a partition's blocking XREADGROUP only
    redis::connection ctl_conn;                                   // claims, outcomes, heartbeat, reclaim, mover
    redis::connection limit_conn;  // limiter decisions and pauses, never queued behind a batch write
    redis::connection sub_conn;    // the control channel's subscription only
    http_client http;
    token_cache tokens;
    metrics stats;
    runtime::ledger held;
    runtime::task_group intake;  // fetcher, reclaimer, mover: they end first
    runtime::task_group loops;   // the other components' run() loops
    runtime::task_group sends;   // one task per request group
    runtime::writers out;
    runtime::heartbeat beat;
    runtime::sender send;
    runtime::dispatcher dispatch;
    runtime::admission admit;
    std::vector<std::unique_ptr<runtime::fetcher>> fetch;  // by partition, as the three below
    std::vector<std::unique_ptr<runtime::reclaimer>> reclaim;
    std::vector<std::unique_ptr<runtime::mover>> move;
    runtime::reporter report;
    runtime::depth_sampler depth;
    runtime::snapshotter snap;
    // Its message and resync hooks are where the parts that sleep on an
    // account (the lanes) listen; until they do, it keeps the pause board.
    runtime::control_channel control;
    runtime::sentinel_watch sentinels;  // idle without redis.sentinel
    std::unique_ptr<metrics_server> metrics_endpoint;
    detail::async_event stage_changed;
    asio::steady_timer grace_timer, preflight_timer;
    int exit_code = 0;
    bool intake_stopped = false;
    using time_point = std::chrono::steady_clock::time_point;
    std::optional<time_point> started_at;  // the start-up checks passed (a Redis round trip)
    std::optional<time_point> slots_full_seen;

    // What the probes decide on (outq::liveness, outq::readiness).
    health_inputs health() {
        health_inputs in;
        in.now = std::chrono::steady_clock::now();
        in.started = started_at;
        in.running = ctx.running();
        in.slots_full_now = held.active() >= ctx.config.concurrency;
        if (in.slots_full_now) slots_full_seen = in.now;
        in.slots_full = slots_full_seen;
        // Every partition's reads: the worker is ready when it can read them all.
        if (started_at && fetch_last_ok() >= *started_at) in.fetch_ok = fetch_last_ok();
        for (auto& f : fetch) in.fetch_failing = in.fetch_failing || f->failing();
        // The control connection: the sampler's rounds, outcome writes, the start-up checks.
        in.control_ok = started_at;
        if (auto t = depth.last_ok(); t && (!in.control_ok || *t > *in.control_ok)) in.control_ok = t;
        if (started_at && out.last_ok() > *in.control_ok) in.control_ok = out.last_ok();
        // The sampler's last round failed, and no outcome write landed since.
        // Or the last outcome write failed: a busy worker finds a lost primary sooner than the sampler.
        in.control_failing =
            (depth.failing() && !(depth.last_round() && out.last_ok() > *depth.last_round())) || out.failing();
        in.sampler_round = depth.last_round();
        return in;
    }

    std::string render_metrics() {
        depth.refresh_ages(std::chrono::steady_clock::now());
        stats.set("outq_ready", {}, readiness(health()).ok ? 1 : 0);
        std::vector<const redis::connection*> conns{&ctl_conn, &limit_conn, &sub_conn};
        for (auto& c : fetch_conns) conns.push_back(c.get());
        std::uint64_t not_primary = 0;
        for (auto* c : conns) not_primary += c->not_primary_replies();
        stats.set_total("outq_redis_not_primary_replies_total", {}, static_cast<double>(not_primary));
        if (ctl_conn.cluster()) {
            std::uint64_t moved = 0, asked = 0, waited = 0;
            for (const redis::connection* c : conns) {
                if (!c->cluster()) continue;
                moved += c->cluster()->moved();
                asked += c->cluster()->asked();
                waited += c->cluster()->waited();
            }
            stats.set_total("outq_redis_cluster_redirects_total", "kind=\"moved\"", static_cast<double>(moved));
            stats.set_total("outq_redis_cluster_redirects_total", "kind=\"ask\"", static_cast<double>(asked));
            stats.set_total("outq_redis_cluster_redirects_total", "kind=\"wait\"", static_cast<double>(waited));
        }
        if (!ctx.config.redis.sentinel_master.empty())
            stats.set_total("outq_redis_sentinel_switches_total", {}, static_cast<double>(sentinels.switches()));
        return report.render_metrics();
    }

    // What the snapshot for `outq web` says of this worker (the snapshotter adds who and when).
    queue::activity::worker_snapshot snapshot_state() const {
        queue::activity::worker_snapshot s;
        s.in_flight = static_cast<std::int64_t>(held.held());
        s.waiting_for_permit = static_cast<std::int64_t>(held.held() - held.active());
        s.concurrency = ctx.config.concurrency;
        const auto c = out.written();
        s.sent = c.sent;
        s.dead = c.dead;
        s.retried = c.retried;
        return s;
    }

    // The oldest of the partitions' last reads: one partition that cannot be read is not hidden by the others.
    std::chrono::steady_clock::time_point fetch_last_ok() const {
        auto t = fetch.front()->last_ok();
        for (auto& f : fetch) t = std::min(t, f->last_ok());
        return t;
    }
    std::chrono::steady_clock::time_point last_redis_ok() const { return std::max(fetch_last_ok(), out.last_ok()); }
    std::uint64_t reclaimed() const {
        std::uint64_t n = 0;
        for (auto& r : reclaim) n += r->reclaimed();
        return n;
    }
    void stop_intake() {
        for (auto& f : fetch) f->stop();
        for (auto& r : reclaim) r->stop();
        for (auto& m : move) m->stop();
    }

    void fail(const std::string& why) {
        exit_code = 1;
        log::error("stopping: a component of the worker failed", "reason=" + log::value(why));
        request_stop();
    }

    void request_stop() {
        if (!ctx.running()) return;
        ctx.current = runtime::stage::draining;
        stage_changed.notify_all();
        preflight_timer.cancel();
    }

    void go_terminal(const char* why) {
        if (ctx.terminal()) return;
        request_stop();
        ctx.current = runtime::stage::terminal;
        log::warn("cancelling in-flight sends",
                  "reason=" + log::value(why) + " in_flight=" + std::to_string(held.held()));
        http.shutdown();
        const auto final_write =
            std::clamp<std::chrono::milliseconds>(ctx.config.redis.command_timeout, 1000ms, 3000ms);
        out.set_final_deadline(std::chrono::steady_clock::now() + final_write);
        held.changed().notify_all();
        stage_changed.notify_all();
    }

    // Retries while Redis is unreachable; false when the worker must not start.
    asio::awaitable<bool> start_checks() {
        outq::backoff wait(200ms, 5000ms);
        log::throttle retry_log;
        while (ctx.running()) {
            auto r = co_await runtime::run_preflight(ctx, ctl_conn);
            if (r.what == runtime::preflight_result::kind::ready) co_return true;
            if (r.what == runtime::preflight_result::kind::refuse) {
                log::error("refusing to start: redis setup must be fixed first", "error=" + log::value(r.error));
                exit_code = 1;
                co_return false;
            }
            log::write_throttled(retry_log, log::level::warn, "redis not ready; retrying start-up checks",
                                 "error=" + log::value(r.error));
            co_await detail::sleep_for(preflight_timer, wait.next(ctx.unit_random()));
        }
        co_return false;
    }

    // What this consumer leaves pending: as Redis counts it when it answers
    // (it also knows entries whose read reply was lost), else the deliveries
    // this worker gave up on.
    asio::awaitable<std::string> left_pending() {
        std::vector<redis::command> cmds;
        for (const auto& k : ctx.partitions) cmds.push_back(queue::pending_summary_command(k));
        auto r = co_await ctl_conn.exec(cmds, 1000ms);
        std::int64_t n = 0;
        bool known = r.ok();
        for (std::size_t i = 0; known && i < r.replies.size(); ++i) {
            std::int64_t one = 0;
            known = queue::parse_pending_of(r.replies[i], ctx.consumer, one);
            n += one;
        }
        if (!known)
            co_return std::to_string(held.abandoned() + out.written().unacknowledged) + " left_pending_source=worker";
        co_return std::to_string(n) + " left_pending_source=redis";
    }
};

worker_runtime::worker_runtime(asio::any_io_executor ex, const worker_config& config, const adapter_registry& adapters)
    : impl_(std::make_unique<impl>(std::move(ex), config, adapters)) {}

worker_runtime::~worker_runtime() = default;

void worker_runtime::stop() {
    impl_->request_stop();
}

void worker_runtime::stop_now() {
    impl_->go_terminal("second signal");
}

int worker_runtime::exit_code() const {
    return impl_->exit_code;
}

asio::awaitable<void> worker_runtime::run() {
    auto& s = *impl_;
    const auto& config = s.ctx.config;
    log::info("worker starting", "queue=" + config.queue + " consumer=" + log::value(s.ctx.consumer) +
                                     " concurrency=" + std::to_string(config.concurrency) +
                                     " fetch_batch=" + std::to_string(config.fetch_batch));
    if (!config.metrics_listen.empty()) {
        s.metrics_endpoint = std::make_unique<metrics_server>(
            s.executor, [&s] { return s.render_metrics(); }, [&s] { return liveness(s.health()); },
            [&s] { return readiness(s.health()); });
        s.metrics_endpoint->listen(config.metrics_listen);
        s.loops.spawn("metrics endpoint", s.metrics_endpoint->serve());
        log::info("metrics endpoint listening",
                  "address=" + config.metrics_listen + " paths=/metrics,/healthz,/readyz");
    }

    // Start order.
    const bool ready = co_await s.start_checks();
    if (ready) {
        s.started_at = std::chrono::steady_clock::now();
        for (std::size_t p = 0; p < s.out.size(); ++p) s.loops.spawn("writer", s.out.at(p).run());
        s.loops.spawn("heartbeat", s.beat.run());
        s.loops.spawn("control channel", s.control.run());
        s.loops.spawn("sentinel watch", s.sentinels.run());
        for (auto& f : s.fetch) s.intake.spawn("fetcher", f->run());
        for (auto& r : s.reclaim) s.intake.spawn("reclaimer", r->run());
        for (auto& m : s.move) s.intake.spawn("mover", m->run());
        s.loops.spawn("reporter", s.report.run());
        s.loops.spawn("depth sampler", s.depth.run());
        s.loops.spawn("snapshotter", s.snap.run());
        while (s.ctx.running()) co_await s.stage_changed.wait();

        // Stop order.
        log::info("stopping: no new jobs; finishing the ones held",
                  "in_flight=" + std::to_string(s.held.held()) +
                      " grace_ms=" + std::to_string(config.shutdown_grace.count()));
        s.stop_intake();
        s.dispatch.flush_all();
        s.grace_timer.expires_after(config.shutdown_grace);
        s.grace_timer.async_wait([&s](boost::system::error_code ec) {
            if (!ec) s.go_terminal("grace period over");
        });
        // A read blocked when the signal came returns before the intake
        // ends; what it returned was put back, and is held until written.
        co_await s.intake.wait_all();
        while (s.held.held() > 0) {
            s.dispatch.flush_all();
            co_await s.held.changed().wait();
        }
        s.grace_timer.cancel();
    }
    s.out.stop();
    s.beat.stop();
    s.control.stop();
    s.sentinels.stop();
    s.report.stop();
    s.depth.stop();
    s.snap.stop();
    s.stop_intake();
    if (s.metrics_endpoint) s.metrics_endpoint->stop();
    co_await s.intake.wait_all();
    co_await s.loops.wait_all();
    co_await s.sends.wait_all();
    std::string left = "0";
    if (ready) {
        left = co_await s.left_pending();
        co_await s.snap.finish();
    }
    s.http.shutdown();
    for (auto& c : s.fetch_conns) c->close();
    s.ctl_conn.close();
    s.limit_conn.close();
    s.sub_conn.close();
    const auto c = s.out.written();
    log::info("worker stopped", "sent=" + std::to_string(c.sent) + " dead=" + std::to_string(c.dead) +
                                    " retried=" + std::to_string(c.retried) + " delayed=" + std::to_string(c.delayed) +
                                    " duplicates=" + std::to_string(c.duplicates) + " left_pending=" + left +
                                    " abandoned=" + std::to_string(s.held.abandoned()) +
                                    " exit_code=" + std::to_string(s.exit_code));
}

}  // namespace outq
