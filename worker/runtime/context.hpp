#pragma once
// What every component of the worker runtime reads and none owns: the
// configuration, the adapters, the queue's keys, this worker's consumer name,
// the loaded scripts, the shutdown stage and a random source. Owned by
// `worker_runtime`; components hold a reference. Only `worker_runtime`
// changes `stage` (stop, stop_now) and `scripts` (start-up); admission and the
// sender note the pauses they meet in `pauses` (for a gauge, never a decision).
#include <random>
#include <string>

#include "outq/adapter.hpp"
#include "outq/config.hpp"
#include "outq/queue/scripts.hpp"
#include "outq/queue_protocol.hpp"
#include "pause_board.hpp"

namespace outq::runtime {

// Shutdown is one mechanism: a stage every component reads.
//   running  → take new work;
//   draining → take none, finish (or put back) every delivery already held;
//   terminal → the grace period ended or a second signal came: sends in
//              flight were cancelled, the final writes run under a short deadline.
enum class stage { running, draining, terminal };

struct loaded_scripts {
    queue::script completion;
    queue::script refresh;
};

struct context {
    context(const worker_config& c, const adapter_registry& a, std::string consumer_name);

    const worker_config& config;
    const adapter_registry& adapters;
    // Every partition's keys, by index (queue/partitions.hpp).
    const std::vector<queue::keys> partitions;
    const std::string consumer;
    queue::write_settings writes;
    loaded_scripts scripts;
    stage current = stage::running;
    std::mt19937_64 rng;
    pause_board pauses;  // written by admission, the sender, the dispatcher and the control channel; read by admission
                         // (which pauses need no read) and the reporter

    // What does not depend on the partition: account keys (scope), the control channel.
    const queue::keys& queue_wide() const { return partitions.front(); }

    bool running() const { return current == stage::running; }
    bool draining() const { return current != stage::running; }
    bool terminal() const { return current == stage::terminal; }
    double unit_random() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
};

}  // namespace outq::runtime
