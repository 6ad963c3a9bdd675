#include <doctest/doctest.h>

#include "outq/adapter.hpp"

using namespace outq;
using namespace std::chrono_literals;

TEST_CASE("HTTP statuses map to outcome classes") {
    CHECK(classify_http_status(200) == outcome_class::success);
    CHECK(classify_http_status(204) == outcome_class::success);
    CHECK(classify_http_status(429) == outcome_class::rate_limited);
    CHECK(classify_http_status(408) == outcome_class::retryable);
    CHECK(classify_http_status(500) == outcome_class::retryable);
    CHECK(classify_http_status(503) == outcome_class::retryable);
    CHECK(classify_http_status(401) == outcome_class::auth);
    CHECK(classify_http_status(403) == outcome_class::auth);
    CHECK(classify_http_status(400) == outcome_class::permanent);
    CHECK(classify_http_status(404) == outcome_class::permanent);
    CHECK(classify_http_status(422) == outcome_class::permanent);
    CHECK(classify_http_status(302) == outcome_class::permanent);
}

TEST_CASE("Retry-After: delay-seconds and the three HTTP-date forms") {
    const unix_ms t = *parse_rfc3339("1994-11-06T08:49:30Z");
    CHECK(parse_retry_after("120", t) == 120000ms);
    CHECK(parse_retry_after(" 0 ", t) == 0ms);
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t) == 7000ms);
    CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", t) == 7000ms);
    CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", t) == 7000ms);
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", t) == 0ms);  // past: no wait
    CHECK_FALSE(parse_retry_after("-5", t));
    CHECK_FALSE(parse_retry_after("1.5", t));
    CHECK_FALSE(parse_retry_after("soon", t));
    CHECK_FALSE(parse_retry_after("", t));
    CHECK_FALSE(parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", t));
}

namespace {

// One HTTP-date vector: the text, the unix time it is (nullopt: not an
// HTTP-date), and where the case comes from.
struct date_vector {
    const char* text;
    std::optional<std::int64_t> unix_seconds;
    const char* source;
};

void check_dates(std::initializer_list<date_vector> vectors, unix_ms now) {
    for (const auto& v : vectors) {
        const std::string text = v.text, source = v.source;
        CAPTURE(text);
        CAPTURE(source);
        const auto got = parse_http_date(v.text, now);
        if (v.unix_seconds) {
            REQUIRE(got.has_value());
            CHECK(*got == *v.unix_seconds * 1000);
        } else {
            CHECK_FALSE(got.has_value());
        }
    }
}

constexpr std::int64_t rfc_example = 784111777;   // 1994-11-06T08:49:37Z
constexpr unix_ms november_2026 = 1795341600000;  // Sun 2026-11-22T10:00:00Z
const std::optional<std::int64_t> refused;

}  // namespace

