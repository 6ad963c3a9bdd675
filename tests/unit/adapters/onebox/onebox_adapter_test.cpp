#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "onebox/onebox_adapter.hpp"
#include "outq/adapter.hpp"
#include "outq/encoding.hpp"
#include "register_all.hpp"

using namespace outq;
namespace onebox = outq::adapters::onebox;

namespace {

// Every answer is classified as if it came in at this time: adapters take the
// time as a value and never read the clock.
constexpr unix_ms test_now = 1795341600000;  // 2026-11-22T10:00:00Z

struct onebox_fixture {
    adapter_registry registry;
    worker_config config;
    const adapter* ob = nullptr;
    std::vector<job> jobs;
    onebox_fixture() {
        adapters::register_builtin_adapters(registry);
        config = parse_config(R"({"providers": {"onebox": {"accounts": {
            "static": {"host": "https://ocdev.ciptadrasoft.net/", "token": "static-token"},
            "oauth": {"host": "https://ocdev.ciptadrasoft.net", "token_url": "https://ocdev.ciptadrasoft.net/api/token",
                      "client_id": "outq", "client_secret": "p@ss word",
                      "quota_reopens_at": "18:00", "quota_time_zone": "+07:00"}}}}})",
                              registry);
        ob = registry.find("onebox");
        jobs.reserve(64);
    }
    const account_settings& account(const char* name = "static") const {
        return *config.providers.at("onebox").accounts.at(name);
    }
    const job& add(const std::string& message) {
        auto r = parse_job(R"({"id":"job-1","provider":"onebox","account":"static","message":)" + message + "}", "1-0");
        REQUIRE(r.ok());
        jobs.push_back(std::move(*r.value));
        return jobs.back();
    }
    std::string error(const std::string& message) {
        auto e = ob->validate(add(message));
        return e ? *e : std::string();
    }
};

std::string header(const outbound_request& r, std::string_view name) {
    for (auto& h : r.headers)
        if (h.name == name) return h.value;
    return "<absent>";
}

// The document's body example (email). Its attachment Content is the placeholder
// "file content encoded as base64" there; real base64 here.
const char* email_example = R"({
	"ConnectionId": 572,
	"Subject": "Send via api - test 3",
	"From": "test1@onebox.co.id",
	"To": "unggul.wijayadi@gmail.com",
	"Cc": null,
	"Bcc": null,
	"ConversationId": null,
	"PreviousId": null,
	"PrevRemoteId": null,
	"Attachments": [
		{
			"Description": "adesc1",
			"File": {
				"Date": "2020-04-01 00:00:00",
				"Name": "file1.csv",
				"Content": "aWQsbmFtZQoxLE9uZWJveAo="
			}
		}
	],
	"Users": [{
			"IdentityId": "test1@onebox.co.id",
			"Name": "Onebox",
			"RoleId": "MSR1"
	}, {
			"IdentityId": "unggul.wijayadi@gmail.com",
			"Name": "Unggul W",
			"RoleId": "MSR2"
	}],
	"Content": {
		"Body": "Hello <html></html>",
		"BodyText": "Hello",
		"ContentType": "text/html",
		"Encoding": "UTF-8"
	}
})";

