#include "register_all.hpp"

#include "mediaconnect/mediaconnect_adapter.hpp"
#include "mews/mews_adapter.hpp"
#include "onebox/onebox_adapter.hpp"
#include "superoffice/superoffice_adapter.hpp"
#include "webhook/webhook_adapter.hpp"

namespace outq::adapters {

void register_builtin_adapters(adapter_registry& registry) {
    registry.add(make_webhook_adapter());
    registry.add(make_mews_adapter());
    registry.add(make_mediaconnect_adapter());
    registry.add(make_onebox_adapter());
    registry.add(make_superoffice_adapter());
}

}  // namespace outq::adapters
