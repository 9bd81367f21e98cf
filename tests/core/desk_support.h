// What the core's scenario suites (scenario_test.cpp, iceberg_test.cpp)
// share: names for failure messages, the traders, and small comparable,
// printable records of levels and of an order's outcome.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "book.h"

namespace pgx::test::desk {

using namespace pgx::core;

constexpr Side Buy = Side::Buy;
constexpr Side Sell = Side::Sell;
constexpr Side Bid = Side::Buy;  // in expected books and level changes
constexpr Side Ask = Side::Sell;

constexpr OwnerId Alice = 1;  // usually the trader sending the order under test
constexpr OwnerId Bob = 2;
constexpr OwnerId Carol = 3;
constexpr OwnerId Dave = 4;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// ---------------------------------------------------------------------------
// Names for failure messages.

inline std::string reject_name(Reject r) {
    return std::string(to_string(r));
}
inline std::string reject_name(const Result& r) {
    return reject_name(r.reject);
}

inline std::string reason_name(CancelReason r) {
    return std::string(to_string(r));
}

inline const char* side_name(Side s) {
    return s == Side::Buy ? "bid" : "ask";
}

// EXPECT_REJECT(result_or_reject, Reason): the command was rejected with exactly
// this reason (Reason None for an accepted load_resting).
#define EXPECT_REJECT(x, reason) EXPECT_EQ(reject_name(x), reject_name(Reject::reason))

// ---------------------------------------------------------------------------
// Expected values.

// A price level (or a level change): side, price, total quantity, order count.
struct Lv {
    Side side;
    int64_t price;
    int64_t qty;
    uint32_t count;
};
inline bool operator==(const Lv& a, const Lv& b) {
    return a.side == b.side && a.price == b.price && a.qty == b.qty && a.count == b.count;
}
inline std::ostream& operator<<(std::ostream& os, const Lv& l) {
    return os << side_name(l.side) << " " << l.price << ": qty " << l.qty << " in " << l.count;
}
using Ladder = std::vector<Lv>;   // the whole book: asks highest first, then bids highest first
using Changes = std::vector<Lv>;  // result.levels

// A resting order as find() reports it: price, all it has left, the part
// shown (an iceberg's tip) and its display (0: a plain order).
struct IceOrder {
    OrderId id;
    int64_t price;
    int64_t qty;
    int64_t visible;
    int64_t display;
};
inline bool operator==(const IceOrder& a, const IceOrder& b) {
    return a.id == b.id && a.price == b.price && a.qty == b.qty && a.visible == b.visible &&
           a.display == b.display;
}
inline std::ostream& operator<<(std::ostream& os, const IceOrder& o) {
    return os << "#" << o.id << " " << o.qty << " @ " << o.price << " (visible " << o.visible << ", display "
              << o.display << ")";
}

// The subject order's outcome: filled, resting, cancelled, cancel reason.
struct Out {
    int64_t filled;
    int64_t resting;
    int64_t cancelled;
    CancelReason reason = CancelReason::None;
};
inline bool operator==(const Out& a, const Out& b) {
    return a.filled == b.filled && a.resting == b.resting && a.cancelled == b.cancelled &&
           a.reason == b.reason;
}
inline std::ostream& operator<<(std::ostream& os, const Out& o) {
    return os << "filled " << o.filled << ", resting " << o.resting << ", cancelled " << o.cancelled << " ("
              << reason_name(o.reason) << ")";
}

inline Out outcome(const Result& r) {
    return {r.filled.v, r.resting.v, r.cancelled.v, r.cancel_reason};
}

// What a rejected command answers: its reason, the sequence as it was (seq0),
// and nothing else.
inline void expect_rejected_result(const Result& r, uint64_t seq0) {
    EXPECT_NE(reject_name(r), reject_name(Reject::None)) << "a rejected command needs a reason";
    EXPECT_EQ(r.seq, seq0) << "a reject reports the unchanged sequence";
    EXPECT_TRUE(r.fills.empty()) << "a rejected result has no fills";
    EXPECT_TRUE(r.levels.empty()) << "a rejected result has no level changes";
    EXPECT_TRUE(r.stp_cancelled.empty()) << "a rejected result has no stp_cancelled";
    EXPECT_EQ(outcome(r), (Out{0, 0, 0})) << "a rejected result has zero quantities";
    EXPECT_FALSE(r.priority_kept);
}

// A fill: maker id, taker id, price, quantity, maker's remaining quantity.
struct Fl {
    OrderId maker;
    OrderId taker;
    int64_t price;
    int64_t qty;
    int64_t maker_left;
};
inline bool operator==(const Fl& a, const Fl& b) {
    return a.maker == b.maker && a.taker == b.taker && a.price == b.price && a.qty == b.qty &&
           a.maker_left == b.maker_left;
}
inline std::ostream& operator<<(std::ostream& os, const Fl& f) {
    return os << "maker #" << f.maker << " x taker #" << f.taker << ": " << f.qty << " @ " << f.price
              << " (maker left " << f.maker_left << ")";
}
using Fills = std::vector<Fl>;

// Both sides of a book as a price ladder: asks from the highest price down,
// then bids from the highest price down.
inline Ladder ladder_of(const Book& b) {
    Ladder v;
    std::vector<LevelView> lv;
    b.levels(Side::Sell, SIZE_MAX, lv);
    for (auto it = lv.rbegin(); it != lv.rend(); ++it) v.push_back({Ask, it->price.v, it->qty.v, it->count});
    b.levels(Side::Buy, SIZE_MAX, lv);
    for (const LevelView& l : lv) v.push_back({Bid, l.price.v, l.qty.v, l.count});
    return v;
}

inline Fills fills(const Result& r) {
    Fills v;
    for (const Fill& f : r.fills) v.push_back({f.maker, f.taker, f.price.v, f.qty.v, f.maker_remaining.v});
    return v;
}

inline Changes level_changes(const Result& r) {
    Changes v;
    for (const LevelChange& c : r.levels) v.push_back({c.side, c.price.v, c.qty.v, c.count});
    return v;
}

// A resting order removed by self-trade prevention (checked to be one).
struct Removal {
    OrderId id;
    OwnerId owner;
    Side side;
    int64_t price;
    int64_t qty;
};
inline bool operator==(const Removal& a, const Removal& b) {
    return a.id == b.id && a.owner == b.owner && a.side == b.side && a.price == b.price && a.qty == b.qty;
}
inline std::ostream& operator<<(std::ostream& os, const Removal& c) {
    return os << "#" << c.id << " (owner " << c.owner << ") " << side_name(c.side) << " " << c.qty << " @ "
              << c.price;
}
using Removals = std::vector<Removal>;

inline Removals removals(const Result& r) {
    Removals v;
    for (const Cancelled& c : r.stp_cancelled) {
        EXPECT_EQ(reason_name(c.reason), reason_name(CancelReason::SelfTrade)) << "#" << c.id;
        v.push_back({c.id, c.owner, c.side, c.price.v, c.qty.v});
    }
    return v;
}

// A result full of leftovers from an earlier command: the book must clear it.
inline Result stale_result() {
    Result r;
    r.status = Status::Rejected;
    r.reject = Reject::NoChange;
    r.seq = 999999;
    r.filled = r.resting = r.cancelled = Qty{777};
    r.cancel_reason = CancelReason::User;
    r.priority_kept = true;
    r.fills.push_back(Fill{999, 999, 999, Price{1}, Qty{1}, Qty{1}, Qty{1}, true});
    r.levels.push_back(LevelChange{Side::Buy, Price{1}, Qty{1}, 1});
    r.stp_cancelled.push_back(Cancelled{999, 999, Side::Buy, Price{1}, Qty{1}, CancelReason::User});
    return r;
}

// A stop order a command triggered (Result::triggered): id, owner, side, its
// own sequence number, its own outcome, why running it was rejected (None if
// it ran), and where its fills, level changes and STP cancels start in the
// command's vectors.
struct Trig {
    OrderId id;
    OwnerId owner;
    Side side;
    uint64_t seq;
    int64_t filled;
    int64_t resting;
    int64_t cancelled;
    CancelReason reason;
    Reject reject;
    uint32_t first_fill;
    uint32_t first_level;
    uint32_t first_stp;
};
inline bool operator==(const Trig& a, const Trig& b) {
    return a.id == b.id && a.owner == b.owner && a.side == b.side && a.seq == b.seq && a.filled == b.filled &&
           a.resting == b.resting && a.cancelled == b.cancelled && a.reason == b.reason &&
           a.reject == b.reject && a.first_fill == b.first_fill && a.first_level == b.first_level &&
           a.first_stp == b.first_stp;
}
inline std::ostream& operator<<(std::ostream& os, const Trig& t) {
    return os << "#" << t.id << " (owner " << t.owner << ", " << (t.side == Side::Buy ? "buy" : "sell")
              << ") seq " << t.seq << ": filled " << t.filled << ", resting " << t.resting << ", cancelled "
              << t.cancelled << " (" << reason_name(t.reason) << "), reject " << reject_name(t.reject)
              << "; from fill " << t.first_fill << ", level " << t.first_level << ", stp " << t.first_stp;
}
using Trigs = std::vector<Trig>;

inline Trigs triggered_of(const Result& r) {
    Trigs v;
    for (const Triggered& t : r.triggered)
        v.push_back({t.id, t.owner, t.side, t.seq, t.filled.v, t.resting.v, t.cancelled.v, t.cancel_reason,
                     t.reject, t.first_fill, t.first_level, t.first_stp});
    return v;
}

}  // namespace pgx::test::desk
