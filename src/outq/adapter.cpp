#include "outq/adapter.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>

namespace outq {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return (x | 0x20) == (y | 0x20); });
}

}  // namespace

std::string_view inbound_response::header(std::string_view name) const {
    for (auto& h : headers)
        if (iequals(h.name, name)) return h.value;
    return {};
}

void adapter_registry::add(std::unique_ptr<adapter> a) {
    if (find(a->name())) throw std::logic_error("adapter registered twice: " + std::string(a->name()));
    adapters_.push_back(std::move(a));
}

const adapter* adapter_registry::find(std::string_view name) const {
    for (auto& a : adapters_)
        if (a->name() == name) return a.get();
    return nullptr;
}

std::vector<std::string_view> adapter_registry::names() const {
    std::vector<std::string_view> out;
    for (auto& a : adapters_) out.push_back(a->name());
    return out;
}

token_result adapter::parse_token_response(const inbound_response&, const account_settings&, unix_ms) const {
    token_result r;
    r.failure.cls = outcome_class::permanent;
    r.failure.error = std::string(name()) + " has no token endpoint";
    return r;
}

outbound_request adapter::build_batch_request(const std::vector<batch_item>& items, const account_settings& account,
                                              const attempt_context& attempt) const {
    // Adapters without batching only ever get batches of one.
    attempt_context one = attempt;
    one.attempt_number = items.front().attempt_number;
    return build_request(*items.front().j, account, one);
}

std::vector<send_outcome> adapter::classify_batch(const inbound_response& response,
                                                  const std::vector<batch_item>& items, const account_settings& account,
                                                  unix_ms now, bool& halve_batch) const {
    halve_batch = false;
    std::vector<send_outcome> out;
    out.reserve(items.size());
    out.push_back(classify(response, account, now));
    while (out.size() < items.size()) out.push_back(out.front());
    return out;
}

outcome_class classify_http_status(int status) {
    if (status >= 200 && status < 300) return outcome_class::success;
    if (status == 429) return outcome_class::rate_limited;
    if (status == 408 || status >= 500) return outcome_class::retryable;
    if (status == 401 || status == 403) return outcome_class::auth;
    if (status >= 400) return outcome_class::permanent;
    // 1xx/3xx: the provider did not take the message as a success; redirects are
    // not followed for POSTs, so treat them as permanent misconfiguration.
    return outcome_class::permanent;
}

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

constexpr std::array<std::string_view, 12> month_names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
// Monday first: (days since 1970-01-01 + 3) % 7 indexes them (1970-01-01 was a Thursday).
constexpr std::array<std::string_view, 7> day_names = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> long_day_names = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                            "Friday", "Saturday", "Sunday"};

// Index of `name` in `names`, or -1. HTTP-date is case-sensitive (RFC 9110 §5.6.7).
template <std::size_t N>
int index_of(std::string_view name, const std::array<std::string_view, N>& names) {
    for (std::size_t i = 0; i < N; ++i)
        if (name == names[i]) return static_cast<int>(i);
    return -1;
}

// Exactly s.size() ASCII digits.
bool digits(std::string_view s, int& out) {
    if (s.empty()) return false;
    out = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') return false;
        out = out * 10 + (c - '0');
    }
    return true;
}

// The fields of an HTTP-date as written, before they are checked against the calendar.
struct http_date_fields {
    int weekday = -1;    // 0 = Monday
    int day = 0;         // 1..31
    int month = 0;       // 1..12
    int year = 0;        // four digits, or
    int two_digit = -1;  // RFC 850's two-digit year
    int hour = 0, minute = 0, second = 0;
};

// time-of-day = hour ":" minute ":" second, "00:00:00" to "23:59:60" (the leap
// second is checked against the date later).
bool time_of_day(std::string_view s, http_date_fields& f) {
    return s.size() == 8 && s[2] == ':' && s[5] == ':' && digits(s.substr(0, 2), f.hour) &&
           digits(s.substr(3, 2), f.minute) && digits(s.substr(6, 2), f.second) && f.hour <= 23 && f.minute <= 59 &&
           f.second <= 60;
}

// IMF-fixdate: day-name "," SP 2DIGIT SP month SP 4DIGIT SP time-of-day SP "GMT",
// exactly 29 characters ("Sun, 06 Nov 1994 08:49:37 GMT").
std::optional<http_date_fields> imf_fixdate(std::string_view s) {
    http_date_fields f;
    if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s.substr(25) != " GMT")
        return std::nullopt;
    f.weekday = index_of(s.substr(0, 3), day_names);
    f.month = index_of(s.substr(8, 3), month_names) + 1;
    if (f.weekday < 0 || f.month < 1 || !digits(s.substr(5, 2), f.day) || !digits(s.substr(12, 4), f.year) ||
        !time_of_day(s.substr(17, 8), f))
        return std::nullopt;
    return f;
}

