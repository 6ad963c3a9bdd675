#include "outq/queue/depth.hpp"

#include <charconv>

namespace outq::queue {

namespace {

constexpr std::size_t depth_replies = 5;

// "1732269600000-3" → its milliseconds; nullopt when it is not a stream id.
std::optional<unix_ms> id_ms(const std::string& id) {
    const auto dash = id.find('-');
    unix_ms ms = 0;
    const char* end = id.data() + (dash == std::string::npos ? id.size() : dash);
    auto [p, ec] = std::from_chars(id.data(), end, ms);
    if (ec != std::errc() || p != end || id.empty()) return std::nullopt;
    return ms;
}

depth_reading failure(std::string why) {
    depth_reading r;
    r.error = std::move(why);
    return r;
}

std::string problem(const redis::value& reply, const char* command, const char* expected) {
    if (reply.is_error()) return std::string(command) + ": " + reply.str;
    return std::string(command) + ": expected " + expected;
}

}  // namespace

double depth::oldest_waiting_age_seconds(unix_ms now) const {
    if (waiting() == 0 || !oldest_waiting_at || *oldest_waiting_at >= now) return 0;
    return static_cast<double>(now - *oldest_waiting_at) / 1000.0;
}

std::vector<redis::command> depth_commands(const keys& k) {
    std::vector<redis::command> cmds;
    cmds.reserve(depth_replies);
    cmds.push_back(redis::command("XLEN").arg(k.jobs));
    cmds.push_back(redis::command("XPENDING").arg(k.jobs).arg(group_name));
    cmds.push_back(redis::command("ZCARD").arg(k.delayed));
    cmds.push_back(redis::command("XLEN").arg(k.dead));
    cmds.push_back(redis::command("XRANGE").arg(k.jobs).arg("-").arg("+").arg("COUNT").arg("1"));
    return cmds;
}

depth_reading read_depth(const std::vector<redis::value>& replies) {
    if (replies.size() != depth_replies)
        return failure("expected " + std::to_string(depth_replies) + " replies to the depth reads, got " +
                       std::to_string(replies.size()));
    depth d;
    struct count {
        std::size_t reply;
        std::int64_t depth::*field;
        const char* command;
    };
    for (const count c : {count{0, &depth::stream_length, "XLEN jobs"}, count{2, &depth::delayed, "ZCARD delayed"},
                          count{3, &depth::dead, "XLEN dead"}}) {
        const auto& r = replies[c.reply];
        if (r.type != redis::value::kind::integer) return failure(problem(r, c.command, "an integer"));
        d.*c.field = r.integer;
    }
    // The summary: [count, smallest id, greatest id, [[consumer, count], …]].
    const auto& pending = replies[1];
    if (pending.error_is("NOGROUP")) {
        d.pending = 0;  // no group yet: nothing was delivered
    } else if (pending.is_array() && pending.elements.size() >= 2 &&
               pending.elements[0].type == redis::value::kind::integer) {
        d.pending = pending.elements[0].integer;
    } else {
        return failure(problem(pending, "XPENDING jobs", "a summary array"));
    }
    // [[id, [field, value, …]]] or [] when the stream is empty or missing.
    const auto& first = replies[4];
    if (!first.is_array()) return failure(problem(first, "XRANGE jobs", "an array of entries"));
    if (!first.elements.empty()) {
        const auto& entry = first.elements[0];
        if (!entry.is_array() || entry.elements.empty() || !entry.elements[0].is_string())
            return failure("XRANGE jobs: expected [id, fields] entries");
        const auto at = id_ms(entry.elements[0].str);
        if (!at) return failure("XRANGE jobs: not a stream id: " + entry.elements[0].str);
        if (d.waiting() > 0) d.oldest_waiting_at = at;
    }
    depth_reading out;
    out.value = d;
    return out;
}

std::vector<redis::command> depth_commands(const std::vector<keys>& partitions) {
    std::vector<redis::command> cmds;
    cmds.reserve(depth_replies * partitions.size());
    for (const auto& k : partitions)
        for (auto& c : depth_commands(k)) cmds.push_back(std::move(c));
    return cmds;
}

depth_reading read_depths(const std::vector<redis::value>& replies, std::size_t partitions) {
    if (replies.size() != depth_replies * partitions)
        return failure("expected " + std::to_string(depth_replies * partitions) + " replies to the depth reads, got " +
                       std::to_string(replies.size()));
    depth sum;
    for (std::size_t p = 0; p < partitions; ++p) {
        const std::vector<redis::value> part(replies.begin() + static_cast<std::ptrdiff_t>(p * depth_replies),
                                             replies.begin() + static_cast<std::ptrdiff_t>((p + 1) * depth_replies));
        auto one = read_depth(part);
        if (!one.value) {
            if (partitions > 1) one.error = "partition " + std::to_string(p) + ": " + one.error;
            return one;
        }
        sum.stream_length += one.value->stream_length;
        sum.pending += one.value->pending;
        sum.delayed += one.value->delayed;
        sum.dead += one.value->dead;
        if (one.value->oldest_waiting_at &&
            (!sum.oldest_waiting_at || *one.value->oldest_waiting_at < *sum.oldest_waiting_at))
            sum.oldest_waiting_at = one.value->oldest_waiting_at;
    }
    depth_reading out;
    out.value = sum;
    return out;
}

}  // namespace outq::queue
