#include "outq/redis_cluster.hpp"

#include <algorithm>
#include <charconv>

namespace outq::redis::cluster {

namespace {

constexpr std::array<std::uint16_t, 256> crc16_table() {
    std::array<std::uint16_t, 256> t{};
    for (int i = 0; i < 256; ++i) {
        std::uint16_t c = static_cast<std::uint16_t>(i << 8);
        for (int b = 0; b < 8; ++b) c = static_cast<std::uint16_t>(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
        t[static_cast<std::size_t>(i)] = c;
    }
    return t;
}
constexpr auto crc16_lookup = crc16_table();

bool equals_upper(std::string_view a, std::string_view upper) {
    return a.size() == upper.size() && std::equal(a.begin(), a.end(), upper.begin(), [](char x, char y) {
               return (x >= 'a' && x <= 'z' ? static_cast<char>(x - 32) : x) == y;
           });
}

std::optional<long long> to_number(std::string_view s) {
    long long n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return n;
}

std::optional<long long> integer_of(const value& v) {
    if (v.type == value::kind::integer) return v.integer;
    if (v.is_string()) return to_number(v.str);
    return std::nullopt;
}

// host:port, split at the last colon (an IPv6 address has colons of its own).
std::optional<node> read_endpoint(std::string_view text, std::string_view default_host) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto port = to_number(text.substr(colon + 1));
    if (!port || *port <= 0 || *port > 65535) return std::nullopt;
    node n;
    n.host = std::string(text.substr(0, colon));
    if (n.host.empty() || n.host == "?") n.host = std::string(default_host);
    n.port = static_cast<int>(*port);
    return n;
}

bool valid_range(long long first, long long last) {
    return first >= 0 && last >= first && last < slot_count;
}

// A flat RESP2 map (name, value, name, value…): the value named `name`.
const value* member(const value& map, std::string_view name) {
    if (!map.is_array() || map.elements.size() % 2 != 0) return nullptr;
    for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2)
        if (map.elements[i].is_string() && map.elements[i].str == name) return &map.elements[i + 1];
    return nullptr;
}

}  // namespace

std::uint16_t crc16(std::string_view bytes) {
    std::uint16_t crc = 0;
    for (unsigned char c : bytes) crc = static_cast<std::uint16_t>((crc << 8) ^ crc16_lookup[((crc >> 8) ^ c) & 0xff]);
    return crc;
}

int key_slot(std::string_view key) {
    const auto open = key.find('{');
    if (open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) & (slot_count - 1);
}

std::vector<std::string> command_keys(const std::vector<std::string>& args) {
    std::vector<std::string> keys;
    if (args.empty()) return keys;
    const std::string_view name = args[0];
    auto from = [&](std::size_t i) {
        if (i < args.size()) keys.push_back(args[i]);
    };
    if (equals_upper(name, "PING") || equals_upper(name, "INFO") || equals_upper(name, "CLIENT") ||
        equals_upper(name, "SCRIPT") || equals_upper(name, "SELECT") || equals_upper(name, "ROLE") ||
        equals_upper(name, "SENTINEL") || equals_upper(name, "MULTI") || equals_upper(name, "EXEC") ||
        equals_upper(name, "DISCARD") || equals_upper(name, "SCAN") || equals_upper(name, "PUBLISH") ||
        equals_upper(name, "SUBSCRIBE") || equals_upper(name, "CLUSTER") || equals_upper(name, "ASKING") ||
        equals_upper(name, "HELLO") || equals_upper(name, "AUTH") || equals_upper(name, "ACL") ||
        equals_upper(name, "CONFIG") || equals_upper(name, "TIME") || equals_upper(name, "WAIT")) {
        return keys;
    }
    if (equals_upper(name, "EVAL") || equals_upper(name, "EVALSHA") || equals_upper(name, "FCALL")) {
        const auto n = args.size() > 2 ? to_number(args[2]) : std::nullopt;
        if (!n || *n < 0) return keys;
        for (long long i = 0; i < *n; ++i) from(3 + static_cast<std::size_t>(i));
        return keys;
    }
    if (equals_upper(name, "XREADGROUP") || equals_upper(name, "XREAD")) {
        // STREAMS key… id…: as many ids as keys follow.
        for (std::size_t i = 1; i < args.size(); ++i) {
            if (!equals_upper(args[i], "STREAMS")) continue;
            const std::size_t rest = args.size() - i - 1;
            for (std::size_t k = 0; k < rest / 2; ++k) from(i + 1 + k);
            break;
        }
        return keys;
    }
    if (equals_upper(name, "XINFO") || equals_upper(name, "XGROUP") || equals_upper(name, "OBJECT") ||
        equals_upper(name, "MEMORY")) {
        from(2);
        return keys;
    }
    if (equals_upper(name, "MSETNX") || equals_upper(name, "MSET")) {
        for (std::size_t i = 1; i < args.size(); i += 2) from(i);
        return keys;
    }
    if (equals_upper(name, "DEL") || equals_upper(name, "UNLINK") || equals_upper(name, "EXISTS") ||
        equals_upper(name, "MGET")) {
        for (std::size_t i = 1; i < args.size(); ++i) from(i);
        return keys;
    }
    from(1);
    return keys;
}

