// One instrument's limit order book in a caller-provided, fixed-size region.
//
// Memory model. The region holds a header, an array of order slots, an array
// of price-level slots and an open-addressing hash of order id -> slot. All
// links are 32-bit slot indices; nothing in the region is a pointer, so the
// region can be mapped at different addresses in different processes
// (PostgreSQL shared memory). Everything is trivially copyable and sized once
// by format(). Slots come from a bump watermark, then from intrusive free
// lists; running out is a clean reject.
//
// Structure. Each side keeps its levels in a doubly linked list from best to
// worst (best price in O(1)) and in a treap keyed by price (finding where a
// new level goes in O(log levels)). Each level keeps its orders in an
// intrusive FIFO list (time priority). The id hash gives expected O(1)
// cancel and keeps ids from a sequence side by side (see book.cpp). Pending
// stop orders use the same slots and structures: two more "trees" of levels
// (one per side, keyed by stop price, the next to trigger first), each level
// a FIFO of the stops at that price; they are in the id hash too.
//
// Undo. Every write to the region goes through put() (or put_always()),
// which records the old bytes in the book's UndoLog. savepoint()/
// rollback_to() restore the region exactly; commit() forgets the log. A rejected command is rolled back
// internally, so a reject never changes anything.
//
// Threading. A Book handle is process-local and not thread-safe. The caller
// guarantees one writer per region at a time (in PostgreSQL: the instrument
// lock held to transaction end) and that readers do not read while a writer
// holds uncommitted changes.
#pragma once
#include "no_postgres.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "types.h"
#include "undo_log.h"

namespace pgx::core {

struct BookConfig {
    uint32_t max_orders = 0;  // resting orders, >= 1
    uint32_t max_levels = 0;  // price levels over both sides, >= 1
};

namespace detail {

inline constexpr uint32_t kNil = 0xFFFFFFFFu;

// splitmix64's finaliser: a fast, well-mixed 64-bit hash (mix64(0) == 0).
inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

struct Header {
    uint64_t magic;
    uint32_t version;
    uint32_t max_orders;
    uint32_t max_levels;
    uint32_t hash_slots;  // power of two, >= 2 * max_orders
    uint64_t region_bytes;
    uint64_t off_orders;
    uint64_t off_levels;
    uint64_t off_hash;
    uint64_t seq;
    // Per tree: 0 bids, 1 asks (the book), 2 buy stops, 3 sell stops (pending stop orders).
    uint32_t best[4];     // head of each tree's level list (best price; for stops the next to trigger)
    uint32_t root[4];     // root of each tree's treap
    uint32_t free_order;  // free list heads (linked through next)
    uint32_t free_level;
    uint32_t order_watermark;  // slots below it have been handed out at least once
    uint32_t level_watermark;
    uint32_t live_orders;       // in the book
    uint32_t live_levels;       // in all four trees
    uint32_t live_per_side[4];  // levels per tree
    uint32_t live_stops;        // pending stop orders
    int64_t last_price;         // price of the most recent fill (0: none yet)
};

// Order::flags
inline constexpr uint8_t kPostOnly = 1;
inline constexpr uint8_t kMarket = 2;    // a pending stop-market order
inline constexpr uint8_t kTifShift = 2;  // bits 2-3: a pending stop's Tif

struct Order {
    uint64_t id;
    uint64_t owner;
    int64_t price;  // a pending stop: its limit price (0: stop-market); its level has the stop price
    int64_t qty;    // remaining and shown in the book (counted in its level)
    uint32_t prev;  // FIFO neighbours within the level
    uint32_t next;  // also the free-list link
    uint32_t level;
    uint8_t side;
    uint8_t in_use;
    uint8_t flags;  // kPostOnly, kMarket, tif << kTifShift
    uint8_t stp;
    int64_t display;  // iceberg: the most shown at a time (0: not an iceberg)
    int64_t hidden;   // iceberg: remaining and not shown (0 if not an iceberg)
};

struct Level {
    int64_t price;
    int64_t qty;      // sum of the orders' remaining quantities
    uint32_t count;   // number of orders
    uint32_t head;    // oldest order
    uint32_t tail;    // newest order
    uint32_t better;  // neighbour towards the best price (list)
    uint32_t worse;   // neighbour away from it; also the free-list link
    uint32_t left;    // treap children
    uint32_t right;
    uint32_t prio;    // treap priority, derived from price and side
    uint8_t side;
    uint8_t in_use;
    uint8_t stop;  // 1: a level of pending stop orders (tree 2 + side)
    uint8_t pad[13];
};

// One entry of the id hash: 8 bytes, 8 to a cache line. The full id lives
// only in the order slot; the entry keeps a 32-bit tag of it (which alone
// decides the home slot, so deletion can re-home entries without touching
// their orders) and the order slot. A lookup confirms a tag match against
// the order's id, which a cancel or amend reads next anyway.
struct HashSlot {
    uint32_t tag;    // hash_tag(id)
    uint32_t slot1;  // order slot + 1; 0 = empty (the tag is then stale)
};

static_assert(std::is_trivially_copyable_v<Header>);
static_assert(std::is_trivially_copyable_v<Order>);
static_assert(std::is_trivially_copyable_v<Level>);
static_assert(std::is_trivially_copyable_v<HashSlot>);
static_assert(sizeof(Order) == 64, "one cache line per order");
static_assert(sizeof(Level) == 64, "one cache line per level");
static_assert(sizeof(HashSlot) == 8, "eight entries per cache line");

}  // namespace detail

class Book {
public:
    // Bytes a region needs for this configuration (0 if the config is invalid).
    static size_t required_bytes(const BookConfig& cfg);

