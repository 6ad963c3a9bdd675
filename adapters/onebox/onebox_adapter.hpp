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

}  // namespace onebox

}  // namespace outq::adapters
