#include "outq/adapter.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
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

int month_index(std::string_view m) {
    static constexpr std::array<std::string_view, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; ++i)
        if (m == months[i]) return i + 1;
    return 0;
}

bool to_int(std::string_view s, int& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size();
}

// "HH:MM:SS"
bool parse_clock(std::string_view s, int& h, int& m, int& sec) {
    return s.size() == 8 && s[2] == ':' && s[5] == ':' && to_int(s.substr(0, 2), h) && to_int(s.substr(3, 2), m) &&
           to_int(s.substr(6, 2), sec) && h < 24 && m < 60 && sec <= 60;
}

std::vector<std::string_view> split_spaces(std::string_view s) {
    std::vector<std::string_view> parts;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && s[i] == ' ') ++i;
        std::size_t j = i;
        while (j < s.size() && s[j] != ' ') ++j;
        if (j > i) parts.push_back(s.substr(i, j - i));
        i = j;
    }
    return parts;
}

std::optional<unix_ms> make_time(int year, int month, int day, int h, int m, int s) {
    if (month < 1 || day < 1 || day > 31 || year < 1970) return std::nullopt;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", year, month, day, h, m, s);
    return parse_rfc3339(buf);
}

std::optional<unix_ms> parse_http_date(std::string_view v) {
    auto parts = split_spaces(v);
    int day, year, h, m, s;
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    if (parts.size() == 6 && parts[0].size() == 4 && parts[0].back() == ',' && parts[5] == "GMT") {
        if (!to_int(parts[1], day) || !to_int(parts[3], year) || parts[3].size() != 4 ||
            !parse_clock(parts[4], h, m, s))
            return std::nullopt;
        return make_time(year, month_index(parts[2]), day, h, m, s);
    }
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    if (parts.size() == 4 && parts[0].back() == ',' && parts[3] == "GMT" && parts[1].size() == 9) {
        if (!to_int(parts[1].substr(0, 2), day) || !to_int(parts[1].substr(7, 2), year) ||
            !parse_clock(parts[2], h, m, s))
            return std::nullopt;
        // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
        year += year < 70 ? 2000 : 1900;
        return make_time(year, month_index(parts[1].substr(3, 3)), day, h, m, s);
    }
    // asctime: Sun Nov  6 08:49:37 1994
    if (parts.size() == 5 && parts[0].size() == 3) {
        if (!to_int(parts[2], day) || !to_int(parts[4], year) || !parse_clock(parts[3], h, m, s)) return std::nullopt;
        return make_time(year, month_index(parts[1]), day, h, m, s);
    }
    return std::nullopt;
}

}  // namespace

namespace {

// Non-negative decimal seconds, fractions allowed ("1.5"), as milliseconds.
std::optional<std::int64_t> seconds_to_ms(std::string_view v) {
    v = trim(v);
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
        if (value.size() > 9) return std::chrono::milliseconds(999999999LL * 1000);
        int seconds = 0;
        if (!to_int(value, seconds)) return std::nullopt;
        return std::chrono::milliseconds(static_cast<std::int64_t>(seconds) * 1000);
    }
    auto when = parse_http_date(value);
    if (!when) return std::nullopt;
    return std::chrono::milliseconds(std::max<std::int64_t>(0, *when - now));
}

}  // namespace outq
