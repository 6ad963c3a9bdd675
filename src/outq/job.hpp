#pragma once
// The job model: what a producer puts in the `job` field of a stream entry
// (format v1, see docs/protocol.md), and what the worker carries along with it
// between attempts.
#include <rapidjson/document.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "outq/clock.hpp"

namespace outq {

inline constexpr int job_format_version = 1;

namespace detail {
// A job's parsed JSON in two allocations: `text` is a copy of the job parsed
// in situ (its strings stay there, unescaped in place), and the pool, sized
// to the job, holds the values and the parser's stack (RapidJSON's defaults
// are a 64 KiB pool and a heap stack per document: most of the memory of a
// worker holding a thousand jobs, and two allocations more per job).
struct job_document {
    using document_type = rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>,
                                                     rapidjson::MemoryPoolAllocator<>>;
    job_document(std::string_view json_text, std::size_t pool_bytes);
    std::unique_ptr<char[]> storage;  // the text, NUL, then the pool's first chunk
    rapidjson::MemoryPoolAllocator<> pool;
    document_type doc;
};
}  // namespace detail
inline constexpr std::size_t max_job_id_length = 200;
inline constexpr int max_job_attempts = 100;

struct job {
    std::string id;
    bool id_from_entry = false;  // the producer gave no id; the stream entry id stands in
    std::string provider;
    std::string account;
    std::optional<int> max_attempts;
    std::optional<unix_ms> not_before;
    std::optional<unix_ms> expires_at;
    std::string meta_json;    // compact JSON of `meta`, empty when absent
    std::string traceparent;  // W3C trace context of the producer, empty when absent
    // The parsed document owns the `message` value; kept behind a pointer so the
    // `message` reference stays valid when the job moves (see job_document).
    std::unique_ptr<detail::job_document> document;
    const rapidjson::Value* message = nullptr;
    std::string message_json;  // the message exactly as the producer wrote it
};

// Whether `tp` is a W3C traceparent header value (Trace Context §3.2).
bool is_traceparent(std::string_view tp);

// A job that failed to parse: `error` names the field ("job.account: missing").
// provider/account/id are filled in when they could be read, for the dead letter.
struct job_error {
    std::string error;
    std::string id;
    std::string provider;
    std::string account;
};

struct job_parse_result {
    std::optional<job> value;
    job_error failure;
    bool ok() const { return value.has_value(); }
};

// Parses and validates the generic part of a job. `entry_id` is the stream
// entry id, used as the job id when the producer gave none.
job_parse_result parse_job(std::string_view json_text, std::string_view entry_id);

// A timestamp field: unix milliseconds as an integer, or an RFC 3339 string.
std::optional<unix_ms> parse_time_value(const rapidjson::Value& v);

// The millisecond part of a stream entry id ("1700000000000-3" → 1700000000000).
std::optional<unix_ms> entry_id_millis(std::string_view entry_id);

}  // namespace outq
