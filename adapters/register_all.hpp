#pragma once
// The explicit list of built-in providers, called once from main. Adding a
// provider means adding one line here, not a static initialiser somewhere.
#include "outq/adapter.hpp"

namespace outq::adapters {

void register_builtin_adapters(adapter_registry& registry);

}  // namespace outq::adapters