TEST_CASE("HTTP-date: the examples of RFC 9110 and public test suites") {
    check_dates(
        {
            // RFC 9110 §5.6.7: the three forms of one instant.
            {"Sun, 06 Nov 1994 08:49:37 GMT", rfc_example, "RFC 9110 5.6.7"},
            {"Sunday, 06-Nov-94 08:49:37 GMT", rfc_example, "RFC 9110 5.6.7"},
            {"Sun Nov  6 08:49:37 1994", rfc_example, "RFC 9110 5.6.7"},
            // RFC 9110 §10.2.3, the Retry-After example.
            {"Fri, 31 Dec 1999 23:59:59 GMT", 946684799, "RFC 9110 10.2.3"},
            // golang/go src/net/http/header_test.go, parseTimeTests.
            {"", refused, "Go net/http parseTimeTests"},
            {"invalid", refused, "Go net/http parseTimeTests"},
            {"1994-11-06T08:49:37Z00:00", refused, "Go net/http parseTimeTests"},
            // pyfisch/httpdate src/lib.rs, test2 and test3 (epoch onwards).
            {"Sun, 02 Oct 2016 14:44:11 GMT", 1475419451, "httpdate test2"},
            {"Sun Nov 10 08*00:00 1000", refused, "httpdate test2"},
            {"Sunday, 06-Nov-94 08+49:37 GMT", refused, "httpdate test2"},
            {"Thu, 01 Jan 1970 00:00:00 GMT", 0, "httpdate test3"},
            {"Thu, 01 Jan 1970 01:00:00 GMT", 3600, "httpdate test3"},
            {"Fri, 02 Jan 1970 01:00:00 GMT", 90000, "httpdate test3"},
            {"Sun, 01 Feb 1970 01:00:00 GMT", 2682000, "httpdate test3"},
            {"Tue, 03 Mar 1970 01:00:00 GMT", 5274000, "httpdate test3"},
            {"Wed, 03 Mar 1971 01:00:05 GMT", 36810005, "httpdate test3"},
            {"Mon, 30 Aug 1971 01:00:05 GMT", 52362005, "httpdate test3"},
            {"Mon, 08 Nov 1971 01:00:05 GMT", 58410005, "httpdate test3"},
            {"Fri, 26 Mar 1999 01:00:05 GMT", 922410005, "httpdate test3"},
            // httpdate refuses years before 1970; 10 Nov 1000 was a Monday
            // (proleptic Gregorian), so its "Sun" is refused here, and the right
            // day name gives a valid date in the past.
            {"Sun Nov 10 08:00:00 1000", refused, "httpdate test2 (wrong day name)"},
            {"Mon Nov 10 08:00:00 1000", -30583152000, "httpdate test2, day name corrected"},
            // hyperium/headers src/util/http_date.rs tests: 7 Nov 1994 was a Monday,
            // not the "Sun" they write (its strptime never checked the day name).
            {"Sun, 07 Nov 1994 08:48:37 GMT", refused, "hyperium/headers test_imf_fixdate"},
            {"Sunday, 07-Nov-94 08:48:37 GMT", refused, "hyperium/headers test_rfc_850"},
            {"Sun Nov  7 08:48:37 1994", refused, "hyperium/headers test_asctime"},
            {"Mon, 07 Nov 1994 08:48:37 GMT", 784198117, "hyperium/headers, day name corrected"},
            {"this-is-no-date", refused, "hyperium/headers test_no_date"},
            // curl tests/libtest/lib517.c: curl_getdate is lenient; what is an
            // HTTP-date there is one here, the rest is refused.
            {"Wed, 25 Apr 2007 21:02:13 GMT", 1177534933, "curl lib517"},
            {"Wed, 31 Dec 2008 23:59:60 GMT", 1230768000, "curl lib517 (leap second)"},
            {"Sun, 06 Nov 2044 08:49:37 GMT", 2362034977, "curl lib517"},
            {"06 Nov 1994 08:49:37 GMT", refused, "curl lib517 (no day name)"},
            {"06-Nov-94 08:49:37 GMT", refused, "curl lib517"},
            {"Nov  6 08:49:37 1994", refused, "curl lib517"},
            {"06 Nov 1994 08:49:37", refused, "curl lib517"},
            {"1994 Nov 6 08:49:37", refused, "curl lib517"},
            {"GMT 08:49:37 06-Nov-94 Sunday", refused, "curl lib517"},
            {"1994 Nov 6", refused, "curl lib517"},
            {"Sun/Nov/6/94/GMT", refused, "curl lib517"},
            {"Sun, 06 Nov 1994 08:49:37 CET", refused, "curl lib517 (not GMT)"},
            {"Sun, 12 Sep 2004 15:05:58 -0700", refused, "curl lib517 (numeric zone)"},
            {"20040912 15:05:58 -0700", refused, "curl lib517"},
            {"Thu, 01-Jan-1970 00:59:59 GMT", refused, "curl lib517 (RFC 850 with a short day name)"},
            {"Sat, 15-Apr-17 21:01:22 GMT", refused, "curl lib517 (RFC 850 with a short day name)"},
            {"Saturday, 15-Apr-17 21:01:22 GMT", 1492290082, "curl lib517, as RFC 850 writes it"},
            {"Mon, 18-Apr-77 22:50:13 GMT", refused, "curl lib517 (short day name)"},
            {"Monday, 18-Apr-77 22:50:13 GMT", 230251813, "curl lib517, as RFC 850 writes it"},
            {"Thu, 19/Apr\\2007 16:00:00 GMT", refused, "curl lib517"},
            {"Fri, 1 Jan 2010 01:01:50 GMT", refused, "curl lib517 (one-digit day)"},
            {"Wednesday, 1-Jan-2003 00:00:00 GMT", refused, "curl lib517"},
            {"Wed,18-Apr-07 22:50:12 GMT", refused, "curl lib517 (no space after the comma)"},
            {"WillyWonka  , 18-Apr-07 22:50:12 GMT", refused, "curl lib517"},
            {"Sat, 15-Apr-17\"21:01:22\"GMT", refused, "curl lib517"},
            {"Sat, 15-Apr-17 21:01:22 GMT-0400", refused, "curl lib517"},
            {"Thu Apr 18 22:50:12 2007 GMT", refused, "curl lib517 (asctime has no zone)"},
            {"Thu, 012-Aug-2008 20:49:07 GMT", refused, "curl lib517"},
            {"Thu, 999999999999-Aug-2007 20:49:07 GMT", refused, "curl lib517"},
            {"Thu, 12-Aug-2007 20:61:99999999999 GMT", refused, "curl lib517"},
            {"IAintNoDateFool", refused, "curl lib517"},
            {"Thu Apr 18 22:50 2007 GMT", refused, "curl lib517"},
            {"20110623 12:34:56", refused, "curl lib517"},
            // curl writes these with the wrong day name (it ignores it): refused
            // here, and valid with the right one.
            {"Sun, 06 Nov 1900 08:49:37 GMT", refused, "curl lib517 (6 Nov 1900 was a Tuesday)"},
            {"Tue, 06 Nov 1900 08:49:37 GMT", -2182259423, "curl lib517, day name corrected"},
            {"Sun, 06 Nov 1968 08:49:37 GMT", refused, "curl lib517 (a Wednesday)"},
            {"Wed, 06 Nov 1968 08:49:37 GMT", -36342623, "curl lib517, day name corrected"},
            {"Sun, 06 Nov 3144 08:49:37 GMT", refused, "curl lib517 (a Monday)"},
            {"Mon, 06 Nov 3144 08:49:37 GMT", 37074617377, "curl lib517, day name corrected"},
            {"Thu, 01-Jan-1583 00:00:00 GMT", refused, "curl lib517"},
            {"Thu, 31-Dec-1969 23:59:58 GMT", refused, "curl lib517 (a Wednesday, short name)"},
            {"Wed, 31 Dec 1969 23:59:58 GMT", -2, "curl lib517, as IMF-fixdate"},
        },
        november_2026);
}

