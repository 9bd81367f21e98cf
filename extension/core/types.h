// Value types of the matching core: integer ticks and lots, sides, order
// options, reject and cancel reason codes, and the result of a command.
#pragma once
#include "no_postgres.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace pgx::core {

// A strongly typed int64: prices are ticks, quantities are lots. The decimal
// conversion (tick_size, lot_size) lives outside the core.
template <class Tag>
struct Int64 {
    int64_t v = 0;
    constexpr Int64() = default;
    constexpr explicit Int64(int64_t x) : v(x) {}
    friend constexpr bool operator==(Int64 a, Int64 b) { return a.v == b.v; }
    friend constexpr bool operator!=(Int64 a, Int64 b) { return a.v != b.v; }
    friend constexpr bool operator<(Int64 a, Int64 b) { return a.v < b.v; }
    friend constexpr bool operator<=(Int64 a, Int64 b) { return a.v <= b.v; }
    friend constexpr bool operator>(Int64 a, Int64 b) { return a.v > b.v; }
    friend constexpr bool operator>=(Int64 a, Int64 b) { return a.v >= b.v; }
};
using Price = Int64<struct PriceTag>;  // ticks
using Qty = Int64<struct QtyTag>;      // lots

using OrderId = uint64_t;  // caller-assigned, non-zero, unique among resting orders
using OwnerId = uint64_t;  // the client, for self-trade prevention

// Largest accepted price (ticks) and quantity (lots): 10^18 < 2^63.
inline constexpr int64_t kMaxPrice = 1'000'000'000'000'000'000;
inline constexpr int64_t kMaxQty = 1'000'000'000'000'000'000;

enum class Side : uint8_t { Buy = 0, Sell = 1 };
enum class OrderType : uint8_t { Limit = 0, Market = 1 };
enum class Tif : uint8_t { Gtc = 0, Ioc = 1, Fok = 2 };

// Self-trade prevention, decided by the incoming (taker) order's mode when it
// would trade against a resting order of the same owner:
//   None          trade with yourself.
//   CancelNewest  cancel the taker's remainder; the resting order stays. (default)
//   CancelOldest  cancel the resting order and keep matching.
//   CancelBoth    cancel both.
enum class Stp : uint8_t { None = 0, CancelNewest = 1, CancelOldest = 2, CancelBoth = 3 };
inline constexpr Stp kDefaultStp = Stp::CancelNewest;

inline constexpr Side opposite(Side s) { return s == Side::Buy ? Side::Sell : Side::Buy; }

// Why a command was rejected. Values are stable: they are stored and sent to clients.
enum class Reject : uint8_t {
    None = 0,
    InvalidOrderId = 1,    // id is 0
    DuplicateOrderId = 2,  // a resting order already has this id
    InvalidSide = 3,
    InvalidType = 4,
    InvalidTif = 5,
    InvalidStp = 6,
    InvalidPrice = 7,        // limit price <= 0 or > kMaxPrice; market order with a price
    InvalidQuantity = 8,     // <= 0 or > kMaxQty
    InvalidCombination = 9,  // post-only on a market or IOC/FOK order
    PostOnlyWouldTake = 10,  // post-only order would match on entry
    FokUnfillable = 11,      // FOK order cannot be filled completely right now
    OrderCapacity = 12,      // no free order slot for the resting remainder
    LevelCapacity = 13,      // no free price-level slot for the resting remainder
    QuantityOverflow = 14,   // a price level's total would exceed int64
    OrderNotFound = 15,      // cancel/amend of an id that is not resting
    NoChange = 16,           // amend to the same price and quantity
    WouldCross = 17,         // load_resting of an order that crosses the book
    InvalidDisplay = 18,     // iceberg display < 0 or > qty, or qty over kMaxIcebergParts tips
    InvalidStopPrice = 19,   // stop price < 0 or > kMaxPrice
    StopWouldTrigger = 20,   // the last trade price has already reached the stop price
};

// An iceberg's quantity is at most this many times its display quantity, so
// that a taker refills each iceberg it meets at most this often.
inline constexpr int64_t kMaxIcebergParts = 100;
// Whether qty > 0 splits into at most kMaxIcebergParts tips of `display` (> 0).
inline constexpr bool iceberg_parts_ok(int64_t qty, int64_t display) {
    return display >= (qty + kMaxIcebergParts - 1) / kMaxIcebergParts;
}

// Why (part of) an order left the book or never rested.
enum class CancelReason : uint8_t {
    None = 0,
    Ioc = 1,            // IOC remainder
    MarketNoLiquidity = 2,  // market order remainder: book exhausted
    SelfTrade = 3,      // self-trade prevention
    User = 4,           // cancel() call
};

std::string_view to_string(Reject r);
std::string_view to_string(CancelReason r);

// A trade: the resting (maker) order traded with the incoming (taker) order at
// the maker's price. maker_remaining is what is left of the maker afterwards
// (shown and hidden), maker_visible the part of it shown in the book; an
// iceberg maker whose shown part ran out and was refilled from its hidden
// part went to the back of its level (maker_requeued).
struct Fill {
    OrderId maker;
    OwnerId maker_owner;
    OrderId taker;
    Price price;
    Qty qty;
    Qty maker_remaining;
    Qty maker_visible;
    bool maker_requeued;
};

