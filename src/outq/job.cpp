#include "outq/job.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "outq/encoding.hpp"
#include "outq/json_util.hpp"

namespace outq {

std::optional<unix_ms> parse_time_value(const rapidjson::Value& v) {
    if (v.IsInt64()) return v.GetInt64();
    if (v.IsUint64()) return std::nullopt;  // beyond any sensible date
    if (v.IsDouble()) {
        const double d = v.GetDouble();
        if (d < 0 || d > 1e15) return std::nullopt;
        return static_cast<unix_ms>(d);
    }
    if (v.IsString()) return parse_rfc3339(json::view(v));
    return std::nullopt;
}

std::optional<unix_ms> entry_id_millis(std::string_view entry_id) {
    const auto dash = entry_id.find('-');
    const auto head = entry_id.substr(0, dash);
    unix_ms ms = 0;
    auto [p, ec] = std::from_chars(head.data(), head.data() + head.size(), ms);
    if (ec != std::errc{} || p != head.data() + head.size()) return std::nullopt;
    return ms;
}

namespace {

job_parse_result fail(job_error e) {
    return job_parse_result{std::nullopt, std::move(e)};
}

// Reads an optional string field into `out` when it is a string.
void peek_string(const rapidjson::Value& root, const char* key, std::string& out) {
    if (auto* v = json::find(root, key); v && v->IsString()) out.assign(v->GetString(), v->GetStringLength());
}

// Why a producer's id cannot be a job id, or nullopt. The webhook sends it as
// the Idempotency-Key (and webhook-id) header, and it appears in logs and
// operator output: a header value holds no control characters (RFC 9110 §5.5:
// field-vchar, SP, HTAB; CR, LF and NUL are never allowed), so none is allowed
// here, HTAB and DEL included; and a receiver drops a value's leading and
// trailing whitespace, so " a" would arrive as another id, "a".
std::optional<std::string> id_problem(std::string_view id) {
    for (std::size_t i = 0; i < id.size(); ++i) {
        const auto c = static_cast<unsigned char>(id[i]);
        if (c < 0x20 || c == 0x7F) {
            char code[8];
            std::snprintf(code, sizeof code, "0x%02X", c);
            return "job.id: control character " + std::string(code) + " at byte " + std::to_string(i) +
                   ": the id is sent as a header value (Idempotency-Key), which cannot hold control characters (RFC "
                   "9110 5.5)";
        }
    }
    if (id.front() == ' ' || id.back() == ' ')
        return std::string(
            "job.id: leading or trailing space: a header value's outer whitespace is not part of it "
            "(RFC 9110 5.5), so the receiver would see another id");
    if (const auto at = invalid_utf8_at(id); at != std::string_view::npos)
        return "job.id: not valid UTF-8 (byte " + std::to_string(at) + ")";
    return std::nullopt;
}

// True when every string of `v`, member names included, is UTF-8.
bool all_utf8(const rapidjson::Value& v) {
    if (v.IsString()) return invalid_utf8_at(json::view(v)) == std::string_view::npos;
    if (v.IsArray()) {
        for (auto& e : v.GetArray())
            if (!all_utf8(e)) return false;
    } else if (v.IsObject()) {
        for (auto& m : v.GetObject())
            if (invalid_utf8_at(json::view(m.name)) != std::string_view::npos || !all_utf8(m.value)) return false;
    }
    return true;
}

// The field of `v` (at `path`) whose string is not UTF-8, as an error; only
// called once all_utf8 said there is one.
std::optional<std::string> non_utf8_field(const rapidjson::Value& v, const std::string& path) {
    if (v.IsString()) {
        const auto at = invalid_utf8_at(json::view(v));
        if (at == std::string_view::npos) return std::nullopt;
        return path + ": not valid UTF-8 (byte " + std::to_string(at) +
               "); JSON text is UTF-8 (RFC 8259 8.1) and this string would go out as an invalid body";
    }
    if (v.IsArray()) {
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i)
            if (auto e = non_utf8_field(v[i], path + "[" + std::to_string(i) + "]")) return e;
    } else if (v.IsObject()) {
        std::size_t index = 0;
        for (auto& m : v.GetObject()) {
            const auto name = json::view(m.name);
            if (invalid_utf8_at(name) != std::string_view::npos)
                return path + ": the name of member " + std::to_string(index) + " is not valid UTF-8";
            if (auto e = non_utf8_field(m.value, path + "." + std::string(name))) return e;
            ++index;
        }
    }
    return std::nullopt;
}

}  // namespace

