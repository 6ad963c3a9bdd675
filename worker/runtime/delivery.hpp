#pragma once
// A delivery on its way to the provider: the slot that holds the stream entry,
// the entry's envelope, the parsed job and where it goes.
#include <string_view>

#include "ledger.hpp"
#include "outq/adapter.hpp"
#include "outq/config.hpp"
#include "outq/job.hpp"
#include "outq/policy/sending.hpp"
#include "outq/queue_protocol.hpp"
#include "writer.hpp"

namespace outq::runtime {

struct delivery {
    runtime::slot slot;
    queue::envelope env;
    job j;
    const adapter* provider = nullptr;
    const provider_settings* settings = nullptr;
    const account_settings* account = nullptr;
    std::string_view scope;  // rate-limit key prefix of the account (interned, outlives the delivery)
};

// Puts a delivery back: a delayed outcome due at `due`, no attempt used (its
// in-flight marker is released when it holds it).
inline void put_back(writers& out, delivery&& d, unix_ms due) {
    const bool marker = d.slot.state().holds_marker;
    out.push(std::move(d.slot), policy::delayed(std::move(d.env), d.j, due, marker));
}

}  // namespace outq::runtime
