#pragma once
// What to do with a stream entry the worker was just given, before any Redis
// command or byte to a provider: refuse it as a dead letter (no job field, a
// poison message, a bad job, an unknown provider or account), or take it on.
// And, once the claim round trip answered, what the verdict means for it.
// Pure: values in, a decision out.
#include <cstdint>
#include <optional>
#include <string>

#include "outq/adapter.hpp"
#include "outq/config.hpp"
#include "outq/job.hpp"
#include "outq/queue_protocol.hpp"

namespace outq::policy {

struct admission {
    enum class kind { send, dead };
    kind what = kind::dead;
    // send: the parsed job and where it goes.
    std::optional<job> parsed;
    const adapter* provider = nullptr;
    const provider_settings* settings = nullptr;
    const account_settings* account = nullptr;
    // dead: the dead letter's class and sentence, with the names that could be read.
    std::string dead_class;
    std::string error;
    std::string job_id, provider_name, account_name;
    bool poison = false;  // taken over more than max_deliveries times
};

// `env.first_entry` is set when the job's id is the entry id (it travels with
// the job through retries and delays).
admission inspect(queue::envelope& env, const worker_config& config, const adapter_registry& adapters);

// After the claim round trip: what a job that was taken on becomes.
struct claim_decision {
    enum class kind {
        send,       // go
        duplicate,  // a result exists: acknowledge only
        delay,      // back to the delayed set until `due`, no attempt used
        expired,    // expires_at passed: dead letter
    };
    kind what = kind::send;
    unix_ms due = 0;
    bool release_marker = true;  // for duplicate / delay: the marker is this delivery's
};
claim_decision after_claim(const queue::claim_result& verdict, const job& j, std::chrono::milliseconds visibility,
                           unix_ms now, double unit_random);

// When a job held back by an account pause looks again: at the pause's end,
// spread over a short jitter; an open-ended pause is looked at every 30 s.
std::int64_t pause_delay(std::int64_t pause_ms, double unit_random);

}  // namespace outq::policy
