#include "outq/redis_cluster_client.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace outq::redis {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Redirects and waits one exec follows before it hands back what it has.
constexpr int max_rounds = 6;

std::string key_of(const cluster::node& n) {
    return n.host + ":" + std::to_string(n.port);
}

value error_value(std::string text) {
    value v;
    v.type = value::kind::error;
    v.str = std::move(text);
    return v;
}

}  // namespace

cluster_router::cluster_router(asio::any_io_executor ex, connection_options options)
    : executor_(std::move(ex)), options_(std::move(options)) {}

cluster_router::~cluster_router() = default;

connection& cluster_router::node_connection(const cluster::node& n) {
    auto& slot = nodes_[key_of(n)];
    if (!slot) {
        connection_options o = options_;
        o.cluster.clear();
        o.sentinel = {};
        o.want_client_id = false;  // CLIENT UNBLOCK would have to reach the very node: short blocks instead
        o.where.host = n.host;
        o.where.port = static_cast<std::uint16_t>(n.port);
        o.where.db = 0;
        slot = std::make_unique<connection>(executor_, std::move(o));
    }
    return *slot;
}

connection& cluster_router::any_node() {
    const auto& seed = options_.cluster.front();
    return node_connection(cluster::node{seed.host, seed.port, "", true, true});
}

void cluster_router::close() {
    for (auto& [_, c] : nodes_) c->close();
}

bool cluster_router::is_connected() const {
    return std::any_of(nodes_.begin(), nodes_.end(), [](const auto& n) { return n.second->is_connected(); });
}

std::uint64_t cluster_router::not_primary_replies() const {
    std::uint64_t n = 0;
    for (const auto& [_, c] : nodes_) n += c->not_primary_replies();
    return n;
}

asio::awaitable<exec_result> cluster_router::refresh() {
    // The primaries known first (they know the map best), then the seeds.
    std::vector<cluster::node> ask;
    if (map_)
        for (const auto& p : map_->primaries()) ask.push_back(p);
    for (const auto& s : options_.cluster) {
        cluster::node n{s.host, s.port, "", true, true};
        if (std::find(ask.begin(), ask.end(), n) == ask.end()) ask.push_back(n);
    }
    exec_result last;
    last.ec = asio::error::make_error_code(asio::error::not_found);
    last.error = "redis cluster: no node answered CLUSTER SHARDS";
    for (const auto& n : ask) {
        auto& c = node_connection(n);
        auto r = co_await c.exec(command("CLUSTER").arg("SHARDS"), std::nullopt);
        if (!r.ok()) {
            last = std::move(r);
            continue;
        }
        auto m = cluster::parse_shards(r.replies[0], n.host);
        if (!m.map && r.replies[0].is_error() && r.replies[0].error_is("ERR")) {
            // Before Redis 7: CLUSTER SLOTS.
            r = co_await c.exec(command("CLUSTER").arg("SLOTS"), std::nullopt);
            if (!r.ok()) {
                last = std::move(r);
                continue;
            }
            m = cluster::parse_slots(r.replies[0], n.host);
        }
        if (!m.map || m.map->empty()) {
            last.ec = asio::error::make_error_code(asio::error::invalid_argument);
            last.error = "redis cluster: " + key_of(n) + ": " + (m.map ? "no primary serves a slot" : m.error);
            continue;
        }
        map_ = std::move(m.map);
        map_stale_ = false;
        co_return exec_result{};
    }
    co_return last;
}

asio::awaitable<exec_result> cluster_router::scan(const std::vector<std::string>& args,
                                                  std::optional<std::chrono::milliseconds> timeout, on_stale stale) {
    exec_result out;
    const auto at = cluster::read_scan_cursor(args[1]);
    const std::size_t primaries = map_->primaries().size();
    if (!at || at->primary >= primaries) {
        out.replies.push_back(error_value("ERR invalid cursor: not one outq handed out for this cluster"));
        co_return out;
    }
    command c(args[0]);
    c.arg(at->cursor);
    for (std::size_t i = 2; i < args.size(); ++i) c.arg(args[i]);
    const cluster::node node = map_->primaries()[at->primary];
    last_peer_ = key_of(node);
    std::vector<command> one;
    one.push_back(std::move(c));
    auto r = co_await node_connection(node).exec(one, timeout, stale);
    if (!r.ok()) {
        map_stale_ = true;
        co_return r;
    }
    auto& reply = r.replies[0];
    if (reply.is_array() && reply.elements.size() == 2 && reply.elements[0].is_string())
        reply.elements[0].str = cluster::next_scan_cursor(at->primary, reply.elements[0].str, primaries);
    co_return r;
}

