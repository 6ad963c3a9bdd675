#pragma once
// Small JSON helpers on top of RapidJSON, shared by the job model, the config
// loader, adapters and the CLI.
#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

namespace outq::json {

// Parse flags for documents we accept from producers (strict JSON).
constexpr unsigned strict_flags = rapidjson::kParseDefaultFlags;
// Config files may carry // comments and trailing commas.
constexpr unsigned config_flags =
    rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag | rapidjson::kParseNanAndInfFlag;

// Appends `s` as a quoted JSON string.
void append_quoted(std::string& out, std::string_view s);

// Compact serialisation of a value.
std::string to_string(const rapidjson::Value& v);

// The raw text of a top-level member's value in an already validated JSON
// object, exactly as the producer wrote it; nullopt when absent (or when the
// key is written with escapes). Lets a payload travel without re-serialising.
// Safe on any input (bounds-checked; nullopt when the scan fails), but it
// validates only what it skips over: on unvalidated text, parse the result.
std::optional<std::string_view> raw_member(std::string_view object_text, std::string_view key);

// A top-level string or number member of a JSON object, read without a DOM of
// the whole text: a string with its escapes decoded, a number as written.
// nullopt when absent, of another type, or when the text is not an object.
std::optional<std::string> scalar_member(std::string_view object_text, std::string_view key);

// Human-readable description of a RapidJSON parse error with its offset.
std::string parse_error_text(rapidjson::ParseErrorCode code, std::size_t offset);
template <class Document>
std::string parse_error_text(const Document& d) {
    return parse_error_text(d.GetParseError(), d.GetErrorOffset());
}

inline std::string_view view(const rapidjson::Value& v) {
    return {v.GetString(), v.GetStringLength()};
}

// Returns the member or nullptr.
inline const rapidjson::Value* find(const rapidjson::Value& obj, const char* key) {
    if (!obj.IsObject()) return nullptr;
    auto it = obj.FindMember(key);
    return it == obj.MemberEnd() ? nullptr : &it->value;
}

}  // namespace outq::json
