#include "outq/queue/message_index.hpp"

namespace outq::queue {

std::string message_index_key(std::string_view scope, std::string_view message_id) {
    std::string key;
    key.reserve(scope.size() + 4 + message_id.size());
    key.append(scope).append("msg:").append(message_id);
    return key;
}

redis::command claim_message_command(std::string_view scope, std::string_view message_id, std::string_view job_id,
                                     long long ttl_seconds) {
    return redis::command("SET")
        .arg(message_index_key(scope, message_id))
        .arg(job_id)
        .arg("NX")
        .arg("GET")
        .arg("EX")
        .arg(ttl_seconds);
}

bool parse_claim_message(const redis::value& reply, std::string_view job_id, message_claim& out, std::string* owner) {
    if (reply.is_nil()) {
        out = message_claim::claimed;
        return true;
    }
    if (!reply.is_string()) return false;
    out = reply.str == job_id ? message_claim::claimed : message_claim::taken;
    if (owner) *owner = reply.str;
    return true;
}

redis::command read_message_owners_command(std::string_view scope, const std::vector<std::string>& message_ids) {
    redis::command c("MGET");
    for (const auto& id : message_ids) c.arg(message_index_key(scope, id));
    return c;
}

bool parse_message_owners(const redis::value& reply, std::size_t n, std::vector<std::string>& owners) {
    owners.clear();
    if (!reply.is_array() || reply.elements.size() != n) return false;
    for (const auto& e : reply.elements) {
        if (e.is_nil())
            owners.emplace_back();
        else if (e.is_string())
            owners.push_back(e.str);
        else
            return false;
    }
    return true;
}

}  // namespace outq::queue
