#pragma once
// SuperOffice CRM Online / onsite WebAPI: POST /api/v1/ChatSession/{id}/Messages.
#include <memory>

#include "outq/adapter.hpp"

namespace outq::adapters {

std::unique_ptr<adapter> make_superoffice_adapter();

}  // namespace outq::adapters