// The document's per-channel examples, as written there.
const char* channel_examples[] = {
    R"({"ConnectionId": 583, "Subject": "Send via api to FB POST - test 1", "MethodId": "POST",
        "From": "469218373611012", "To": "469218373611012", "Attachments": [],
        "Content": {"Body": "Send via api to FB POST - test 1", "BodyText": "Send via api to FB POST - test 1",
                    "ContentType": "text/html", "Encoding": "UTF-8"}})",
    R"({"ConnectionId": 583, "Subject": "Send via api to FB Comment - test 1", "MethodId": "COMMENT",
        "From": "469218373611012", "To": "389961471775568", "PreviousId": 63964, "Attachments": [],
        "Content": {"Body": "Send via api to FB Comment - test 1", "BodyText": "Send via api to FB Comment - test 1",
                    "ContentType": "text/plain", "Encoding": "UTF-8"}})",
    R"({"ConnectionId": 583, "Subject": "Send via api to FB DIRECT - test 1", "MethodId": "DIRECT",
        "From": "469218373611012", "To": "389961471775568", "ConversationId": 222536, "Attachments": [],
        "Content": {"Body": "Send via api to FB DIRECT - test 1", "BodyText": "Send via api to FB DIRECT - test 1",
                    "ContentType": "text/plain", "Encoding": "UTF-8"}})",
    R"({"ConnectionId": 584, "Subject": "Send via api to Instagram Comment - test 1", "MethodId": "COMMENT",
        "From": "demo.onebox", "To": "azmnurami", "PreviousId": 75406, "Attachments": [],
        "Content": {"Body": "Send via api to Instagram - test 1", "BodyText": "Send via api to Instagram - test 1",
                    "ContentType": "text/plain", "Encoding": "UTF-8"}})",
    R"({"ConnectionId": 576, "Subject": "Send twitter tweet", "MethodId": "POST", "From": "trial_corp",
        "To": "trial_corp", "Attachments": [],
        "Content": {"Body": "Send twitter tweet", "BodyText": "Send twitter tweet", "ContentType": "text/html",
                    "Encoding": "UTF-8"}})",
    R"({"ConnectionId": 576, "Subject": "Send Twitter mention @trial_corp - test 1", "MethodId": "MENTION",
        "From": "738567483435556864", "To": "927743274869125122", "Attachments": [],
        "Content": {"Body": "Send Twitter mention @trial_corp- test 1",
                    "BodyText": "Send Twitter mention @trial_corp- test 1",
                    "ContentType": "text/html", "Encoding": "UTF-8"}})",
    R"({"ConnectionId": 576, "Subject": "Selamat beraktivitas", "MethodId": "MENTION", "From": "738567483435556864",
        "To": "712571190812868608", "PreviousId": "76428", "Attachments": [],
        "Content": {"Body": "@agung4ldiana Selamat beraktivitas", "BodyText": "@agung4ldiana Selamat beraktivitas",
                    "ContentType": "text/html", "Encoding": "UTF-8"}})",
    R"({"ConnectionId": 576, "Subject": "Reply to Twitter DM - test 1", "MethodId": "DIRECT",
        "From": "738567483435556864", "To": "927743274869125122", "PreviousId": "75495", "Attachments": [],
        "Content": {"Body": "Reply to Twitter DM- test 1", "BodyText": "Reply to Twitter DM - test 1",
                    "ContentType": "text/html", "Encoding": "UTF-8"}})",
};

// A valid DIRECT message with `patch` spliced in before the Content.
std::string direct(const std::string& patch) {
    return R"({"ConnectionId": 583, "Subject": "s", "MethodId": "DIRECT", "From": "a", "To": "b", )" + patch +
           R"("Content": {"Body": "hi", "BodyText": "hi", "ContentType": "text/plain", "Encoding": "UTF-8"}})";
}

std::string email(const std::string& patch) {
    return R"({"ConnectionId": 572, "Subject": "s", "From": "a@x.id", "To": "b@x.id", )" + patch +
           R"("Content": {"Body": "hi", "BodyText": "hi", "ContentType": "text/plain", "Encoding": "UTF-8"}})";
}

const char* one_user = R"("Users": [{"IdentityId": "a@x.id", "Name": "A", "RoleId": "MSR1"}], )";

}  // namespace

TEST_CASE("onebox: the document's example is sent as written, with the Bearer token") {
    onebox_fixture f;
    const job& j = f.add(email_example);
    REQUIRE(f.error(email_example).empty());
    auto req = f.ob->build_request(j, f.account(), attempt_context{1, 0, {}});
    CHECK(req.method == "POST");
    CHECK(req.url == "https://ocdev.ciptadrasoft.net/api/message");
    CHECK(header(req, "Authorization") == "Bearer static-token");
    CHECK(header(req, "Content-Type") == "application/json");
    CHECK(req.body == j.message_json);
    rapidjson::Document got, want;
    got.Parse(req.body.c_str());
    want.Parse(email_example);
    CHECK(got == want);
    // A fetched token goes in for OAuth accounts.
    auto fetched = f.ob->build_request(j, f.account("oauth"), attempt_context{1, 0, "fetched-1"});
    CHECK(header(fetched, "Authorization") == "Bearer fetched-1");
}

TEST_CASE("onebox: every per-channel example of the document is valid") {
    onebox_fixture f;
    for (const char* example : channel_examples) {
        INFO(example);
        CHECK(f.error(example).empty());
    }
}

