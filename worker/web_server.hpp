#pragma once
// `outq web`: the operators' dashboard, a small HTTP server on Beast in its own
// process (never on a worker's event loop: scans and replays must not compete
// with sends). It serves the page (web_assets.cpp, compiled in) and a JSON
// API over the queue layer's commands:
//
//   GET  /api/overview                 the queue's counts, summed over partitions
//   GET  /api/dead?provider=&account=&class=&status=&q=&before=&limit=
//                                      dead letters newest first, a page and "scanned N of M"
//   GET  /api/dead/<partition>/<entry> one letter, every field
//   GET  /api/accounts                 each account's pause, window use and circuit
//   GET  /api/job/<id>                 the job's result value (in its id's partition)
//   POST /api/accounts/pause           {"provider", "account"[, "for_ms", "reason"]}
//   POST /api/accounts/resume          {"provider", "account"}: the jobs it held due now
//   POST /api/dead/replay              {"letters": [{"partition": p, "entry": id}, …]}
//   POST /api/dead/replay-matching     {"filter": {…}, "dry_run": true} counts the letters not yet
//                                      replayed and names the newest; {"filter", "upto", "count"}
//                                      replays exactly those (409 when they changed meanwhile)
//
// Who may call what is web::check (src/outq/web/guard.hpp): Host checked,
// the token for every change (X-Outq-Token) and off loopback for every API
// read, read-only mode. Every request has a deadline; a body over 64 KiB is refused.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>

#include "cli.hpp"
#include "outq/web/guard.hpp"

namespace outq::web {

class server {
  public:
    server(boost::asio::any_io_executor ex, cli::context& ctx, guard_settings settings);
    ~server();
    // "host:port"; throws std::runtime_error when it cannot listen.
    void listen(const std::string& address);
    unsigned short port() const;
    boost::asio::awaitable<void> serve();
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// The page's files: path → (content type, body); empty body for an unknown path.
struct asset {
    std::string_view content_type;
    std::string_view body;
};
asset find_asset(std::string_view path);

}  // namespace outq::web