slot_of command_slot(const std::vector<std::string>& args) {
    slot_of out;
    for (const auto& k : command_keys(args)) {
        const int s = key_slot(k);
        if (out.slot && *out.slot != s) {
            out.cross = true;
            return out;
        }
        out.slot = s;
    }
    return out;
}

const node* slot_map::owner(int slot) const {
    const int i = owner_index(slot);
    return i < 0 ? nullptr : &primaries_[static_cast<std::size_t>(i)];
}

int slot_map::add_primary(const node& n) {
    for (std::size_t i = 0; i < primaries_.size(); ++i)
        if (primaries_[i] == n) return static_cast<int>(i);
    primaries_.push_back(n);
    return static_cast<int>(primaries_.size() - 1);
}

void slot_map::assign(int first, int last, int primary) {
    for (int s = first; s <= last; ++s) owner_[static_cast<std::size_t>(s)] = static_cast<std::int16_t>(primary);
}

void slot_map::move(int slot, const node& to) {
    if (slot < 0 || slot >= slot_count) return;
    node n = to;
    n.primary = true;
    assign(slot, slot, add_primary(n));
}

int slot_map::served() const {
    return static_cast<int>(std::count_if(owner_.begin(), owner_.end(), [](std::int16_t o) { return o >= 0; }));
}

map_result parse_shards(const value& reply, std::string_view default_host) {
    map_result out;
    if (!reply.is_array()) {
        out.error = reply.is_error() ? reply.str : "CLUSTER SHARDS: not an array";
        return out;
    }
    slot_map map;
    for (const auto& shard : reply.elements) {
        const value* slots = member(shard, "slots");
        const value* nodes = member(shard, "nodes");
        if (!slots || !nodes || !slots->is_array() || !nodes->is_array() || slots->elements.size() % 2 != 0) {
            out.error = "CLUSTER SHARDS: a shard without slots and nodes";
            return out;
        }
        std::optional<node> primary;
        for (const auto& n : nodes->elements) {
            const value* role = member(n, "role");
            const value* port = member(n, "port");
            const value* tls_port = member(n, "tls-port");
            const value* endpoint = member(n, "endpoint");
            const value* ip = member(n, "ip");
            const value* id = member(n, "id");
            const value* health = member(n, "health");
            long long p = 0;
            if (auto plain = port ? integer_of(*port) : std::nullopt)
                p = *plain;
            else if (auto tls = tls_port ? integer_of(*tls_port) : std::nullopt)
                p = *tls;
            if (!role || !role->is_string() || p <= 0 || p > 65535) {
                out.error = "CLUSTER SHARDS: a node without role and port";
                return out;
            }
            node x;
            // `endpoint` is the address clients are told to use (cluster-preferred-endpoint-type).
            if (endpoint && endpoint->is_string() && !endpoint->str.empty() && endpoint->str != "?")
                x.host = endpoint->str;
            else if (ip && ip->is_string() && !ip->str.empty() && ip->str != "?")
                x.host = ip->str;
            else
                x.host = std::string(default_host);
            x.port = static_cast<int>(p);
            if (id && id->is_string()) x.id = id->str;
            x.healthy = !health || !health->is_string() || health->str == "online";
            x.primary = role->str == "master";
            if (x.primary)
                primary = x;
            else
                map.add_replica(x);
        }
        if (slots->elements.empty()) continue;  // a shard that serves no slot (new, or emptied)
        if (!primary) {
            out.error = "CLUSTER SHARDS: a shard that serves slots has no primary";
            return out;
        }
        const int index = map.add_primary(*primary);
        for (std::size_t i = 0; i < slots->elements.size(); i += 2) {
            auto first = integer_of(slots->elements[i]);
            auto last = integer_of(slots->elements[i + 1]);
            if (!first || !last || !valid_range(*first, *last)) {
                out.error = "CLUSTER SHARDS: a slot range out of bounds";
                return out;
            }
            map.assign(static_cast<int>(*first), static_cast<int>(*last), index);
        }
    }
    out.map = std::move(map);
    return out;
}