TEST_CASE("onebox: channel rules and fields are validated, naming the field") {
    onebox_fixture f;
    // DIRECT needs the conversation (or, replying to a received direct message, PreviousId).
    CHECK(f.error(direct("")) ==
          "job.message.ConversationId: required for DIRECT messages (or PreviousId, replying to a received one)");
    CHECK(f.error(direct(R"("ConversationId": 222536, )")).empty());
    CHECK(f.error(direct(R"("ConversationId": "x1", )")) == "job.message.ConversationId: must be a number");
    // COMMENT replies to a message.
    std::string comment = direct("");
    comment.replace(comment.find("DIRECT"), 6, "COMMENT");
    CHECK(f.error(comment) == "job.message.PreviousId: required for COMMENT (the id of the message replied to)");
    // A MENTION reply names the customer.
    std::string mention = direct(R"("PreviousId": 76428, )");
    mention.replace(mention.find("DIRECT"), 6, "MENTION");
    CHECK(f.error(mention) == "job.message.Content.Body: a MENTION reply must include the customer's @username");
    // Email (MethodId null): Users with every attribute.
    CHECK(f.error(email("")) ==
          "job.message.Users: required for email (MethodId null): IdentityId, Name and RoleId of each contact");
    CHECK(f.error(email(one_user)).empty());
    CHECK(f.error(email(R"("MethodId": null, "Users": [{"IdentityId": "a@x.id", "RoleId": "MSR1"}], )")) ==
          "job.message.Users[0].Name: missing");
    CHECK(f.error(email(R"("Users": [{"IdentityId": "a@x.id", "Name": "A", "RoleId": "MSR5"}], )")) ==
          "job.message.Users[0].RoleId: must be MSR1 (sender), MSR2 (recipient), MSR3 (cc) or MSR4 (bcc)");
    CHECK(f.error(email(std::string(one_user) + R"("Cc": "c@x.id", "Bcc": null, )")).empty());
    CHECK(f.error(direct(R"("ConversationId": 1, "Cc": "c@x.id", )")) ==
          "job.message.Cc: used only for email (MethodId null)");
    // Attachments: description and file attributes become mandatory.
    const std::string file = R"("Date": "2020-04-01 00:00:00", "Name": "f.csv")";
    auto attach = [&](const std::string& attachment) {
        return f.error(email(std::string(one_user) + R"("Attachments": [)" + attachment + "], "));
    };
    CHECK(attach(R"({"Description": "d", "File": {)" + file + R"(, "Path": "https://cdn.example/f.csv"}})").empty());
    CHECK(attach(R"({"File": {)" + file + R"(, "Content": "aGk="}})") ==
          "job.message.Attachments[0].Description: missing");
    CHECK(attach(R"({"Description": "d"})") == "job.message.Attachments[0].File: missing");
    CHECK(attach(R"({"Description": "d", "File": {"Date": "2020-04-01 00:00:00", "Content": "aGk="}})") ==
          "job.message.Attachments[0].File.Name: missing");
    CHECK(attach(R"({"Description": "d", "File": {)" + file + "}}") ==
          "job.message.Attachments[0].File: needs Path (a public download URL) or Content (base64)");
    CHECK(attach(R"({"Description": "d", "File": {)" + file + R"(, "Content": "not base64!"}})") ==
          "job.message.Attachments[0].File.Content: must be base64");
    CHECK(attach(R"({"Description": "d", "File": {)" + file + R"(, "Path": "ftp://x/f"}})") ==
          "job.message.Attachments[0].File.Path: must be an http:// or https:// URL");
    // Documented fields only, with their exact names and values.
    CHECK(f.error(direct(R"("conversationId": 1, )")) ==
          "job.message.conversationId: unknown field (Onebox field names are case-sensitive)");
    std::string lower = direct(R"("ConversationId": 1, )");
    lower.replace(lower.find("DIRECT"), 6, "direct");
    CHECK(f.error(lower) ==
          "job.message.MethodId: must be null (email), \"DIRECT\", \"POST\", \"MENTION\" or \"COMMENT\"");
    CHECK(f.error(R"({"Subject": "s"})") == "job.message.ConnectionId: missing");
    CHECK(f.error(R"({"ConnectionId": 1, "MethodId": "POST", "From": "a", "To": "b"})") ==
          "job.message.Subject: missing");
    std::string markdown = direct(R"("ConversationId": 1, )");
    markdown.replace(markdown.find("text/plain"), 10, "text/markdown");
    CHECK(f.error(markdown) == "job.message.Content.ContentType: must be \"text/html\" or \"text/plain\"");
    CHECK(f.error(R"({"ConnectionId": 1, "MethodId": "POST", "Subject": "s", "From": "a", "To": "b"})") ==
          "job.message.Content: missing");
}

TEST_CASE("onebox: ConnectionId and ConversationId are numbers, as the document types them") {
    onebox_fixture f;
    // "ConnectionId | number | Y": a string is not a number.
    std::string quoted = direct(R"("ConversationId": 222536, )");
    quoted.replace(quoted.find("583"), 3, "\"583\"");
    CHECK(f.error(quoted) ==
          "job.message.ConnectionId: must be a number (the id of a preregistered connection), not a string");
    CHECK(f.error(R"({"ConnectionId": 0})").find("job.message.ConnectionId: must be a number") == 0);
    CHECK(f.error(R"({"ConnectionId": 5.5})").find("job.message.ConnectionId: must be a number") == 0);
    CHECK(f.error(R"({"ConnectionId": -1})").find("job.message.ConnectionId: must be a number") == 0);
    CHECK(f.error(direct(R"("ConversationId": "222536", )")) == "job.message.ConversationId: must be a number");
    // PreviousId stays a number or a numeric string: the document's own reply examples quote it.
    CHECK(f.error(direct(R"("PreviousId": "75495", )")).empty());
    CHECK(f.error(direct(R"("PreviousId": 75495, )")).empty());
}

TEST_CASE("onebox: an email's From, To, Cc, Bcc and Users' identities are email addresses") {
    onebox_fixture f;
    auto email_with = [&](const char* from, const char* to, const std::string& more = "") {
        return f.error(
            R"({"ConnectionId": 572, "Subject": "s", "From": ")" + std::string(from) + R"(", "To": ")" + to + R"(", )" +
            one_user + more +
            R"("Content": {"Body": "hi", "BodyText": "hi", "ContentType": "text/plain", "Encoding": "UTF-8"}})");
    };
    CHECK(email_with("test1@onebox.co.id", "unggul.wijayadi@gmail.com").empty());
    CHECK(email_with("Onebox", "unggul.wijayadi@gmail.com") ==
          "job.message.From: must be an email address for email (MethodId null), such as test1@onebox.co.id");
    CHECK(email_with("test1@onebox.co.id", "469218373611012") ==
          "job.message.To: must be an email address for email (MethodId null), such as test1@onebox.co.id");
    CHECK(email_with("test1@onebox.co.id", "Unggul <unggul.wijayadi@gmail.com>").find("job.message.To:") == 0);
    CHECK(email_with("a@x.id", "b@x.id", R"("Cc": "c@x.id, d@y.id;e@z.id", "Bcc": "", )").empty());
    CHECK(email_with("a@x.id", "b@x.id", R"("Cc": "c@x.id, someone", )") ==
          "job.message.Cc: must be email addresses, separated by commas");
    CHECK(email_with("a@x.id", "b@x.id", R"("Bcc": "c@x.id,", )") ==
          "job.message.Bcc: must be email addresses, separated by commas");
    CHECK(f.error(email(R"("Users": [{"IdentityId": "Onebox", "Name": "A", "RoleId": "MSR1"}], )")) ==
          "job.message.Users[0].IdentityId: must be an email address for email (MethodId null)");
    // Other channels use ids and screen names: no address rule there.
    CHECK(f.error(direct(R"("ConversationId": 1, )")).empty());
}

TEST_CASE("onebox: what an email address is") {
    for (const char* ok :
         {"test1@onebox.co.id", "unggul.wijayadi@gmail.com", "a+tag@x.id", "o'brien@example.ie",
          "first.m.last@sub.example.com", "x@xn--bcher-kva.example", "_@x.id", "!#$%&'*+-/=?^_`{|}~@x.id",
          "\"john doe\"@example.com", "\"a\\\"b\"@example.com", "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]",
          "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",  // RFC 6532
          "a@b-c.d1"}) {
        CAPTURE(std::string(ok));
        CHECK(onebox::is_email_address(ok));
    }
    const std::string local64(64, 'a'), local65(65, 'a');
    CHECK(onebox::is_email_address(local64 + "@x.id"));
    CHECK_FALSE(onebox::is_email_address(local65 + "@x.id"));
    CHECK_FALSE(onebox::is_email_address("a@" + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                                         std::string(63, 'd') + "." + std::string(63, 'e') + ".id"));
    CHECK_FALSE(onebox::is_email_address("a@" + std::string(64, 'b') + ".id"));  // label over 63
    for (const char* bad : {"",
                            "plain",
                            "@x.id",
                            "a@",
                            "a@b",
                            "a@localhost",
                            "a..b@x.id",
                            ".a@x.id",
                            "a.@x.id",
                            "a b@x.id",
                            "a@-x.id",
                            "a@x-.id",
                            "a@x..id",
                            "a@x.id.",
                            "a@.x.id",
                            "a@1.2.3.4",
                            "Name <a@x.id>",
                            "<a@x.id>",
                            "a@x.id,b@x.id",
                            "a@x_y.id",
                            "a\"b@x.id",
                            "\"a@x.id",
                            "\"a\\\"@x.id",
                            "a@[1.2.3.4",
                            "a@[]",
                            "a(comment)@x.id",
                            "a@x.id ",
                            " a@x.id",
                            "a@@x.id",
                            "a\x01@x.id"}) {
        CAPTURE(std::string(bad));
        CHECK_FALSE(onebox::is_email_address(bad));
    }
}

TEST_CASE("onebox: success and error envelopes") {
    onebox_fixture f;
    auto classify = [&](int status, std::string body, std::vector<http_header> headers = {}) {
        return f.ob->classify(inbound_response{status, std::move(headers), std::move(body)}, f.account(), test_now);
    };
    auto ok = classify(200, R"({"limit":"1","offset":0,"count":2,"total":707,
                                "data":[{"Id":"75702","SiteId":"169","ConnectionId":"588","MethodId":"DIRECT"}]})");
    CHECK(ok.cls == outcome_class::success);
    CHECK(ok.provider_message_id == "75702");
    CHECK(classify(200, R"({"data":[{"Id":75703}]})").provider_message_id == "75703");

    auto bad = classify(400, R"({"_meta":{"status":"ERROR","count":1},
        "records":{"errorCode":"400","userMessage":"To is invalid","devMessage":null}})");
    CHECK(bad.cls == outcome_class::permanent);
    CHECK(bad.error == "Onebox 400: To is invalid");
    // A 200 carrying the error envelope is its errorCode.
    auto hidden = classify(200, R"({"_meta":{"status":"ERROR","count":1},
        "records":{"errorCode":422,"userMessage":"Connection not found"}})");
    CHECK(hidden.cls == outcome_class::permanent);
    CHECK(hidden.error == "Onebox 422: Connection not found");
    auto limited = classify(429, "", {{"Retry-After", "9"}});
    CHECK(limited.cls == outcome_class::rate_limited);
    CHECK(limited.retry_after == std::chrono::milliseconds(9000));
    CHECK(classify(500, "").cls == outcome_class::retryable);
    CHECK(classify(503, "<html>down</html>").cls == outcome_class::retryable);
}

