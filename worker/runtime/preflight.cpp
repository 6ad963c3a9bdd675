#include "preflight.hpp"

#include "outq/log.hpp"
#include "outq/queue/completion.hpp"
#include "outq/queue/errors.hpp"
#include "outq/queue/format.hpp"
#include "outq/queue/group.hpp"
#include "outq/queue/ownership.hpp"
#include "outq/queue/partitions.hpp"

namespace outq::runtime {

namespace asio = boost::asio;

namespace {

// The partition count first: a worker of another count would read and
// write another layout than the queue's producers and workers.
asio::awaitable<preflight_result> check_partitions(context& ctx, redis::connection& conn) {
    preflight_result out;
    const auto& queue_name = ctx.config.queue;
    const int count = static_cast<int>(ctx.partitions.size());
    auto r = co_await conn.exec(queue::partition_check_commands(queue_name, count));
    if (!r.ok()) {
        out.error = r.error;
        co_return out;
    }
    if (auto* e = queue::first_error(r.replies)) {
        out.error = "reading " + queue::partitions_key(queue_name) + ": " + e->str;
        const auto kind = queue::classify_error(*e);
        if (kind == queue::error_kind::redirect) out.error += ": " + queue::redirect_hint();
        if (kind == queue::error_kind::permanent || kind == queue::error_kind::redirect)
            out.what = preflight_result::kind::refuse;
        co_return out;
    }
    queue::partition_state state;
    if (!queue::parse_partition_check(r.replies, state)) {
        out.what = preflight_result::kind::refuse;
        out.error = queue::partitions_key(queue_name) + " holds something that is not a partition count (1 to " +
                    std::to_string(queue::max_partitions) + ")";
        co_return out;
    }
    const auto verdict = queue::check_partitions(queue_name, count, state);
    if (!verdict.refusal.empty()) {
        out.what = preflight_result::kind::refuse;
        out.error = verdict.refusal;
        co_return out;
    }
    if (verdict.record) {
        auto w = co_await conn.exec(queue::record_partitions_command(queue_name, count));
        if (!w.ok()) {
            out.error = w.error;
            co_return out;
        }
        out.error = queue::parse_record_partitions(queue_name, count, w.replies[0]);
        if (!out.error.empty()) {
            if (!w.replies[0].is_error() || queue::classify_error(w.replies[0]) == queue::error_kind::permanent)
                out.what = preflight_result::kind::refuse;
            co_return out;
        }
        if (count > 1)
            log::info("new queue: partitions recorded",
                      "key=" + queue::partitions_key(queue_name) + " partitions=" + std::to_string(count));
    }
    out.what = preflight_result::kind::ready;
    co_return out;
}

// One partition's format and consumer group.
asio::awaitable<preflight_result> check_partition(const queue::keys& k, redis::connection& conn) {
    preflight_result out;
    // The format first: nothing of a queue this worker cannot read is touched.
    auto format = co_await conn.exec(queue::format_check_commands(k));
    if (!format.ok()) {
        out.error = format.error;
        co_return out;
    }
    auto verdict = queue::read_format(format.replies);
    if (verdict.what == queue::format_verdict::kind::new_queue) {
        auto claimed = co_await conn.exec(queue::claim_new_queue_commands(k));
        if (!claimed.ok()) {
            out.error = claimed.error;
            co_return out;
        }
        if (!queue::claimed_new_queue(claimed.replies)) {
            // Someone wrote another format meanwhile (or the write was refused): read it again next time.
            out.error = "could not write the format of the new queue " + k.format;
            co_return out;
        }
        log::info("new queue: format 2", "key=" + k.format);
    } else if (verdict.what == queue::format_verdict::kind::error) {
        if (verdict.permanent) out.what = preflight_result::kind::refuse;
        out.error = queue::refusal_text(k, verdict);
        co_return out;
    } else if (verdict.what != queue::format_verdict::kind::current) {
        out.what = preflight_result::kind::refuse;
        out.error = queue::refusal_text(k, verdict);
        co_return out;
    }
    auto group = co_await conn.exec(queue::create_group_command(k));
    if (!group.ok()) {
        out.error = group.error;
        co_return out;
    }
    if (!queue::parse_create_group(group.replies[0])) {
        const auto kind = queue::classify_error(group.replies[0]);
        out.error = "cannot create consumer group on " + k.jobs + ": " + group.replies[0].str;
        if (kind == queue::error_kind::permanent) out.what = preflight_result::kind::refuse;
        co_return out;
    }
    if (!group.replies[0].is_error())
        log::info("created consumer group", "stream=" + k.jobs + " group=" + std::string(queue::group_name));
    out.what = preflight_result::kind::ready;
    co_return out;
}

}  // namespace

asio::awaitable<preflight_result> run_preflight(context& ctx, redis::connection& conn) {
    auto partitions = co_await check_partitions(ctx, conn);
    if (partitions.what != preflight_result::kind::ready) co_return partitions;
    for (const auto& k : ctx.partitions) {
        auto one = co_await check_partition(k, conn);
        if (one.what != preflight_result::kind::ready) co_return one;
    }
    preflight_result out;
    // Permissions are by key pattern: one partition's keys stand for all.
    auto checks = queue::preflight_checks(ctx.queue_wide(), ctx.consumer);
    std::vector<redis::command> calls;
    for (auto& c : checks) calls.push_back(c.call);
    calls.push_back(queue::script_load_command(queue::script{queue::completion_script, {}}));
    calls.push_back(queue::script_load_command(queue::script{queue::refresh_script, {}}));
    calls.push_back(queue::info_memory_command());
    auto r = co_await conn.exec(calls);
    if (!r.ok()) {
        out.error = r.error;
        co_return out;
    }
    auto missing = queue::missing_permissions(checks, r.replies);
    if (!missing.empty()) {
        std::string names;
        for (auto& m : missing) names += (names.empty() ? "" : ",") + m;
        out.what = preflight_result::kind::refuse;
        out.error = "the Redis user lacks permission for " + names +
                    " (the worker needs them; see docs/operations.md, Redis permissions)";
        co_return out;
    }
    for (std::size_t i = 0; i < checks.size(); ++i) {
        const auto kind = queue::classify_error(r.replies[i]);
        if (kind == queue::error_kind::transient) {
            out.error = std::string(checks[i].command) + ": " + r.replies[i].str;
            co_return out;
        }
    }
    const std::size_t at = checks.size();
    const auto& completion_sha = r.replies[at];
    const auto& refresh_sha = r.replies[at + 1];
    ctx.scripts.completion = {queue::completion_script, completion_sha.is_string() ? completion_sha.str : ""};
    ctx.scripts.refresh = {queue::refresh_script, refresh_sha.is_string() ? refresh_sha.str : ""};
    if (!completion_sha.is_string() || !refresh_sha.is_string())
        log::warn("cannot load scripts (SCRIPT LOAD refused); sending them with EVAL",
                  "error=" + log::value(completion_sha.is_error() ? completion_sha.str : refresh_sha.str));
    const auto policy = queue::parse_maxmemory_policy(r.replies[at + 2]);
    if (policy.empty())
        log::info("cannot read maxmemory-policy (INFO memory refused); make sure it is noeviction");
    else if (policy != "noeviction")
        log::error(
            "redis maxmemory-policy is not noeviction: under memory pressure Redis may evict the jobs "
            "stream, the consumer group or results; set maxmemory-policy noeviction",
            "maxmemory-policy=" + policy);
    out.what = preflight_result::kind::ready;
    co_return out;
}

}  // namespace outq::runtime