    // Initialise an empty book in `mem` (8-byte aligned, `size` bytes).
    // Order and level slots are handed out lazily from watermarks; only the
    // id hash (8 bytes per slot) is cleared here.
    // Returns false if the region is too small or the config invalid.
    static bool format(void* mem, size_t size, const BookConfig& cfg);

    // Attach to a formatted region. Throws std::invalid_argument if the
    // region is not a book of this version.
    Book(void* mem, size_t size);

    Book(const Book&) = delete;
    Book& operator=(const Book&) = delete;

    // --- Commands. Each clears `out`, fills it and returns out.accepted(). ---

    // Match an incoming order with price-time priority; rest a GTC limit
    // remainder (an iceberg shows at most its display quantity). Market
    // orders sweep until filled or the book is empty and never rest. IOC
    // remainders are cancelled. FOK orders that cannot fill completely, and
    // post-only orders that would take, are rejected. A stop order (stop > 0)
    // waits among the pending stops; the trades of a command run the stop
    // orders they trigger (Result::triggered).
    bool place(const NewOrder& o, Result& out);

    // Remove a resting order or a pending stop order.
    bool cancel(OrderId id, Result& out);

    // Change a resting order's price and/or remaining quantity.
    // Same price, lower quantity: reduced in place, keeps time priority.
    // Same price, higher quantity: moves to the back of its level.
    // New price: leaves the book and re-enters as a GTC limit order with its
    // owner, post-only flag and STP mode, and may trade. A pending stop order
    // changes its quantity and limit price, and its stop price when new_stop
    // is neither 0 nor its own (then it goes to the back of the new stop
    // price's queue; refused if the last trade price has reached it). Any
    // other order given a new_stop != 0 is refused (InvalidStopPrice).
    bool amend(OrderId id, Price new_price, Qty new_qty, Result& out, Price new_stop = Price{0});

    // Insert an order at the back of its level without matching, bumping
    // nothing: used to rebuild a book from storage in time-priority order.
    // Rejected (with the reason) if invalid, a duplicate, out of capacity, or
    // if it would cross the opposite side. An order with stop != 0 goes to
    // the back of its stop price's queue, checked as place() checks a stop.
    Reject load_resting(const RestingOrder& o);

    // Set the sequence, and the last trade price (before loading stops), after a rebuild.
    void set_seq(uint64_t seq);
    void set_last_price(Price p);