TEST_CASE("onebox: 401 Expired token refreshes the token; a second one is auth") {
    onebox_fixture f;
    const std::string expired = R"({"_meta":{"status":"ERROR","count":1},
        "records":{"errorCode":401,"userMessage":"Expired token","devMessage":null,"more":null,
                   "applicationCode":null}})";
    inbound_response r{401, {}, expired};
    CHECK(f.ob->token_rejected(r, f.account("oauth")));
    auto o = f.ob->classify(r, f.account("oauth"), test_now);
    CHECK(o.cls == outcome_class::auth);
    CHECK(o.error == "Onebox 401: Expired token");
    CHECK(o.pause_account_for);
    CHECK_FALSE(f.ob->token_rejected(inbound_response{401, {}, R"({"records":{"userMessage":"Invalid token"}})"},
                                     f.account("oauth")));
}

TEST_CASE("onebox: the quota 401 is rate limiting until the window reopens, not auth") {
    onebox_fixture f;
    // As the document shows it, with its mangled quote: not JSON, read as text.
    const std::string mangled =
        "{\"_meta\": {\"status\": \"ERROR\", \"count\": 1}, \"records\": {\"errorCode\": 401, "
        "\xC3\xA2\xE2\x82\xAC\xC5\x93userMessage\": \"time limit reached please try again "
        "tomorrow at 18:00 - 06:00\", \"devMessage\": \"\", \"more\": null}}";
    const std::string clean = R"({"_meta":{"status":"ERROR","count":1},"records":{"errorCode":401,
        "userMessage":"time limit reached please try again tomorrow at 18:00 - 06:00","devMessage":""}})";
    for (const auto& body : {mangled, clean}) {
        for (const char* account : {"static", "oauth"}) {
            inbound_response r{401, {}, body};
            CHECK_FALSE(f.ob->token_rejected(r, f.account(account)));
            auto o = f.ob->classify(r, f.account(account), test_now);
            CHECK(o.cls == outcome_class::rate_limited);
            REQUIRE(o.retry_after);
            REQUIRE(o.pause_account_for);
            CHECK(*o.retry_after == *o.pause_account_for);
            CHECK(o.retry_after->count() >= 60000);
            CHECK(o.retry_after->count() <= 86400000);
            // Both accounts reopen at 18:00: "static" read it from the answer (UTC), "oauth" is configured
            // (+07:00). From 10:00 UTC that is 8 hours, and 1 hour (18:00 WIB is 11:00 UTC).
            CHECK(*o.retry_after == std::chrono::hours(std::string(account) == "oauth" ? 1 : 8));
            CHECK(o.pause_reason.find("18:00") != std::string::npos);
        }
    }
}

