#pragma once
// MediaConnect (Connect API) "Send message - client mode": POST /v1/client/message
// with an OAuth 2.0 client credentials token.
#include <memory>

#include "outq/adapter.hpp"

namespace outq::adapters {

std::unique_ptr<adapter> make_mediaconnect_adapter();

}  // namespace outq::adapters