// A price level's new state after the command (qty 0, count 0: level removed).
// One entry per touched level per order (the command's, then each triggered stop's), in the order touched.
struct LevelChange {
    Side side;
    Price price;
    Qty qty;
    uint32_t count;
};

// A resting order removed by self-trade prevention (not the taker itself).
struct Cancelled {
    OrderId id;
    OwnerId owner;
    Side side;
    Price price;
    Qty qty;  // quantity that was removed from the book (shown and hidden)
    CancelReason reason;
};

enum class Status : uint8_t { Accepted = 0, Rejected = 1 };

// A stop order that a command's trades triggered (SEMANTICS.md, "Stop
// orders"): it left the pending stops and ran as an incoming order with its
// own sequence number, after the command's own order and after every stop
// triggered before it. Its fills, level changes and STP cancels are in the
// command's vectors from first_fill, first_level and first_stp up to the next
// triggered order's (or the end). If running it would have been rejected
// (reject != None; FokUnfillable, a capacity or overflow reject), nothing of
// it ran and all of its quantity is cancelled.
struct Triggered {
    OrderId id;
    OwnerId owner;
    Side side;
    uint64_t seq;
    Qty filled;
    Qty resting;
    Qty cancelled;
    CancelReason cancel_reason;
    Reject reject;
    uint32_t first_fill;
    uint32_t first_level;
    uint32_t first_stp;
};

// The outcome of one command. Reused across calls: the book clears it first.
struct Result {
    Status status = Status::Accepted;
    Reject reject = Reject::None;
    uint64_t seq = 0;  // the command's sequence number (unchanged when rejected); triggered stops follow it

    // For place/amend: the subject order's outcome.
    Qty filled{0};     // quantity traded by the subject order
    Qty resting{0};    // quantity left resting in the book, shown and hidden (0 if none)
    Qty pending{0};    // a stop order's quantity waiting for its stop price (0 if none)
    Qty cancelled{0};  // remainder cancelled (IOC, market, STP, or cancel())
    CancelReason cancel_reason = CancelReason::None;
    bool priority_kept = false;  // amend: the order kept its place in the queue

    std::vector<Fill> fills;
    std::vector<LevelChange> levels;
    std::vector<Cancelled> stp_cancelled;
    std::vector<Triggered> triggered;  // stop orders the command's trades triggered, in the order run

    bool accepted() const { return status == Status::Accepted; }
    void clear() {
        status = Status::Accepted;
        reject = Reject::None;
        seq = 0;
        filled = resting = pending = cancelled = Qty{0};
        cancel_reason = CancelReason::None;
        priority_kept = false;
        fills.clear();
        levels.clear();
        stp_cancelled.clear();
        triggered.clear();
    }
};

// An incoming order. A market order has price 0. display > 0 makes a GTC
// limit order an iceberg: at most `display` of its resting quantity is shown
// in the book at a time, the rest hidden. stop > 0 makes it a stop order
// (stop-limit or stop-market): it waits outside the book until a trade at or
// beyond `stop` triggers it (see SEMANTICS.md).
struct NewOrder {
    OrderId id = 0;
    OwnerId owner = 0;
    Side side = Side::Buy;
    OrderType type = OrderType::Limit;
    Tif tif = Tif::Gtc;
    Price price{0};
    Qty qty{0};
    bool post_only = false;
    Stp stp = kDefaultStp;
    Qty display{0};
    Price stop{0};
};

// A GTC limit order with the default options.
inline NewOrder limit_order(OrderId id, OwnerId owner, Side side, Price price, Qty qty) {
    NewOrder o;
    o.id = id;
    o.owner = owner;
    o.side = side;
    o.price = price;
    o.qty = qty;
    return o;
}

// A resting order as seen from outside (queries, loading, tests). qty is all
// of its remaining quantity, visible the part shown in the book (qty unless
// an iceberg, whose display is > 0). load_resting reads visible 0 as a fresh
// tip: min(display, qty), or qty. A pending stop order has stop > 0, its
// type and tif, price 0 if a stop-market, and visible 0 (it is not in the
// book); an order in the book has stop 0, type Limit and tif Gtc.
struct RestingOrder {
    OrderId id = 0;
    OwnerId owner = 0;
    Side side = Side::Buy;
    Price price{0};
    Qty qty{0};
    bool post_only = false;
    Stp stp = kDefaultStp;
    Qty display{0};
    Qty visible{0};
    Price stop{0};
    OrderType type = OrderType::Limit;
    Tif tif = Tif::Gtc;
};

// The incoming order that an order as seen from outside is: all its fields,
// its whole quantity. (For a pending stop: placing it again; with stop 0,
// running it.)
inline NewOrder as_new_order(const RestingOrder& o) {
    NewOrder n;
    n.id = o.id;
    n.owner = o.owner;
    n.side = o.side;
    n.type = o.type;
    n.tif = o.tif;
    n.price = o.price;
    n.qty = o.qty;
    n.post_only = o.post_only;
    n.stp = o.stp;
    n.display = o.display;
    n.stop = o.stop;
    return n;
}

// One aggregated price level as seen from outside.
struct LevelView {
    Price price;
    Qty qty;
    uint32_t count;
};

}  // namespace pgx::core
