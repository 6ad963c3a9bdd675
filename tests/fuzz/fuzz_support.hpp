#pragma once
// What the fuzz targets share: the registry of the built-in adapters.
#include "outq/adapter.hpp"
#include "register_all.hpp"

namespace outq::fuzz {

inline const adapter_registry& registry() {
    static const adapter_registry r = [] {
        adapter_registry x;
        adapters::register_builtin_adapters(x);
        return x;
    }();
    return r;
}

}  // namespace outq::fuzz
