#pragma once
// Mews Connector API: messages/add (batched), messages/getAll (reconciliation).
#include <memory>

#include "outq/adapter.hpp"

namespace outq::adapters {

std::unique_ptr<adapter> make_mews_adapter();

}  // namespace outq::adapters
