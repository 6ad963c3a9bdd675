#include "outq/queue/control.hpp"

#include <charconv>
#include <vector>

namespace outq::queue {

namespace {

void append_escaped(std::string& out, std::string_view text) {
    for (char c : text) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
        }
    }
}

std::optional<std::string> unescape(std::string_view field) {
    std::string out;
    out.reserve(field.size());
    for (std::size_t i = 0; i < field.size(); ++i) {
        const char c = field[i];
        if (c == '\n' || c == '\r') return std::nullopt;  // raw line breaks are never written
        if (c != '\\') {
            out += c;
            continue;
        }
        if (++i == field.size()) return std::nullopt;
        switch (field[i]) {
            case '\\':
                out += '\\';
                break;
            case 't':
                out += '\t';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            default:
                return std::nullopt;
        }
    }
    return out;
}

std::vector<std::string_view> split_tabs(std::string_view payload) {
    std::vector<std::string_view> fields;
    for (;;) {
        const auto tab = payload.find('\t');
        fields.push_back(payload.substr(0, tab));
        if (tab == std::string_view::npos) return fields;
        payload.remove_prefix(tab + 1);
    }
}

// A decimal integer of at least 0, nothing else.
bool whole_number(std::string_view text, std::int64_t& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && ec == std::errc{} && end == text.data() + text.size() && out >= 0;
}

std::optional<control_message::kind> kind_of(std::string_view name) {
    using k = control_message::kind;
    if (name == "pause") return k::pause;
    if (name == "resume") return k::resume;
    if (name == "circuit") return k::circuit;
    if (name == "limit") return k::limit;
    if (name == "due") return k::due;
    return std::nullopt;
}

control_message scoped(control_message::kind what, std::string_view provider, std::string_view account) {
    control_message m;
    m.what = what;
    m.provider = std::string(provider);
    m.account = std::string(account);
    return m;
}

}  // namespace

std::string control_channel(const keys& k) {
    return k.control;
}

std::string_view to_string(control_message::kind k) {
    switch (k) {
        case control_message::kind::pause:
            return "pause";
        case control_message::kind::resume:
            return "resume";
        case control_message::kind::circuit:
            return "circuit";
        case control_message::kind::limit:
            return "limit";
        case control_message::kind::due:
            return "due";
    }
    return "?";
}

control_message pause_message(std::string_view provider, std::string_view account,
                              std::optional<std::chrono::milliseconds> duration, std::string_view reason) {
    auto m = scoped(control_message::kind::pause, provider, account);
    m.pause_ms = duration ? std::max<std::int64_t>(0, duration->count()) : -1;
    m.reason = std::string(reason);
    return m;
}

control_message resume_message(std::string_view provider, std::string_view account) {
    return scoped(control_message::kind::resume, provider, account);
}

control_message circuit_message(std::string_view provider, std::string_view account, std::string_view state) {
    auto m = scoped(control_message::kind::circuit, provider, account);
    m.state = std::string(state);
    return m;
}

control_message limit_message(std::string_view provider, std::string_view account) {
    return scoped(control_message::kind::limit, provider, account);
}

control_message due_message(int partition, std::int64_t at) {
    control_message m;
    m.what = control_message::kind::due;
    m.partition = partition;
    m.due_at = at;
    return m;
}

std::string encode(const control_message& m) {
    std::string out(control_version);
    out += '\t';
    out += to_string(m.what);
    out += '\t';
    if (m.what == control_message::kind::due) {
        out += std::to_string(m.partition);
        out += '\t';
        out += std::to_string(m.due_at);
        return out;
    }
    append_escaped(out, m.provider);
    out += '\t';
    append_escaped(out, m.account);
    switch (m.what) {
        case control_message::kind::pause:
            out += '\t';
            out += std::to_string(m.pause_ms < 0 ? -1 : m.pause_ms);
            out += '\t';
            append_escaped(out, m.reason);
            break;
        case control_message::kind::circuit:
            out += '\t';
            append_escaped(out, m.state);
            break;
        case control_message::kind::resume:
        case control_message::kind::limit:
        case control_message::kind::due:
            break;
    }
    return out;
}

std::optional<control_message> parse_control_message(std::string_view payload) {
    const auto fields = split_tabs(payload);
    if (fields.size() < 4 || fields[0] != control_version) return std::nullopt;
    const auto what = kind_of(fields[1]);
    if (!what) return std::nullopt;
    if (*what == control_message::kind::due) {
        std::int64_t partition = 0, at = 0;
        if (!whole_number(fields[2], partition) || !whole_number(fields[3], at) || partition > 1 << 20)
            return std::nullopt;
        return due_message(static_cast<int>(partition), at);
    }
    auto provider = unescape(fields[2]);
    auto account = unescape(fields[3]);
    if (!provider || !account || provider->empty() || account->empty()) return std::nullopt;
    control_message m = scoped(*what, *provider, *account);
    switch (*what) {
        case control_message::kind::pause: {
            if (fields.size() < 6) return std::nullopt;
            const auto ms = fields[4];
            std::int64_t n = 0;
            const auto [end, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), n);
            if (ms.empty() || ec != std::errc{} || end != ms.data() + ms.size() || n < -1) return std::nullopt;
            auto reason = unescape(fields[5]);
            if (!reason) return std::nullopt;
            m.pause_ms = n;
            m.reason = std::move(*reason);
            break;
        }
        case control_message::kind::circuit: {
            if (fields.size() < 5) return std::nullopt;
            auto state = unescape(fields[4]);
            if (!state || state->empty()) return std::nullopt;
            m.state = std::move(*state);
            break;
        }
        case control_message::kind::resume:
        case control_message::kind::limit:
        case control_message::kind::due:
            break;
    }
    return m;
}

redis::command publish_command(const keys& k, const control_message& m) {
    return redis::command("PUBLISH").arg(control_channel(k)).arg(encode(m));
}

redis::command announce_due_command(const keys& k, std::int64_t at) {
    return publish_command(k, due_message(k.partition, at));
}

redis::command announced_pause_command(const keys& k, std::string_view provider, std::string_view account,
                                       std::optional<std::chrono::milliseconds> duration, std::string_view reason) {
    return pause_command(k.scope(provider, account), duration, reason, control_channel(k),
                         encode(pause_message(provider, account, duration, reason)));
}

}  // namespace outq::queue
