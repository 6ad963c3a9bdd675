#include "outq/queue/format.hpp"

#include "outq/queue/errors.hpp"

namespace outq::queue {

std::vector<redis::command> format_check_commands(const keys& k) {
    std::vector<redis::command> out;
    out.push_back(redis::command("GET").arg(k.format));
    out.push_back(redis::command("XINFO").arg("GROUPS").arg(k.jobs));
    return out;
}

namespace {

// Whether an XINFO GROUPS reply lists a group of that name (each group is a
// flat list of field, value).
bool has_group(const redis::value& groups, std::string_view name) {
    if (!groups.is_array()) return false;
    for (auto& g : groups.elements) {
        if (!g.is_array()) continue;
        for (std::size_t i = 0; i + 1 < g.elements.size(); i += 2)
            if (g.elements[i].str == "name" && g.elements[i + 1].str == name) return true;
    }
    return false;
}

}  // namespace

format_verdict read_format(const std::vector<redis::value>& replies) {
    format_verdict v;
    if (replies.size() != 2) {
        v.text = "unexpected reply count";
        return v;
    }
    const auto& format = replies[0];
    const auto& groups = replies[1];
    if (format.is_error()) {
        v.text = format.str;
        v.permanent = classify_error(format) != error_kind::transient;
        return v;
    }
    if (format.is_string()) {
        v.text = format.str;
        v.what = format.str == format_version ? format_verdict::kind::current : format_verdict::kind::unknown;
        return v;
    }
    if (!format.is_nil()) {
        v.text = "unexpected reply to GET";
        return v;
    }
    // No format key: a new queue, unless format 1 workers ran on it. A missing
    // stream answers XINFO with an error ("no such key"): a new queue too.
    if (groups.is_error()) {
        if (groups.str.find("no such key") == std::string::npos) {
            v.text = groups.str;
            v.permanent = classify_error(groups) != error_kind::transient;
            return v;
        }
        v.what = format_verdict::kind::new_queue;
        return v;
    }
    v.what = has_group(groups, format1_group_name) ? format_verdict::kind::format1 : format_verdict::kind::new_queue;
    return v;
}

std::vector<redis::command> claim_new_queue_commands(const keys& k) {
    std::vector<redis::command> out;
    out.push_back(redis::command("SET").arg(k.format).arg(format_version).arg("NX"));
    out.push_back(redis::command("GET").arg(k.format));
    return out;
}

bool claimed_new_queue(const std::vector<redis::value>& replies) {
    return replies.size() == 2 && replies[1].is_string() && replies[1].str == format_version;
}

std::string refusal_text(const keys& k, const format_verdict& v) {
    switch (v.what) {
        case format_verdict::kind::format1:
            return "queue " + k.queue + " is in format 1 (consumer group outq on " + k.jobs +
                   "); stop its format 1 workers and run outq migrate (docs/protocol.md, Upgrading from format 1)";
        case format_verdict::kind::unknown:
            return "queue " + k.queue + " has format " + v.text + " (" + k.format + "); this worker knows format " +
                   std::string(format_version) +
                   (v.text == "migrating" ? ": outq migrate is under way or was interrupted; run it again"
                                          : ": run a worker of that format");
        case format_verdict::kind::error:
            if (v.text.rfind("MOVED", 0) == 0 || v.text.rfind("ASK", 0) == 0)
                return "cannot read the format of queue " + k.queue + ": " + v.text + ": " + redirect_hint();
            return "cannot read the format of queue " + k.queue + ": " + v.text;
        case format_verdict::kind::current:
        case format_verdict::kind::new_queue:
            break;
    }
    return {};
}

}  // namespace outq::queue
