#pragma once
// Process metrics in the Prometheus text format, by its conventions: every
// family is declared once here (metrics.cpp, the catalogue) with its type and
// help text, so each has `# HELP` and `# TYPE`; running totals are counters
// named `_total`; units are in the names (`_seconds`). Label values that come
// from a job (provider, account) are only those of the configuration
// (`allow_scope`): any other becomes `_unknown_`, so producers cannot create
// series. Single-threaded like the rest of the worker.
//
// Also the probes' answers (`liveness`, `readiness`): pure functions of the
// times the runtime's loops last made progress (docs/operations.md, "Health").
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace outq {

class metrics {
  public:
    enum class kind { counter, gauge, histogram };

    // With every family of the catalogue declared.
    metrics();

    // A counter family's series: name{labels} += by. Throws std::logic_error
    // for a family that is not declared as a counter (a programming error).
    void inc(std::string_view name, std::string_view labels = {}, double by = 1);
    // A counter whose running total another component keeps (monotonic).
    void set_total(std::string_view name, std::string_view labels, double total);
    // A gauge family's series.
    void set(std::string_view name, std::string_view labels, double value);
    // A histogram family's series: one observation (in the family's unit, seconds).
    void observe(std::string_view name, std::string_view labels, double value);

    // A provider account of the configuration: its names may be label values.
    void allow_scope(std::string_view provider, std::string_view account);
    // provider="…",account="…" appended to `out` (after a comma when not
    // empty); a provider or account the configuration does not have is `_unknown_`.
    void append_scope_labels(std::string& out, std::string_view provider, std::string_view account) const;

    // Prometheus exposition text (version 0.0.4).
    std::string render() const;

    // What the dashboard's activity snapshot reads (queue/activity.hpp): each
    // series of a counter family (its labels, its running total), and of a
    // histogram family (the family's upper bounds, the series' count per
    // bucket, not cumulative, and its count). Nothing for an undeclared name.
    void for_each_counter(std::string_view name, const std::function<void(std::string_view, double)>& f) const;
    void for_each_histogram(std::string_view name,
                            const std::function<void(std::string_view, const std::vector<double>&,
                                                     const std::vector<std::uint64_t>&, std::uint64_t)>& f) const;

    static constexpr std::string_view unknown = "_unknown_";

  private:
    struct histogram {
        std::vector<std::uint64_t> buckets;  // cumulative counts are made at render time
        std::uint64_t count = 0;
        double sum = 0;
    };
    struct family {
        kind type = kind::counter;
        std::string help;
        std::vector<double> bounds;                           // histograms: upper bounds, ascending
        std::map<std::string, double, std::less<>> values;    // counters, gauges: labels → value
        std::map<std::string, histogram, std::less<>> hists;  // histograms: labels → histogram
    };
    void declare(std::string_view name, kind type, std::string_view help, std::vector<double> bounds = {});
    family& find(std::string_view name, kind type);

    std::map<std::string, family, std::less<>> families_;
    std::map<std::string, std::set<std::string, std::less<>>, std::less<>> scopes_;  // provider → accounts
};

// outq_account_circuit_open{provider,account}: 1 while the account's circuit
// is open or half-open as this worker knows it (policy::circuit_view), else
// 0. Call it for every configured account, as outq_account_paused is set.
void set_account_circuit_open(metrics& m, std::string_view provider, std::string_view account, bool open);

// A label value with Prometheus escaping: provider="a\"b".
std::string label(std::string_view name, std::string_view value);
// The same, appended to `out` after a comma when `out` is not empty.
void append_label(std::string& out, std::string_view name, std::string_view value);
// The value of label `name` in a series' labels as append_label writes them
// (escapes undone); nullopt when it is not there or the text is malformed.
std::optional<std::string> label_value(std::string_view labels, std::string_view name);

// --- the probes ----------------------------------------------------------------

// What the runtime knows when a probe asks. Times are of the steady clock;
// nullopt: not since the worker started.
struct health_inputs {
    using time_point = std::chrono::steady_clock::time_point;
    time_point now;
    std::optional<time_point> started;        // when the start-up checks passed and the loops began
    bool running = true;                      // not draining (no SIGTERM yet)
    std::optional<time_point> fetch_ok;       // the fetcher's last completed read
    bool fetch_failing = false;               // the fetcher's last read failed (not a quiet block)
    std::optional<time_point> slots_full;     // last seen with every concurrency slot busy
    bool slots_full_now = false;              // every concurrency slot is busy now
    std::optional<time_point> control_ok;     // last successful round trip on the control connection
    bool control_failing = false;             // the last round trip on the control connection failed
    std::optional<time_point> sampler_round;  // the depth sampler's last round, answered or not
};

struct probe_answer {
    bool ok = false;
    std::string reason;  // why not (or "ok"), for the body and the log
};

// How long a loop may go without progress before liveness fails, and how
// recent a read or a control round trip must be for readiness.
inline constexpr std::chrono::seconds wedged_after{300};
inline constexpr std::chrono::seconds fetch_recent{30};
inline constexpr std::chrono::seconds control_recent{45};

// What a request to the endpoint (metrics_server.hpp) asks for, from its
// method and target (a query string is ignored). The fuzz target feeds it
// parsed requests.
enum class metrics_route { metrics, healthz, readyz, not_found, method_not_allowed };
metrics_route route_metrics_request(std::string_view method, std::string_view target);

// /healthz: the process is alive and its loops are not wedged. Never fails
// because Redis is down (that is readiness), nor because every slot is busy.
probe_answer liveness(const health_inputs& in);
// /readyz: the Redis connections work and the fetcher either completed a read
// recently or is legitimately waiting (every slot busy).
probe_answer readiness(const health_inputs& in);

}  // namespace outq
