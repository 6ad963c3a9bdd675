#include "webhook/webhook_adapter.hpp"

#include <rapidjson/document.h>

#include "outq/encoding.hpp"
#include "outq/http_url.hpp"
#include "outq/json_util.hpp"
#include "outq/sha256.hpp"

namespace outq::adapters {

namespace {

struct webhook_account : account_settings {
    std::string url;
    std::string method = "POST";
    std::vector<http_header> headers;
    std::string id_field = "id";
    std::vector<std::string> signing_keys;  // decoded Standard Webhooks secrets, newest first; empty: unsigned
};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
    return true;
}

// A Standard Webhooks symmetric secret: "whsec_" and the base64 of 24 to 64
// random bytes ("At least 24 bytes (192 bits, 512 maximum)"). The prefix may
// be left out: the reference libraries base64-decode the value either way.
std::string signing_key(const config_node& node, const std::string& key, const std::string& secret) {
    std::string_view text = secret;
    if (text.rfind("whpk_", 0) == 0 || text.rfind("whsk_", 0) == 0)
        node.fail(key.c_str(), "asymmetric (ed25519, v1a) signing keys are not supported: give a whsec_ secret");
    if (text.rfind("whsec_", 0) == 0) text.remove_prefix(6);
    auto decoded = base64_decode(text);
    if (!decoded) node.fail(key.c_str(), "must be whsec_ followed by base64 (a Standard Webhooks secret)");
    if (decoded->size() < 24 || decoded->size() > 64)
        node.fail(key.c_str(), "must hold 24 to 64 bytes (Standard Webhooks), not " + std::to_string(decoded->size()));
    return *decoded;
}

// The job id as a webhook-id: the same on every attempt (the receiver's
// idempotency key), without the '.' that separates the signed parts
// ("{msg_id}.{timestamp}.{payload}": a '.' in the id would make two messages
// sign the same bytes). Everything but letters, digits, '-' and '_' is
// percent-encoded, so "order-42" stays "order-42" and "a.b" is "a%2Eb".
std::string webhook_id(std::string_view job_id) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(job_id.size());
    for (const char ch : job_id) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

class webhook_adapter final : public adapter {
  public:
    std::string_view name() const override { return "webhook"; }

    std::shared_ptr<account_settings> load_account(const config_node& node,
                                                   const std::string& account_name) const override {
        auto a = std::make_shared<webhook_account>();
        a->name = account_name;
        a->url = node.string("url");
        if (!parse_http_url(a->url)) node.fail("url", "must be an absolute http:// or https:// URL");
        a->method = node.string("method", "POST");
        if (a->method != "POST" && a->method != "PUT" && a->method != "PATCH")
            node.fail("method", "must be POST, PUT or PATCH");
        if (auto headers = node.object("headers")) {
            for (auto& [name, value] : headers->string_members()) {
                if (name.empty() || name.find_first_of(" :\r\n") != std::string::npos)
                    headers->fail(name.c_str(), "is not a valid header name");
                if (value.find_first_of("\r\n") != std::string::npos)
                    headers->fail(name.c_str(), "header values cannot contain line breaks");
                if (!value.empty()) a->headers.push_back({name, value});  // empty: optional secret unset
            }
        }
        a->id_field = node.string("id_field", "id");
        if (auto secrets = node.strings("signing_secrets")) {
            // Newest first; an empty value (an optional secret left unset, as for
            // headers) is skipped, so a rotation slot can stay in the config.
            for (std::size_t i = 0; i < secrets->size(); ++i)
                if (!(*secrets)[i].empty())
                    a->signing_keys.push_back(
                        signing_key(node, "signing_secrets[" + std::to_string(i) + "]", (*secrets)[i]));
            if (a->signing_keys.empty()) node.fail("signing_secrets", "no secret is set (every value is empty)");
            for (auto& h : a->headers)
                for (const char* reserved : {"webhook-id", "webhook-timestamp", "webhook-signature"})
                    if (iequals(h.name, reserved))
                        node.fail("headers", h.name + " is written by the signature (signing_secrets)");
        }
        return a;
    }

    std::optional<std::string> validate(const job&) const override {
        return std::nullopt;  // any JSON object is a valid webhook payload
    }

    outbound_request build_request(const job& j, const account_settings& account,
                                   const attempt_context& attempt) const override {
        auto& a = static_cast<const webhook_account&>(account);
        outbound_request r;
        r.method = a.method;
        r.url = a.url;
        r.body = j.message_json;  // as the producer wrote it: no re-serialisation
        r.headers.reserve(a.headers.size() + 6);
        r.headers.push_back({"Content-Type", "application/json"});
        r.headers.push_back({"Idempotency-Key", j.id});
        r.headers.push_back({"X-Outq-Attempt", std::to_string(attempt.attempt_number)});
        for (auto& h : a.headers) r.headers.push_back(h);
        if (!a.signing_keys.empty()) sign(r, j.id, attempt.now, a.signing_keys);
        return r;
    }

    // Standard Webhooks: webhook-id, webhook-timestamp (unix seconds of this
    // attempt) and webhook-signature, "v1," and the base64 HMAC-SHA256 of
    // "{id}.{timestamp}.{body}" with each key, space-separated (key rotation).
    static void sign(outbound_request& r, std::string_view job_id, unix_ms now, const std::vector<std::string>& keys) {
        const std::string id = webhook_id(job_id);
        const std::string timestamp = std::to_string(now >= 0 ? now / 1000 : (now - 999) / 1000);
        std::string signatures;
        for (auto& key : keys) {
            const auto mac = hmac_sha256(key, {id, ".", timestamp, ".", r.body});
            if (!signatures.empty()) signatures += ' ';
            signatures +=
                "v1," + base64_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
        }
        r.headers.push_back({"webhook-id", id});
        r.headers.push_back({"webhook-timestamp", timestamp});
        r.headers.push_back({"webhook-signature", std::move(signatures)});
    }

    send_outcome classify(const inbound_response& response, const account_settings& account,
                          unix_ms now) const override {
        auto& a = static_cast<const webhook_account&>(account);
        send_outcome o;
        o.http_status = response.status;
        o.cls = classify_http_status(response.status);
        o.response_excerpt = excerpt(response.body);
        if (auto rid = response.header("Request-Id"); !rid.empty())
            o.request_id = std::string(rid);
        else if (auto xrid = response.header("X-Request-Id"); !xrid.empty())
            o.request_id = std::string(xrid);
        if (response.status == 429 || response.status == 503) {
            if (auto ra = response.header("Retry-After"); !ra.empty()) o.retry_after = parse_retry_after(ra, now);
        }
        if (o.cls == outcome_class::success) {
            // Only the id member is read, not a DOM of the whole answer.
            o.provider_message_id = json::scalar_member(response.body, a.id_field).value_or("");
        } else {
            o.error = "HTTP " + std::to_string(response.status) + " from webhook";
        }
        return o;
    }
};

}  // namespace

std::unique_ptr<adapter> make_webhook_adapter() {
    return std::make_unique<webhook_adapter>();
}

}  // namespace outq::adapters