asio::awaitable<exec_result> cluster_router::exec(const std::vector<command>& commands,
                                                  std::optional<std::chrono::milliseconds> timeout, on_stale stale) {
    exec_result out;
    if (commands.empty()) co_return out;
    if (!map_ || map_stale_) {
        auto r = co_await refresh();
        if (!r.ok() && !map_) co_return r;  // with an older map, go on: its redirects correct it
    }
    std::vector<std::vector<std::string>> args;
    args.reserve(commands.size());
    for (const auto& c : commands) args.push_back(c.args());
    if (args.size() == 1 && args[0].size() >= 2 && cluster::is_command(args[0], "SCAN"))
        co_return co_await scan(args[0], timeout, stale);
    const auto blocks = cluster::transaction_spans(args);
    out.replies.resize(commands.size());
    std::vector<std::size_t> todo(commands.size());
    for (std::size_t i = 0; i < todo.size(); ++i) todo[i] = i;
    asio::steady_timer pause(executor_);
    bool wait = false;
    for (int round = 0; round < max_rounds && !todo.empty(); ++round) {
        if (wait) {
            ++waited_;
            pause.expires_after(std::chrono::milliseconds(50 << round));
            co_await pause.async_wait(asio::use_awaitable);
            wait = false;
        }
        if (map_stale_) co_await refresh();  // on failure the map MOVED corrected is kept
        std::vector<std::vector<std::string>> part;
        part.reserve(todo.size());
        for (auto i : todo) part.push_back(args[i]);
        const auto plan = cluster::plan_pipeline(part, *map_);
        for (const auto& no : plan.refused)
            out.replies[todo[no.command]] = error_value("CROSSSLOT outq cannot route this command: " + no.reason);
        // The nodes copied now: another exec on this connection may read the map
        // again while this one waits for a node.
        std::vector<cluster::node> targets;
        for (const auto& g : plan.groups) targets.push_back(map_->primaries()[static_cast<std::size_t>(g.primary)]);
        std::vector<std::size_t> again;
        std::vector<std::pair<std::size_t, cluster::node>> asks;  // the command, where
        for (std::size_t gi = 0; gi < plan.groups.size(); ++gi) {
            const auto& g = plan.groups[gi];
            const cluster::node& node = targets[gi];
            std::vector<command> sub;
            sub.reserve(g.commands.size());
            for (auto k : g.commands) sub.push_back(commands[todo[k]]);
            auto& c = node_connection(node);
            last_peer_ = key_of(node);
            auto r = co_await c.exec(sub, timeout, stale);
            if (!r.ok()) {
                map_stale_ = true;  // the node may have failed over: read the map again next time
                co_return r;
            }
            for (std::size_t j = 0; j < g.commands.size(); ++j) {
                const std::size_t i = todo[g.commands[j]];
                auto rd = cluster::read_redirect(r.replies[j], node.host);
                // EXECABORT: a command queued in the block was redirected; the
                // block did not run, and goes again whole (below).
                if (rd.what == cluster::redirect::kind::none && !r.replies[j].error_is("EXECABORT")) {
                    // A demoted primary (UNBLOCKED mid-read, READONLY): the map is old.
                    if (failover::says_not_primary(r.replies[j])) map_stale_ = true;
                    out.replies[i] = std::move(r.replies[j]);
                    continue;
                }
                const std::size_t first = blocks[i].first;
                const bool block = blocks[i].second != first;
                if (rd.what == cluster::redirect::kind::moved) {
                    ++moved_;
                    map_->move(rd.slot, rd.to);
                    map_stale_ = true;
                    again.push_back(first);
                } else if (rd.what == cluster::redirect::kind::ask && !block) {
                    ++asked_;
                    asks.emplace_back(i, rd.to);
                } else {
                    // TRYAGAIN, CLUSTERDOWN, LOADING, an ASK inside a block, or EXECABORT.
                    if (rd.what != cluster::redirect::kind::none) wait = true;
                    again.push_back(first);
                }
                out.replies[i] = std::move(r.replies[j]);  // what stands if no round is left
            }
        }
        for (auto& [i, to] : asks) {
            std::vector<command> sub;
            sub.push_back(command("ASKING"));
            sub.push_back(commands[i]);
            auto& c = node_connection(to);
            auto r = co_await c.exec(sub, timeout, stale);
            if (!r.ok()) co_return r;
            auto rd = cluster::read_redirect(r.replies[1], to.host);
            if (rd.what == cluster::redirect::kind::none) {
                out.replies[i] = std::move(r.replies[1]);
                continue;
            }
            if (rd.what == cluster::redirect::kind::moved) {
                ++moved_;
                map_->move(rd.slot, rd.to);
                map_stale_ = true;
            } else {
                wait = true;
            }
            again.push_back(i);
            out.replies[i] = std::move(r.replies[1]);
        }
        // Each block again whole, in the order of the pipeline.
        std::sort(again.begin(), again.end());
        again.erase(std::unique(again.begin(), again.end()), again.end());
        todo.clear();
        for (auto first : again)
            for (std::size_t k = first; k <= blocks[first].second; ++k) todo.push_back(k);
    }
    co_return out;
}

}  // namespace outq::redis
