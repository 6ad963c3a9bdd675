#pragma once
// The generic webhook provider: POSTs the job's `message` object as JSON to the
// account's URL with the account's headers. It serves providers that have no
// adapter of their own yet, and it is the sandbox's and the tests' first provider.
#include <memory>

#include "outq/adapter.hpp"

namespace outq::adapters {

std::unique_ptr<adapter> make_webhook_adapter();

}  // namespace outq::adapters
