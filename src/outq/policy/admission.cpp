#include "outq/policy/admission.hpp"

#include <algorithm>

#include "outq/json_util.hpp"
#include "outq/outcome.hpp"
#include "outq/queue/partitions.hpp"

namespace outq::policy {

namespace {

admission dead(std::string_view cls, std::string error, std::string id, std::string provider, std::string account) {
    admission a;
    a.what = admission::kind::dead;
    a.dead_class = std::string(cls);
    a.error = std::move(error);
    a.job_id = std::move(id);
    a.provider_name = std::move(provider);
    a.account_name = std::move(account);
    return a;
}

}  // namespace

admission inspect(queue::envelope& env, const worker_config& config, const adapter_registry& adapters) {
    if (!env.has_job_field) return dead(dead_class::validation, "job: the stream entry has no 'job' field", "", "", "");
    if (env.deliveries > config.max_deliveries) {
        // Checked before anything else touches the job: whatever killed the
        // workers that held it must not run again. Its names are read without
        // parsing the whole job.
        auto name = [&](std::string_view key) { return json::scalar_member(env.job_json, key).value_or(""); };
        std::string id = name("id");
        if (id.empty()) id = env.first_entry.empty() ? env.entry_id : env.first_entry;
        auto a = dead(dead_class::attempts_exhausted,
                      "taken over " + std::to_string(env.deliveries - 1) +
                          " times without an outcome: every worker holding it stopped or died before finishing "
                          "(max_deliveries " +
                          std::to_string(config.max_deliveries) + ")",
                      std::move(id), name("provider"), name("account"));
        a.poison = true;
        return a;
    }
    if (env.stub) {
        // Too large to read (queue/oversized.hpp): job_json is its first bytes, enough for its names; the
        // dead letter takes the whole job from the entry in Redis.
        auto name = [&](std::string_view key) { return json::scalar_member(env.job_json, key).value_or(""); };
        std::string id = name("id");
        if (id.empty()) id = env.first_entry.empty() ? env.entry_id : env.first_entry;
        const auto limit = std::to_string(config.max_job_bytes);
        return dead(
            dead_class::validation,
            env.stub->job_bytes > config.max_job_bytes
                ? "job: " + std::to_string(env.stub->job_bytes) + " bytes, more than max_job_bytes (" + limit + ")"
                : "the stream entry: " + std::to_string(env.stub->entry_bytes) +
                      " bytes in its fields, more than max_job_bytes (" + limit + ") and 64 KiB",
            std::move(id), name("provider"), name("account"));
    }
    if (env.job_json.size() > config.max_job_bytes) {
        // Not parsed: its names are read from the text, for the dead letter, which keeps it as it came.
        auto name = [&](std::string_view key) { return json::scalar_member(env.job_json, key).value_or(""); };
        std::string id = name("id");
        if (id.empty()) id = env.first_entry.empty() ? env.entry_id : env.first_entry;
        return dead(dead_class::validation,
                    "job: " + std::to_string(env.job_json.size()) + " bytes, more than max_job_bytes (" +
                        std::to_string(config.max_job_bytes) + ")",
                    std::move(id), name("provider"), name("account"));
    }
    auto parsed = parse_job(env.job_json, env.first_entry.empty() ? env.entry_id : env.first_entry);
    if (!parsed.ok()) {
        auto& f = parsed.failure;
        return dead(dead_class::validation, std::move(f.error), std::move(f.id), std::move(f.provider),
                    std::move(f.account));
    }
    job& j = *parsed.value;
    if (j.id_from_entry && env.first_entry.empty()) env.first_entry = env.entry_id;
    // A job with an id lives in the partition of its id, where its result key
    // is: read from another, a second enqueue of the id would not meet the
    // first one's result (docs/protocol.md, "Partitions"). A replay of the
    // dead letter goes to the right one.
    if (!j.id_from_entry && config.queue_partitions > 1) {
        const int home = queue::partition_of(j.id, config.queue_partitions);
        if (home != env.partition)
            return dead(dead_class::validation,
                        "job.id: '" + j.id + "' belongs to partition " + std::to_string(home) + " (" +
                            queue::partition_keys_of(config.queue, home, config.queue_partitions).jobs +
                            ": crc32(id) mod " + std::to_string(config.queue_partitions) +
                            "), not to the partition it was enqueued in (" + std::to_string(env.partition) + ")",
                        j.id, j.provider, j.account);
    }
    const adapter* provider = adapters.find(j.provider);
    auto settings = config.providers.find(j.provider);
    if (!provider || settings == config.providers.end())
        return dead(dead_class::validation, "job.provider: unknown provider '" + j.provider + "'", j.id, j.provider,
                    j.account);
    auto account = settings->second.accounts.find(j.account);
    if (account == settings->second.accounts.end())
        return dead(dead_class::validation,
                    "job.account: no account '" + j.account + "' is configured for provider '" + j.provider + "'", j.id,
                    j.provider, j.account);
    if (auto problem = provider->validate(j))
        return dead(dead_class::validation, *problem, j.id, j.provider, j.account);
    admission a;
    a.what = admission::kind::send;
    a.provider = provider;
    a.settings = &settings->second;
    a.account = account->second.get();
    a.parsed = std::move(parsed.value);
    return a;
}

std::int64_t pause_delay(std::int64_t pause_ms, double unit_random) {
    const std::int64_t base = pause_ms < 0 ? 30000 : pause_ms;
    return base + static_cast<std::int64_t>(unit_random * 250.0);
}

claim_decision after_claim(const queue::claim_result& verdict, const job& j, std::chrono::milliseconds visibility,
                           unix_ms now, double unit_random) {
    claim_decision d;
    d.release_marker = verdict.holds_marker;
    switch (verdict.verdict) {
        case queue::claim_verdict::done:
            d.what = claim_decision::kind::duplicate;
            return d;
        case queue::claim_verdict::busy:
            // A twin delivery of this id is being sent right now; look again
            // later, when it will find the twin's result.
            d.what = claim_decision::kind::delay;
            d.due = now + std::clamp<std::int64_t>(visibility.count() / 4, 1000, 30000);
            d.release_marker = false;
            return d;
        case queue::claim_verdict::paused:
            // Paused for the whole fleet: back until the pause ends, no attempt used.
            d.what = claim_decision::kind::delay;
            d.due = now + pause_delay(verdict.pause_ms, unit_random);
            return d;
        case queue::claim_verdict::go:
            break;
    }
    if (j.expires_at && *j.expires_at <= now) {
        d.what = claim_decision::kind::expired;
    } else if (j.not_before && *j.not_before > now) {
        d.what = claim_decision::kind::delay;
        d.due = *j.not_before;
    } else {
        d.what = claim_decision::kind::send;
    }
    return d;
}

}  // namespace outq::policy