TEST_CASE("onebox: when the quota window reopens") {
    const unix_ms ten_utc = *parse_rfc3339("2026-11-22T10:00:00Z");
    using std::chrono::milliseconds;
    CHECK(onebox::quota_reopen_delay(ten_utc, 18 * 60, 420) == milliseconds(3600000));    // 17:00 WIB → 18:00
    CHECK(onebox::quota_reopen_delay(ten_utc, 18 * 60, 0) == milliseconds(8 * 3600000));  // 10:00 UTC → 18:00
    CHECK(onebox::quota_reopen_delay(ten_utc, 6 * 60, -300) == milliseconds(3600000));    // 05:00 → 06:00
    // Reopened two minutes ago by our clock: the provider may lag, look again in a minute.
    CHECK(onebox::quota_reopen_delay(*parse_rfc3339("2026-11-22T11:02:00Z"), 18 * 60, 420) == milliseconds(60000));
    // Reopened long ago: tomorrow.
    CHECK(onebox::quota_reopen_delay(*parse_rfc3339("2026-11-22T11:30:00Z"), 18 * 60, 420) ==
          milliseconds(24 * 3600000 - 30 * 60000));
    CHECK(onebox::parse_utc_offset("+07:00") == 420);
    CHECK(onebox::parse_utc_offset("-03:30") == -210);
    CHECK(onebox::parse_utc_offset("+0530") == 330);
    CHECK(onebox::parse_utc_offset("Z") == 0);
    CHECK_FALSE(onebox::parse_utc_offset("Asia/Jakarta"));
    CHECK(onebox::parse_clock_time("18:00") == 1080);
    CHECK(onebox::parse_clock_time("6:30") == 390);
    CHECK_FALSE(onebox::parse_clock_time("24:00"));
}

