#include "outq/queue/result.hpp"

#include "outq/encoding.hpp"
#include "outq/json_util.hpp"

namespace outq::queue {

namespace {

// Text from a provider or the network may be any bytes; a result is JSON,
// which must be UTF-8 (RFC 8259 §8.1).
void append_text(std::string& out, std::string_view name, std::string_view value) {
    out += ",\"";
    out += name;
    out += "\":";
    if (is_valid_utf8(value))
        json::append_quoted(out, value);
    else
        json::append_quoted(out, to_valid_utf8(value));
}

void append_text_if(std::string& out, std::string_view name, std::string_view value) {
    if (!value.empty()) append_text(out, name, value);
}

void append_number(std::string& out, std::string_view name, long long value) {
    out += ",\"";
    out += name;
    out += "\":";
    out += std::to_string(value);
}

}  // namespace

std::string marker_prefix(std::string_view entry_id) {
    std::string out = "{\"status\":\"sending\",\"entry\":";
    json::append_quoted(out, entry_id);
    out += ',';
    return out;
}

std::string sending_marker(std::string_view entry_id, unix_ms since) {
    std::string out = marker_prefix(entry_id);
    out += "\"since\":";
    out += std::to_string(since);
    out += '}';
    return out;
}

std::string outcome_json(const completion& c) {
    const bool dead = c.what == completion::kind::dead;
    std::string out;
    out.reserve(192 + c.response_excerpt.size() + c.meta_json.size() + c.error.size());
    out += dead ? "{\"status\":\"dead\"" : "{\"status\":\"sent\"";
    append_text(out, "id", c.job_id);
    // The stream entry that sent it: a delivery of that entry again (its
    // acknowledgement was deferred and lost) knows the result is its own.
    if (!dead) append_text_if(out, "entry", c.env.entry_id);
    if (!dead) append_text_if(out, "origin", c.env.origin);
    append_number(out, "attempts", c.env.attempts);
    if (c.http_status) append_number(out, "http_status", c.http_status);
    append_text_if(out, "provider_message_id", c.provider_message_id);
    append_text_if(out, "request_id", c.request_id);
    append_text_if(out, "response", c.response_excerpt);
    append_text_if(out, "error_class", c.dead_class);
    append_text_if(out, "error", c.error);
    append_text_if(out, "provider", c.provider);
    append_text_if(out, "account", c.account);
    append_number(out, "enqueued_at", c.env.enqueued_at);
    append_number(out, "completed_at", c.completed_at);
    if (!c.meta_json.empty()) {
        // The job's own `meta` text: the job was parsed as JSON, so it is JSON.
        out += ",\"meta\":";
        out += c.meta_json;
    }
    append_text_if(out, "replay_of", c.env.replay_of);
    append_text_if(out, "traceparent", c.traceparent);
    if (!dead) out += '}';
    return out;
}

std::string cancelled_json(std::string_view job_id, std::string_view reason, unix_ms at) {
    std::string out = "{\"status\":\"cancelled\"";
    append_text(out, "id", job_id);
    append_text_if(out, "reason", reason);
    append_number(out, "cancelled_at", at);
    out += '}';
    return out;
}

result_state read_result_value(std::string_view value) {
    result_state r;
    auto status = json::scalar_member(value, "status");
    if (!status) {
        r.what = result_state::kind::unreadable;
        return r;
    }
    r.status = std::move(*status);
    if (r.status == "sending") {
        auto entry = json::scalar_member(value, "entry");
        if (!entry) {
            r.what = result_state::kind::unreadable;
            return r;
        }
        r.what = result_state::kind::sending;
        r.entry = std::move(*entry);
    } else {
        r.what = result_state::kind::final;
        if (auto entry = json::scalar_member(value, "entry")) r.entry = std::move(*entry);
        if (auto origin = json::scalar_member(value, "origin")) r.origin = std::move(*origin);
    }
    return r;
}

}  // namespace outq::queue