    // The last trade price from before the book was loaded, learnt when it is
    // first needed (a caller that reads it from storage lazily): written only
    // while the book has seen no trade (last_price() == 0; otherwise false and
    // nothing changes) and outside undo, as it describes what was committed
    // before any change the book holds: rolling back a savepoint keeps it, so
    // a rollback then restores everything but it (state_hash() counts it).
    bool learn_last_price(Price p);

    // --- Prefetch hints. ---
    // None of these changes the book or any result: they only start loading
    // memory that a later command is likely to touch, so that a caller with a
    // batch of commands (PostgreSQL's place_orders, a replayed stream) can
    // overlap the cache misses of several commands instead of paying them one
    // after another. In a deep book a cancel of an arbitrary resting order
    // walks a dependent chain id hash -> order -> FIFO neighbours, each a
    // likely miss; announcing the id a few commands ahead in three steps,
    // each step a few commands after the previous one so its loads have
    // landed, hides most of that chain:
    //   prefetch_hash(id)        the id's hash slot (no dependent load)
    //   prefetch_order(id)       looks the id up (reads the hash) and loads its order slot
    //   prefetch_neighbours(id)  reads the order and loads its FIFO neighbours and level
    // Any id is safe (unknown ids, ids cancelled meanwhile, 0): a stale hint
    // costs a wasted load, never a wrong answer. O(1) expected, read-only.
    void prefetch_hash(OrderId id) const;
    void prefetch_order(OrderId id) const;
    void prefetch_neighbours(OrderId id) const;

    // The 32-bit tag the id hash keys an id by: its low half xor a mix of its
    // high half. Ids below 2^32 are their own tag, and ids that differ only in
    // the low half never share one, so ids from a sequence keep their order
    // (and their neighbours) in the hash; a mixed high half keeps ids with
    // large strides from folding onto a few tags. Public for the tests, which
    // build ids that share a tag.
    static uint32_t hash_tag(uint64_t id) {
        return static_cast<uint32_t>(id) ^ static_cast<uint32_t>(detail::mix64(id >> 32));
    }

    // --- Transactions. ---
    using Savepoint = UndoLog::Mark;
    Savepoint savepoint() const { return undo_.mark(); }
    void rollback_to(Savepoint sp) { undo_.rollback_to(sp, base_); }
    void commit() { undo_.clear(); }
    const UndoLog& undo_log() const { return undo_; }
    UndoLog& undo_log() { return undo_; }

    // --- Queries (O(1) unless stated). ---
    uint64_t seq() const { return h_->seq; }
    bool best(Side s, LevelView& lv) const;
    uint32_t order_count() const { return h_->live_orders; }  // in the book
    uint32_t level_count() const { return h_->live_per_side[0] + h_->live_per_side[1]; }
    uint32_t level_count(Side s) const { return h_->live_per_side[static_cast<int>(s)]; }
    uint32_t stop_count() const { return h_->live_stops; }  // pending stop orders
    // The level slots of their stop prices.
    uint32_t stop_level_count() const {
        return h_->live_per_side[kStopTrees] + h_->live_per_side[kStopTrees + 1];
    }
    Price last_price() const { return Price{h_->last_price}; }
    uint32_t max_orders() const { return h_->max_orders; }
    uint32_t max_levels() const { return h_->max_levels; }
    size_t region_bytes() const { return size_; }
    bool find(OrderId id, RestingOrder& o) const;

    // Up to `depth` levels of one side, best first. O(depth).
    void levels(Side s, size_t depth, std::vector<LevelView>& out) const;
    // All resting orders of one side, best price first, then time priority. O(n).
    void orders(Side s, std::vector<RestingOrder>& out) const;
    // All pending stop orders of one side in the order they would trigger. O(n).
    void stops(Side s, std::vector<RestingOrder>& out) const;

    // Hash of the logical state (sequence, last price, levels, orders in
    // priority order, pending stops in trigger order), independent of slot
    // placement and memory layout. O(n).
    uint64_t state_hash() const;

    // Check every invariant; returns one line per violation (empty = valid). O(n).
    std::vector<std::string> validate() const;

private:
    using Order = detail::Order;
    using Level = detail::Level;

