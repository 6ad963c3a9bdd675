#pragma once
// The routing half of a connection to a Redis Cluster: it keeps the slot map
// and one plain connection per node it has talked to, splits each pipeline by
// the primary of each command's slot (redis_cluster.hpp decides), sends the
// parts, and follows what the replies ask — MOVED (the map is read again),
// ASK (ASKING and the command, once, on the node named), TRYAGAIN,
// CLUSTERDOWN and LOADING (sent again after a short wait) — before it hands
// back one reply per command, in order, as a single connection would.
//
// What it does not promise: the parts of one pipeline that go to different
// primaries are not ordered among themselves (their commands live in
// different slots, so no command outq sends depends on that order), and a
// command sent again after a redirect runs after the others of its pipeline.
// Owned by redis::connection (redis_connection.hpp), which hands it every
// exec when `connection_options::cluster` is set.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outq/redis_cluster.hpp"
#include "outq/redis_connection.hpp"

namespace outq::redis {

class cluster_router {
  public:
    cluster_router(boost::asio::any_io_executor ex, connection_options options);
    ~cluster_router();

    boost::asio::awaitable<exec_result> exec(const std::vector<command>& commands,
                                             std::optional<std::chrono::milliseconds> timeout, on_stale stale);
    // The connection to one node for what has no slot and must stay on one
    // connection (a subscriber): the first seed's.
    connection& any_node();
    void close();
    bool is_connected() const;
    std::uint64_t not_primary_replies() const;
    std::string peer() const { return last_peer_; }
    // Redirects followed since the start, for metrics and the fault tests.
    std::uint64_t moved() const { return moved_; }
    std::uint64_t asked() const { return asked_; }
    std::uint64_t waited() const { return waited_; }

  private:
    boost::asio::awaitable<exec_result> refresh();
    // One SCAN step over the primaries in turn (redis_cluster.hpp, scan cursors).
    boost::asio::awaitable<exec_result> scan(const std::vector<std::string>& args,
                                             std::optional<std::chrono::milliseconds> timeout, on_stale stale);
    connection& node_connection(const cluster::node& n);

    boost::asio::any_io_executor executor_;
    connection_options options_;  // the template of each node's options
    std::optional<cluster::slot_map> map_;
    bool map_stale_ = true;
    std::map<std::string, std::unique_ptr<connection>> nodes_;  // by host:port
    std::string last_peer_;
    std::uint64_t moved_ = 0, asked_ = 0, waited_ = 0;
};

}  // namespace outq::redis