TEST_CASE("HTTP-date: the layout is exact, names are case-sensitive, the day name must be the date's") {
    check_dates(
        {
            {"Mon, 06 Nov 1994 08:49:37 GMT", refused, "wrong day name"},
            {"Monday, 06-Nov-94 08:49:37 GMT", refused, "wrong day name"},
            {"Mon Nov  6 08:49:37 1994", refused, "wrong day name"},
            {"Sunday, 06 Nov 1994 08:49:37 GMT", refused, "IMF-fixdate with a long day name"},
            {"Sun, 06-Nov-94 08:49:37 GMT", refused, "RFC 850 with a short day name"},
            {"Sunday, 06/Nov/94 08:49:37 GMT", refused, "RFC 850 separators must be '-'"},
            {"Sunday, 06xNovx94 08:49:37 GMT", refused, "RFC 850 separators must be '-'"},
            {"Sunday, 06-Nov 94 08:49:37 GMT", refused, "RFC 850 separators"},
            {"Sunday,  06-Nov-94 08:49:37 GMT", refused, "one space only"},
            {"Sunday, 06-Nov-1994 08:49:37 GMT", refused, "RFC 850 has a two-digit year"},
            {"Sunday, 06-Nov-94 08:49:37 UTC", refused, "GMT only"},
            {"Sun,  06 Nov 1994 08:49:37 GMT", refused, "one space only"},
            {"Sun, 06  Nov 1994 08:49:37 GMT", refused, "one space only"},
            {"Sun, 06 Nov 1994  08:49:37 GMT", refused, "one space only"},
            {"Sun,06 Nov 1994 08:49:37 GMT", refused, "a space after the comma"},
            {"Sun 06 Nov 1994 08:49:37 GMT", refused, "the comma"},
            {"Sun, 06 Nov 94 08:49:37 GMT", refused, "four-digit year"},
            {"Sun, 6 Nov 1994 08:49:37 GMT", refused, "two-digit day"},
            {"Sun, 06 Nov 1994 8:49:37 GMT", refused, "two-digit hour"},
            {"Sun, 06 Nov 1994 08:49 GMT", refused, "seconds"},
            {"Sun, 06 Nov 1994 08:49:37", refused, "GMT"},
            {"Sun, 06 Nov 1994 08:49:37 gmt", refused, "case-sensitive"},
            {"sun, 06 Nov 1994 08:49:37 GMT", refused, "case-sensitive"},
            {"Sun, 06 nov 1994 08:49:37 GMT", refused, "case-sensitive"},
            {"SUN, 06 NOV 1994 08:49:37 GMT", refused, "case-sensitive"},
            {"sunday, 06-Nov-94 08:49:37 GMT", refused, "case-sensitive"},
            {"Sun, 06 Nov 1994 08:49:37 GMT+1", refused, "trailing text"},
            {"Sun, 06 Nov 1994 08:49:37 GMTx", refused, "trailing text"},
            {"Sun, 06 Nov 1994 08.49.37 GMT", refused, "':' between the parts of the time"},
            {"Sun, +6 Nov 1994 08:49:37 GMT", refused, "digits only"},
            {"Sun, 06 Nov 199a 08:49:37 GMT", refused, "digits only"},
            {"Sun Nov 06 08:49:37 1994", rfc_example, "asctime: a two-digit day is allowed"},
            {"Sun Nov 6 08:49:37 1994", refused, "asctime: SP DIGIT or 2DIGIT"},
            {"Sun Nov  6 08:49:37 94", refused, "asctime: four-digit year"},
            {"Sun Nov  6 08:49:37 1994 GMT", refused, "asctime has no zone"},
            {"Sun  Nov  6 08:49:37 1994", refused, "asctime: one space after the day name"},
        },
        november_2026);
}