TEST_CASE("onebox: OAuth client credentials token, or none for a static token") {
    onebox_fixture f;
    CHECK_FALSE(f.ob->token_request(f.account("static")));
    auto req = f.ob->token_request(f.account("oauth"));
    REQUIRE(req);
    CHECK(req->url == "https://ocdev.ciptadrasoft.net/api/token");
    CHECK(header(*req, "Content-Type") == "application/x-www-form-urlencoded");
    // HTTP Basic by default (RFC 6749 2.3.1), id and secret form-encoded first.
    CHECK(req->body == "grant_type=client_credentials");
    CHECK(header(*req, "Authorization") == "Basic " + base64_encode("outq:p%40ss+word"));
    auto ok = f.ob->parse_token_response(inbound_response{200, {}, R"({"access_token":"t-1","expires_in":"600"})"},
                                         f.account("oauth"), test_now);
    REQUIRE(ok.token);
    CHECK(ok.token->value == "t-1");
    CHECK(ok.token->expires_in == std::chrono::milliseconds(600000));
    auto refused = f.ob->parse_token_response(inbound_response{401, {}, R"({"error":"invalid_client"})"},
                                              f.account("oauth"), test_now);
    CHECK(refused.failure.cls == outcome_class::auth);
    CHECK(refused.failure.error == "Onebox token endpoint HTTP 401: invalid_client");
    CHECK(f.ob->default_retry().max_retry_after >= std::chrono::milliseconds(24 * 3600000));
}

