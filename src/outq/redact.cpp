#include "outq/redact.hpp"

#include <algorithm>

namespace outq {

namespace {

constexpr std::size_t shortest_secret = 4;

void replace_all(std::string& text, std::string_view what) {
    if (what.empty()) return;
    std::size_t at = 0;
    while ((at = text.find(what, at)) != std::string::npos) {
        text.replace(at, what.size(), secret_set::mark);
        at += secret_set::mark.size();
    }
}

std::string json_escaped(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\' || c == '/') {
            out += '\\';
            out += c;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

void secret_set::add(std::string_view secret) {
    if (secret.size() < shortest_secret) return;
    auto keep = [this](std::string form) {
        if (form.size() < shortest_secret) return;
        if (std::find(forms_.begin(), forms_.end(), form) == forms_.end()) forms_.push_back(std::move(form));
    };
    keep(std::string(secret));
    keep(json_escaped(secret));
    // "Bearer abc", "Basic dXNlcjpwdw==", "SOTicket 7T:..": the credential after the scheme.
    if (auto space = secret.find(' '); space != std::string_view::npos && space > 0)
        keep(std::string(secret.substr(space + 1)));
    std::sort(forms_.begin(), forms_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

void secret_set::redact(std::string& text) const {
    for (const auto& f : forms_) replace_all(text, f);
}

void secret_set::redact(std::string& text, std::string_view extra) const {
    if (extra.size() >= shortest_secret) replace_all(text, extra);
    redact(text);
}

}  // namespace outq