// rfc850-date: day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP time-of-day SP "GMT"
// ("Sunday, 06-Nov-94 08:49:37 GMT").
std::optional<http_date_fields> rfc850_date(std::string_view s) {
    http_date_fields f;
    const auto comma = s.find(',');
    if (comma == std::string_view::npos) return std::nullopt;
    f.weekday = index_of(s.substr(0, comma), long_day_names);
    const auto rest = s.substr(comma);  // ", 06-Nov-94 08:49:37 GMT"
    if (f.weekday < 0 || rest.size() != 24 || rest[1] != ' ' || rest[4] != '-' || rest[8] != '-' || rest[11] != ' ' ||
        rest.substr(20) != " GMT")
        return std::nullopt;
    f.month = index_of(rest.substr(5, 3), month_names) + 1;
    if (f.month < 1 || !digits(rest.substr(2, 2), f.day) || !digits(rest.substr(9, 2), f.two_digit) ||
        !time_of_day(rest.substr(12, 8), f))
        return std::nullopt;
    return f;
}

// asctime-date: day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP 4DIGIT
// ("Sun Nov  6 08:49:37 1994"; no zone: it is UTC).
std::optional<http_date_fields> asctime_date(std::string_view s) {
    http_date_fields f;
    if (s.size() != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ') return std::nullopt;
    f.weekday = index_of(s.substr(0, 3), day_names);
    f.month = index_of(s.substr(4, 3), month_names) + 1;
    const auto day = s[8] == ' ' ? s.substr(9, 1) : s.substr(8, 2);
    if (f.weekday < 0 || f.month < 1 || !digits(day, f.day) || !time_of_day(s.substr(11, 8), f) ||
        !digits(s.substr(20, 4), f.year))
        return std::nullopt;
    return f;
}

std::int64_t unix_seconds(std::int64_t year, const http_date_fields& f) {
    return days_from_civil(year, static_cast<unsigned>(f.month), static_cast<unsigned>(f.day)) * 86400 + f.hour * 3600 +
           f.minute * 60 + f.second;
}

// RFC 9110 §5.6.7: a two-digit year that appears to be more than 50 years in the
// future is the most recent past year with the same last two digits. So the year
// is the latest one ending in those digits whose date is at most 50 years after
// `now` (a window of a century ending 50 years from now).
std::int64_t full_year(const http_date_fields& f, unix_ms now) {
    const std::int64_t now_s = now >= 0 ? now / 1000 : (now - 999) / 1000;
    const std::int64_t now_days = now_s >= 0 ? now_s / 86400 : (now_s - 86399) / 86400;
    const civil_date today = civil_from_days(now_days);
    const std::int64_t limit =
        days_from_civil(today.year + 50, today.month, today.day) * 86400 + (now_s - now_days * 86400);
    std::int64_t year = today.year - (today.year % 100 + 100) % 100 + f.two_digit;
    if (unix_seconds(year, f) > limit) year -= 100;
    if (unix_seconds(year + 100, f) <= limit) year += 100;
    return year;
}

}  // namespace

std::optional<unix_ms> parse_http_date(std::string_view v, unix_ms now) {
    auto f = imf_fixdate(v);
    if (!f) f = rfc850_date(v);
    if (!f) f = asctime_date(v);
    if (!f) return std::nullopt;
    const std::int64_t year = f->two_digit >= 0 ? full_year(*f, now) : f->year;
    // The date must exist: no 30 Feb, 31 Apr or 29 Feb 2100 rolled over into March or May.
    const unsigned month_days = days_in_month(year, static_cast<unsigned>(f->month));
    if (f->day < 1 || static_cast<unsigned>(f->day) > month_days) return std::nullopt;
    // A leap second is inserted only as 23:59:60 UTC on the last day of a month
    // (ITU-R TF.460-6 §2.2); anywhere else second 60 is no time at all.
    if (f->second == 60 && (f->hour != 23 || f->minute != 59 || static_cast<unsigned>(f->day) != month_days))
        return std::nullopt;
    const std::int64_t days = days_from_civil(year, static_cast<unsigned>(f->month), static_cast<unsigned>(f->day));
    // The day name must be the date's (a mismatch means the date is not what was meant).
    if (((days + 3) % 7 + 7) % 7 != f->weekday) return std::nullopt;
    // Unix time has no leap seconds: 23:59:60 is the second after 23:59:59, 00:00:00 of the next day.
    return unix_seconds(year, *f) * 1000;
}

