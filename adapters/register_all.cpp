#include "register_all.hpp"

#include "mews/mews_adapter.hpp"
#include "webhook/webhook_adapter.hpp"

namespace outq::adapters {

void register_builtin_adapters(adapter_registry& registry) {
    registry.add(make_webhook_adapter());
    registry.add(make_mews_adapter());
}

}  // namespace outq::adapters
