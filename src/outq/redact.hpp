#pragma once
// Credentials never leave the worker in what it stores or logs: a provider
// answer that echoes one (an error body quoting the Authorization header, a
// token endpoint repeating the client secret) has every occurrence replaced
// by "[redacted]" before it becomes a result, a dead letter, an attempt's
// history or a log line. Pure.
#include <string>
#include <string_view>
#include <vector>

namespace outq {

class secret_set {
  public:
    // A secret and the forms a provider may echo: as written, after an
    // authorization scheme ("Bearer x" also hides "x"), and JSON-escaped.
    // Values shorter than 4 bytes are not secrets worth hiding (and would
    // redact ordinary words).
    void add(std::string_view secret);
    // Replaces every occurrence of every secret in `text`, longest first.
    void redact(std::string& text) const;
    // `text` with `extra` (a token in use) redacted as well.
    void redact(std::string& text, std::string_view extra) const;
    bool empty() const { return forms_.empty(); }
    std::size_t size() const { return forms_.size(); }

    static constexpr std::string_view mark = "[redacted]";

  private:
    std::vector<std::string> forms_;  // longest first
};

}  // namespace outq