TEST_CASE("HTTP-date: impossible dates are refused, not rolled over into the next month") {
    // Each impossible date carries the day name of the date it would roll over
    // to, so only the calendar check can refuse it.
    check_dates(
        {
            {"Sat, 30 Feb 2019 00:00:00 GMT", refused, "30 Feb 2019 (2 Mar was a Saturday)"},
            {"Sat, 31 Apr 2021 00:00:00 GMT", refused, "31 Apr 2021 (1 May was a Saturday)"},
            {"Mon, 29 Feb 2100 00:00:00 GMT", refused, "2100 is not a leap year (1 Mar 2100 is a Monday)"},
            {"Wed, 29 Feb 2023 00:00:00 GMT", refused, "2023 is not a leap year"},
            {"Thu, 31 Jun 2021 00:00:00 GMT", refused, "31 Jun"},
            {"Fri, 31 Sep 2021 00:00:00 GMT", refused, "31 Sep"},
            {"Wed, 31 Nov 2021 00:00:00 GMT", refused, "31 Nov"},
            {"Mon, 32 Jan 2021 00:00:00 GMT", refused, "32 Jan"},
            {"Thu, 00 Jan 2021 00:00:00 GMT", refused, "day 0"},
            {"Wednesday, 29-Feb-23 00:00:00 GMT", refused, "RFC 850, not a leap year"},
            {"Wed Feb 29 00:00:00 2023", refused, "asctime, not a leap year"},
            {"Tue, 29 Feb 2000 12:00:00 GMT", 951825600, "2000 is a leap year"},
            {"Thu, 29 Feb 2024 12:00:00 GMT", 1709208000, "2024 is a leap year"},
            {"Sun, 06 Nov 1994 24:00:00 GMT", refused, "hour 24"},
            {"Sun, 06 Nov 1994 23:60:00 GMT", refused, "minute 60"},
            {"Sun, 06 Nov 1994 08:49:61 GMT", refused, "second 61"},
            {"Sun, 06 Nov 1994 08:49:99 GMT", refused, "second 99"},
        },
        november_2026);
}

TEST_CASE("HTTP-date: second 60 only as a leap second, 23:59:60 on the last day of a month") {
    check_dates(
        {
            {"Tue, 30 Jun 2015 23:59:60 GMT", 1435708800, "the leap second of June 2015"},
            {"Sat, 31 Dec 2016 23:59:60 GMT", 1483228800, "the leap second of December 2016"},
            {"Wed Dec 31 23:59:60 2008", 1230768000, "asctime"},
            {"Fri, 30 Jun 1972 23:59:60 GMT", 78796800, "the first leap second (1972)"},
            {"Fri, 30 Apr 2021 23:59:60 GMT", 1619827200, "end of any month (ITU-R TF.460-6)"},
            {"Sun, 06 Nov 1994 08:49:60 GMT", refused, "not 23:59"},
            {"Tue, 30 Dec 2008 23:59:60 GMT", refused, "not the last day of the month"},
            {"Wed, 31 Dec 2008 23:58:60 GMT", refused, "not 23:59"},
            {"Wed, 31 Dec 2008 22:59:60 GMT", refused, "not 23:59"},
        },
        november_2026);
}

