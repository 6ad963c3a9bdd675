#pragma once
// Redis Cluster, the decisions: which slot a key lives in, which commands of
// a pipeline go to which primary, what the slot map is (from CLUSTER SHARDS,
// or CLUSTER SLOTS before Redis 7), and what an error reply asks the client to
// do (follow MOVED or ASK, wait on TRYAGAIN/CLUSTERDOWN/LOADING). Pure code:
// the connections that act on these answers belong to the I/O layer, and the
// tests feed replies captured from a real cluster.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outq/resp.hpp"

namespace outq::redis::cluster {

constexpr int slot_count = 16384;

// CRC16-CCITT (XMODEM), the cluster's key hash (cluster spec, "Keys distribution model").
std::uint16_t crc16(std::string_view bytes);
// The slot of a key: of its hash tag — the bytes between the first `{` and the
// first `}` after it, when there are any — else of the whole key.
int key_slot(std::string_view key);

// The keys a command names, by the positions the commands outq sends use
// (EVAL/EVALSHA by their key count, XREADGROUP/XREAD after STREAMS, XINFO and
// XGROUP after the subcommand, MSETNX every other argument, DEL every
// argument); none for a command without keys (PING, INFO, PUBLISH, SCAN, …).
std::vector<std::string> command_keys(const std::vector<std::string>& args);

// The slot a command must go to: none for a command without keys; `cross`
// when its keys hash to different slots (Redis would answer CROSSSLOT).
struct slot_of {
    std::optional<int> slot;
    bool cross = false;
};
slot_of command_slot(const std::vector<std::string>& args);

struct node {
    std::string host;
    int port = 0;
    std::string id;  // the node id, when the reply gives it
    bool primary = true;
    bool healthy = true;  // CLUSTER SHARDS' health: online (a failed or loading node is not dialled)
    bool operator==(const node& o) const { return host == o.host && port == o.port; }
};

// Which primary serves each slot, and their replicas.
class slot_map {
  public:
    // The primary serving `slot`, none when the slot is not served (CLUSTERDOWN).
    const node* owner(int slot) const;
    const std::vector<node>& primaries() const { return primaries_; }
    const std::vector<node>& replicas() const { return replicas_; }
    // Index into primaries(), -1 when the slot is not served.
    int owner_index(int slot) const { return slot >= 0 && slot < slot_count ? owner_[slot] : -1; }
    // A MOVED answer: `slot` is served by `to` now (added as a primary when new).
    // The rest of the map is refreshed by the caller soon after: one MOVED
    // usually means a reshard or a failover moved more than one slot.
    void move(int slot, const node& to);
    bool empty() const { return primaries_.empty(); }
    // Slots served, for a CLUSTERDOWN diagnosis: 16384 when the map is whole.
    int served() const;

    // Appends a primary (or finds it) and gives its index.
    int add_primary(const node& n);
    void assign(int first, int last, int primary);
    void add_replica(const node& n) { replicas_.push_back(n); }

  private:
    std::vector<node> primaries_;
    std::vector<node> replicas_;
    std::array<std::int16_t, slot_count> owner_ = filled();
    static std::array<std::int16_t, slot_count> filled() {
        std::array<std::int16_t, slot_count> a{};
        a.fill(-1);
        return a;
    }
};

// A slot map from the reply to CLUSTER SHARDS (Redis 7) or CLUSTER SLOTS;
// `default_host` stands for a node whose address the reply leaves empty or
// `?` (Redis then means "the address you reached me on"). Nothing on a reply
// of another shape: the error says what was wrong.
struct map_result {
    std::optional<slot_map> map;
    std::string error;
};
map_result parse_shards(const value& reply, std::string_view default_host);
map_result parse_slots(const value& reply, std::string_view default_host);

// What an error reply asks for.
struct redirect {
    enum class kind {
        none,       // not a cluster answer: the command's own error
        moved,      // the slot lives on `to` now: send there, refresh the map
        ask,        // during a migration: send ASKING then the command to `to`, once
        try_again,  // TRYAGAIN (a multi-key command mid-migration), CLUSTERDOWN, LOADING: the
                    // command did not run; send it again after a backoff, to the same slot owner
    };
    kind what = kind::none;
    int slot = -1;
    node to;
};
// `default_host`: the host of the connection that got it, for an empty or `?` host.
redirect read_redirect(const value& reply, std::string_view default_host);

// Whether `args` is the command `upper_name` (its name in any case).
bool is_command(const std::vector<std::string>& args, std::string_view upper_name);
// For each command of a pipeline, the span [first, last] of the MULTI … EXEC
// block it is in (an unterminated block runs to the end), itself alone otherwise.
std::vector<std::pair<std::size_t, std::size_t>> transaction_spans(
    const std::vector<std::vector<std::string>>& commands);

// SCAN over a cluster walks the primaries in turn: the cursor handed back is
// "<primary>:<that node's cursor>", and "0" only when the last primary is done.
struct scan_position {
    std::size_t primary = 0;
    std::string cursor = "0";
};
std::optional<scan_position> read_scan_cursor(std::string_view cursor);
std::string next_scan_cursor(std::size_t primary, std::string_view node_cursor, std::size_t primaries);

// A pipeline split by owner: for each primary that owns a command's slot, the
// indexes of its commands, in order. Commands without keys go with the first
// group (any node answers them); a MULTI … EXEC block goes whole with its
// first keyed command. A cross-slot command or block, a slot no primary
// serves, or a command that reads one node's keys (SCAN, KEYS, DBSIZE: on a
// cluster it would answer for part of the keys as if for all) is left out,
// its index in `refused` with the reason.
struct pipeline_plan {
    struct group {
        int primary = -1;  // index into slot_map::primaries()
        std::vector<std::size_t> commands;
    };
    std::vector<group> groups;
    struct refusal {
        std::size_t command;
        std::string reason;
    };
    std::vector<refusal> refused;
};
pipeline_plan plan_pipeline(const std::vector<std::vector<std::string>>& commands, const slot_map& map);

}  // namespace outq::redis::cluster