TEST_CASE("onebox: the token API's field names are configurable; OAuth 2.0 client credentials is the default") {
    adapter_registry registry;
    adapters::register_builtin_adapters(registry);
    auto config = parse_config(R"({"providers": {"onebox": {"accounts": {
        "login": {"host": "https://ob.example", "token_url": "https://ob.example/api/token",
                  "client_id": "agent@ob", "client_secret": "p\"w",
                  "token_api": {"request": "json", "grant_type": "", "user_field": "username",
                                "password_field": "password", "token_field": "data.token",
                                "expires_in_field": "data.ttl"}},
        "form": {"host": "https://ob.example", "token_url": "https://ob.example/api/token",
                 "client_id": "c 1", "client_secret": "s&2", "scope": "send",
                 "token_api": {"preset": "oauth2_client_credentials", "user_field": "user", "password_field": "pass",
                               "token_field": "token", "expires_at_field": "expires"}},
        "basic": {"host": "https://ob.example", "token_url": "https://ob.example/api/token",
                  "client_id": "u:x", "client_secret": "s", "credentials_in": "basic",
                  "token_api": {"user_field": "user", "password_field": "pass", "token_field": "token"}},
        "preset": {"host": "https://ob.example", "token_url": "https://ob.example/api/token",
                   "client_id": "c", "client_secret": "s", "token_api": {}}}}}})",
                               registry);
    const adapter* ob = registry.find("onebox");
    auto account = [&](const char* name) -> const account_settings& {
        return *config.providers.at("onebox").accounts.at(name);
    };
    auto login = ob->token_request(account("login"));
    REQUIRE(login);
    CHECK(login->url == "https://ob.example/api/token");
    CHECK(header(*login, "Content-Type") == "application/json");
    CHECK(login->body == R"({"username":"agent@ob","password":"p\"w"})");
    CHECK(header(*login, "Authorization") == "<absent>");
    auto token =
        ob->parse_token_response(inbound_response{200, {}, R"({"status":"OK","data":{"token":"ob-7","ttl":"900"}})"},
                                 account("login"), test_now);
    REQUIRE(token.token);
    CHECK(token.token->value == "ob-7");
    CHECK(token.token->expires_in == std::chrono::milliseconds(900000));
    auto missing = ob->parse_token_response(inbound_response{200, {}, R"({"data":{"access_token":"x"}})"},
                                            account("login"), test_now);
    CHECK(missing.failure.cls == outcome_class::retryable);
    CHECK(missing.failure.error == "Onebox token endpoint answered HTTP 200 without a token in data.token");
    auto refused = ob->parse_token_response(inbound_response{401, {}, R"({"message":"wrong password"})"},
                                            account("login"), test_now);
    CHECK(refused.failure.cls == outcome_class::auth);
    CHECK(refused.failure.error == "Onebox token endpoint HTTP 401: wrong password");

    auto form = ob->token_request(account("form"));
    REQUIRE(form);
    CHECK(header(*form, "Content-Type") == "application/x-www-form-urlencoded");
    CHECK(form->body == "grant_type=client_credentials&scope=send&user=c+1&pass=s%262");
    // An absolute expiry: RFC 3339, unix seconds or unix milliseconds.
    for (const char* expires : {R"("2026-11-22T11:00:00Z")", "1795345200", "1795345200000", R"("1795345200")"}) {
        CAPTURE(std::string(expires));
        auto t = ob->parse_token_response(
            inbound_response{200, {}, std::string(R"({"token":"t","expires":)") + expires + "}"}, account("form"),
            test_now);
        REQUIRE(t.token);
        CHECK(t.token->expires_in == std::chrono::milliseconds(3600000));
    }
    auto past = ob->parse_token_response(inbound_response{200, {}, R"({"token":"t","expires":"2020-01-01T00:00:00Z"})"},
                                         account("form"), test_now);
    REQUIRE(past.token);
    CHECK(past.token->expires_in.count() == 0);  // unknown: kept until refused

    // Basic with fields of another API: plain RFC 7617, not OAuth's form-encoding.
    auto basic = ob->token_request(account("basic"));
    REQUIRE(basic);
    CHECK(header(*basic, "Authorization") == "Basic " + base64_encode("u:x:s"));
    CHECK(basic->body == "grant_type=client_credentials");

    // The preset alone is OAuth 2.0 client credentials, Basic by default.
    auto preset = ob->token_request(account("preset"));
    REQUIRE(preset);
    CHECK(preset->body == "grant_type=client_credentials");
    CHECK(header(*preset, "Authorization") == "Basic " + base64_encode("c:s"));
    auto oauth = ob->parse_token_response(
        inbound_response{200, {}, R"({"access_token":"a","token_type":"Bearer","expires_in":60})"}, account("preset"),
        test_now);
    REQUIRE(oauth.token);
    CHECK(oauth.token->expires_in == std::chrono::milliseconds(60000));
}