TEST_CASE("HTTP-date: a two-digit year is at most 50 years in the future (RFC 9110 5.6.7)") {
    // From November 2026, "70" is 2070, not 1970 (a fixed pivot at 70 said 1970).
    check_dates({{"Wednesday, 01-Jan-70 00:00:00 GMT", 3155760000, "2070"},
                 {"Thursday, 01-Jan-70 00:00:00 GMT", refused, "1 Jan 2070 is a Wednesday"},
                 {"Sunday, 06-Nov-94 08:49:37 GMT", rfc_example, "2094 is more than 50 years away"},
                 {"Saturday, 01-Jan-50 00:00:00 GMT", 2524608000, "2050"},
                 // Exactly 50 years from now is not more than 50 years: 2076.
                 {"Sunday, 22-Nov-76 10:00:00 GMT", 3373264800, "2076, exactly 50 years"},
                 // One second more is: 1976 (a Monday, which the day name must then be).
                 {"Sunday, 22-Nov-76 10:00:01 GMT", refused, "1976-11-22 was a Monday"},
                 {"Monday, 22-Nov-76 10:00:01 GMT", 217504801, "1976"}},
                november_2026);
    // From the RFC's own example time, "70" is 1970.
    check_dates({{"Thursday, 01-Jan-70 00:00:00 GMT", 0, "1970"},
                 {"Sunday, 06-Nov-94 08:49:37 GMT", rfc_example, "1994"},
                 {"Sunday, 01-Jan-50 00:00:00 GMT", -631152000, "1950: 2050 is 55 years away"}},
                rfc_example * 1000);
    // Late in a century the window reaches into the next one.
    check_dates({{"Saturday, 01-Jan-01 00:00:00 GMT", 4133980800, "2101"},
                 {"Monday, 01-Jan-01 00:00:00 GMT", refused, "2001 is 98 years back"}},
                4083955200000 /* 2099-06-01 */);
}

TEST_CASE("Retry-After: delay-seconds") {
    const unix_ms t = november_2026;
    using ms = std::chrono::milliseconds;
    struct vector {
        const char* text;
        std::optional<std::int64_t> seconds;
        const char* source;
    };
    for (const auto& v : std::initializer_list<vector>{
             {"120", 120, "RFC 9110 10.2.3"},
             {"0", 0, "urllib3 test_parse_retry_after"},
             {"1000", 1000, "urllib3 test_parse_retry_after"},
             {"\t42 ", 42, "urllib3 test_parse_retry_after (OWS)"},
             {"-1", refused, "urllib3 test_parse_retry_after_invalid"},
             {"+1", refused, "urllib3 test_parse_retry_after_invalid"},
             {"1.0", refused, "urllib3 test_parse_retry_after_invalid"},
             {"\xc2\xb2", refused, "urllib3 test_parse_retry_after_invalid (superscript two)"},
             {"3600", 3600, "urllib3 test_respect_retry_after_header_sleep"},
             {"1234", 1234, "hyperium/headers retry_after delay_decode"},
             // Leading zeros add nothing: 120 s, not the length limit's saturation.
             {"0000000000120", 120, "leading zeros"},
             {"00", 0, "leading zeros"},
             {"0000000000000000000000000000", 0, "leading zeros"},
             {"000000000999999999", 999999999, "leading zeros"},
             {"0001000000000", 999999999, "saturates after the zeros"},
             {"99999999999999999999999", 999999999, "saturates (RFC 9111 1.2.2)"},
             {"", refused, "empty"},
             {" \t ", refused, "blank"},
             {"1 2", refused, "two numbers"},
             {"12s", refused, "a unit"},
             {"0x10", refused, "hex"},
             {"1e3", refused, "exponent"},
             {"\xd9\xa1\xd9\xa2", refused, "Arabic-Indic digits"},
             {"120, 120", refused, "a list"},
         }) {
        const std::string text = v.text, source = v.source;
        CAPTURE(text);
        CAPTURE(source);
        const auto got = parse_retry_after(v.text, t);
        if (v.seconds) {
            REQUIRE(got.has_value());
            CHECK(*got == ms(*v.seconds * 1000));
        } else {
            CHECK_FALSE(got.has_value());
        }
    }
}

