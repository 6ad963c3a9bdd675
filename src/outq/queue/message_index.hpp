#pragma once
// The provider-message-id index (docs/protocol.md, "Keys"): `<A>msg:<provider
// message id>` holds the id of the job that owns that provider message, in
// the account's slot, with the results' TTL. It is written with SET NX GET
// beside a sent result (before it, in the same pipeline) and read by
// reconciliation: a message another job owns is never this job's.
#include <string>
#include <string_view>
#include <vector>

#include "outq/resp.hpp"

namespace outq::queue {

std::string message_index_key(std::string_view scope, std::string_view message_id);

// SET <A>msg:<id> <job id> NX GET EX <ttl>.
redis::command claim_message_command(std::string_view scope, std::string_view message_id, std::string_view job_id,
                                     long long ttl_seconds);

enum class message_claim {
    claimed,  // now this job's, or it was already
    taken,    // another job's: `owner`
};
// The reply to claim_message_command; false on an error or another shape.
bool parse_claim_message(const redis::value& reply, std::string_view job_id, message_claim& out,
                         std::string* owner = nullptr);

// MGET of the index keys of `message_ids`.
redis::command read_message_owners_command(std::string_view scope, const std::vector<std::string>& message_ids);
// Its reply: each message's owning job id, empty when none; false on an error
// or another shape.
bool parse_message_owners(const redis::value& reply, std::size_t n, std::vector<std::string>& owners);

}  // namespace outq::queue