TEST_CASE("onebox: token_api config errors name the key") {
    adapter_registry registry;
    adapters::register_builtin_adapters(registry);
    auto error = [&](const std::string& token_api, const char* rest = "") {
        try {
            parse_config(R"({"providers": {"onebox": {"accounts": {"a": {"host": "https://x.id", )" +
                             std::string(rest) + R"("token_api": )" + token_api + "}}}}}",
                         registry);
        } catch (const config_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    const char* fetched = R"("token_url": "https://x.id/t", "client_id": "c", "client_secret": "s", )";
    CHECK(error("{}", R"("token": "t", )") ==
          "config: providers.onebox.accounts.a.token_api: only used with token_url");
    CHECK(error(R"({"preset": "saml"})", fetched) ==
          "config: providers.onebox.accounts.a.token_api.preset: must be \"oauth2_client_credentials\" (the only "
          "preset; set the fields to change it)");
    CHECK(error(R"({"request": "xml"})", fetched) ==
          "config: providers.onebox.accounts.a.token_api.request: must be \"form\" or \"json\"");
    CHECK(error(R"({"token_field": ""})", fetched) ==
          "config: providers.onebox.accounts.a.token_api.token_field: must not be empty");
    CHECK(error(R"({"user_field": "u", "password_field": "u"})", fetched) ==
          "config: providers.onebox.accounts.a.token_api.password_field: must differ from user_field");
    CHECK(error(R"({"expires_in_field": "ttl", "expires_at_field": "exp"})", fetched) ==
          "config: providers.onebox.accounts.a.token_api.expires_at_field: give expires_in_field or "
          "expires_at_field, not both");
    CHECK(error(R"({"token_feild": "t"})", fetched) ==
          "config: providers.onebox.accounts.a.token_api.token_feild: unknown key");
    CHECK(error(R"({"expires_in_field": ""})", fetched).empty());
}

TEST_CASE("onebox: account config errors name the key") {
    adapter_registry registry;
    adapters::register_builtin_adapters(registry);
    auto error = [&](const char* account) {
        try {
            parse_config(std::string(R"({"providers": {"onebox": {"accounts": {"a": )") + account + "}}}}", registry);
        } catch (const config_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(error(R"({"host": "https://x.id"})") ==
          "config: providers.onebox.accounts.a.token: missing: give token, or token_url with client_id and "
          "client_secret");
    CHECK(error(R"({"host": "https://x.id", "token": "t", "token_url": "https://x.id/t"})")
              .find("accounts.a.token: give either token or token_url") != std::string::npos);
    CHECK(error(R"({"host": "https://x.id", "token": "t", "quota_time_zone": "Asia/Jakarta"})") ==
          "config: providers.onebox.accounts.a.quota_time_zone: must be a fixed UTC offset such as +07:00 (IANA zone "
          "names are not supported)");
    CHECK(error(R"({"host": "https://x.id", "token": "t", "quota_reopens_at": "25:00"})") ==
          "config: providers.onebox.accounts.a.quota_reopens_at: must be a 24-hour local time HH:MM");
    CHECK(error(R"({"host": "https://x.id", "token_url": "https://x.id/t", "client_id": "c"})") ==
          "config: providers.onebox.accounts.a.client_secret: missing");
    CHECK(error(R"({"host": "https://x.id", "token": "t", "quota_reopens_at": "18:00", "quota_time_zone": "+07:00"})")
              .empty());
}

TEST_CASE("onebox: a Retry-After date and the quota window are measured from the answer's time, not the clock") {
    onebox_fixture f;
    using std::chrono::milliseconds;
    const inbound_response limited{429, {{"Retry-After", "Sun, 22 Nov 2026 10:00:30 GMT"}}, ""};
    CHECK(f.ob->classify(limited, f.account(), test_now).retry_after == milliseconds(30000));
    CHECK(f.ob->classify(limited, f.account(), test_now + 10000).retry_after == milliseconds(20000));
    CHECK(f.ob->classify(limited, f.account(), test_now + 60000).retry_after == milliseconds(0));
    // The token endpoint's 429 too.
    const inbound_response token_limited{429, {{"Retry-After", "Sun, 22 Nov 2026 10:00:30 GMT"}}, ""};
    CHECK(f.ob->parse_token_response(token_limited, f.account("oauth"), test_now + 5000).failure.retry_after ==
          milliseconds(25000));
    // The quota window of "oauth" reopens at 18:00 +07:00, 11:00 UTC.
    const inbound_response quota{401, {}, R"({"records":{"errorCode":401,"userMessage":"time limit reached"}})"};
    CHECK(f.ob->classify(quota, f.account("oauth"), test_now).retry_after == milliseconds(3600000));
    CHECK(f.ob->classify(quota, f.account("oauth"), test_now + 1800000).retry_after == milliseconds(1800000));
}