map_result parse_slots(const value& reply, std::string_view default_host) {
    map_result out;
    if (!reply.is_array()) {
        out.error = reply.is_error() ? reply.str : "CLUSTER SLOTS: not an array";
        return out;
    }
    slot_map map;
    auto read_node = [&](const value& v, bool primary) -> std::optional<node> {
        if (!v.is_array() || v.elements.size() < 2) return std::nullopt;
        auto port = integer_of(v.elements[1]);
        if (!port || *port <= 0 || *port > 65535) return std::nullopt;
        node n;
        if (v.elements[0].is_string() && !v.elements[0].str.empty() && v.elements[0].str != "?")
            n.host = v.elements[0].str;
        else
            n.host = std::string(default_host);
        n.port = static_cast<int>(*port);
        if (v.elements.size() > 2 && v.elements[2].is_string()) n.id = v.elements[2].str;
        n.primary = primary;
        return n;
    };
    for (const auto& range : reply.elements) {
        if (!range.is_array() || range.elements.size() < 3) {
            out.error = "CLUSTER SLOTS: a range without its primary";
            return out;
        }
        auto first = integer_of(range.elements[0]);
        auto last = integer_of(range.elements[1]);
        auto primary = read_node(range.elements[2], true);
        if (!first || !last || !valid_range(*first, *last) || !primary) {
            out.error = "CLUSTER SLOTS: a range out of bounds or a node without host and port";
            return out;
        }
        map.assign(static_cast<int>(*first), static_cast<int>(*last), map.add_primary(*primary));
        for (std::size_t i = 3; i < range.elements.size(); ++i)
            if (auto r = read_node(range.elements[i], false);
                r && std::find(map.replicas().begin(), map.replicas().end(), *r) == map.replicas().end())
                map.add_replica(*r);
    }
    out.map = std::move(map);
    return out;
}

redirect read_redirect(const value& reply, std::string_view default_host) {
    redirect r;
    if (!reply.is_error()) return r;
    const std::string_view text = reply.str;
    if (reply.error_is("TRYAGAIN") || reply.error_is("CLUSTERDOWN") || reply.error_is("LOADING")) {
        r.what = redirect::kind::try_again;
        return r;
    }
    const bool moved = reply.error_is("MOVED");
    if (!moved && !reply.error_is("ASK")) return r;
    // "MOVED 3999 127.0.0.1:6381": the code, the slot, the endpoint.
    const auto first_space = text.find(' ');
    const auto second_space = first_space == std::string_view::npos ? first_space : text.find(' ', first_space + 1);
    if (second_space == std::string_view::npos) return r;
    const auto slot = to_number(text.substr(first_space + 1, second_space - first_space - 1));
    auto to = read_endpoint(text.substr(second_space + 1), default_host);
    if (!slot || *slot < 0 || *slot >= slot_count || !to) return r;
    r.what = moved ? redirect::kind::moved : redirect::kind::ask;
    r.slot = static_cast<int>(*slot);
    r.to = std::move(*to);
    return r;
}