TEST_CASE("Retry-After: an HTTP-date is a wait from now; one in the past, however far, means now") {
    using ms = std::chrono::milliseconds;
    // urllib3 test_respect_retry_after_header_sleep: at 2019-06-03T11:00:00Z.
    const unix_ms urllib3_now = 1559559600000;
    CHECK(parse_retry_after("Mon, 03 Jun 2019 11:30:12 GMT", urllib3_now) == ms(1812000));
    CHECK(parse_retry_after("Monday, 03-Jun-19 11:30:12 GMT", urllib3_now) == ms(1812000));
    CHECK(parse_retry_after("Mon Jun  3 11:30:12 2019", urllib3_now) == ms(1812000));
    // urllib3 reads these through email.utils; they are not HTTP-dates (one-digit day, UTC).
    CHECK_FALSE(parse_retry_after("Mon, 3 Jun 2019 12:00:00 UTC", urllib3_now));
    CHECK_FALSE(parse_retry_after("Mon, 3 Jun 2019 11:00:00 UTC", urllib3_now));
    // RFC 9110 10.2.3's example, a minute before.
    CHECK(parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT", 946684739000) == ms(60000));
    CHECK(parse_retry_after("  Fri, 31 Dec 1999 23:59:59 GMT\t", 946684739000) == ms(60000));
    // In the past: zero, for 1994 as for 1969 and the year 1000 (before, dates
    // before 1970 were refused, and the job backed off as if no Retry-After came).
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", november_2026) == ms(0));
    CHECK(parse_retry_after("Wed, 31 Dec 1969 23:59:59 GMT", november_2026) == ms(0));
    CHECK(parse_retry_after("Wed, 06 Nov 1968 08:49:37 GMT", november_2026) == ms(0));
    CHECK(parse_retry_after("Mon Nov 10 08:00:00 1000", november_2026) == ms(0));
    // Not a date at all: nullopt, never zero.
    CHECK_FALSE(parse_retry_after("Sat, 30 Feb 2019 00:00:00 GMT", november_2026));
    CHECK_FALSE(parse_retry_after("Mon, 22 Nov 2026 10:00:30 GMT", november_2026));
    CHECK(parse_retry_after("Sun, 22 Nov 2026 10:00:30 GMT", november_2026) == ms(30000));
    // The two-digit year of the RFC 850 form is read from the answer's time.
    CHECK(parse_retry_after("Wednesday, 01-Jan-70 00:00:00 GMT", november_2026) == ms(3155760000000 - november_2026));
}

TEST_CASE("RateLimit headers saying none remain give the time to the window's reset") {
    const unix_ms now = 1'700'000'000'000;
    auto hold = [&](std::vector<http_header> headers) {
        return rate_limit_exhausted_for(inbound_response{200, std::move(headers), ""}, now);
    };
    using ms = std::chrono::milliseconds;
    // IETF httpapi draft: one structured field, policies separated by commas; the longest exhausted wins.
    CHECK(hold({{"RateLimit", R"("default";r=0;t=30)"}}) == ms(30000));
    CHECK(hold({{"RateLimit", R"("burst";r=5;t=1, "day";r=0;t=3600)"}}) == ms(3600000));
    CHECK_FALSE(hold({{"RateLimit", R"("default";r=3;t=30)"}}));
    CHECK_FALSE(hold({{"RateLimit", R"("default";r=0)"}}));
    // Earlier drafts: separate fields, delta-seconds.
    CHECK(hold({{"ratelimit-remaining", "0"}, {"RateLimit-Reset", "2"}}) == ms(2000));
    CHECK_FALSE(hold({{"RateLimit-Remaining", "1"}, {"RateLimit-Reset", "2"}}));
    CHECK_FALSE(hold({{"RateLimit-Remaining", "0"}}));
    // Leading zeros do not count toward the length limit.
    CHECK(hold({{"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "0000000000000000030"}}) == ms(30000));
    // X- forms: reset as seconds, as a unix time, or Reset-After with fractions.
    CHECK(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "7"}}) == ms(7000));
    CHECK(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "1700000012"}}) == ms(12000));
    CHECK(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "1699999990"}}) == ms(0));  // past
    CHECK(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset-After", "1.25"}}) == ms(1250));
    // Invalid values are ignored, never a crash.
    for (const char* bad : {"", "-1", "abc", "1e3", "1.2.3", "99999999999999999999", " ", "0x10"}) {
        CHECK_FALSE(hold({{"RateLimit-Remaining", "0"}, {"RateLimit-Reset", bad}}));
        CHECK_FALSE(hold({{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", bad}}));
    }
    CHECK_FALSE(hold({{"X-RateLimit-Remaining", "none"}, {"X-RateLimit-Reset", "5"}}));
    CHECK_FALSE(hold({}));
}
