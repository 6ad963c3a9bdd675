#pragma once
// The settings of an account's circuit breaker, apart from its decisions
// (policy/circuit.hpp) so that the config does not depend on them.
#include <chrono>

namespace outq::policy {

// The `circuit` block of a provider or an account (config.hpp).
struct circuit_settings {
    bool enabled = true;
    int failures = 5;                            // consecutive failures that open the circuit
    std::chrono::milliseconds open{5000};        // the first opening; each consecutive one doubles it
    std::chrono::milliseconds max_open{300000};  // the longest opening
    // How long the half-open probe's lease lasts; 0 while unresolved (the
    // config loader derives it from the account's http timeouts).
    std::chrono::milliseconds probe_timeout{0};
};

}  // namespace outq::policy
