#pragma once
// The deliveries this worker holds: every stream entry it was given and has
// not yet written an outcome for, each held through a `slot`. A slot is a
// move-only handle that ends exactly once: `written()` when the writer knows
// its outcome landed, `abandon()` (or its destructor) when it is left pending
// in Redis for another worker to take over. So a delivery can neither leak
// nor be counted twice, whatever path (or exception) ends it.
//
// Owned by `worker_runtime`. Slots are opened by admission, their ownership
// state is confirmed or marked lost by the heartbeat, and they close in the
// writer (written) or wherever a delivery is dropped (abandoned).
#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "outq/detail/async_event.hpp"

namespace outq::runtime {

class slot;

// A held entry: its id within its partition's stream (two partitions' streams
// can give the same id).
struct held_key {
    std::string entry_id;
    int partition = 0;
    bool operator==(const held_key&) const = default;
};
struct held_key_hash {
    std::size_t operator()(const held_key& k) const noexcept {
        return std::hash<std::string>{}(k.entry_id) ^ (static_cast<std::size_t>(k.partition) * 0x9E3779B97F4A7C15ull);
    }
};

class ledger {
  public:
    using clock = std::chrono::steady_clock;
    using key = held_key;
    struct entry {
        std::string job_id;           // empty until the job is parsed
        bool holds_marker = false;    // the in-flight marker of the job id is this delivery's
        clock::time_point confirmed;  // when Redis last confirmed this consumer owns the entry
        bool lost = false;            // another consumer owns it now: never send it
        bool waiting = false;         // waiting for a rate-limit permit (does not use a concurrency slot)
    };

    explicit ledger(boost::asio::any_io_executor ex) : changed_(std::move(ex)) {}
    ledger(const ledger&) = delete;
    ledger& operator=(const ledger&) = delete;

    // A slot for a delivery read at `delivered_at`; an empty slot when the
    // entry is held already (then the caller drops the duplicate delivery).
    slot open(key k, clock::time_point delivered_at);

    int held() const { return static_cast<int>(entries_.size()); }
    int active() const { return held() - waiting_; }
    bool holds(const key& k) const { return entries_.count(k) != 0; }
    const std::unordered_map<key, entry, held_key_hash>& entries() const { return entries_; }

    void confirm(const key& k, clock::time_point at);
    void mark_lost(const key& k);

    // Room promised to reads in flight (one fetcher per partition), not yet
    // opened as slots: the other fetchers count it as taken.
    class reservation;
    int reserved() const { return reserved_; }
    reservation reserve(int n);

    std::uint64_t written() const { return written_; }
    std::uint64_t abandoned() const { return abandoned_; }

    // Notified whenever a slot closes or stops using a concurrency slot.
    detail::async_event& changed() { return changed_; }

  private:
    friend class slot;
    using node = std::pair<const key, entry>;  // stable across rehashing, unlike iterators
    void close(node* n, bool written);
    void set_waiting(entry& e, bool waiting);

    std::unordered_map<key, entry, held_key_hash> entries_;
    int waiting_ = 0;
    int reserved_ = 0;
    std::uint64_t written_ = 0, abandoned_ = 0;
    detail::async_event changed_;
};

class slot {
  public:
    slot() = default;
    slot(slot&& other) noexcept : ledger_(other.ledger_), node_(other.node_) { other.ledger_ = nullptr; }
    slot& operator=(slot&& other) noexcept {
        if (this != &other) {
            abandon();
            ledger_ = other.ledger_;
            node_ = other.node_;
            other.ledger_ = nullptr;
        }
        return *this;
    }
    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;
    ~slot() { abandon(); }

    explicit operator bool() const { return ledger_ != nullptr; }
    const std::string& entry_id() const { return node_->first.entry_id; }
    int partition() const { return node_->first.partition; }
    const ledger::key& key() const { return node_->first; }
    ledger::entry& state() { return node_->second; }
    const ledger::entry& state() const { return node_->second; }

    // While waiting for a permit, the delivery gives its concurrency slot
    // back, so one throttled account cannot stall the others.
    void set_waiting(bool waiting) { ledger_->set_waiting(node_->second, waiting); }
    // The outcome is in Redis.
    void written() { end(true); }
    // Left pending in Redis: another worker takes it over after the visibility timeout.
    void abandon() { end(false); }

  private:
    friend class ledger;
    slot(ledger* l, ledger::node* n) : ledger_(l), node_(n) {}
    void end(bool written) {
        if (!ledger_) return;
        auto* l = ledger_;
        ledger_ = nullptr;
        l->close(node_, written);
    }
    ledger* ledger_ = nullptr;
    ledger::node* node_ = nullptr;
};

// Room a read in flight may fill: given back when the read's entries are
// admitted (they hold slots then) or the read failed, by the destructor.
class ledger::reservation {
  public:
    reservation() = default;
    reservation(ledger* l, int n) : ledger_(l), n_(n) { ledger_->reserved_ += n_; }
    reservation(reservation&& o) noexcept : ledger_(o.ledger_), n_(o.n_) { o.ledger_ = nullptr; }
    reservation& operator=(reservation&&) = delete;
    reservation(const reservation&) = delete;
    ~reservation() {
        if (!ledger_) return;
        ledger_->reserved_ -= n_;
        ledger_->changed_.notify_all();
    }
    int size() const { return n_; }

  private:
    ledger* ledger_ = nullptr;
    int n_ = 0;
};

inline ledger::reservation ledger::reserve(int n) {
    return reservation(this, n);
}

inline slot ledger::open(key k, clock::time_point delivered_at) {
    auto [it, inserted] = entries_.try_emplace(std::move(k));
    if (!inserted) return {};
    it->second.confirmed = delivered_at;
    return slot(this, &*it);
}

inline void ledger::confirm(const key& k, clock::time_point at) {
    auto it = entries_.find(k);
    if (it != entries_.end() && !it->second.lost && it->second.confirmed < at) it->second.confirmed = at;
}

inline void ledger::mark_lost(const key& k) {
    auto it = entries_.find(k);
    if (it != entries_.end()) it->second.lost = true;
}

inline void ledger::set_waiting(entry& e, bool waiting) {
    if (e.waiting == waiting) return;
    e.waiting = waiting;
    waiting_ += waiting ? 1 : -1;
    changed_.notify_all();
}

inline void ledger::close(node* n, bool written) {
    if (n->second.waiting) --waiting_;
    entries_.erase(entries_.find(n->first));
    ++(written ? written_ : abandoned_);
    changed_.notify_all();
}

}  // namespace outq::runtime