namespace detail {

namespace {
// Where the pool's first chunk starts in the storage: after the text and its
// NUL, aligned as malloc aligns (RapidJSON lays its chunk header and values
// there; the unaligned start the fuzz target job found was undefined behaviour).
std::size_t pool_offset(std::size_t text_size) {
    constexpr std::size_t a = alignof(std::max_align_t);
    return (text_size + 1 + a - 1) / a * a;
}
}  // namespace

job_document::job_document(std::string_view json_text, std::size_t pool_bytes)
    : storage(new char[pool_offset(json_text.size()) + pool_bytes]),
      pool(storage.get() + pool_offset(json_text.size()), pool_bytes, std::max<std::size_t>(1024, pool_bytes)),
      doc(&pool, 256, &pool) {
    std::memcpy(storage.get(), json_text.data(), json_text.size());
    storage[json_text.size()] = '\0';
}

}  // namespace detail

namespace {

bool all_lower_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return !s.empty();
}

}  // namespace

bool is_traceparent(std::string_view tp) {
    // W3C Trace Context §3.2: 2 hex version (not ff), 32 hex trace id and 16
    // hex parent id (neither all zeros), 2 hex flags; version 00 is exactly 55 long.
    if (tp.size() < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return false;
    const auto version = tp.substr(0, 2), trace = tp.substr(3, 32), parent = tp.substr(36, 16),
               flags = tp.substr(53, 2);
    if (!all_lower_hex(version) || !all_lower_hex(trace) || !all_lower_hex(parent) || !all_lower_hex(flags))
        return false;
    if (version == "ff" || trace.find_first_not_of('0') == std::string_view::npos ||
        parent.find_first_not_of('0') == std::string_view::npos)
        return false;
    if (version == "00") return tp.size() == 55;
    return tp.size() == 55 || tp[55] == '-';  // a later version may add fields
}

namespace {

// The job's own id when it can be read and used, so that even a job rejected
// as invalid is filed where its producer looks for its outcome; else nullopt
// (the dead letter keeps the stream entry id).
std::optional<std::string> usable_id(std::string id) {
    if (id.empty() || id.size() > max_job_id_length || id_problem(id)) return std::nullopt;
    return id;
}

}  // namespace

job_parse_result parse_job(std::string_view text, std::string_view entry_id) {
    job_error err;
    err.id = std::string(entry_id);
    // In-situ parsing stops at a NUL, which JSON text cannot hold unescaped.
    if (text.find('\0') != std::string_view::npos) {
        err.error = "job: invalid JSON: a NUL character in the text";
        // The text before the NUL may still say whose job it is.
        if (auto id = json::scalar_member(text.substr(0, text.find('\0')), "id"))
            if (auto usable = usable_id(std::move(*id))) err.id = std::move(*usable);
        return fail(std::move(err));
    }
    // Values take ~16-24 bytes per JSON token; the parser's stack grows in the pool too.
    auto document = std::make_unique<detail::job_document>(text, std::max<std::size_t>(512, text.size() * 2));
    auto& doc = document->doc;
    doc.ParseInsitu<json::strict_flags>(document->storage.get());
    if (doc.HasParseError()) {
        err.error = "job: invalid JSON: " + json::parse_error_text(doc);
        if (auto id = json::scalar_member(text, "id"))
            if (auto usable = usable_id(std::move(*id))) err.id = std::move(*usable);
        return fail(std::move(err));
    }
    if (!doc.IsObject()) {
        err.error = "job: expected a JSON object";
        return fail(std::move(err));
    }
    const rapidjson::Value& root = doc;
    peek_string(root, "provider", err.provider);
    peek_string(root, "account", err.account);
    if (auto* v = json::find(root, "id"); v && v->IsString())
        if (auto usable = usable_id(std::string(v->GetString(), v->GetStringLength()))) err.id = std::move(*usable);

    job j;
    if (auto* v = json::find(root, "v")) {
        if (!v->IsInt() || v->GetInt() != job_format_version) {
            err.error = "job.v: unsupported format version (this worker reads v=1)";
            return fail(std::move(err));
        }
    }
    if (auto* v = json::find(root, "id"); v && !v->IsNull()) {
        if (!v->IsString() || v->GetStringLength() == 0 || v->GetStringLength() > max_job_id_length) {
            err.error = "job.id: must be a string of 1 to 200 characters";
            return fail(std::move(err));
        }
        j.id.assign(v->GetString(), v->GetStringLength());
        if (auto problem = id_problem(j.id)) {
            err.error = std::move(*problem);  // the dead letter keeps the entry id
            return fail(std::move(err));
        }
        err.id = j.id;
    } else {
        j.id = std::string(entry_id);
        j.id_from_entry = true;
    }
    for (auto [key, out] : {std::pair{"provider", &j.provider}, std::pair{"account", &j.account}}) {
        auto* v = json::find(root, key);
        if (!v) {
            err.error = std::string("job.") + key + ": missing";
            return fail(std::move(err));
        }
        if (!v->IsString() || v->GetStringLength() == 0) {
            err.error = std::string("job.") + key + ": must be a non-empty string";
            return fail(std::move(err));
        }
        out->assign(v->GetString(), v->GetStringLength());
    }
    auto* message = json::find(root, "message");
    if (!message) {
        err.error = "job.message: missing";
        return fail(std::move(err));
    }
    if (!message->IsObject()) {
        err.error = "job.message: must be a JSON object";
        return fail(std::move(err));
    }
    if (auto* v = json::find(root, "max_attempts"); v && !v->IsNull()) {
        if (!v->IsInt() || v->GetInt() < 1 || v->GetInt() > max_job_attempts) {
            err.error = "job.max_attempts: must be an integer from 1 to 100";
            return fail(std::move(err));
        }
        j.max_attempts = v->GetInt();
    }
    for (auto [key, out] : {std::pair{"not_before", &j.not_before}, std::pair{"expires_at", &j.expires_at}}) {
        auto* v = json::find(root, key);
        if (!v || v->IsNull()) continue;
        *out = parse_time_value(*v);
        if (!*out) {
            err.error = std::string("job.") + key + ": must be unix milliseconds or an RFC 3339 timestamp";
            return fail(std::move(err));
        }
    }
    if (auto* v = json::find(root, "traceparent"); v && !v->IsNull()) {
        const std::string_view tp = v->IsString() ? json::view(*v) : std::string_view();
        if (!is_traceparent(tp)) {
            err.error = "job.traceparent: not a W3C traceparent (version-traceid-parentid-flags, lowercase hex)";
            return fail(std::move(err));
        }
        j.traceparent.assign(tp);
    }
    // A job that may not go before it has expired could never be sent.
    if (j.not_before && j.expires_at && *j.not_before > *j.expires_at) {
        err.error = "job.not_before: later than job.expires_at (the job could never be sent)";
        return fail(std::move(err));
    }
    // Every string, the message's above all, must be UTF-8: adapters send them as JSON.
    if (!all_utf8(root)) {
        err.error = non_utf8_field(root, "job").value_or("job: not valid UTF-8");
        for (auto* name : {&err.provider, &err.account})
            if (invalid_utf8_at(*name) != std::string_view::npos) name->clear();
        return fail(std::move(err));
    }
    if (auto* v = json::find(root, "meta"); v && !v->IsNull()) j.meta_json = json::to_string(*v);
    j.message = message;
    if (auto raw = json::raw_member(text, "message"))
        j.message_json.assign(*raw);
    else
        j.message_json = json::to_string(*message);  // key written with escapes: rare
    j.document = std::move(document);
    return job_parse_result{std::move(j), {}};
}

}  // namespace outq