    // Write a field of the region, recording its old value for undo.
    template <class T>
    void put(T& field, T value) {
        static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);
        if (field == value) return;
        undo_.record(static_cast<uint64_t>(reinterpret_cast<char*>(&field) - base_), sizeof(T), &field);
        field = value;
    }

    // put() without its equality test, for a field that changes on most
    // writes (the last trade price alternates between the sides: the test's
    // branch would miss).
    template <class T>
    void put_always(T& field, T value) {
        static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);
        undo_.record(static_cast<uint64_t>(reinterpret_cast<char*>(&field) - base_), sizeof(T), &field);
        field = value;
    }

    Order& ord(uint32_t i) const { return orders_[i]; }
    Level& lvl(uint32_t i) const { return levels_[i]; }

    Reject validate_new(const NewOrder& o) const;
    bool crosses(const NewOrder& o, Price level_price) const;
    Qty fillable(const NewOrder& o) const;
    bool match(const NewOrder& o, Result& out, int64_t& remaining, Reject& reject);
    bool refill(uint32_t oi);
    Reject level_for(int tree, int64_t price, int64_t qty, uint32_t& li);
    Reject rest(const NewOrder& o, int64_t qty, int64_t visible, Result& out);
    Reject execute(const NewOrder& o, Result& out);
    bool finish(Result& out, Savepoint sp, Reject r);
    Reject add_stop(const NewOrder& o);
    void remove_stop(uint32_t oi);
    bool stop_reached(Side s, int64_t stop) const;
    void trigger_stops(Result& out);
    bool amend_stop(uint32_t oi, Price new_price, Qty new_qty, Price new_stop, Result& out, Savepoint sp);
    RestingOrder view(const Order& m) const;

    uint32_t alloc_order();
    void free_order(uint32_t i);
    uint32_t alloc_level();
    void free_level(uint32_t i);

    // Trees of levels: the book's bids and asks (tree = side), then the
    // pending stops' (tree = 2 + side).
    static constexpr int kStopTrees = 2;
    static int tree_of(const Level& L) { return L.side + kStopTrees * L.stop; }
    uint32_t find_level(int tree, int64_t price) const;
    uint32_t insert_level(int tree, int64_t price);  // kNil when out of capacity
    void erase_level(uint32_t li);
    void append_order(uint32_t li, uint32_t oi);
    void unlink_order(uint32_t oi);
    bool remove_order(uint32_t oi);
    bool release(uint32_t oi, uint32_t& live);
    void note_level(Result& out, Side s, int64_t price, uint32_t li_or_nil);

    // Treap over a tree's levels, keyed so that "better" (for stops: sooner
    // to trigger) is smaller: bids and sell stops by -price, asks and buy
    // stops by price.
    static int64_t key(int tree, int64_t price) { return (0x9 >> tree) & 1 ? -price : price; }  // trees 0, 3
    static int64_t key(Side s, int64_t price) { return key(static_cast<int>(s), price); }
    void split(uint32_t t, int64_t k, int tree, uint32_t& l, uint32_t& r);
    uint32_t merge(uint32_t l, uint32_t r);
    void treap_insert(int tree, uint32_t li);
    void treap_erase(int tree, uint32_t li);

    uint32_t hash_home(uint32_t tag) const;
    uint32_t hash_disp(uint32_t i) const;  // how far entry i sits from its home
    uint32_t hash_find(uint64_t id) const;
    void hash_insert(uint64_t id, uint32_t slot);
    void hash_erase(uint64_t id, uint32_t slot);

    char* base_;
    size_t size_;
    detail::Header* h_;
    Order* orders_;
    Level* levels_;
    detail::HashSlot* hash_;
    uint32_t hash_mask_;
    uint32_t hash_shift_;  // log2(hash_slots): a tag's window is tag >> hash_shift_
    UndoLog undo_;
    Result scratch_;           // level notes of load_resting, which reports none
    uint32_t note_floor_ = 0;  // note_level merges only entries from here on (a triggered order's own)
};

}  // namespace pgx::core