std::optional<scan_position> read_scan_cursor(std::string_view cursor) {
    if (cursor == "0") return scan_position{};
    const auto colon = cursor.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto primary = to_number(cursor.substr(0, colon));
    auto rest = cursor.substr(colon + 1);
    if (!primary || *primary < 0 || !to_number(rest)) return std::nullopt;
    return scan_position{static_cast<std::size_t>(*primary), std::string(rest)};
}

std::string next_scan_cursor(std::size_t primary, std::string_view node_cursor, std::size_t primaries) {
    if (node_cursor != "0") return std::to_string(primary) + ":" + std::string(node_cursor);
    if (primary + 1 < primaries) return std::to_string(primary + 1) + ":0";
    return "0";
}

bool is_command(const std::vector<std::string>& args, std::string_view upper_name) {
    return !args.empty() && equals_upper(args[0], upper_name);
}

std::vector<std::pair<std::size_t, std::size_t>> transaction_spans(
    const std::vector<std::vector<std::string>>& commands) {
    std::vector<std::pair<std::size_t, std::size_t>> spans(commands.size());
    for (std::size_t i = 0; i < commands.size(); ++i) {
        std::size_t end = i;
        if (is_command(commands[i], "MULTI"))
            while (end + 1 < commands.size() && !is_command(commands[end], "EXEC")) ++end;
        for (std::size_t k = i; k <= end; ++k) spans[k] = {i, end};
        i = end;
    }
    return spans;
}

pipeline_plan plan_pipeline(const std::vector<std::vector<std::string>>& commands, const slot_map& map) {
    pipeline_plan plan;
    std::vector<std::size_t> keyless;  // waiting for the first group
    auto group_of = [&](int primary) -> pipeline_plan::group& {
        for (auto& g : plan.groups)
            if (g.primary == primary) return g;
        plan.groups.push_back({primary, {}});
        return plan.groups.back();
    };
    const auto spans = transaction_spans(commands);
    for (std::size_t i = 0; i < commands.size(); ++i) {
        const std::size_t end = spans[i].second;  // the block's last command (its EXEC), or i
        const bool block = end != i || is_command(commands[i], "MULTI");
        std::optional<int> slot;
        std::string problem;
        for (std::size_t k = i; k <= end && problem.empty(); ++k)
            if (is_command(commands[k], "SCAN") || is_command(commands[k], "KEYS") || is_command(commands[k], "DBSIZE"))
                problem = commands[k][0] + " reads the keys of one node; on a cluster it would miss the others'";
        for (std::size_t k = i; k <= end && problem.empty(); ++k) {
            const auto s = command_slot(commands[k]);
            if (s.cross || (s.slot && slot && *slot != *s.slot))
                problem =
                    block ? "a transaction whose keys hash to different slots" : "keys that hash to different slots";
            else if (s.slot)
                slot = s.slot;
        }
        if (problem.empty() && slot && map.owner_index(*slot) < 0)
            problem = "slot " + std::to_string(*slot) + " is served by no primary";
        if (!problem.empty()) {
            for (std::size_t k = i; k <= end; ++k) plan.refused.push_back({k, problem});
        } else if (!slot) {
            for (std::size_t k = i; k <= end; ++k) keyless.push_back(k);
        } else {
            auto& g = group_of(map.owner_index(*slot));
            for (std::size_t k = i; k <= end; ++k) g.commands.push_back(k);
        }
        i = end;
    }
    if (!keyless.empty()) {
        if (plan.groups.empty()) {
            if (map.empty()) {
                for (auto k : keyless) plan.refused.push_back({k, "no primary known"});
                return plan;
            }
            plan.groups.push_back({0, {}});
        }
        auto& first = plan.groups.front().commands;
        first.insert(first.end(), keyless.begin(), keyless.end());
        std::sort(first.begin(), first.end());
    }
    return plan;
}

}  // namespace outq::redis::cluster
