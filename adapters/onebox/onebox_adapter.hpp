#pragma once
// Onebox omnichannel "Message - Create": POST {host}/api/message.
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

#include "outq/adapter.hpp"

namespace outq::adapters {

std::unique_ptr<adapter> make_onebox_adapter();

namespace onebox {

// "HH:MM" → minutes after midnight; nullopt when invalid.
std::optional<int> parse_clock_time(std::string_view text);
// A fixed UTC offset ("+07:00", "-03:30", "Z", "UTC") → minutes east of UTC;
// nullopt when invalid (IANA zone names included: they are not supported).
std::optional<int> parse_utc_offset(std::string_view text);
// How long from `now` until the quota window reopens at `reopen_minute` local
// time (UTC + `offset_minutes`): the next such time, or a minute when it
// reopened less than 5 minutes ago (the provider's clock may lag ours).
std::chrono::milliseconds quota_reopen_delay(unix_ms now, int reopen_minute, int offset_minutes);
// An email address as a mailbox's addr-spec (RFC 5322 §3.4.1): a dot-atom or
// quoted local part of at most 64 bytes, "@", and a domain of at least two DNS
// labels (letters, digits, inner hyphens; UTF-8 for internationalised names,
// RFC 6531/6532) or an address literal in brackets; at most 254 bytes in all
// (RFC 5321 §4.5.3.1). No display name, no comments.
bool is_email_address(std::string_view text);

}  // namespace onebox

}  // namespace outq::adapters