namespace {

// Non-negative decimal seconds, fractions allowed ("1.5"), as milliseconds.
std::optional<std::int64_t> seconds_to_ms(std::string_view v) {
    v = trim(v);
    // Leading zeros do not count toward the length limit ("0030" is 30 s).
    while (v.size() > 1 && v[0] == '0' && v[1] >= '0' && v[1] <= '9') v.remove_prefix(1);
    if (v.empty() || v.size() > 15) return std::nullopt;
    std::int64_t whole = 0, frac_ms = 0;
    std::size_t i = 0;
    for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) whole = whole * 10 + (v[i] - '0');
    if (i == 0) return std::nullopt;
    if (i < v.size()) {
        if (v[i] != '.') return std::nullopt;
        std::int64_t scale = 100;
        for (++i; i < v.size(); ++i) {
            if (v[i] < '0' || v[i] > '9') return std::nullopt;
            frac_ms += (v[i] - '0') * scale;
            scale /= 10;
        }
    }
    return whole * 1000 + frac_ms;
}

// A reset given either as seconds from now or as a unix time in seconds.
std::optional<std::chrono::milliseconds> reset_delay(std::string_view v, unix_ms now) {
    auto ms = seconds_to_ms(v);
    if (!ms) return std::nullopt;
    constexpr std::int64_t unix_time_floor_ms = 1'000'000'000'000;  // 2001-09-09: no window is that long
    if (*ms >= unix_time_floor_ms) return std::chrono::milliseconds(std::max<std::int64_t>(0, *ms - now));
    return std::chrono::milliseconds(*ms);
}

// One parameter of a structured-field item: ";r=0" → "0".
std::optional<std::string_view> sf_param(std::string_view item, std::string_view key) {
    std::size_t pos = 0;
    while ((pos = item.find(';', pos)) != std::string_view::npos) {
        ++pos;
        auto rest = trim(item.substr(pos));
        if (rest.substr(0, key.size()) == key && rest.size() > key.size() && rest[key.size()] == '=') {
            auto value = rest.substr(key.size() + 1);
            return value.substr(0, value.find(';'));
        }
    }
    return std::nullopt;
}

bool is_zero(std::string_view v) {
    v = trim(v);
    return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c == '0'; });
}

}  // namespace

std::optional<std::chrono::milliseconds> rate_limit_exhausted_for(const inbound_response& response, unix_ms now) {
    if (auto field = response.header("RateLimit"); !field.empty()) {
        // Several policies may be listed, comma-separated: any exhausted one holds us off.
        std::optional<std::chrono::milliseconds> longest;
        std::size_t start = 0;
        while (start <= field.size()) {
            const auto end = std::min(field.find(',', start), field.size());
            const auto item = field.substr(start, end - start);
            auto r = sf_param(item, "r");
            auto t = sf_param(item, "t");
            if (r && t && is_zero(*r))
                if (auto ms = seconds_to_ms(*t))
                    longest = std::max(longest.value_or(std::chrono::milliseconds(0)), std::chrono::milliseconds(*ms));
            start = end + 1;
        }
        if (longest) return longest;
    }
    if (is_zero(response.header("RateLimit-Remaining"))) {
        if (auto ms = seconds_to_ms(response.header("RateLimit-Reset"))) return std::chrono::milliseconds(*ms);
    }
    if (is_zero(response.header("X-RateLimit-Remaining"))) {
        if (auto ms = seconds_to_ms(response.header("X-RateLimit-Reset-After"))) return std::chrono::milliseconds(*ms);
        if (auto d = reset_delay(response.header("X-RateLimit-Reset"), now)) return d;
    }
    return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, unix_ms now) {
    value = trim(value);
    if (value.empty()) return std::nullopt;
    if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        // delay-seconds = 1*DIGIT: leading zeros add nothing ("0000000000120" is 120 s).
        // More than fits saturates (RFC 9111 §1.2.2 says the same of delta-seconds);
        // the retry policy clamps it to max_retry_after anyway.
        const auto first = std::min(value.find_first_not_of('0'), value.size() - 1);
        value.remove_prefix(first);
        constexpr std::int64_t most_seconds = 999999999;
        if (value.size() > 9) return std::chrono::milliseconds(most_seconds * 1000);
        int seconds = 0;
        if (!digits(value, seconds)) return std::nullopt;
        return std::chrono::milliseconds(static_cast<std::int64_t>(seconds) * 1000);
    }
    // An HTTP-date: the wait is until then; a date already past means retry now.
    auto when = parse_http_date(value, now);
    if (!when) return std::nullopt;
    return std::chrono::milliseconds(std::max<std::int64_t>(0, *when - now));
}

}  // namespace outq
