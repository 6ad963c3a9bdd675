#pragma once
// What one send attempt came to. Adapters classify provider answers into these
// classes; the retry policy turns them into the job's next state.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace outq {

enum class outcome_class {
    success,       // the provider accepted the message
    retryable,     // 5xx, refused/reset before the request was written, timeout before sending
    ambiguous,     // failed after the request was written: the provider may have acted
    rate_limited,  // 429 or a provider quota answer; honours retry_after
    permanent,     // the provider rejected the message; sending again will not help
    auth,          // credentials rejected
    validation,    // the job itself is malformed; no request was made
};

std::string_view to_string(outcome_class c);

struct send_outcome {
    outcome_class cls = outcome_class::retryable;
    int http_status = 0;  // 0: no HTTP response
    std::string provider_message_id;
    std::string request_id;
    std::string response_excerpt;
    std::string error;  // one sentence for people
    std::optional<std::chrono::milliseconds> retry_after;
    // Set by adapters when the answer means the whole account must hold off
    // (integration disabled, quota window closed): every worker pauses the
    // provider account this long (0: until an operator resumes it).
    std::optional<std::chrono::milliseconds> pause_account_for;
    std::string pause_reason;
};

// Dead letter classes (docs/protocol.md).
namespace dead_class {
inline constexpr std::string_view validation = "validation";
inline constexpr std::string_view permanent = "permanent";
inline constexpr std::string_view auth = "auth";
inline constexpr std::string_view attempts_exhausted = "attempts_exhausted";
inline constexpr std::string_view expired = "expired";
// An ambiguous attempt whose fate reconciliation could not tell, lookup after
// lookup (the provider's lookup failed, or more than one message could be it).
inline constexpr std::string_view outcome_unknown = "outcome_unknown";
}  // namespace dead_class

// Cuts a response body to at most `limit` bytes without splitting a UTF-8 sequence.
std::string excerpt(std::string_view body, std::size_t limit = 1024);

}  // namespace outq
