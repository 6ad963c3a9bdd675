#pragma once
// One Redis connection: Asio owns the socket (TCP or TLS), hiredis frames the
// protocol. `exec` pipelines a batch of commands in one write and reads all
// their replies, under one deadline. The connection reconnects lazily: any
// I/O error or missed deadline closes it, and the next exec dials again
// (with AUTH and SELECT). Calls are serialised; callers batch their commands.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outq/config.hpp"
#include "outq/resp.hpp"

namespace outq::redis {

class cluster_router;

struct endpoint {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    bool tls = false;
    std::string user;
    std::string password;
    int db = 0;
};

// redis://[[user]:password@]host[:port][/db] and rediss:// (TLS).
std::optional<endpoint> parse_url(std::string_view url, std::string& error);

// Where Redis Sentinel says the primary is: the sentinels asked in turn, the
// master's name, and the sentinels' own credentials (often none).
struct sentinel_options {
    std::string master;
    std::vector<endpoint> nodes;
    bool empty() const { return nodes.empty(); }
};

struct connection_options {
    // The data node. With `sentinel`, its host and port are those Sentinel
    // names at every dial; user, password, db and TLS stay these. With
    // `cluster`, these apply to every node of the cluster.
    endpoint where;
    sentinel_options sentinel;
    // Redis Cluster: some of its nodes (the slot map is read from the first
    // that answers). Each exec is then routed by slot (redis_cluster_client.hpp).
    std::vector<endpoint> cluster;
    std::string tls_ca_file;  // empty: system trust store
    bool tls_verify = true;
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds command_timeout{5000};
    std::string client_name;      // CLIENT SETNAME, shows in CLIENT LIST
    bool want_client_id = false;  // ask CLIENT ID at connect (to be unblocked with CLIENT UNBLOCK)
    // The replies of one exec may not be longer than this (0: no limit): past
    // it the connection stops reading and closes (exec_result::too_large), so
    // an oversized reply never sits whole in memory.
    std::size_t max_reply_bytes = 0;
};

namespace failover {
// A reply saying this node is no longer the primary (READONLY: a replica now;
// MASTERDOWN: a replica that lost its primary; UNBLOCKED: a blocked read ended
// because the node changed role). The connection is closed on it, so that the
// next call dials again and, with Sentinel, asks where the primary is now.
bool says_not_primary(const value& v);
// The [host, port] reply of SENTINEL GET-MASTER-ADDR-BY-NAME; none for a nil
// (the master's name is unknown) or any other shape.
std::optional<std::pair<std::string, std::uint16_t>> parse_master_address(const value& v);
// The first element of ROLE's reply ("master", "slave", "sentinel"); empty otherwise.
std::string parse_role(const value& v);
// Sentinel's +switch-master message ("<master> <old ip> <old port> <new ip> <new port>"):
// the new primary's host:port when it is about `master`, none otherwise.
std::optional<std::string> parse_switch_master(std::string_view payload, std::string_view master);
}  // namespace failover

// The options of `settings` (config.hpp): the URL parsed, the password and the
// sentinels applied. Throws config_error naming the key.
connection_options options_from(const redis_settings& settings);

// Whether a batch may be sent again when a connection that sat idle turns out
// to be dead (the peer restarted): only for commands whose second application
// changes nothing more than the first.
enum class on_stale { fail, retry_once };

struct exec_result {
    boost::system::error_code ec;  // transport failure; replies are empty then
    std::string error;             // what failed, for logs
    std::vector<value> replies;    // one per command, Redis errors included as values
    bool too_large = false;        // the replies were longer than max_reply_bytes: not read (ec is set)
    bool ok() const { return !ec; }
};

// A message pushed to a subscriber (RESP2 `message <channel> <payload>`).
struct pushed_message {
    std::string channel;
    std::string payload;
};

struct push_result {
    boost::system::error_code ec;  // transport failure (the connection is closed then)
    std::string error;
    std::optional<pushed_message> message;  // none: the wait passed quietly
    bool ok() const { return !ec; }
};

class connection {
  public:
    connection(boost::asio::any_io_executor ex, connection_options options);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Sends every command in one write and returns their replies. `timeout`
    // defaults to the command timeout (a blocking command adds its own wait).
    boost::asio::awaitable<exec_result> exec(const std::vector<command>& commands,
                                             std::optional<std::chrono::milliseconds> timeout = std::nullopt);
    boost::asio::awaitable<exec_result> exec(const command& c,
                                             std::optional<std::chrono::milliseconds> timeout = std::nullopt);
    // As exec; with on_stale::retry_once, a transport failure on a connection
    // that was already open (not dialled for this call) before any reply came
    // is retried once on a fresh connection.
    boost::asio::awaitable<exec_result> exec(const std::vector<command>& commands,
                                             std::optional<std::chrono::milliseconds> timeout, on_stale stale);
    // --- pub/sub (RESP2) -------------------------------------------------------
    // SUBSCRIBE to `channels` (dialling first when not connected) and wait, under
    // the command timeout, for every confirmation. From then on the connection
    // is a subscriber: use only next_message(), ping_subscribed() and close() on
    // it (never exec). The caller owns reconnecting: after any failure the
    // connection is closed, and subscribe() dials again. A message that comes
    // before the last confirmation is kept for next_message(); close() drops
    // what was kept (messages of a closed connection may be stale).
    boost::asio::awaitable<exec_result> subscribe(const std::vector<std::string>& channels);
    // The next message pushed on a subscribed connection, waiting at most
    // `wait`. Nothing within `wait` is not a failure: ok() with no message, the
    // connection kept. A transport failure (or interrupt()) closes it.
    boost::asio::awaitable<push_result> next_message(std::chrono::milliseconds wait);
    // PING on a subscribed connection: the link is alive when its pong comes
    // within the command timeout (messages that come first are kept for
    // next_message()); otherwise the connection is closed.
    boost::asio::awaitable<exec_result> ping_subscribed();
    // Ends a pending next_message() or ping_subscribed() at once (it returns
    // operation_aborted) and closes the connection.
    void interrupt();
    bool subscribed() const;

    // The server's id of this connection (CLIENT ID), 0 when not known.
    std::int64_t client_id() const;
    // Replies that said the node is not the primary (failover::says_not_primary),
    // since the connection was made; each closed the connection.
    std::uint64_t not_primary_replies() const;
    // host:port of the node dialled last (Sentinel's answer, or the URL's).
    std::string peer() const;
    void close();
    // The primary moved (Sentinel announced it): a call in flight ends as on a
    // lost connection (its caller retries, as after any), and the next call
    // dials again, asking Sentinel where the primary is.
    void redial();
    bool is_connected() const;
    const connection_options& options() const;

    // The cluster routing of this connection, when its options name a cluster.
    const class cluster_router* cluster() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::unique_ptr<class cluster_router> cluster_;
};

}  // namespace outq::redis
