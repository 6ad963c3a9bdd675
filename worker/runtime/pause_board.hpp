#pragma once
// What this worker knows of its accounts' pauses: every pause it set (a 429,
// a provider's exhausted RateLimit, a circuit opening) or read (a claim that
// read the pause key), or heard of on the control channel (another worker's
// pause, an operator's pause or resume), until when.
//
// It feeds the outq_account_paused gauge, and it spares claims a read: the
// control channel vouches for what the board says of an account once the
// account's pause key was read after the last subscribe, because every
// change of a pause key is published on the channel (docs/protocol.md,
// "Control channel"). So a claim reads the key only for an account the board
// cannot vouch for: after a subscribe (messages may have been missed), when
// the link has not been proven for a while, and once per `reread_every` in
// any case (a pause key written by hand, or a publish lost with the worker
// that was about to send it). Pure: `now` is passed in.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace outq::runtime {

class pause_board {
  public:
    using clock = std::chrono::steady_clock;
    // How long a read stays vouched for, and how long a quiet link counts as
    // proven (the channel pings every 15 s when nothing else comes).
    static constexpr std::chrono::seconds reread_every{60};
    static constexpr std::chrono::seconds link_proof{40};

    // `pause_ms` left of the pause; negative: until resumed.
    void note(std::string_view provider, std::string_view account, std::int64_t pause_ms, clock::time_point now) {
        const auto until = pause_ms < 0 ? clock::time_point::max() : now + std::chrono::milliseconds(pause_ms);
        auto& e = entry_of(provider, account);
        e.until = std::max(e.until, until);
    }
    // What Redis holds now, as the control channel says it (it may shorten
    // what was noted: an operator's pause replaces any other).
    void set(std::string_view provider, std::string_view account, std::int64_t pause_ms, clock::time_point now) {
        auto& e = entry_of(provider, account);
        e.until = pause_ms < 0 ? clock::time_point::max() : now + std::chrono::milliseconds(pause_ms);
        ++e.changes;
    }
    // The account was resumed (control channel).
    void clear(std::string_view provider, std::string_view account) {
        auto& e = entry_of(provider, account);
        e.until = clock::time_point::min();
        ++e.changes;
    }
    // Something changed that the board cannot follow (a circuit closed: its
    // pause went, another may stay): the next claim reads the key.
    void forget(std::string_view provider, std::string_view account) {
        auto& e = entry_of(provider, account);
        ++e.changes;
        e.read_epoch = 0;
    }
    bool paused(std::string_view provider, std::string_view account, clock::time_point now) const {
        const auto* e = find(provider, account);
        return e && e->until > now;
    }

    // --- what the control channel vouches for ---------------------------------------
    // A (re)subscribe: what was read before may have changed unheard.
    void channel_up(clock::time_point now) {
        ++epoch_;
        live_ = true;
        proven_at_ = now;
    }
    void channel_down() { live_ = false; }
    // A message or a pong came: the link works.
    void channel_proven(clock::time_point now) { proven_at_ = now; }

    // Whether the board knows the account's pause as Redis holds it now.
    bool vouched(std::string_view provider, std::string_view account, clock::time_point now) const {
        if (!live_ || now - proven_at_ > link_proof) return false;
        const auto* e = find(provider, account);
        return e && e->read_epoch == epoch_ && now - e->read_at < reread_every;
    }
    // For a vouched account: the PTTL Redis would answer (-2 no pause, -1
    // until resumed, else ms left).
    std::int64_t pttl(std::string_view provider, std::string_view account, clock::time_point now) const {
        const auto* e = find(provider, account);
        if (!e || e->until <= now) return -2;
        if (e->until == clock::time_point::max()) return -1;
        return std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(e->until - now).count());
    }

    // Taken when a read of the account's pause key is sent; given back with
    // its reply: the reply counts only if nothing was heard of the account in
    // between (a message heard first is newer than the reply, or as new).
    struct ticket {
        std::uint64_t epoch = 0;
        std::uint64_t changes = 0;
    };
    ticket before_read(std::string_view provider, std::string_view account) const {
        const auto* e = find(provider, account);
        return {epoch_, e ? e->changes : 0};
    }
    // The reply: `pttl` as PTTL answers it.
    void read(std::string_view provider, std::string_view account, ticket t, std::int64_t pttl, clock::time_point now) {
        auto& e = entry_of(provider, account);
        if (t.changes != e.changes) return;  // a message heard since is as new or newer
        if (!live_ || t.epoch != epoch_) {
            if (pttl != -2) note(provider, account, pttl, now);  // for the gauge only
            return;
        }
        e.until = pttl == -2 ? clock::time_point::min()
                  : pttl < 0 ? clock::time_point::max()
                             : now + std::chrono::milliseconds(pttl);
        e.read_epoch = epoch_;
        e.read_at = now;
    }

  private:
    struct entry {
        clock::time_point until = clock::time_point::min();
        std::uint64_t changes = 0;     // messages heard of the account
        std::uint64_t read_epoch = 0;  // the subscribe its last counted read belongs to (0: none)
        clock::time_point read_at{};
    };
    entry& entry_of(std::string_view provider, std::string_view account) {
        return entries_[{std::string(provider), std::string(account)}];
    }
    const entry* find(std::string_view provider, std::string_view account) const {
        auto it = entries_.find({std::string(provider), std::string(account)});
        return it == entries_.end() ? nullptr : &it->second;
    }

    std::map<std::pair<std::string, std::string>, entry> entries_;
    std::uint64_t epoch_ = 0;  // subscribes so far
    bool live_ = false;
    clock::time_point proven_at_{};
};

}  // namespace outq::runtime
