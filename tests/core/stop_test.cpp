// Scenario tests for stop orders, written from a trader's point of view:
// "given this book and these pending stops, this order produces these fills,
// these triggered orders and this book".
//
// The contract is extension/core/SEMANTICS.md ("Stop orders" and every
// mention of stop, pending, triggered and last price). Every command goes
// through a StopDesk, which also checks the rules that hold for every
// command: the book validates; an accepted command takes the next sequence
// number and each stop it triggered the ones after it; every fill names its
// taker (the command's order, or the triggered stop whose slice it is in) and
// the maker's owner; the level changes, applied in order, give the book
// after the command; the last price is the last fill's; a pending stop shows
// nothing and keeps its display (only a stop-limit GTC order has one), and a
// triggered order rests as if placed then (an iceberg with a fresh tip); a
// rejected command changes nothing (sequence, state_hash, orders, levels,
// pending stops, last price, counts) and returns an empty result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "book.h"
#include "desk_support.h"
#include "test_support.h"

namespace {

using namespace pgx::core;
using namespace pgx::test::desk;
using pgx::test::diff_snapshots;
using pgx::test::OwnedBook;
using pgx::test::Snapshot;

constexpr OwnerId Erin = 5;
constexpr OwnerId Xena = 8;  // bystanders who trade with each other to set the last price
constexpr OwnerId Yuri = 9;

constexpr OrderType Lmt = OrderType::Limit;
constexpr OrderType Mkt = OrderType::Market;
constexpr Tif Gtc = Tif::Gtc;
constexpr Tif Ioc = Tif::Ioc;
constexpr Tif Fok = Tif::Fok;

// ---------------------------------------------------------------------------
// Expected values.

// A resting order in its side's priority order.
struct Ord {
    OrderId id;
    int64_t price;
    int64_t qty;
};
bool operator==(const Ord& a, const Ord& b) {
    return a.id == b.id && a.price == b.price && a.qty == b.qty;
}
std::ostream& operator<<(std::ostream& os, const Ord& o) {
    return os << "#" << o.id << " " << o.qty << " @ " << o.price;
}
using Queue = std::vector<Ord>;

// A pending stop order: id, owner, side, stop price, limit price (0: a
// stop-market order), quantity (all of it), type, tif, STP mode, display (a
// stop-limit iceberg's tip size; 0: none).
struct Pend {
    OrderId id;
    OwnerId owner;
    Side side;
    int64_t stop;
    int64_t price;
    int64_t qty;
    OrderType type = Lmt;
    Tif tif = Gtc;
    Stp stp = kDefaultStp;
    int64_t display = 0;
};
bool operator==(const Pend& a, const Pend& b) {
    return a.id == b.id && a.owner == b.owner && a.side == b.side && a.stop == b.stop && a.price == b.price &&
           a.qty == b.qty && a.type == b.type && a.tif == b.tif && a.stp == b.stp && a.display == b.display;
}
std::ostream& operator<<(std::ostream& os, const Pend& p) {
    return os << "#" << p.id << " (owner " << p.owner << ") " << (p.side == Buy ? "buy" : "sell") << " stop "
              << p.stop << (p.type == Mkt ? " market" : " limit") << " price " << p.price << " qty " << p.qty
              << " type " << int(p.type) << " tif " << int(p.tif) << " stp " << int(p.stp) << " display "
              << p.display;
}
using Pends = std::vector<Pend>;

Out done(int64_t filled, int64_t resting, int64_t cancelled = 0, CancelReason reason = CancelReason::None) {
    return {filled, resting, cancelled, reason};
}

// A triggered order's record, in the order of Trig's fields.
Trig trig(OrderId id, OwnerId owner, Side side, uint64_t seq, Out out, Reject reject, uint32_t first_fill,
          uint32_t first_level, uint32_t first_stp = 0) {
    return {id,         owner,  side,       seq,         out.filled, out.resting, out.cancelled,
            out.reason, reject, first_fill, first_level, first_stp};
}

// ---------------------------------------------------------------------------
// Orders.

NewOrder limit(OrderId id, OwnerId owner, Side side, int64_t price, int64_t qty, Tif tif = Gtc) {
    NewOrder o = limit_order(id, owner, side, Price{price}, Qty{qty});
    o.tif = tif;
    return o;
}

NewOrder market(OrderId id, OwnerId owner, Side side, int64_t qty, Tif tif = Gtc) {
    NewOrder o = limit(id, owner, side, 0, qty, tif);
    o.type = Mkt;
    return o;
}

// "Buy stop 100 limit 101": the stop price first, then the limit price.
NewOrder stop_limit(OrderId id, OwnerId owner, Side side, int64_t stop, int64_t price, int64_t qty,
                    Tif tif = Gtc) {
    NewOrder o = limit(id, owner, side, price, qty, tif);
    o.stop = Price{stop};
    return o;
}

NewOrder stop_market(OrderId id, OwnerId owner, Side side, int64_t stop, int64_t qty, Tif tif = Gtc) {
    NewOrder o = market(id, owner, side, qty, tif);
    o.stop = Price{stop};
    return o;
}

NewOrder with_stp(NewOrder o, Stp mode) {
    o.stp = mode;
    return o;
}

// An order shown `display` lots at a time: a stop-limit GTC one is a stop-limit iceberg.
NewOrder with_display(NewOrder o, int64_t display) {
    o.display = Qty{display};
    return o;
}

// The same pending stop order with a display.
Pend with_display(Pend p, int64_t display) {
    p.display = display;
    return p;
}

// A stored pending stop order for load_resting.
RestingOrder stored_stop(OrderId id, OwnerId owner, Side side, int64_t stop, int64_t price, int64_t qty,
                         OrderType type = Lmt, Tif tif = Gtc) {
    RestingOrder o;
    o.id = id;
    o.owner = owner;
    o.side = side;
    o.price = Price{price};
    o.qty = Qty{qty};
    o.stop = Price{stop};
    o.type = type;
    o.tif = tif;
    return o;
}

// A stored order of the book for load_resting.
RestingOrder stored(OrderId id, OwnerId owner, Side side, int64_t price, int64_t qty) {
    return stored_stop(id, owner, side, 0, price, qty);
}

Pend pend_of(const RestingOrder& o) {
    return {o.id, o.owner, o.side, o.stop.v, o.price.v, o.qty.v, o.type, o.tif, o.stp, o.display.v};
}

// ---------------------------------------------------------------------------
// A book in its own memory, with checked commands and readable queries.

class StopDesk {
public:
    explicit StopDesk(uint32_t max_orders = 64, uint32_t max_levels = 32) : ob_(max_orders, max_levels) {}

    Book& book() { return *ob_.book; }
    const Book& book() const { return *ob_.book; }

    Result place(const NewOrder& o) {
        SCOPED_TRACE("place #" + std::to_string(o.id));
        const auto had = owners_.find(o.id);
        const bool had_owner = had != owners_.end();
        const OwnerId old_owner = had_owner ? had->second : 0;
        owners_[o.id] = o.owner;  // the order may be a maker for a stop it triggers
        Result r = run(o.id, [&](Result& out) { return book().place(o, out); });
        if (!r.accepted()) {
            if (had_owner)
                owners_[o.id] = old_owner;
            else
                owners_.erase(o.id);
            return r;
        }
        if (o.stop.v > 0) {
            // A stop order waits: nothing trades, nothing enters the book.
            EXPECT_EQ(r.pending.v, o.qty.v) << "a placed stop order is pending with its quantity";
            EXPECT_EQ(outcome(r), done(0, 0)) << "a placed stop order neither trades, rests nor is cancelled";
            EXPECT_TRUE(r.fills.empty());
            EXPECT_TRUE(r.levels.empty()) << "a pending stop order changes no level";
            EXPECT_TRUE(r.stp_cancelled.empty());
            EXPECT_TRUE(r.triggered.empty());
            EXPECT_EQ(stop(o.id), (Pend{o.id, o.owner, o.side, o.stop.v, o.price.v, o.qty.v, o.type, o.tif,
                                        o.stp, o.display.v}))
                << "a placed stop order waits with its whole quantity and its display";
        } else {
            EXPECT_EQ(r.pending.v, 0);
            if (r.triggered.empty()) {
                EXPECT_EQ(r.filled.v + r.resting.v + r.cancelled.v, o.qty.v)
                    << "place: filled + resting + cancelled";
                if (r.resting.v > 0) {
                    EXPECT_EQ(order(o.id), (Ord{o.id, o.price.v, r.resting.v}));
                }
            } else {
                EXPECT_LE(r.filled.v + r.resting.v + r.cancelled.v, o.qty.v);
            }
        }
        return r;
    }

    Result cancel(OrderId id) {
        SCOPED_TRACE("cancel #" + std::to_string(id));
        RestingOrder before;
        const bool found = id != 0 && book().find(id, before);
        Result r = run(id, [&](Result& out) { return book().cancel(id, out); });
        if (r.accepted()) {
            EXPECT_TRUE(found);
            EXPECT_EQ(outcome(r), done(0, 0, before.qty.v, CancelReason::User));
            EXPECT_EQ(r.pending.v, 0);
            EXPECT_TRUE(r.fills.empty());
            EXPECT_TRUE(r.triggered.empty()) << "a cancel triggers nothing";
            if (before.stop.v > 0) {
                EXPECT_TRUE(r.levels.empty()) << "cancelling a pending stop changes no level";
            }
            EXPECT_FALSE(has(id));
        }
        return r;
    }

    // new_stop: a pending stop order's new stop price (0: keep it).
    Result amend(OrderId id, int64_t price, int64_t qty, int64_t new_stop = 0) {
        SCOPED_TRACE("amend #" + std::to_string(id) + (new_stop ? " stop " + std::to_string(new_stop) : ""));
        RestingOrder before;
        const bool found = id != 0 && book().find(id, before);
        Result r = run(
            id, [&](Result& out) { return book().amend(id, Price{price}, Qty{qty}, out, Price{new_stop}); });
        if (!r.accepted()) return r;
        EXPECT_TRUE(found);
        if (found && before.stop.v > 0) {
            const bool moved = new_stop != 0 && new_stop != before.stop.v;
            EXPECT_EQ(r.pending.v, qty) << "an amended stop order is pending with its new quantity";
            EXPECT_EQ(outcome(r), done(0, 0));
            EXPECT_TRUE(r.fills.empty());
            EXPECT_TRUE(r.levels.empty()) << "amending a pending stop changes no level";
            EXPECT_TRUE(r.triggered.empty()) << "amending a pending stop triggers nothing";
            EXPECT_EQ(stop(id), (Pend{id, before.owner, before.side, moved ? new_stop : before.stop.v, price,
                                      qty, before.type, before.tif, before.stp, before.display.v}))
                << "the stop price changes only when moved; type, tif and display never change";
            if (moved) {
                EXPECT_FALSE(r.priority_kept)
                    << "a moved stop goes to the back of its new stop price's queue";
                OrderId last_at_new = 0;
                for (const Pend& p : pending(before.side))
                    if (p.stop == new_stop) last_at_new = p.id;
                EXPECT_EQ(last_at_new, id) << "a moved stop is the last one at its new stop price";
            }
        } else {
            EXPECT_EQ(new_stop, 0) << "an order in the book was amended with a stop price";
            EXPECT_EQ(r.pending.v, 0);
            if (r.triggered.empty()) {
                EXPECT_EQ(r.filled.v + r.resting.v + r.cancelled.v, qty)
                    << "amend: filled + resting + cancelled";
                if (r.resting.v > 0) {
                    EXPECT_EQ(order(id), (Ord{id, price, r.resting.v}));
                }
            }
        }
        return r;
    }

    Reject load(const RestingOrder& o) {
        SCOPED_TRACE("load_resting #" + std::to_string(o.id));
        const uint64_t hash0 = book().state_hash();
        const Snapshot snap0 = Snapshot::of(book());
        const Reject r = book().load_resting(o);
        expect_consistent();
        EXPECT_EQ(book().seq(), snap0.seq) << "load_resting does not advance the sequence";
        EXPECT_EQ(book().last_price().v, snap0.last_price) << "load_resting does not move the last price";
        if (r == Reject::None) {
            owners_[o.id] = o.owner;
            if (o.stop.v > 0) {
                EXPECT_EQ(stop(o.id), pend_of(o));
                EXPECT_EQ(diff_snapshots(Snapshot::of(book()), snap0)
                              .rfind(o.side == Buy ? "buy stops" : "sell stops", 0),
                          0u)
                    << "loading a stop order changes only its side's pending stops";
            }
        } else {
            EXPECT_EQ(book().state_hash(), hash0) << "a rejected load_resting changed the book";
            EXPECT_EQ(diff_snapshots(Snapshot::of(book()), snap0), "");
        }
        return r;
    }

    // Place a GTC order that is expected to rest in full without trading.
    void rest(const NewOrder& o) {
        const Result r = place(o);
        EXPECT_TRUE(r.accepted()) << "setup order #" << o.id << " rejected: " << reject_name(r);
        EXPECT_EQ(outcome(r), done(0, o.qty.v)) << "setup order #" << o.id << " did not simply rest";
        EXPECT_TRUE(r.triggered.empty());
    }

    // Place a stop order that is expected to wait.
    void arm(const NewOrder& o) {
        const Result r = place(o);
        EXPECT_TRUE(r.accepted()) << "stop order #" << o.id << " rejected: " << reject_name(r);
        EXPECT_EQ(r.pending.v, o.qty.v);
    }

    // A trade of one lot at `price` between two bystanders (Xena sells, Yuri
    // buys), leaving the book as it was: it sets the last price. Needs no
    // ask at `price` and no bid at or above it; expects nothing to trigger.
    void trade_at(int64_t price) {
        const OrderId ask = next_id_++, bid = next_id_++;
        rest(limit(ask, Xena, Sell, price, 1));
        const Result r = place(limit(bid, Yuri, Buy, price, 1, Ioc));
        EXPECT_EQ(fills(r), (Fills{{ask, bid, price, 1, 0}}));
        EXPECT_TRUE(r.triggered.empty()) << "trade_at(" << price << ") triggered stops";
        EXPECT_EQ(last(), price);
    }

    Ladder ladder() const { return ladder_of(book()); }

    // One side's resting orders in priority order.
    Queue queue(Side s) const {
        Queue v;
        std::vector<RestingOrder> os;
        book().orders(s, os);
        for (const RestingOrder& o : os) v.push_back({o.id, o.price.v, o.qty.v});
        return v;
    }

    // One side's pending stop orders in trigger order.
    Pends pending(Side s) const {
        Pends v;
        std::vector<RestingOrder> os;
        book().stops(s, os);
        for (const RestingOrder& o : os) v.push_back(pend_of(o));
        return v;
    }

    // find() of a pending stop order (all zeros if it is not one).
    Pend stop(OrderId id) const {
        RestingOrder o;
        if (!book().find(id, o) || o.stop.v == 0) return {0, 0, Buy, 0, 0, 0};
        EXPECT_EQ(o.visible.v, 0) << "a pending stop order shows nothing";
        EXPECT_GE(o.display.v, 0) << "#" << id;
        if (o.display.v != 0) {
            EXPECT_EQ(o.type, Lmt) << "#" << id << ": only a stop-limit GTC order may have a display";
            EXPECT_EQ(o.tif, Gtc) << "#" << id << ": only a stop-limit GTC order may have a display";
        }
        EXPECT_FALSE(o.post_only) << "#" << id;
        return pend_of(o);
    }

    // find() of an order in the book (all zeros if it is not one).
    Ord order(OrderId id) const {
        RestingOrder o;
        if (!book().find(id, o) || o.stop.v != 0) return {0, 0, 0};
        return {o.id, o.price.v, o.qty.v};
    }

    // find() of an order in the book with its tip and display (all zeros if it is not one).
    IceOrder shown(OrderId id) const {
        RestingOrder o;
        if (!book().find(id, o) || o.stop.v != 0) return {0, 0, 0, 0, 0};
        return {o.id, o.price.v, o.qty.v, o.visible.v, o.display.v};
    }

    bool has(OrderId id) const {
        RestingOrder o;
        return book().find(id, o);
    }

    int64_t last() const { return book().last_price().v; }
    uint64_t hash() const { return book().state_hash(); }
    uint64_t seq() const { return book().seq(); }

    // validate() is empty and the public views agree with each other: levels
    // with their orders, the counts, the pending stops with find() and the
    // trigger order.
    void expect_consistent() const {
        const std::vector<std::string> problems = book().validate();
        std::string all;
        for (const std::string& p : problems) all += "\n  " + p;
        EXPECT_TRUE(problems.empty()) << "book.validate():" << all;
        size_t orders = 0, levels = 0, stops = 0;
        std::set<OrderId> ids;
        for (Side s : {Buy, Sell}) {
            std::vector<LevelView> lv;
            std::vector<RestingOrder> os;
            book().levels(s, SIZE_MAX, lv);
            book().orders(s, os);
            EXPECT_EQ(book().level_count(s), lv.size()) << side_name(s);
            levels += lv.size();
            orders += os.size();
            size_t k = 0;
            for (const LevelView& l : lv) {
                int64_t shown = 0;
                uint32_t count = 0;
                for (; k < os.size() && os[k].price == l.price; ++k, ++count) {
                    const RestingOrder& o = os[k];
                    EXPECT_EQ(o.stop.v, 0) << "#" << o.id << " in the book has a stop price";
                    EXPECT_EQ(o.type, Lmt) << "#" << o.id << " in the book is not a limit order";
                    EXPECT_EQ(o.tif, Gtc) << "#" << o.id << " in the book is not GTC";
                    EXPECT_TRUE(ids.insert(o.id).second) << "#" << o.id << " twice";
                    shown += o.visible.v;
                }
                EXPECT_EQ(l.qty.v, shown)
                    << side_name(s) << " " << l.price.v << ": total is not the sum of tips";
                EXPECT_EQ(l.count, count) << side_name(s) << " " << l.price.v;
            }
            EXPECT_EQ(k, os.size()) << side_name(s) << ": orders outside every level";

            std::vector<RestingOrder> ps;
            book().stops(s, ps);
            stops += ps.size();
            for (size_t i = 0; i < ps.size(); ++i) {
                const RestingOrder& p = ps[i];
                EXPECT_EQ(p.side, s) << "#" << p.id << " listed with the other side's stops";
                EXPECT_GT(p.stop.v, 0) << "#" << p.id << " pending without a stop price";
                EXPECT_EQ(p.visible.v, 0) << "#" << p.id;
                EXPECT_GE(p.display.v, 0) << "#" << p.id;
                if (p.display.v != 0) {
                    EXPECT_TRUE(p.type == Lmt && p.tif == Gtc)
                        << "#" << p.id << ": a display on other than a stop-limit GTC order";
                }
                EXPECT_TRUE(ids.insert(p.id).second) << "#" << p.id << " twice";
                if (i > 0) {
                    if (s == Buy) {
                        EXPECT_LE(ps[i - 1].stop.v, p.stop.v) << "buy stops trigger lowest stop first";
                    } else {
                        EXPECT_GE(ps[i - 1].stop.v, p.stop.v) << "sell stops trigger highest stop first";
                    }
                }
                RestingOrder f;
                EXPECT_TRUE(book().find(p.id, f)) << "pending #" << p.id << " not found";
                EXPECT_EQ(pend_of(f), pend_of(p)) << "find() and stops() disagree";
            }
        }
        EXPECT_EQ(book().order_count(), orders) << "order_count() counts the book's orders";
        EXPECT_EQ(book().level_count(), levels) << "level_count() counts the book's levels";
        EXPECT_EQ(book().stop_count(), stops) << "stop_count() counts the pending stops";
    }

private:
    using LevelMap = std::map<std::pair<Side, int64_t>, std::pair<int64_t, uint32_t>>;

    LevelMap level_map() const {
        LevelMap m;
        for (const Lv& l : ladder()) m[{l.side, l.price}] = {l.qty, l.count};
        return m;
    }

    template <class Cmd>
    Result run(OrderId subject, Cmd&& cmd) {
        const uint64_t hash0 = book().state_hash();
        const Snapshot snap0 = Snapshot::of(book());
        LevelMap levels = level_map();
        std::map<OrderId, RestingOrder> pending0;
        for (Side s : {Buy, Sell})
            for (const RestingOrder& p : snap0.stops[static_cast<int>(s)]) pending0[p.id] = p;

        Result r = stale_result();
        r.pending = Qty{777};
        r.triggered.push_back(Triggered{999, 999, Side::Buy, 999, Qty{1}, Qty{1}, Qty{1}, CancelReason::User,
                                        Reject::NoChange, 9, 9, 9});
        const bool ok = cmd(r);
        EXPECT_EQ(ok, r.accepted());
        expect_consistent();
        if (!r.accepted()) {
            expect_rejected_result(r, snap0.seq);
            EXPECT_TRUE(r.triggered.empty()) << "a rejected result triggers nothing";
            EXPECT_EQ(r.pending.v, 0) << "a rejected result has nothing pending";
            EXPECT_EQ(book().state_hash(), hash0) << "a reject must not change the book";
            EXPECT_EQ(diff_snapshots(Snapshot::of(book()), snap0), "") << "a reject must not change the book";
            return r;
        }

        EXPECT_REJECT(r, None);
        EXPECT_EQ(r.seq, snap0.seq + 1) << "the command takes the next sequence number";
        EXPECT_EQ(book().seq(), snap0.seq + 1 + r.triggered.size())
            << "each triggered stop takes one more sequence number";

        // Slices: [bound[k], bound[k+1]) of each vector belongs to segment k: the
        // command's own order (k = 0), then triggered order k - 1.
        const size_t n = r.triggered.size();
        std::vector<size_t> ff{0}, fl{0}, fs{0};
        for (size_t i = 0; i < n; ++i) {
            const Triggered& t = r.triggered[i];
            EXPECT_EQ(t.seq, snap0.seq + 2 + i) << "triggered #" << t.id << "'s sequence number";
            EXPECT_GE(t.first_fill, ff.back()) << "triggered #" << t.id;
            EXPECT_GE(t.first_level, fl.back()) << "triggered #" << t.id;
            EXPECT_GE(t.first_stp, fs.back()) << "triggered #" << t.id;
            ff.push_back(std::min<size_t>(t.first_fill, r.fills.size()));
            fl.push_back(std::min<size_t>(t.first_level, r.levels.size()));
            fs.push_back(std::min<size_t>(t.first_stp, r.stp_cancelled.size()));
        }
        ff.push_back(r.fills.size());
        fl.push_back(r.levels.size());
        fs.push_back(r.stp_cancelled.size());
        for (size_t i = 0; i < n; ++i) {
            EXPECT_LE(r.triggered[i].first_fill, r.fills.size());
            EXPECT_LE(r.triggered[i].first_level, r.levels.size());
            EXPECT_LE(r.triggered[i].first_stp, r.stp_cancelled.size());
        }

        std::set<OrderId> stp_removed_ids;
        for (const Cancelled& c : r.stp_cancelled) {
            stp_removed_ids.insert(c.id);
            EXPECT_FALSE(has(c.id)) << "#" << c.id << " removed by STP is still there";
        }

        int64_t subject_filled = 0;
        for (size_t k = 0; k <= n; ++k) {
            const OrderId taker = k == 0 ? subject : r.triggered[k - 1].id;
            int64_t seg_filled = 0;
            for (size_t i = ff[k]; i < ff[k + 1]; ++i) {
                const Fill& f = r.fills[i];
                EXPECT_EQ(f.taker, taker) << "fill " << i << " against #" << f.maker;
                EXPECT_GT(f.qty.v, 0);
                seg_filled += f.qty.v;
                const auto it = owners_.find(f.maker);
                if (it == owners_.end())
                    ADD_FAILURE() << "fill against unknown maker #" << f.maker;
                else
                    EXPECT_EQ(f.maker_owner, it->second) << "maker_owner of the fill against #" << f.maker;
            }
            if (k == 0) {
                subject_filled = seg_filled;
            } else {
                const Triggered& t = r.triggered[k - 1];
                EXPECT_EQ(t.filled.v, seg_filled)
                    << "triggered #" << t.id << ": filled is the sum of its fills";
            }
            std::set<std::pair<Side, int64_t>> seen;
            for (size_t i = fl[k]; i < fl[k + 1]; ++i) {
                const LevelChange& c = r.levels[i];
                EXPECT_TRUE(seen.insert({c.side, c.price.v}).second)
                    << side_name(c.side) << " " << c.price.v << " reported twice for one order";
            }
        }
        EXPECT_EQ(r.filled.v, subject_filled) << "the command's filled is its own order's fills";

        // Applied in order, the level changes give the book after the command.
        for (const LevelChange& c : r.levels) {
            if (c.qty.v == 0 && c.count == 0)
                levels.erase({c.side, c.price.v});
            else
                levels[{c.side, c.price.v}] = {c.qty.v, c.count};
        }
        EXPECT_EQ(levels, level_map()) << "the level changes applied in order do not give the book";

        // Each maker's last fill describes it as it rests after the command.
        std::map<OrderId, const Fill*> last_fill;
        for (const Fill& f : r.fills) last_fill[f.maker] = &f;
        for (const auto& [id, f] : last_fill) {
            if (stp_removed_ids.count(id)) continue;
            RestingOrder o;
            if (f->maker_remaining.v == 0) {
                EXPECT_FALSE(book().find(id, o)) << "filled maker #" << id << " is still resting";
            } else if (book().find(id, o)) {
                EXPECT_EQ(o.qty.v, f->maker_remaining.v) << "maker #" << id;
                EXPECT_EQ(o.visible.v, f->maker_visible.v) << "maker #" << id;
            } else {
                ADD_FAILURE() << "partly filled maker #" << id << " is not resting";
            }
        }

        // The last price is the last fill's.
        EXPECT_EQ(book().last_price().v, r.fills.empty() ? snap0.last_price : r.fills.back().price.v)
            << "last_price() after the command";

        // Each triggered order was pending, ran once with its own quantity and is pending no more.
        std::set<OrderId> seen_triggered;
        for (size_t i = 0; i < n; ++i) {
            const Triggered& t = r.triggered[i];
            SCOPED_TRACE("triggered #" + std::to_string(t.id));
            EXPECT_TRUE(seen_triggered.insert(t.id).second) << "triggered twice";
            const auto it = pending0.find(t.id);
            if (it == pending0.end()) {
                ADD_FAILURE() << "was not pending";
                continue;
            }
            const RestingOrder& p = it->second;
            EXPECT_EQ(t.owner, p.owner);
            EXPECT_EQ(t.side, p.side);
            EXPECT_EQ(t.filled.v + t.resting.v + t.cancelled.v, p.qty.v) << "filled + resting + cancelled";
            if (t.reject != Reject::None) {
                EXPECT_EQ(done(t.filled.v, t.resting.v, t.cancelled.v, t.cancel_reason), done(0, 0, p.qty.v))
                    << "a rejected triggered order is cancelled whole with reason None";
                EXPECT_EQ(ff[i + 1], ff[i + 2]) << "nothing of a rejected triggered order traded";
                EXPECT_EQ(fl[i + 1], fl[i + 2]) << "a rejected triggered order changed a level";
                EXPECT_EQ(fs[i + 1], fs[i + 2]) << "a rejected triggered order removed an order";
            }
            RestingOrder o;
            const bool found = book().find(t.id, o);
            if (t.resting.v == 0) {
                EXPECT_FALSE(found) << "not resting, yet found";
            } else if (!found) {
                ADD_FAILURE() << "resting " << t.resting.v << ", yet not found";
            } else {
                EXPECT_EQ(o.stop.v, 0) << "a triggered order rests as a plain limit order";
                EXPECT_EQ(o.price.v, p.price.v);
                // Unless a later order traded with it or removed it.
                bool touched = stp_removed_ids.count(t.id) > 0;
                for (size_t j = ff[i + 2]; j < r.fills.size(); ++j) touched |= r.fills[j].maker == t.id;
                if (!touched) {
                    // As if placed then: an iceberg with a fresh tip, a plain order all shown.
                    EXPECT_EQ(o.qty.v, t.resting.v);
                    EXPECT_EQ(o.display.v, p.display.v) << "a triggered order keeps its display";
                    EXPECT_EQ(o.visible.v, p.display.v > 0 ? std::min(p.display.v, t.resting.v) : t.resting.v)
                        << "a triggered iceberg rests with a tip of min(display, remaining)";
                }
            }
        }
        // The pending stops after the command: those before, less the triggered ones
        // (and the command's own order if it placed, amended or cancelled a stop).
        for (const auto& [id, p] : pending0) {
            if (id == subject) continue;
            if (seen_triggered.count(id))
                EXPECT_EQ(stop(id).id, 0u) << "triggered #" << id << " is still pending";
            else
                EXPECT_EQ(stop(id), pend_of(p)) << "#" << id << " was not triggered, yet changed";
        }
        return r;
    }

    OwnedBook ob_;
    std::map<OrderId, OwnerId> owners_;  // latest owner of each id, to check fills
    OrderId next_id_ = 9001;             // trade_at's orders
};

class StopScenario : public ::testing::Test {
protected:
    void TearDown() override { d.expect_consistent(); }

    StopDesk d;
};

using StopPlace = StopScenario;
using StopValidation = StopScenario;
using StopTrigger = StopScenario;
using StopPriority = StopScenario;
using StopSequence = StopScenario;
using StopRun = StopScenario;
using StopCascade = StopScenario;
using StopAmend = StopScenario;
using StopCancel = StopScenario;
using StopStp = StopScenario;
using StopLoad = StopScenario;
using StopLastPrice = StopScenario;
using StopRollback = StopScenario;
using StopHash = StopScenario;
using StopMove = StopScenario;
using StopIceberg = StopScenario;

// ===========================================================================
// Placing: a stop order waits outside the book.

TEST_F(StopPlace, BuyStopLimitWaitsOutsideTheBook) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Carol, Buy, 99, 5));
    const Ladder book{{Ask, 101, 5, 1}, {Bid, 99, 5, 1}};
    const uint64_t seq0 = d.seq();

    // Its limit price crosses the ask, but it trades with nothing.
    const Result r = d.place(stop_limit(10, Alice, Buy, 105, 106, 7));

    EXPECT_TRUE(r.accepted()) << reject_name(r);
    EXPECT_EQ(r.seq, seq0 + 1);
    EXPECT_EQ(d.seq(), seq0 + 1);
    EXPECT_EQ(r.pending.v, 7);
    EXPECT_EQ(outcome(r), done(0, 0));
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(level_changes(r), Changes{});
    EXPECT_EQ(triggered_of(r), Trigs{});
    EXPECT_EQ(d.ladder(), book);
    EXPECT_EQ(d.queue(Bid), (Queue{{2, 99, 5}}));
    EXPECT_EQ(d.queue(Ask), (Queue{{1, 101, 5}}));
    EXPECT_EQ(d.book().order_count(), 2u);
    EXPECT_EQ(d.book().level_count(), 2u);
    EXPECT_EQ(d.book().stop_count(), 1u);

    RestingOrder o;
    ASSERT_TRUE(d.book().find(10, o));
    EXPECT_EQ(o.id, 10u);
    EXPECT_EQ(o.owner, Alice);
    EXPECT_EQ(o.side, Buy);
    EXPECT_EQ(o.stop.v, 105);
    EXPECT_EQ(o.price.v, 106);
    EXPECT_EQ(o.qty.v, 7);
    EXPECT_EQ(o.type, Lmt);
    EXPECT_EQ(o.tif, Gtc);
    EXPECT_EQ(o.visible.v, 0);
    EXPECT_EQ(o.display.v, 0);
    EXPECT_FALSE(o.post_only);
    EXPECT_EQ(o.stp, kDefaultStp);
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Alice, Buy, 105, 106, 7}}));
    EXPECT_EQ(d.pending(Sell), Pends{});
}

TEST_F(StopPlace, SellStopMarketAndOtherTifsWait) {
    d.rest(limit(1, Bob, Buy, 99, 5));
    const uint64_t seq0 = d.seq();

    const Result a = d.place(stop_market(11, Alice, Sell, 95, 4, Ioc));
    EXPECT_EQ(a.seq, seq0 + 1);
    EXPECT_EQ(a.pending.v, 4);
    EXPECT_EQ(d.stop(11), (Pend{11, Alice, Sell, 95, 0, 4, Mkt, Ioc}));

    const Result b = d.place(with_stp(stop_limit(12, Carol, Sell, 96, 94, 3, Fok), Stp::CancelBoth));
    EXPECT_EQ(b.seq, seq0 + 2);
    EXPECT_EQ(b.pending.v, 3);
    const Result c = d.place(stop_market(13, Dave, Buy, 120, 2, Fok));
    EXPECT_EQ(c.seq, seq0 + 3);
    const Result e = d.place(stop_market(14, Dave, Buy, 121, 6));
    EXPECT_EQ(e.seq, seq0 + 4);

    EXPECT_EQ(d.pending(Sell), (Pends{{12, Carol, Sell, 96, 94, 3, Lmt, Fok, Stp::CancelBoth},
                                      {11, Alice, Sell, 95, 0, 4, Mkt, Ioc}}));
    EXPECT_EQ(d.pending(Buy),
              (Pends{{13, Dave, Buy, 120, 0, 2, Mkt, Fok}, {14, Dave, Buy, 121, 0, 6, Mkt, Gtc}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 99, 5, 1}}));
    EXPECT_EQ(d.book().order_count(), 1u);
    EXPECT_EQ(d.book().stop_count(), 4u);
    EXPECT_EQ(d.last(), 0);
}

TEST_F(StopPlace, StopsListsEachSideInTriggerOrder) {
    // Buy stops: lowest stop price first, oldest first at one price.
    d.arm(stop_limit(10, Bob, Buy, 105, 106, 1));
    d.arm(stop_limit(11, Carol, Buy, 103, 104, 2));
    d.arm(stop_market(12, Dave, Buy, 107, 3));
    d.arm(stop_market(13, Bob, Buy, 103, 4));
    // Sell stops: highest stop price first, oldest first at one price.
    d.arm(stop_limit(20, Bob, Sell, 95, 94, 5));
    d.arm(stop_market(21, Carol, Sell, 97, 6));
    d.arm(stop_limit(22, Dave, Sell, 93, 90, 7));
    d.arm(stop_limit(23, Bob, Sell, 97, 96, 8));

    EXPECT_EQ(d.pending(Buy), (Pends{{11, Carol, Buy, 103, 104, 2},
                                     {13, Bob, Buy, 103, 0, 4, Mkt},
                                     {10, Bob, Buy, 105, 106, 1},
                                     {12, Dave, Buy, 107, 0, 3, Mkt}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{21, Carol, Sell, 97, 0, 6, Mkt},
                                      {23, Bob, Sell, 97, 96, 8},
                                      {20, Bob, Sell, 95, 94, 5},
                                      {22, Dave, Sell, 93, 90, 7}}));
    EXPECT_EQ(d.book().stop_count(), 8u);
    EXPECT_EQ(d.book().order_count(), 0u);
    EXPECT_EQ(d.book().level_count(), 0u);
    EXPECT_EQ(d.ladder(), Ladder{});
    EXPECT_EQ(d.seq(), 8u);
}

// ===========================================================================
// Validation.

TEST_F(StopValidation, StopPriceOutOfRangeIsInvalidStopPrice) {
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, -1, 100, 5)), InvalidStopPrice);
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, kInt64Min, 100, 5)), InvalidStopPrice);
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, kMaxPrice + 1, 100, 5)), InvalidStopPrice);
    EXPECT_REJECT(d.place(stop_market(10, Alice, Sell, -5, 5)), InvalidStopPrice);
    EXPECT_REJECT(d.place(stop_market(10, Alice, Sell, kInt64Max, 5)), InvalidStopPrice);
    EXPECT_EQ(d.book().stop_count(), 0u);

    // The bounds themselves are stop prices.
    d.arm(stop_limit(10, Alice, Buy, kMaxPrice, kMaxPrice, 5));
    d.arm(stop_market(11, Alice, Sell, 1, 5));
    EXPECT_EQ(d.stop(10), (Pend{10, Alice, Buy, kMaxPrice, kMaxPrice, 5}));
    EXPECT_EQ(d.stop(11), (Pend{11, Alice, Sell, 1, 0, 5, Mkt}));
}

TEST_F(StopValidation, LimitPriceIsCheckedAsForAnyOrder) {
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, 100, 0, 5)), InvalidPrice);
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, 100, -1, 5)), InvalidPrice);
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, 100, kMaxPrice + 1, 5)), InvalidPrice);
    NewOrder priced_market = stop_market(10, Alice, Buy, 100, 5);
    priced_market.price = Price{100};
    EXPECT_REJECT(d.place(priced_market), InvalidPrice) << "a stop-market order has price 0";
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, 100, 101, 0)), InvalidQuantity);
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, 100, 101, kMaxQty + 1)), InvalidQuantity);
    EXPECT_EQ(d.book().stop_count(), 0u);

    d.arm(stop_limit(10, Alice, Buy, 100, 1, kMaxQty));
    EXPECT_EQ(d.stop(10), (Pend{10, Alice, Buy, 100, 1, kMaxQty}));
}

TEST_F(StopValidation, PostOnlyOrADisplayOnAnythingButAStopLimitGtcIsAnInvalidCombination) {
    NewOrder po = stop_limit(10, Alice, Buy, 100, 101, 10);
    po.post_only = true;
    EXPECT_REJECT(d.place(po), InvalidCombination);
    EXPECT_REJECT(d.place(with_display(po, 2)), InvalidCombination) << "post-only on a stop-limit iceberg";
    NewOrder po_market = stop_market(10, Alice, Sell, 90, 10);
    po_market.post_only = true;
    EXPECT_REJECT(d.place(po_market), InvalidCombination);
    NewOrder po_ioc = stop_limit(10, Alice, Sell, 90, 89, 10, Ioc);
    po_ioc.post_only = true;
    EXPECT_REJECT(d.place(po_ioc), InvalidCombination);
    // A display on a stop-market order, or on an IOC or FOK stop, as without a stop.
    EXPECT_REJECT(d.place(with_display(stop_market(10, Alice, Sell, 90, 10), 2)), InvalidCombination);
    EXPECT_REJECT(d.place(with_display(stop_market(10, Alice, Buy, 110, 10, Ioc), 10)), InvalidCombination);
    EXPECT_REJECT(d.place(with_display(stop_market(10, Alice, Buy, 110, 10, Fok), 1)), InvalidCombination);
    EXPECT_REJECT(d.place(with_display(stop_limit(10, Alice, Buy, 100, 101, 10, Ioc), 2)),
                  InvalidCombination);
    EXPECT_REJECT(d.place(with_display(stop_limit(10, Alice, Sell, 90, 89, 10, Fok), 10)), InvalidCombination)
        << "display equal to the quantity";
    EXPECT_EQ(d.book().stop_count(), 0u);
    EXPECT_EQ(d.seq(), 0u);

    // A stop-limit GTC order may have one: a stop-limit iceberg, pending like any stop.
    d.arm(with_display(stop_limit(10, Alice, Buy, 100, 101, 10), 2));
    d.arm(with_display(stop_limit(11, Alice, Sell, 90, 89, 10), 10));  // display equal to the quantity
    d.arm(with_display(stop_limit(12, Alice, Sell, 91, 89, 200), 2));  // exactly kMaxIcebergParts tips
    EXPECT_EQ(d.pending(Buy), (Pends{with_display({10, Alice, Buy, 100, 101, 10}, 2)}));
    EXPECT_EQ(d.pending(Sell), (Pends{with_display({12, Alice, Sell, 91, 89, 200}, 2),
                                      with_display({11, Alice, Sell, 90, 89, 10}, 10)}));
    EXPECT_EQ(d.seq(), 3u);
}

TEST_F(StopValidation, FirstFailureWins) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.arm(stop_limit(2, Bob, Buy, 110, 111, 5));
    d.trade_at(100);  // last price 100
    const auto bad = [](NewOrder o) {
        o.stop = Price{-1};
        return o;
    };

    NewOrder o = bad(stop_limit(0, Alice, Buy, 0, 101, 5));
    EXPECT_REJECT(d.place(o), InvalidOrderId);
    o = bad(stop_limit(10, Alice, Buy, 0, 101, 5));
    o.side = static_cast<Side>(7);
    EXPECT_REJECT(d.place(o), InvalidSide);
    o = bad(stop_limit(10, Alice, Buy, 0, 101, 5));
    o.type = static_cast<OrderType>(5);
    EXPECT_REJECT(d.place(o), InvalidType);
    o = bad(stop_limit(10, Alice, Buy, 0, 101, 5));
    o.tif = static_cast<Tif>(9);
    EXPECT_REJECT(d.place(o), InvalidTif);
    o = bad(stop_limit(10, Alice, Buy, 0, 101, 5));
    o.stp = static_cast<Stp>(9);
    EXPECT_REJECT(d.place(o), InvalidStp);
    EXPECT_REJECT(d.place(bad(stop_limit(10, Alice, Buy, 0, 0, 5))), InvalidPrice);
    o = bad(stop_market(10, Alice, Buy, 0, 5));
    o.price = Price{5};
    EXPECT_REJECT(d.place(o), InvalidPrice);
    EXPECT_REJECT(d.place(bad(stop_limit(10, Alice, Buy, 0, 101, 0))), InvalidQuantity);
    o = bad(stop_limit(10, Alice, Buy, 0, 101, 5));
    o.display = Qty{-1};
    EXPECT_REJECT(d.place(o), InvalidDisplay);
    o.display = Qty{6};
    EXPECT_REJECT(d.place(o), InvalidDisplay);
    o = bad(stop_market(10, Alice, Buy, 0, 101, Ioc));
    o.display = Qty{1};
    o.post_only = true;
    EXPECT_REJECT(d.place(o), InvalidDisplay) << "101 tips of 1, before the stop price and the combination";

    // The stop price, then the combination, then the id, then the last price.
    o = bad(stop_limit(1, Alice, Buy, 0, 101, 5));
    o.post_only = true;
    o.display = Qty{2};
    EXPECT_REJECT(d.place(o), InvalidStopPrice);
    o.stop = Price{kMaxPrice + 1};
    EXPECT_REJECT(d.place(o), InvalidStopPrice);
    o.stop = Price{100};  // a duplicate id that would trigger, with post-only and a display
    EXPECT_REJECT(d.place(o), InvalidCombination) << "post-only";
    o.post_only = false;
    o.tif = Fok;
    EXPECT_REJECT(d.place(o), InvalidCombination) << "a display on a FOK stop";
    o.tif = Gtc;
    o.type = Mkt;
    o.price = Price{0};
    EXPECT_REJECT(d.place(o), InvalidCombination) << "a display on a stop-market order";
    o.type = Lmt;
    o.price = Price{101};
    EXPECT_REJECT(d.place(o), DuplicateOrderId)
        << "#1 rests (a stop-limit GTC iceberg is no invalid combination)";
    o.display = Qty{0};
    EXPECT_REJECT(d.place(o), DuplicateOrderId) << "#1 rests";
    o.display = Qty{2};
    o.id = 2;
    EXPECT_REJECT(d.place(o), DuplicateOrderId) << "#2 is pending";
    o.id = 10;
    EXPECT_REJECT(d.place(o), StopWouldTrigger);
    o.stop = Price{101};
    EXPECT_TRUE(d.place(o).accepted());
    EXPECT_EQ(d.pending(Buy),
              (Pends{with_display({10, Alice, Buy, 101, 101, 5}, 2), {2, Bob, Buy, 110, 111, 5}}));
}

TEST_F(StopValidation, DuplicateIdsAmongRestingAndPendingOrders) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.arm(stop_limit(2, Carol, Buy, 105, 106, 5));
    d.arm(stop_market(3, Dave, Sell, 90, 5));

    EXPECT_REJECT(d.place(stop_limit(1, Alice, Buy, 110, 111, 1)), DuplicateOrderId)
        << "a stop reusing a resting id";
    EXPECT_REJECT(d.place(stop_market(1, Alice, Sell, 80, 1)), DuplicateOrderId);
    EXPECT_REJECT(d.place(stop_limit(2, Alice, Buy, 105, 106, 5)), DuplicateOrderId) << "the same stop again";
    EXPECT_REJECT(d.place(stop_market(3, Alice, Buy, 120, 1)), DuplicateOrderId);
    EXPECT_REJECT(d.place(limit(2, Alice, Buy, 99, 1)), DuplicateOrderId) << "a limit reusing a pending id";
    EXPECT_REJECT(d.place(limit(3, Alice, Sell, 101, 1)), DuplicateOrderId);
    EXPECT_REJECT(d.place(market(2, Alice, Buy, 1)), DuplicateOrderId)
        << "a market order reusing a pending id";
    EXPECT_REJECT(d.place(limit(3, Alice, Buy, 101, 1, Ioc)), DuplicateOrderId);

    EXPECT_EQ(d.queue(Ask), (Queue{{1, 101, 5}}));
    EXPECT_EQ(d.pending(Buy), (Pends{{2, Carol, Buy, 105, 106, 5}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{3, Dave, Sell, 90, 0, 5, Mkt}}));
}

TEST_F(StopValidation, StopWouldTriggerAgainstTheLastTradePrice) {
    d.trade_at(100);
    ASSERT_EQ(d.last(), 100);

    // A buy stop at or below the last price has been reached.
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, 100, 105, 5)), StopWouldTrigger);
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, 99, 105, 5)), StopWouldTrigger);
    EXPECT_REJECT(d.place(stop_market(10, Alice, Buy, 1, 5)), StopWouldTrigger);
    EXPECT_REJECT(d.place(stop_market(10, Alice, Buy, 100, 5, Fok)), StopWouldTrigger);
    // A sell stop at or above it too.
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Sell, 100, 95, 5)), StopWouldTrigger);
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Sell, 101, 95, 5)), StopWouldTrigger);
    EXPECT_REJECT(d.place(stop_market(10, Alice, Sell, kMaxPrice, 5)), StopWouldTrigger);
    EXPECT_REJECT(d.place(stop_market(10, Alice, Sell, 100, 5, Ioc)), StopWouldTrigger);
    EXPECT_EQ(d.book().stop_count(), 0u);

    d.arm(stop_limit(10, Alice, Buy, 101, 105, 5));
    d.arm(stop_market(11, Alice, Buy, kMaxPrice, 5));
    d.arm(stop_limit(12, Alice, Sell, 99, 95, 5));
    d.arm(stop_market(13, Alice, Sell, 1, 5));
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Alice, Buy, 101, 105, 5}, {11, Alice, Buy, kMaxPrice, 0, 5, Mkt}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{12, Alice, Sell, 99, 95, 5}, {13, Alice, Sell, 1, 0, 5, Mkt}}));
}

TEST_F(StopValidation, BeforeAnyTradeEveryStopWaits) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Bob, Buy, 99, 5));
    ASSERT_EQ(d.last(), 0);

    d.arm(stop_market(10, Alice, Buy, 1, 5));
    d.arm(stop_limit(11, Alice, Sell, kMaxPrice, 1, 5));
    d.arm(stop_market(12, Alice, Sell, 1, 5));
    d.arm(stop_market(13, Alice, Buy, kMaxPrice, 5));
    EXPECT_EQ(d.book().stop_count(), 4u);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 5, 1}, {Bid, 99, 5, 1}}));
}

TEST_F(StopValidation, RejectedCommandsChangeNothing) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Bob, Buy, 99, 5));
    d.trade_at(100);
    d.arm(stop_limit(10, Carol, Buy, 102, 103, 4));
    d.arm(stop_market(11, Dave, Buy, 102, 2));
    d.arm(stop_market(12, Dave, Sell, 98, 3));
    const uint64_t seq0 = d.seq(), hash0 = d.hash();
    const Ladder book = d.ladder();
    const Pends buys = d.pending(Buy), sells = d.pending(Sell);

    EXPECT_REJECT(d.place(stop_limit(13, Alice, Buy, 100, 101, 1)), StopWouldTrigger);
    EXPECT_REJECT(d.place(stop_limit(10, Alice, Buy, 103, 101, 1)), DuplicateOrderId);
    EXPECT_REJECT(d.place(stop_limit(13, Alice, Buy, -3, 101, 1)), InvalidStopPrice);
    EXPECT_REJECT(d.place(limit(13, Alice, Buy, 101, 6, Fok)), FokUnfillable);
    EXPECT_REJECT(d.amend(10, 0, 4), InvalidPrice);
    EXPECT_REJECT(d.amend(11, 5, 2), InvalidPrice);
    EXPECT_REJECT(d.amend(10, 103, 4), NoChange);
    EXPECT_REJECT(d.amend(12, 0, 0), InvalidQuantity);
    EXPECT_REJECT(d.cancel(13), OrderNotFound);
    EXPECT_REJECT(d.cancel(0), OrderNotFound);

    EXPECT_EQ(d.seq(), seq0);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.ladder(), book);
    EXPECT_EQ(d.pending(Buy), buys);
    EXPECT_EQ(d.pending(Sell), sells);
    EXPECT_EQ(d.book().stop_count(), 3u);
    EXPECT_EQ(d.book().order_count(), 2u);
    EXPECT_EQ(d.book().level_count(), 2u);
    EXPECT_EQ(d.last(), 100);
}

// ===========================================================================
// Triggering.

TEST_F(StopTrigger, BuyStopTriggersOnATradeExactlyAtItsStop) {
    d.rest(limit(1, Bob, Sell, 100, 2));
    d.rest(limit(2, Bob, Sell, 101, 5));
    d.arm(stop_market(10, Dave, Buy, 100, 3));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(r.seq, s + 1);
    EXPECT_EQ(outcome(r), done(1, 0));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 1}, {1, 10, 100, 1, 0}, {2, 10, 101, 2, 3}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(3, 0), Reject::None, 1, 1)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 1, 1}, {Ask, 100, 0, 0}, {Ask, 101, 3, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 3, 1}}));
    EXPECT_EQ(d.seq(), s + 2);
    EXPECT_EQ(d.last(), 101);
    EXPECT_EQ(d.book().stop_count(), 0u);
    EXPECT_FALSE(d.has(10));
}

TEST_F(StopTrigger, BuyStopWaitsWhileTradesStayBelowItsStop) {
    d.rest(limit(1, Bob, Sell, 99, 2));
    d.rest(limit(2, Bob, Sell, 100, 5));
    d.arm(stop_market(10, Dave, Buy, 100, 3));

    const Result r = d.place(limit(20, Alice, Buy, 99, 2));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 99, 2, 0}}));
    EXPECT_EQ(triggered_of(r), Trigs{});
    EXPECT_EQ(d.last(), 99);
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 100, 0, 3, Mkt}}));
    EXPECT_EQ(d.seq(), r.seq);
}

TEST_F(StopTrigger, SellStopTriggersOnATradeThroughItsStop) {
    d.rest(limit(1, Bob, Buy, 100, 3));
    d.rest(limit(2, Bob, Buy, 98, 6));
    d.trade_at(101);
    d.arm(stop_limit(10, Dave, Sell, 99, 97, 4));
    const uint64_t s = d.seq();

    // Trades at 100 (above the stop) and then at 98 (below it).
    const Result r = d.place(limit(20, Alice, Sell, 98, 4));

    EXPECT_EQ(outcome(r), done(4, 0));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 3, 0}, {2, 20, 98, 1, 5}, {2, 10, 98, 4, 1}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Sell, s + 2, done(4, 0), Reject::None, 2, 2)}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}, {Bid, 98, 5, 1}, {Bid, 98, 1, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 98, 1, 1}}));
    EXPECT_EQ(d.last(), 98);
    EXPECT_EQ(d.seq(), s + 2);
}

TEST_F(StopTrigger, SellStopWaitsWhileTradesStayAboveItsStop) {
    d.rest(limit(1, Bob, Buy, 100, 3));
    d.trade_at(102);
    d.arm(stop_market(10, Dave, Sell, 99, 4));

    const Result r = d.place(limit(20, Alice, Sell, 100, 2));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 2, 1}}));
    EXPECT_EQ(triggered_of(r), Trigs{});
    EXPECT_EQ(d.pending(Sell), (Pends{{10, Dave, Sell, 99, 0, 4, Mkt}}));
}

TEST_F(StopTrigger, OnlyThePriceOfTheLastTradeCountsNotThePricesTradedThrough) {
    d.trade_at(103);
    d.arm(stop_market(10, Dave, Sell, 101, 4));  // waits for a last price <= 101
    d.arm(stop_market(11, Dave, Buy, 104, 4));   // waits for a last price >= 104
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Bob, Sell, 101, 1));
    d.rest(limit(3, Bob, Sell, 102, 1));
    d.rest(limit(4, Carol, Buy, 90, 10));

    // The sweep trades at 100 and 101, but its last trade is at 102.
    const Result r = d.place(limit(20, Alice, Buy, 102, 3));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}, {2, 20, 101, 1, 0}, {3, 20, 102, 1, 0}}));
    EXPECT_EQ(triggered_of(r), Trigs{});
    EXPECT_EQ(d.last(), 102);
    EXPECT_EQ(d.book().stop_count(), 2u);

    // A trade at 101 reaches the sell stop.
    d.rest(limit(5, Bob, Sell, 101, 1));
    const uint64_t s = d.seq();
    const Result t = d.place(limit(21, Alice, Buy, 101, 1));
    EXPECT_EQ(fills(t), (Fills{{5, 21, 101, 1, 0}, {4, 10, 90, 4, 6}}));
    EXPECT_EQ(triggered_of(t), (Trigs{trig(10, Dave, Sell, s + 2, done(4, 0), Reject::None, 1, 1)}));
    EXPECT_EQ(d.last(), 90);
    EXPECT_EQ(d.pending(Buy), (Pends{{11, Dave, Buy, 104, 0, 4, Mkt}}));
    EXPECT_EQ(d.pending(Sell), Pends{});
}

// ===========================================================================
// Which stop runs first.

TEST_F(StopPriority, BuyStopsRunLowestStopFirstOldestFirstAtOnePrice) {
    d.arm(stop_limit(10, Dave, Buy, 102, 90, 1));
    d.arm(stop_limit(11, Dave, Buy, 101, 90, 2));
    d.arm(stop_limit(12, Dave, Buy, 100, 90, 3));
    d.arm(stop_limit(13, Dave, Buy, 101, 90, 4));
    d.arm(stop_limit(14, Dave, Buy, 102, 90, 5));
    d.arm(stop_limit(15, Dave, Buy, 103, 90, 6));
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Bob, Sell, 101, 1));
    d.rest(limit(3, Bob, Sell, 102, 1));
    d.rest(limit(4, Bob, Sell, 103, 1));
    EXPECT_EQ(d.pending(Buy), (Pends{{12, Dave, Buy, 100, 90, 3},
                                     {11, Dave, Buy, 101, 90, 2},
                                     {13, Dave, Buy, 101, 90, 4},
                                     {10, Dave, Buy, 102, 90, 1},
                                     {14, Dave, Buy, 102, 90, 5},
                                     {15, Dave, Buy, 103, 90, 6}}));
    const uint64_t s = d.seq();

    // The last trade at 102 reaches every stop up to 102; none of them trades.
    const Result r = d.place(limit(20, Alice, Buy, 102, 3));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}, {2, 20, 101, 1, 0}, {3, 20, 102, 1, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(12, Dave, Buy, s + 2, done(0, 3), Reject::None, 3, 3),
                                      trig(11, Dave, Buy, s + 3, done(0, 2), Reject::None, 3, 4),
                                      trig(13, Dave, Buy, s + 4, done(0, 4), Reject::None, 3, 5),
                                      trig(10, Dave, Buy, s + 5, done(0, 1), Reject::None, 3, 6),
                                      trig(14, Dave, Buy, s + 6, done(0, 5), Reject::None, 3, 7)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0},
                                         {Ask, 101, 0, 0},
                                         {Ask, 102, 0, 0},
                                         {Bid, 90, 3, 1},
                                         {Bid, 90, 5, 2},
                                         {Bid, 90, 9, 3},
                                         {Bid, 90, 10, 4},
                                         {Bid, 90, 15, 5}}));
    // They joined the level in the order they ran.
    EXPECT_EQ(d.queue(Bid), (Queue{{12, 90, 3}, {11, 90, 2}, {13, 90, 4}, {10, 90, 1}, {14, 90, 5}}));
    EXPECT_EQ(d.pending(Buy), (Pends{{15, Dave, Buy, 103, 90, 6}}));
    EXPECT_EQ(d.seq(), s + 6);
    EXPECT_EQ(d.last(), 102);
}

TEST_F(StopPriority, SellStopsRunHighestStopFirstOldestFirstAtOnePrice) {
    d.arm(stop_limit(10, Dave, Sell, 98, 110, 1));
    d.arm(stop_limit(11, Dave, Sell, 99, 110, 2));
    d.arm(stop_limit(12, Dave, Sell, 100, 110, 3));
    d.arm(stop_limit(13, Dave, Sell, 99, 110, 4));
    d.arm(stop_limit(14, Dave, Sell, 98, 110, 5));
    d.arm(stop_limit(15, Dave, Sell, 97, 110, 6));
    d.rest(limit(1, Bob, Buy, 100, 1));
    d.rest(limit(2, Bob, Buy, 99, 1));
    d.rest(limit(3, Bob, Buy, 98, 1));
    d.rest(limit(4, Bob, Buy, 97, 1));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Sell, 98, 3));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}, {2, 20, 99, 1, 0}, {3, 20, 98, 1, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(12, Dave, Sell, s + 2, done(0, 3), Reject::None, 3, 3),
                                      trig(11, Dave, Sell, s + 3, done(0, 2), Reject::None, 3, 4),
                                      trig(13, Dave, Sell, s + 4, done(0, 4), Reject::None, 3, 5),
                                      trig(10, Dave, Sell, s + 5, done(0, 1), Reject::None, 3, 6),
                                      trig(14, Dave, Sell, s + 6, done(0, 5), Reject::None, 3, 7)}));
    EXPECT_EQ(d.queue(Ask), (Queue{{12, 110, 3}, {11, 110, 2}, {13, 110, 4}, {10, 110, 1}, {14, 110, 5}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 110, 15, 5}, {Bid, 97, 1, 1}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{15, Dave, Sell, 97, 110, 6}}));
    EXPECT_EQ(d.seq(), s + 6);
}

TEST_F(StopPriority, EachRunIsChosenAgainstTheLastPriceAfterThePreviousOne) {
    // Placement order 10 (101), 11 (100), 12 (101), 13 (100). A trade at 100
    // reaches 11 and 13 only; 11's trade at 101 reaches the others, and the
    // lower stop still goes first.
    d.arm(stop_market(10, Dave, Buy, 101, 1));
    d.arm(stop_market(11, Carol, Buy, 100, 1));
    d.arm(stop_market(12, Dave, Buy, 101, 1));
    d.arm(stop_market(13, Carol, Buy, 100, 1));
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Bob, Sell, 101, 10));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0},
                               {2, 11, 101, 1, 9},
                               {2, 13, 101, 1, 8},
                               {2, 10, 101, 1, 7},
                               {2, 12, 101, 1, 6}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(11, Carol, Buy, s + 2, done(1, 0), Reject::None, 1, 1),
                                      trig(13, Carol, Buy, s + 3, done(1, 0), Reject::None, 2, 2),
                                      trig(10, Dave, Buy, s + 4, done(1, 0), Reject::None, 3, 3),
                                      trig(12, Dave, Buy, s + 5, done(1, 0), Reject::None, 4, 4)}));
    EXPECT_EQ(
        level_changes(r),
        (Changes{{Ask, 100, 0, 0}, {Ask, 101, 9, 1}, {Ask, 101, 8, 1}, {Ask, 101, 7, 1}, {Ask, 101, 6, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 6, 1}}));
    EXPECT_EQ(d.last(), 101);
}

TEST_F(StopPriority, BuyStopsRunBeforeSellStops) {
    // Before any trade a buy stop and a sell stop can wait at the same price;
    // the first trade at 100 reaches both.
    d.rest(limit(1, Bob, Sell, 100, 2));
    d.rest(limit(2, Bob, Buy, 99, 5));
    d.arm(stop_limit(10, Dave, Buy, 100, 99, 3));
    d.arm(stop_market(11, Carol, Sell, 100, 1));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    // The buy stop first: it does not cross and rests behind Bob; the last
    // price is still 100, so the sell stop runs and hits the oldest bid.
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 1}, {2, 11, 99, 1, 4}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(0, 3), Reject::None, 1, 1),
                                      trig(11, Carol, Sell, s + 3, done(1, 0), Reject::None, 1, 2)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 1, 1}, {Bid, 99, 8, 2}, {Bid, 99, 7, 2}}));
    EXPECT_EQ(d.queue(Bid), (Queue{{2, 99, 4}, {10, 99, 3}}));
    EXPECT_EQ(d.last(), 99);
    EXPECT_EQ(d.book().stop_count(), 0u);
}

TEST_F(StopPriority, ABuyStopThatLiftsThePriceLeavesTheSellStopWaiting) {
    d.rest(limit(1, Bob, Sell, 100, 2));
    d.rest(limit(2, Bob, Sell, 101, 5));
    d.rest(limit(3, Bob, Buy, 99, 5));
    d.arm(stop_market(10, Dave, Buy, 100, 2));
    d.arm(stop_market(11, Carol, Sell, 100, 1));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 1}, {1, 10, 100, 1, 0}, {2, 10, 101, 1, 4}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(2, 0), Reject::None, 1, 1)}));
    EXPECT_EQ(d.last(), 101);
    EXPECT_EQ(d.pending(Sell), (Pends{{11, Carol, Sell, 100, 0, 1, Mkt}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 4, 1}, {Bid, 99, 5, 1}}));
}

// ===========================================================================
// Sequence numbers.

TEST_F(StopSequence, CommandThenEachTriggeredStopTakesTheNextNumber) {
    d.book().set_seq(1000);
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Bob, Sell, 101, 10));
    d.arm(stop_market(10, Dave, Buy, 100, 1));
    d.arm(stop_market(11, Dave, Buy, 101, 1, Fok));
    d.arm(stop_limit(12, Dave, Buy, 101, 200, 100, Fok));  // unfillable: still numbered
    d.arm(stop_limit(13, Dave, Buy, 101, 50, 1));          // rests: still numbered
    ASSERT_EQ(d.seq(), 1006u);

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(r.seq, 1007u);
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, 1008, done(1, 0), Reject::None, 1, 1),
                                      trig(11, Dave, Buy, 1009, done(1, 0), Reject::None, 2, 2),
                                      trig(12, Dave, Buy, 1010, done(0, 0, 100), Reject::FokUnfillable, 3, 3),
                                      trig(13, Dave, Buy, 1011, done(0, 1), Reject::None, 3, 3)}));
    EXPECT_EQ(d.seq(), 1011u);
    EXPECT_EQ(d.cancel(13).seq, 1012u) << "the next command follows the last triggered stop";
}

// ===========================================================================
// What a triggered order does.

TEST_F(StopRun, TriggeredStopLimitRestsBehindTheOrdersAlreadyAtItsPrice) {
    d.arm(stop_limit(10, Dave, Buy, 100, 99, 4));
    d.rest(limit(1, Bob, Buy, 99, 5));
    d.rest(limit(2, Carol, Sell, 100, 3));
    d.rest(limit(3, Bob, Buy, 99, 2));  // placed after the stop: still ahead of it
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{2, 20, 100, 1, 2}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(0, 4), Reject::None, 1, 1)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 2, 1}, {Bid, 99, 11, 3}}));
    EXPECT_EQ(d.queue(Bid), (Queue{{1, 99, 5}, {3, 99, 2}, {10, 99, 4}}));
    RestingOrder o;
    ASSERT_TRUE(d.book().find(10, o));
    EXPECT_EQ(o.stop.v, 0);
    EXPECT_EQ(o.type, Lmt);
    EXPECT_EQ(o.tif, Gtc);
    EXPECT_EQ(o.visible.v, 4);
    EXPECT_EQ(o.owner, Dave);
    EXPECT_EQ(d.book().stop_count(), 0u);
    EXPECT_EQ(d.book().order_count(), 4u);

    // It trades as any resting order, in its place.
    const Result t = d.place(limit(21, Alice, Sell, 99, 8));
    EXPECT_EQ(fills(t), (Fills{{1, 21, 99, 5, 0}, {3, 21, 99, 2, 0}, {10, 21, 99, 1, 3}}));
}

TEST_F(StopRun, TriggeredStopLimitTradesUpToItsLimitAndRestsTheRemainder) {
    d.rest(limit(1, Bob, Sell, 100, 3));
    d.rest(limit(2, Carol, Sell, 101, 2));
    d.rest(limit(3, Bob, Sell, 102, 5));
    d.arm(stop_limit(10, Dave, Buy, 100, 101, 10));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(outcome(r), done(1, 0));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 2}, {1, 10, 100, 2, 0}, {2, 10, 101, 2, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(4, 6), Reject::None, 1, 1)}));
    EXPECT_EQ(level_changes(r),
              (Changes{{Ask, 100, 2, 1}, {Ask, 100, 0, 0}, {Ask, 101, 0, 0}, {Bid, 101, 6, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 5, 1}, {Bid, 101, 6, 1}}));
    EXPECT_EQ(d.order(10), (Ord{10, 101, 6}));
    EXPECT_EQ(d.last(), 101);
}

TEST_F(StopRun, StopMarketIntoAnEmptySideIsCancelledForNoLiquidity) {
    d.arm(stop_market(10, Dave, Sell, 100, 3));
    d.rest(limit(1, Bob, Buy, 100, 6));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Sell, 100, 5));

    EXPECT_EQ(outcome(r), done(5, 0));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 5, 1}, {1, 10, 100, 1, 0}}));
    EXPECT_EQ(triggered_of(r),
              (Trigs{trig(10, Dave, Sell, s + 2, done(1, 0, 2, CancelReason::MarketNoLiquidity), Reject::None,
                          1, 1)}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 1, 1}, {Bid, 100, 0, 0}}));
    EXPECT_EQ(d.ladder(), Ladder{});

    // With nothing at all to trade.
    d.arm(stop_market(11, Dave, Buy, 101, 4));
    d.rest(limit(2, Bob, Sell, 101, 1));
    const uint64_t s2 = d.seq();
    const Result t = d.place(limit(21, Alice, Buy, 101, 1));
    EXPECT_EQ(triggered_of(t),
              (Trigs{trig(11, Dave, Buy, s2 + 2, done(0, 0, 4, CancelReason::MarketNoLiquidity), Reject::None,
                          1, 1)}));
    EXPECT_EQ(level_changes(t), (Changes{{Ask, 101, 0, 0}}));
    EXPECT_EQ(d.seq(), s2 + 2);
}

TEST_F(StopRun, TriggeredIocRemainderIsCancelled) {
    d.rest(limit(1, Bob, Sell, 100, 3));
    d.rest(limit(2, Bob, Sell, 101, 3));
    d.arm(stop_limit(10, Dave, Buy, 100, 100, 5, Ioc));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1, Ioc));

    EXPECT_EQ(outcome(r), done(1, 0));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 2}, {1, 10, 100, 2, 0}}));
    EXPECT_EQ(triggered_of(r),
              (Trigs{trig(10, Dave, Buy, s + 2, done(2, 0, 3, CancelReason::Ioc), Reject::None, 1, 1)}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 3, 1}}));
    EXPECT_FALSE(d.has(10));
}

TEST_F(StopRun, TriggeredFokThatCannotFillIsRejectedCancelledAndNumbered) {
    d.rest(limit(1, Bob, Sell, 100, 3));
    d.rest(limit(2, Bob, Sell, 101, 2));
    d.arm(stop_limit(10, Dave, Buy, 100, 101, 5, Fok));  // 4 left for it: unfillable
    d.arm(stop_limit(11, Carol, Buy, 100, 101, 4, Fok));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(outcome(r), done(1, 0));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 2}, {1, 11, 100, 2, 0}, {2, 11, 101, 2, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(0, 0, 5), Reject::FokUnfillable, 1, 1),
                                      trig(11, Carol, Buy, s + 3, done(4, 0), Reject::None, 1, 1)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 2, 1}, {Ask, 100, 0, 0}, {Ask, 101, 0, 0}}));
    EXPECT_EQ(d.ladder(), Ladder{});
    EXPECT_EQ(d.seq(), s + 3);
    EXPECT_FALSE(d.has(10));
    EXPECT_EQ(d.book().stop_count(), 0u);
}

TEST_F(StopRun, TriggeredFokAloneLeavesTheBookAsTheCommandLeftIt) {
    d.rest(limit(1, Bob, Sell, 100, 3));
    d.rest(limit(2, Bob, Sell, 101, 2));
    d.arm(stop_market(10, Dave, Buy, 100, 5, Fok));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 2}}));
    EXPECT_EQ(triggered_of(r),
              (Trigs{trig(10, Dave, Buy, s + 2, done(0, 0, 5), Reject::FokUnfillable, 1, 1)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 2, 1}, {Ask, 100, 2, 1}}));
    EXPECT_EQ(d.last(), 100);
    EXPECT_EQ(d.seq(), s + 2);
    EXPECT_FALSE(d.has(10));
}

TEST_F(StopRun, TriggeredOrderWhoseRefillOverflowsIsUndoneWithItsFills) {
    // Bob's iceberg at 100 shows its last lot of a tip; the level is full.
    constexpr int64_t kTip = kMaxQty / 100;
    RestingOrder ice = stored(1, Bob, Sell, 100, kMaxQty - kTip + 1);
    ice.display = Qty{kTip};
    ice.visible = Qty{1};
    EXPECT_REJECT(d.load(ice), None);
    for (OrderId id = 2; id <= 10; ++id) EXPECT_REJECT(d.load(stored(id, Carol, Sell, 100, kMaxQty)), None);
    EXPECT_REJECT(d.load(stored(11, Carol, Sell, 100, kInt64Max - 1 - 9 * kMaxQty)), None);
    EXPECT_REJECT(d.load(stored(12, Carol, Sell, 99, 3)), None);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, kInt64Max, 11}, {Ask, 99, 3, 1}}));
    d.arm(stop_limit(30, Erin, Buy, 99, 100, 4));
    const uint64_t s = d.seq();

    // Alice trades at 99. Erin's stop then takes 2 at 99 and Bob's last lot
    // at 100, whose refill does not fit: all of it is undone, its trade at
    // 100 included, and the last price is Alice's.
    const Result r = d.place(limit(20, Alice, Buy, 99, 1));

    EXPECT_EQ(outcome(r), done(1, 0));
    EXPECT_EQ(fills(r), (Fills{{12, 20, 99, 1, 2}}));
    EXPECT_EQ(triggered_of(r),
              (Trigs{trig(30, Erin, Buy, s + 2, done(0, 0, 4), Reject::QuantityOverflow, 1, 1)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 99, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, kInt64Max, 11}, {Ask, 99, 2, 1}}));
    EXPECT_EQ(d.last(), 99);
    EXPECT_EQ(d.seq(), s + 2);
    EXPECT_FALSE(d.has(30));
    RestingOrder o;
    ASSERT_TRUE(d.book().find(1, o));
    EXPECT_EQ(o.qty.v, kMaxQty - kTip + 1);
    EXPECT_EQ(o.visible.v, 1);
}

TEST_F(StopRun, CommandOutcomeDescribesOnlyItsOwnOrder) {
    d.rest(limit(1, Bob, Sell, 100, 2));
    d.rest(limit(2, Carol, Sell, 105, 10));
    d.arm(stop_limit(10, Dave, Buy, 100, 110, 4));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 3, Ioc));

    EXPECT_EQ(outcome(r), done(2, 0, 1, CancelReason::Ioc));
    EXPECT_EQ(r.pending.v, 0);
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 2, 0}, {2, 10, 105, 4, 6}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(4, 0), Reject::None, 1, 1)}));
}

TEST_F(StopRun, TriggeredOrderTradesWithTheCommandsRestingRemainder) {
    d.arm(stop_market(10, Dave, Sell, 100, 3));
    d.rest(limit(1, Bob, Sell, 100, 2));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 10));

    // (Alice's own outcome: filled 2; what of her 8 rests after Dave's stop
    // traded with it is in the fills and in the book.)
    EXPECT_EQ(r.filled.v, 2);
    EXPECT_EQ(r.cancelled.v, 0);
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 2, 0}, {20, 10, 100, 3, 5}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Sell, s + 2, done(3, 0), Reject::None, 1, 2)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Bid, 100, 8, 1}, {Bid, 100, 5, 1}}));
    EXPECT_EQ(d.order(20), (Ord{20, 100, 5}));
    EXPECT_EQ(d.last(), 100);
}

TEST_F(StopRun, ResultSlicesBelongToTheOrderThatProducedThem) {
    d.rest(limit(1, Alice, Sell, 100, 2));
    d.rest(limit(2, Bob, Sell, 100, 3));
    d.rest(limit(3, Dave, Sell, 101, 2));
    d.rest(limit(4, Carol, Sell, 101, 4));
    d.rest(limit(5, Bob, Sell, 102, 10));
    d.arm(with_stp(stop_market(10, Dave, Buy, 100, 3), Stp::CancelOldest));
    d.arm(stop_limit(11, Carol, Buy, 101, 101, 50, Fok));
    d.arm(stop_limit(12, Erin, Buy, 101, 103, 4));
    const uint64_t s = d.seq();

    const Result r = d.place(with_stp(limit(20, Alice, Buy, 100, 3), Stp::CancelOldest));

    EXPECT_EQ(outcome(r), done(3, 0));
    EXPECT_EQ(fills(r),
              (Fills{{2, 20, 100, 3, 0}, {4, 10, 101, 3, 1}, {4, 12, 101, 1, 0}, {5, 12, 102, 3, 7}}));
    EXPECT_EQ(removals(r), (Removals{{1, Alice, Sell, 100, 2}, {3, Dave, Sell, 101, 2}}));
    EXPECT_EQ(level_changes(r),
              (Changes{{Ask, 100, 0, 0}, {Ask, 101, 1, 1}, {Ask, 101, 0, 0}, {Ask, 102, 7, 1}}));
    EXPECT_EQ(triggered_of(r),
              (Trigs{trig(10, Dave, Buy, s + 2, done(3, 0), Reject::None, 1, 1, 1),
                     trig(11, Carol, Buy, s + 3, done(0, 0, 50), Reject::FokUnfillable, 2, 2, 2),
                     trig(12, Erin, Buy, s + 4, done(4, 0), Reject::None, 2, 2, 2)}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 7, 1}}));
    EXPECT_EQ(d.last(), 102);
    EXPECT_EQ(d.seq(), s + 4);
}

// ===========================================================================
// Cascades.

TEST_F(StopCascade, EachTriggeredSellTriggersTheNext) {
    d.rest(limit(1, Bob, Buy, 100, 2));
    d.rest(limit(2, Bob, Buy, 99, 2));
    d.rest(limit(3, Bob, Buy, 98, 2));
    d.rest(limit(4, Bob, Buy, 97, 5));
    d.arm(stop_market(10, Dave, Sell, 100, 2));
    d.arm(stop_market(11, Carol, Sell, 99, 2));
    d.arm(stop_limit(12, Dave, Sell, 97, 96, 4));
    d.arm(stop_limit(13, Carol, Sell, 98, 97, 3));
    d.arm(stop_market(14, Dave, Sell, 95, 1));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Sell, 100, 2));

    EXPECT_EQ(outcome(r), done(2, 0));
    EXPECT_EQ(
        fills(r),
        (Fills{
            {1, 20, 100, 2, 0}, {2, 10, 99, 2, 0}, {3, 11, 98, 2, 0}, {4, 13, 97, 3, 2}, {4, 12, 97, 2, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Sell, s + 2, done(2, 0), Reject::None, 1, 1),
                                      trig(11, Carol, Sell, s + 3, done(2, 0), Reject::None, 2, 2),
                                      trig(13, Carol, Sell, s + 4, done(3, 0), Reject::None, 3, 3),
                                      trig(12, Dave, Sell, s + 5, done(2, 2), Reject::None, 4, 4)}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0},
                                         {Bid, 99, 0, 0},
                                         {Bid, 98, 0, 0},
                                         {Bid, 97, 2, 1},
                                         {Bid, 97, 0, 0},
                                         {Ask, 96, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 96, 2, 1}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{14, Dave, Sell, 95, 0, 1, Mkt}}));
    EXPECT_EQ(d.last(), 97);
    EXPECT_EQ(d.seq(), s + 5);
}

TEST_F(StopCascade, EachTriggeredBuyTriggersTheNext) {
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Bob, Sell, 102, 1));
    d.rest(limit(3, Bob, Sell, 104, 1));
    d.rest(limit(4, Bob, Sell, 106, 1));
    d.arm(stop_market(10, Dave, Buy, 100, 1));
    d.arm(stop_market(11, Dave, Buy, 102, 1));
    d.arm(stop_market(12, Dave, Buy, 104, 1));
    d.arm(stop_market(13, Dave, Buy, 107, 1));
    const uint64_t s = d.seq();

    const Result r = d.place(market(20, Alice, Buy, 1));

    EXPECT_EQ(fills(r),
              (Fills{{1, 20, 100, 1, 0}, {2, 10, 102, 1, 0}, {3, 11, 104, 1, 0}, {4, 12, 106, 1, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(1, 0), Reject::None, 1, 1),
                                      trig(11, Dave, Buy, s + 3, done(1, 0), Reject::None, 2, 2),
                                      trig(12, Dave, Buy, s + 4, done(1, 0), Reject::None, 3, 3)}));
    EXPECT_EQ(d.ladder(), Ladder{});
    EXPECT_EQ(d.pending(Buy), (Pends{{13, Dave, Buy, 107, 0, 1, Mkt}}));
    EXPECT_EQ(d.last(), 106);
}

TEST_F(StopCascade, AmendOfABookOrderThatTradesTriggersStops) {
    d.rest(limit(1, Bob, Sell, 100, 3));
    d.rest(limit(2, Carol, Sell, 101, 5));
    d.rest(limit(3, Alice, Buy, 98, 5));
    d.arm(stop_market(10, Dave, Buy, 100, 2));
    const uint64_t s = d.seq();

    const Result r = d.amend(3, 100, 5);

    EXPECT_EQ(r.seq, s + 1);
    EXPECT_FALSE(r.priority_kept);
    EXPECT_EQ(outcome(r), done(3, 2));
    EXPECT_EQ(fills(r), (Fills{{1, 3, 100, 3, 0}, {2, 10, 101, 2, 3}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(2, 0), Reject::None, 1, 3)}));
    EXPECT_EQ(level_changes(r),
              (Changes{{Bid, 98, 0, 0}, {Ask, 100, 0, 0}, {Bid, 100, 2, 1}, {Ask, 101, 3, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 3, 1}, {Bid, 100, 2, 1}}));
    EXPECT_EQ(d.last(), 101);
    EXPECT_EQ(d.seq(), s + 2);
}

TEST_F(StopCascade, AmendThatDoesNotTradeTriggersNothing) {
    d.rest(limit(1, Bob, Sell, 100, 3));
    d.rest(limit(2, Alice, Buy, 98, 5));
    d.trade_at(99);
    d.arm(stop_market(10, Dave, Sell, 98, 2));
    d.arm(stop_market(11, Dave, Buy, 100, 2));

    EXPECT_EQ(triggered_of(d.amend(2, 98, 3)), Trigs{});
    EXPECT_EQ(triggered_of(d.amend(2, 99, 3)), Trigs{});
    EXPECT_EQ(d.book().stop_count(), 2u);
    EXPECT_EQ(d.last(), 99);
}

// ===========================================================================
// Amending a pending stop order.

TEST_F(StopAmend, LowerQuantityKeepsItsPlace) {
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 5));
    d.arm(stop_limit(12, Dave, Buy, 105, 106, 5));
    const uint64_t s = d.seq();

    const Result r = d.amend(11, 106, 3);

    EXPECT_TRUE(r.accepted()) << reject_name(r);
    EXPECT_EQ(r.seq, s + 1);
    EXPECT_TRUE(r.priority_kept);
    EXPECT_EQ(r.pending.v, 3);
    EXPECT_EQ(outcome(r), done(0, 0));
    EXPECT_EQ(level_changes(r), Changes{});
    EXPECT_EQ(
        d.pending(Buy),
        (Pends{{10, Dave, Buy, 105, 106, 5}, {11, Carol, Buy, 105, 106, 3}, {12, Dave, Buy, 105, 106, 5}}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(StopAmend, HigherQuantityOrANewLimitPriceMovesItToTheBack) {
    d.rest(limit(1, Bob, Sell, 100, 5));
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 5));
    d.arm(stop_limit(12, Dave, Buy, 105, 106, 5));
    d.arm(stop_limit(13, Dave, Buy, 104, 106, 5));

    const Result up = d.amend(10, 106, 8);
    EXPECT_FALSE(up.priority_kept);
    EXPECT_EQ(up.pending.v, 8);
    EXPECT_EQ(d.pending(Buy), (Pends{{13, Dave, Buy, 104, 106, 5},
                                     {11, Carol, Buy, 105, 106, 5},
                                     {12, Dave, Buy, 105, 106, 5},
                                     {10, Dave, Buy, 105, 106, 8}}));

    // A new limit price, even with less quantity; one that crosses the ask trades nothing.
    const Result moved = d.amend(11, 100, 2);
    EXPECT_FALSE(moved.priority_kept);
    EXPECT_EQ(moved.pending.v, 2);
    EXPECT_EQ(fills(moved), Fills{});
    EXPECT_EQ(level_changes(moved), Changes{});
    EXPECT_EQ(d.pending(Buy), (Pends{{13, Dave, Buy, 104, 106, 5},
                                     {12, Dave, Buy, 105, 106, 5},
                                     {10, Dave, Buy, 105, 106, 8},
                                     {11, Carol, Buy, 105, 100, 2}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 5, 1}}));
    EXPECT_EQ(d.book().stop_count(), 4u);
}

TEST_F(StopAmend, StopMarketKeepsPriceZero) {
    d.arm(stop_market(10, Dave, Sell, 95, 5, Ioc));
    d.arm(stop_market(11, Carol, Sell, 95, 5));

    EXPECT_REJECT(d.amend(10, 100, 5), InvalidPrice) << "a stop-market order has no limit price";
    EXPECT_REJECT(d.amend(10, 1, 3), InvalidPrice);
    EXPECT_REJECT(d.amend(10, -1, 3), InvalidPrice);
    EXPECT_REJECT(d.amend(10, 0, 0), InvalidQuantity);
    EXPECT_REJECT(d.amend(10, 0, kMaxQty + 1), InvalidQuantity);
    EXPECT_REJECT(d.amend(10, 7, 0), InvalidPrice) << "the price is checked first";
    EXPECT_REJECT(d.amend(10, 0, 5), NoChange);

    const Result down = d.amend(10, 0, 3);
    EXPECT_TRUE(down.priority_kept);
    EXPECT_EQ(down.pending.v, 3);
    EXPECT_EQ(d.pending(Sell),
              (Pends{{10, Dave, Sell, 95, 0, 3, Mkt, Ioc}, {11, Carol, Sell, 95, 0, 5, Mkt}}));

    const Result up = d.amend(10, 0, 4);
    EXPECT_FALSE(up.priority_kept);
    EXPECT_EQ(d.pending(Sell),
              (Pends{{11, Carol, Sell, 95, 0, 5, Mkt}, {10, Dave, Sell, 95, 0, 4, Mkt, Ioc}}));
}

TEST_F(StopAmend, StopLimitPriceAndQuantityChecks) {
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));

    EXPECT_REJECT(d.amend(99, 106, 5), OrderNotFound);
    EXPECT_REJECT(d.amend(0, 106, 5), OrderNotFound);
    EXPECT_REJECT(d.amend(10, 0, 5), InvalidPrice);
    EXPECT_REJECT(d.amend(10, -1, 5), InvalidPrice);
    EXPECT_REJECT(d.amend(10, kMaxPrice + 1, 5), InvalidPrice);
    EXPECT_REJECT(d.amend(10, 0, 0), InvalidPrice) << "the price is checked first";
    EXPECT_REJECT(d.amend(10, 106, 0), InvalidQuantity);
    EXPECT_REJECT(d.amend(10, 106, -5), InvalidQuantity);
    EXPECT_REJECT(d.amend(10, 106, kMaxQty + 1), InvalidQuantity);
    EXPECT_REJECT(d.amend(10, 106, 5), NoChange);

    EXPECT_TRUE(d.amend(10, kMaxPrice, kMaxQty).accepted());
    EXPECT_EQ(d.stop(10), (Pend{10, Dave, Buy, 105, kMaxPrice, kMaxQty}));
}

TEST_F(StopAmend, AmendedStopRunsWithItsNewPriceAndQuantity) {
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Bob, Sell, 101, 5));
    d.rest(limit(3, Bob, Sell, 102, 5));
    d.arm(stop_limit(10, Dave, Buy, 100, 105, 10));
    EXPECT_TRUE(d.amend(10, 101, 7).accepted());
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}, {2, 10, 101, 5, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(5, 2), Reject::None, 1, 1)}));
    EXPECT_EQ(d.order(10), (Ord{10, 101, 2}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 5, 1}, {Bid, 101, 2, 1}}));
}

TEST_F(StopAmend, TriggerOrderAfterAmendsFollowsTheQueue) {
    d.arm(stop_market(10, Dave, Sell, 99, 1));
    d.arm(stop_market(11, Carol, Sell, 99, 1));
    d.arm(stop_market(12, Erin, Sell, 99, 1));
    EXPECT_TRUE(d.amend(10, 0, 2).accepted());  // to the back
    d.rest(limit(1, Bob, Buy, 99, 1));
    d.rest(limit(2, Bob, Buy, 90, 10));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Sell, 99, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 99, 1, 0}, {2, 11, 90, 1, 9}, {2, 12, 90, 1, 8}, {2, 10, 90, 2, 6}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(11, Carol, Sell, s + 2, done(1, 0), Reject::None, 1, 1),
                                      trig(12, Erin, Sell, s + 3, done(1, 0), Reject::None, 2, 2),
                                      trig(10, Dave, Sell, s + 4, done(2, 0), Reject::None, 3, 3)}));
}

// ===========================================================================
// Cancelling a pending stop order.

TEST_F(StopCancel, RemovesItWithoutTouchingTheBook) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 7));
    const uint64_t s = d.seq();
    const uint64_t hash_before_stop = [&] {
        StopDesk twin;
        twin.rest(limit(1, Bob, Sell, 101, 5));
        twin.book().set_seq(s + 1);
        return twin.hash();
    }();

    const Result r = d.cancel(10);

    EXPECT_EQ(r.seq, s + 1);
    EXPECT_EQ(outcome(r), done(0, 0, 7, CancelReason::User));
    EXPECT_EQ(r.pending.v, 0);
    EXPECT_EQ(level_changes(r), Changes{});
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(d.book().stop_count(), 0u);
    EXPECT_EQ(d.pending(Buy), Pends{});
    EXPECT_FALSE(d.has(10));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 5, 1}}));
    EXPECT_EQ(d.hash(), hash_before_stop) << "the book is as if the stop had never been placed";
    EXPECT_REJECT(d.cancel(10), OrderNotFound);
    EXPECT_REJECT(d.amend(10, 106, 3), OrderNotFound);

    // Its id is free again, for a stop or a plain order.
    d.arm(stop_market(10, Carol, Sell, 90, 2));
    EXPECT_EQ(outcome(d.cancel(10)), done(0, 0, 2, CancelReason::User));
    d.rest(limit(10, Alice, Buy, 99, 1));
    EXPECT_EQ(d.order(10), (Ord{10, 99, 1}));
}

TEST_F(StopCancel, OthersKeepTheirPlacesAndACancelledStopNeverRuns) {
    d.arm(stop_market(10, Dave, Buy, 100, 1));
    d.arm(stop_market(11, Carol, Buy, 100, 1));
    d.arm(stop_market(12, Erin, Buy, 100, 1));
    EXPECT_TRUE(d.cancel(11).accepted());
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 100, 0, 1, Mkt}, {12, Erin, Buy, 100, 0, 1, Mkt}}));
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Bob, Sell, 101, 10));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(1, 0), Reject::None, 1, 1),
                                      trig(12, Erin, Buy, s + 3, done(1, 0), Reject::None, 2, 2)}));
}

// ===========================================================================
// Capacity: pending stops share the order and level slots with the book.

TEST(StopCapacity, StopsTakeOrderSlots) {
    StopDesk d(3, 8);
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Bob, Buy, 99, 5));
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 1));

    EXPECT_REJECT(d.place(stop_limit(11, Dave, Buy, 105, 106, 1)), OrderCapacity);
    EXPECT_REJECT(d.place(stop_market(11, Dave, Sell, 90, 1)), OrderCapacity);
    EXPECT_REJECT(d.place(limit(11, Carol, Buy, 98, 1)), OrderCapacity);
    EXPECT_EQ(d.book().order_count(), 2u);
    EXPECT_EQ(d.book().stop_count(), 1u);

    // The cancelled stop's slot is free again.
    EXPECT_TRUE(d.cancel(10).accepted());
    d.arm(stop_market(11, Dave, Sell, 90, 1));
    EXPECT_REJECT(d.place(limit(12, Carol, Buy, 98, 1)), OrderCapacity);
    EXPECT_TRUE(d.cancel(11).accepted());
    d.rest(limit(12, Carol, Buy, 98, 1));
    EXPECT_REJECT(d.place(stop_market(13, Dave, Sell, 90, 1)), OrderCapacity);
}

TEST(StopCapacity, StopsTakeALevelSlotPerSideAndStopPrice) {
    StopDesk d(16, 3);
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 1));
    d.arm(stop_limit(11, Carol, Buy, 105, 107, 1));  // the same stop price: no new slot
    d.arm(stop_market(12, Dave, Sell, 105, 1));      // the other side's: a slot of its own

    EXPECT_EQ(d.book().level_count(), 1u) << "level_count() counts only the book";
    EXPECT_REJECT(d.place(stop_limit(13, Dave, Buy, 106, 106, 1)), LevelCapacity);
    EXPECT_REJECT(d.place(stop_market(13, Dave, Sell, 104, 1)), LevelCapacity);
    EXPECT_REJECT(d.place(limit(13, Carol, Buy, 99, 1)), LevelCapacity);
    d.rest(limit(13, Carol, Sell, 101, 1));  // an existing level needs no slot

    EXPECT_TRUE(d.cancel(12).accepted());
    d.rest(limit(14, Carol, Buy, 99, 1));
    EXPECT_TRUE(d.cancel(10).accepted());  // 11 still waits at 105
    EXPECT_REJECT(d.place(stop_limit(15, Dave, Buy, 106, 106, 1)), LevelCapacity);
    d.arm(stop_limit(15, Dave, Buy, 105, 106, 1));
    EXPECT_TRUE(d.cancel(11).accepted());
    EXPECT_TRUE(d.cancel(15).accepted());
    d.arm(stop_limit(16, Dave, Buy, 106, 106, 1));
    EXPECT_EQ(d.book().level_count(), 2u);
    EXPECT_EQ(d.book().stop_count(), 1u);
}

TEST(StopCapacity, StopWouldTriggerComesBeforeCapacity) {
    StopDesk d(3, 8);
    d.trade_at(100);
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Bob, Buy, 99, 5));
    d.arm(stop_market(10, Dave, Buy, 105, 1));

    EXPECT_REJECT(d.place(stop_market(11, Dave, Buy, 100, 1)), StopWouldTrigger);
    EXPECT_REJECT(d.place(stop_market(11, Dave, Buy, 101, 1)), OrderCapacity);
    EXPECT_REJECT(d.place(stop_market(10, Dave, Buy, 100, 1)), DuplicateOrderId);
}

TEST(StopCapacity, TriggeredStopWithoutALevelSlotIsRejected) {
    StopDesk d(16, 4);
    d.rest(limit(1, Bob, Sell, 100, 10));
    d.rest(limit(2, Carol, Buy, 90, 5));
    d.arm(stop_limit(20, Dave, Buy, 100, 95, 3));
    d.arm(stop_limit(21, Dave, Buy, 100, 95, 3));
    d.arm(stop_market(30, Carol, Sell, 80, 1));  // the fourth level slot
    const uint64_t s = d.seq();

    // 20 leaves its stop price with 21 still there: no slot for a bid at 95.
    // 21 then leaves the stop price empty, and its slot takes the bid.
    const Result r = d.place(limit(40, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 40, 100, 1, 9}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(20, Dave, Buy, s + 2, done(0, 0, 3), Reject::LevelCapacity, 1, 1),
                                      trig(21, Dave, Buy, s + 3, done(0, 3), Reject::None, 1, 1)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 9, 1}, {Bid, 95, 3, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 9, 1}, {Bid, 95, 3, 1}, {Bid, 90, 5, 1}}));
    EXPECT_EQ(d.pending(Buy), Pends{});
    EXPECT_EQ(d.pending(Sell), (Pends{{30, Carol, Sell, 80, 0, 1, Mkt}}));
    EXPECT_FALSE(d.has(20));
    EXPECT_EQ(d.seq(), s + 3);
    d.expect_consistent();
}

TEST(StopCapacity, TriggeredStopRestsInTheSlotItLeft) {
    // Every order and level slot is taken: Bob's ask and the pending stop.
    StopDesk d(2, 2);
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.arm(stop_limit(10, Dave, Buy, 100, 99, 2));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(0, 2), Reject::None, 1, 1)}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 99, 2, 1}}));
    d.expect_consistent();
}

TEST(StopCapacity, TriggeredStopThatWouldOverflowItsLevelIsRejected) {
    StopDesk d(32, 8);
    for (OrderId id = 1; id <= 9; ++id) d.rest(limit(id, Bob, Buy, 95, kMaxQty));
    d.rest(limit(10, Bob, Buy, 95, kInt64Max - 9 * kMaxQty - 2));
    d.rest(limit(11, Carol, Sell, 100, 5));
    d.arm(stop_limit(20, Dave, Buy, 100, 95, 3));
    d.arm(stop_limit(21, Dave, Buy, 100, 95, 2));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(30, Alice, Buy, 100, 1));

    EXPECT_EQ(triggered_of(r),
              (Trigs{trig(20, Dave, Buy, s + 2, done(0, 0, 3), Reject::QuantityOverflow, 1, 1),
                     trig(21, Dave, Buy, s + 3, done(0, 2), Reject::None, 1, 1)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 4, 1}, {Bid, 95, kInt64Max, 11}}));
    d.expect_consistent();
}

TEST(StopCapacity, PendingTotalAtOneStopPriceMustFitInt64) {
    StopDesk d(32, 8);
    for (OrderId id = 1; id <= 9; ++id) d.arm(stop_market(id, Bob, Buy, 105, kMaxQty));
    const int64_t rest = kInt64Max - 9 * kMaxQty;
    d.arm(stop_limit(10, Bob, Buy, 105, 106, rest));

    EXPECT_REJECT(d.place(stop_market(11, Carol, Buy, 105, 1)), QuantityOverflow);
    EXPECT_REJECT(d.amend(10, 106, rest + 1), QuantityOverflow);
    EXPECT_REJECT(d.amend(10, 107, rest + 1), QuantityOverflow) << "with a new limit price too";
    EXPECT_REJECT(d.amend(9, 0, kMaxQty), NoChange);
    d.arm(stop_market(11, Carol, Buy, 106, kMaxQty));   // another stop price
    d.arm(stop_market(12, Carol, Sell, 105, kMaxQty));  // the other side

    EXPECT_TRUE(d.amend(10, 106, rest - 5).accepted());
    d.arm(stop_market(13, Carol, Buy, 105, 5));
    EXPECT_REJECT(d.place(stop_market(14, Carol, Buy, 105, 1)), QuantityOverflow);
    EXPECT_EQ(d.book().stop_count(), 13u);
    d.expect_consistent();
}

// ===========================================================================
// Self-trade prevention: a triggered order uses its own STP mode.

TEST_F(StopStp, TriggeredOrderWithCancelNewestStopsAtItsOwnersOrder) {
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Dave, Sell, 101, 5));
    d.rest(limit(3, Bob, Sell, 102, 5));
    d.arm(stop_market(10, Dave, Buy, 100, 3));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}}));
    EXPECT_EQ(
        triggered_of(r),
        (Trigs{trig(10, Dave, Buy, s + 2, done(0, 0, 3, CancelReason::SelfTrade), Reject::None, 1, 1)}));
    EXPECT_EQ(removals(r), Removals{});
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 5, 1}, {Ask, 101, 5, 1}}));
}

TEST_F(StopStp, TriggeredOrderWithCancelOldestRemovesItsOwnersOrder) {
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Dave, Sell, 101, 5));
    d.rest(limit(3, Bob, Sell, 102, 5));
    d.arm(with_stp(stop_market(10, Dave, Buy, 100, 3), Stp::CancelOldest));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}, {3, 10, 102, 3, 2}}));
    EXPECT_EQ(removals(r), (Removals{{2, Dave, Sell, 101, 5}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(3, 0), Reject::None, 1, 1, 0)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Ask, 101, 0, 0}, {Ask, 102, 2, 1}}));
    EXPECT_EQ(d.last(), 102);
}

TEST_F(StopStp, TriggeredOrderWithCancelBothRemovesBoth) {
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Dave, Sell, 101, 5));
    d.rest(limit(3, Bob, Sell, 102, 5));
    d.arm(with_stp(stop_limit(10, Dave, Buy, 100, 102, 3), Stp::CancelBoth));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}}));
    EXPECT_EQ(removals(r), (Removals{{2, Dave, Sell, 101, 5}}));
    EXPECT_EQ(
        triggered_of(r),
        (Trigs{trig(10, Dave, Buy, s + 2, done(0, 0, 3, CancelReason::SelfTrade), Reject::None, 1, 1, 0)}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 5, 1}}));
}

TEST_F(StopStp, TriggeredOrderWithNoneTradesWithItsOwner) {
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Dave, Sell, 101, 5));
    d.arm(with_stp(stop_market(10, Dave, Buy, 100, 3), Stp::None));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}, {2, 10, 101, 3, 2}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(3, 0), Reject::None, 1, 1)}));
}

TEST_F(StopStp, TriggeredStopMeetsTheRemainderOfItsOwnersCommand) {
    // Alice's own sell stop waits; her buy trades at 100 and rests 8 there.
    d.arm(stop_market(10, Alice, Sell, 100, 3));
    d.rest(limit(1, Bob, Sell, 100, 2));
    d.rest(limit(2, Carol, Buy, 99, 5));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 10));

    // The stop's default CancelNewest stops it at her own bid.
    EXPECT_EQ(outcome(r), done(2, 8));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 2, 0}}));
    EXPECT_EQ(
        triggered_of(r),
        (Trigs{trig(10, Alice, Sell, s + 2, done(0, 0, 3, CancelReason::SelfTrade), Reject::None, 1, 2)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Bid, 100, 8, 1}}));
    EXPECT_EQ(d.queue(Bid), (Queue{{20, 100, 8}, {2, 99, 5}}));
}

TEST_F(StopStp, TriggeredStopWithCancelOldestRemovesTheRemainderOfItsOwnersCommand) {
    d.arm(with_stp(stop_market(10, Alice, Sell, 100, 3), Stp::CancelOldest));
    d.rest(limit(1, Bob, Sell, 100, 2));
    d.rest(limit(2, Carol, Buy, 99, 5));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 10));

    EXPECT_EQ(r.filled.v, 2);
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 2, 0}, {2, 10, 99, 3, 2}}));
    EXPECT_EQ(removals(r), (Removals{{20, Alice, Buy, 100, 8}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Alice, Sell, s + 2, done(3, 0), Reject::None, 1, 2, 0)}));
    EXPECT_EQ(level_changes(r),
              (Changes{{Ask, 100, 0, 0}, {Bid, 100, 8, 1}, {Bid, 100, 0, 0}, {Bid, 99, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 99, 2, 1}}));
    EXPECT_FALSE(d.has(20));
    EXPECT_EQ(d.last(), 99);
}

// ===========================================================================
// load_resting of pending stop orders.

TEST_F(StopLoad, LoadedStopsWaitInTheOrderLoaded) {
    d.book().set_last_price(Price{100});
    EXPECT_EQ(d.seq(), 0u) << "set_last_price does not advance the sequence";
    EXPECT_EQ(d.last(), 100);
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 101, 5)), None);
    EXPECT_REJECT(d.load(stored_stop(11, Carol, Buy, 105, 106, 2)), None);
    EXPECT_REJECT(d.load(stored_stop(10, Dave, Buy, 105, 0, 1, Mkt, Ioc)), None);
    EXPECT_REJECT(d.load(stored_stop(12, Dave, Buy, 103, 104, 3, Lmt, Fok)), None);
    RestingOrder shown = stored_stop(13, Erin, Sell, 95, 94, 4);
    shown.visible = Qty{4};  // not read
    shown.stp = Stp::CancelOldest;
    EXPECT_REJECT(d.load(shown), None);
    // A stop-limit whose limit price crosses the book is not WouldCross: it is not in the book.
    EXPECT_REJECT(d.load(stored_stop(14, Erin, Buy, 110, 120, 1)), None);

    EXPECT_EQ(d.pending(Buy), (Pends{{12, Dave, Buy, 103, 104, 3, Lmt, Fok},
                                     {11, Carol, Buy, 105, 106, 2},
                                     {10, Dave, Buy, 105, 0, 1, Mkt, Ioc},
                                     {14, Erin, Buy, 110, 120, 1}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{13, Erin, Sell, 95, 94, 4, Lmt, Gtc, Stp::CancelOldest}}));
    EXPECT_EQ(d.stop(13), (Pend{13, Erin, Sell, 95, 94, 4, Lmt, Gtc, Stp::CancelOldest}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 5, 1}}));
    EXPECT_EQ(d.seq(), 0u);
    EXPECT_EQ(d.book().stop_count(), 5u);
    EXPECT_EQ(d.book().order_count(), 1u);
}

TEST_F(StopLoad, EachRejectFirstFailureWins) {
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 101, 5)), None);
    EXPECT_REJECT(d.load(stored_stop(2, Bob, Buy, 105, 106, 5)), None);
    d.book().set_last_price(Price{100});
    const RestingOrder ok = stored_stop(10, Carol, Buy, 102, 103, 5);
    constexpr int64_t kBadStop = kMaxPrice + 1;
    RestingOrder o;

    o = ok, o.id = 0, o.stop = Price{kBadStop};
    EXPECT_REJECT(d.load(o), InvalidOrderId);
    o = ok, o.side = static_cast<Side>(5), o.stop = Price{kBadStop};
    EXPECT_REJECT(d.load(o), InvalidSide);
    o = ok, o.type = static_cast<OrderType>(5), o.price = Price{0};
    EXPECT_REJECT(d.load(o), InvalidType);
    o = ok, o.tif = static_cast<Tif>(7), o.price = Price{0};
    EXPECT_REJECT(d.load(o), InvalidTif);
    o = ok, o.stp = static_cast<Stp>(9), o.price = Price{0};
    EXPECT_REJECT(d.load(o), InvalidStp);
    o = ok, o.price = Price{0}, o.qty = Qty{0};
    EXPECT_REJECT(d.load(o), InvalidPrice);
    o = ok, o.price = Price{kMaxPrice + 1};
    EXPECT_REJECT(d.load(o), InvalidPrice);
    o = ok, o.type = Mkt;
    EXPECT_REJECT(d.load(o), InvalidPrice) << "a stop-market order with a price";
    o = ok, o.qty = Qty{0}, o.stop = Price{kBadStop};
    EXPECT_REJECT(d.load(o), InvalidQuantity);
    o = ok, o.qty = Qty{kMaxQty + 1};
    EXPECT_REJECT(d.load(o), InvalidQuantity);
    o = ok, o.display = Qty{-1}, o.stop = Price{kBadStop}, o.post_only = true;
    EXPECT_REJECT(d.load(o), InvalidDisplay);
    o = ok, o.qty = Qty{101}, o.display = Qty{1}, o.stop = Price{kBadStop}, o.type = Mkt, o.price = Price{0};
    EXPECT_REJECT(d.load(o), InvalidDisplay) << "101 tips of 1";
    o = ok, o.stop = Price{kBadStop}, o.post_only = true;
    EXPECT_REJECT(d.load(o), InvalidStopPrice);
    o = ok, o.post_only = true, o.id = 1;
    EXPECT_REJECT(d.load(o), InvalidCombination);
    o = ok, o.post_only = true, o.display = Qty{2}, o.id = 1;
    EXPECT_REJECT(d.load(o), InvalidCombination) << "post-only on a stop-limit iceberg";
    o = ok, o.display = Qty{2}, o.type = Mkt, o.price = Price{0}, o.id = 2;
    EXPECT_REJECT(d.load(o), InvalidCombination) << "a display on a stop-market order";
    o = ok, o.display = Qty{7}, o.type = Mkt, o.price = Price{0}, o.id = 2;
    EXPECT_REJECT(d.load(o), InvalidCombination) << "one above its quantity too";
    o = ok, o.display = Qty{2}, o.tif = Ioc, o.id = 2;
    EXPECT_REJECT(d.load(o), InvalidCombination) << "a display on an IOC stop";
    o = ok, o.display = Qty{5}, o.tif = Fok, o.id = 2;
    EXPECT_REJECT(d.load(o), InvalidCombination) << "a display on a FOK stop";
    o = ok, o.display = Qty{2}, o.id = 2;
    EXPECT_REJECT(d.load(o), DuplicateOrderId)
        << "#2 is pending (a stop-limit GTC iceberg is no invalid combination)";
    o = ok, o.id = 1, o.stop = Price{100};
    EXPECT_REJECT(d.load(o), DuplicateOrderId) << "#1 rests";
    o = ok, o.id = 2;
    EXPECT_REJECT(d.load(o), DuplicateOrderId) << "#2 is pending";
    o = ok, o.stop = Price{100};
    EXPECT_REJECT(d.load(o), StopWouldTrigger);
    o = ok, o.stop = Price{99};
    EXPECT_REJECT(d.load(o), StopWouldTrigger);
    o = ok, o.side = Sell, o.stop = Price{100};
    EXPECT_REJECT(d.load(o), StopWouldTrigger);
    o = ok, o.side = Sell, o.stop = Price{101};
    EXPECT_REJECT(d.load(o), StopWouldTrigger);
    EXPECT_EQ(d.book().stop_count(), 1u);

    EXPECT_REJECT(d.load(ok), None);
    o = ok, o.id = 11, o.side = Sell, o.stop = Price{99}, o.price = Price{98};
    EXPECT_REJECT(d.load(o), None);
    o = ok, o.id = 12, o.display = Qty{2};
    EXPECT_REJECT(d.load(o), None) << "a stop-limit GTC iceberg";
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Carol, Buy, 102, 103, 5},
                                     with_display({12, Carol, Buy, 102, 103, 5}, 2),
                                     {2, Bob, Buy, 105, 106, 5}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{11, Carol, Sell, 99, 98, 5}}));
}

// Checked as place() checks it: a display < 0 or with too many tips is
// InvalidDisplay, one on a stop-market or an IOC/FOK stop InvalidCombination;
// but one above the quantity, which an amend of a pending iceberg leaves, is
// kept (its tips are counted as if it were the quantity).
TEST_F(StopLoad, ADisplayOnAStoredStopIsCheckedAsPlaceChecksIt) {
    RestingOrder o = stored_stop(10, Carol, Buy, 102, 103, 5);
    o.display = Qty{-1};
    EXPECT_REJECT(d.load(o), InvalidDisplay) << "display < 0";
    o.qty = Qty{201};
    o.display = Qty{2};
    EXPECT_REJECT(d.load(o), InvalidDisplay) << "101 tips of 2";
    o.qty = Qty{5};
    o.type = Mkt;
    o.price = Price{0};
    EXPECT_REJECT(d.load(o), InvalidCombination) << "a stop-market order";
    o = stored_stop(10, Carol, Buy, 102, 103, 5, Lmt, Ioc);
    o.display = Qty{2};
    EXPECT_REJECT(d.load(o), InvalidCombination) << "an IOC stop";
    o.tif = Fok;
    o.display = Qty{6};
    EXPECT_REJECT(d.load(o), InvalidCombination) << "a FOK stop, a display above its quantity";
    EXPECT_EQ(d.book().stop_count(), 0u);

    o = stored_stop(10, Carol, Buy, 102, 103, 5);
    o.display = Qty{2};
    EXPECT_REJECT(d.load(o), None) << "a stop-limit GTC iceberg";
    o = stored_stop(11, Carol, Buy, 102, 103, 5);
    o.display = Qty{6};
    EXPECT_REJECT(d.load(o), None) << "a display above its quantity is kept";
    o = stored_stop(12, Carol, Buy, 102, 103, 200);
    o.display = Qty{2};
    EXPECT_REJECT(d.load(o), None) << "exactly kMaxIcebergParts tips";
    EXPECT_EQ(d.pending(Buy), (Pends{with_display({10, Carol, Buy, 102, 103, 5}, 2),
                                     with_display({11, Carol, Buy, 102, 103, 5}, 6),
                                     with_display({12, Carol, Buy, 102, 103, 200}, 2)}));
}

TEST(StopLoadCapacity, CapacityAndOverflowRejects) {
    StopDesk d(12, 2);
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 101, 5)), None);
    for (OrderId id = 2; id <= 10; ++id)
        EXPECT_REJECT(d.load(stored_stop(id, Bob, Buy, 105, 0, kMaxQty, Mkt)), None);
    EXPECT_REJECT(d.load(stored_stop(11, Bob, Buy, 105, 0, kInt64Max - 9 * kMaxQty, Mkt)), None);

    EXPECT_REJECT(d.load(stored_stop(12, Bob, Buy, 105, 0, 1, Mkt)), QuantityOverflow);
    EXPECT_REJECT(d.load(stored_stop(12, Bob, Buy, 106, 0, 1, Mkt)), LevelCapacity);
    EXPECT_REJECT(d.load(stored(12, Bob, Buy, 99, 1)), LevelCapacity);
    EXPECT_REJECT(d.load(stored(12, Bob, Sell, 101, 1)), None);
    EXPECT_REJECT(d.load(stored_stop(13, Bob, Buy, 105, 0, 1, Mkt)), OrderCapacity);
    EXPECT_REJECT(d.load(stored_stop(13, Bob, Buy, 106, 0, 1, Mkt)), OrderCapacity) << "orders before levels";
    EXPECT_EQ(d.book().stop_count(), 10u);
    EXPECT_EQ(d.book().order_count(), 2u);
}

TEST_F(StopLoad, TypeAndTifOfABookOrderAreNotRead) {
    RestingOrder o = stored(1, Bob, Sell, 101, 5);
    o.type = Mkt;
    o.tif = Ioc;
    EXPECT_REJECT(d.load(o), None);
    RestingOrder f;
    ASSERT_TRUE(d.book().find(1, f));
    EXPECT_EQ(f.type, Lmt);
    EXPECT_EQ(f.tif, Gtc);
    EXPECT_EQ(f.stop.v, 0);
    EXPECT_EQ(d.queue(Ask), (Queue{{1, 101, 5}}));
}

TEST_F(StopLoad, LoadedStopsTriggerAsPlacedOnes) {
    d.book().set_last_price(Price{99});
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 100, 1)), None);
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 101, 10)), None);
    EXPECT_REJECT(d.load(stored_stop(11, Carol, Buy, 100, 0, 2, Mkt)), None);
    EXPECT_REJECT(d.load(stored_stop(10, Dave, Buy, 100, 101, 1)), None);
    d.book().set_seq(500);

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(r.seq, 501u);
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}, {2, 11, 101, 2, 8}, {2, 10, 101, 1, 7}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(11, Carol, Buy, 502, done(2, 0), Reject::None, 1, 1),
                                      trig(10, Dave, Buy, 503, done(1, 0), Reject::None, 2, 2)}));
    EXPECT_EQ(d.seq(), 503u);
}

TEST_F(StopLoad, LoadedBookEqualsThePlacedBook) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Carol, Buy, 98, 5));
    d.arm(stop_limit(10, Dave, Buy, 100, 102, 2));
    d.arm(stop_market(11, Dave, Buy, 103, 4, Fok));
    d.arm(with_stp(stop_limit(12, Erin, Buy, 103, 104, 3, Ioc), Stp::None));
    d.arm(stop_market(13, Erin, Sell, 96, 2));
    d.arm(stop_limit(14, Erin, Sell, 97, 95, 2));
    EXPECT_EQ(triggered_of(d.place(limit(20, Alice, Buy, 101, 1))).size(), 1u);  // 10 runs
    EXPECT_TRUE(d.amend(12, 104, 1).accepted());
    EXPECT_EQ(d.last(), 101);
    ASSERT_EQ(d.book().stop_count(), 4u);

    StopDesk loaded;
    loaded.book().set_last_price(d.book().last_price());
    for (Side s : {Sell, Buy}) {
        std::vector<RestingOrder> os;
        d.book().orders(s, os);
        for (const RestingOrder& o : os) EXPECT_REJECT(loaded.load(o), None);
        d.book().stops(s, os);
        for (const RestingOrder& o : os) EXPECT_REJECT(loaded.load(o), None);
    }
    loaded.book().set_seq(d.seq());

    EXPECT_EQ(diff_snapshots(Snapshot::of(loaded.book()), Snapshot::of(d.book())), "");
    EXPECT_EQ(loaded.hash(), d.hash());
}

// ===========================================================================
// The last trade price.

TEST_F(StopLastPrice, MovesWithFillsOnly) {
    EXPECT_EQ(d.last(), 0);
    d.rest(limit(1, Bob, Sell, 100, 2));
    d.rest(limit(2, Bob, Sell, 102, 5));
    d.rest(limit(3, Carol, Buy, 95, 5));
    EXPECT_EQ(d.last(), 0) << "resting orders are not trades";

    EXPECT_EQ(fills(d.place(limit(20, Alice, Buy, 102, 3))), (Fills{{1, 20, 100, 2, 0}, {2, 20, 102, 1, 4}}));
    EXPECT_EQ(d.last(), 102) << "the last fill of a sweep";

    EXPECT_TRUE(d.cancel(2).accepted());
    EXPECT_EQ(d.last(), 102) << "a cancel";
    EXPECT_REJECT(d.place(limit(21, Alice, Sell, 95, 6, Fok)), FokUnfillable);
    EXPECT_EQ(d.last(), 102) << "a reject";
    d.rest(limit(22, Alice, Sell, 99, 1));
    d.arm(stop_market(23, Dave, Sell, 90, 1));
    EXPECT_TRUE(d.amend(22, 99, 3).accepted());
    EXPECT_TRUE(d.amend(23, 0, 3).accepted());
    EXPECT_EQ(d.last(), 102) << "resting, waiting and amending without a trade";
    EXPECT_EQ(outcome(d.place(limit(24, Alice, Buy, 96, 1, Ioc))), done(0, 0, 1, CancelReason::Ioc));
    EXPECT_EQ(d.last(), 102) << "an IOC that found nothing";

    EXPECT_EQ(fills(d.place(market(25, Bob, Sell, 1))), (Fills{{3, 25, 95, 1, 4}}));
    EXPECT_EQ(d.last(), 95) << "a lower trade";
    d.book().set_seq(77);
    EXPECT_EQ(d.last(), 95);
}

// A book loaded without its last trade price (PostgreSQL reads it from the
// journal only when a stop order first needs it) learns it later; what it
// learns is what was committed before the book's changes, so no rollback
// takes it back.
TEST_F(StopLastPrice, LearntLaterChecksStopsLikeATrade) {
    d.rest(limit(1, Bob, Sell, 105, 5));
    d.arm(stop_market(2, Dave, Buy, 104, 1));  // no trade yet: every stop waits
    EXPECT_TRUE(d.book().learn_last_price(Price{100}));
    EXPECT_EQ(d.last(), 100);
    EXPECT_REJECT(d.place(stop_market(10, Alice, Buy, 100, 1)), StopWouldTrigger);
    EXPECT_REJECT(d.place(stop_market(10, Alice, Sell, 101, 1)), StopWouldTrigger);
    EXPECT_REJECT(d.amend(2, 0, 1, 99), StopWouldTrigger);
    d.arm(stop_market(10, Alice, Sell, 99, 1));
    EXPECT_FALSE(d.book().learn_last_price(Price{90})) << "learnt once";
    EXPECT_EQ(d.last(), 100);
    // A trade that reaches the waiting buy stop triggers it, as after any trade.
    EXPECT_EQ(triggered_of(d.place(limit(11, Carol, Buy, 105, 1))).size(), 1u);
    EXPECT_EQ(d.last(), 105);
}

TEST_F(StopLastPrice, LearntInsideASavepointOutlivesItsRollback) {
    d.rest(limit(1, Bob, Sell, 105, 5));
    const Book::Savepoint sp0 = d.book().savepoint();
    d.rest(limit(2, Carol, Buy, 95, 5));
    const Book::Savepoint sp1 = d.book().savepoint();
    EXPECT_TRUE(d.book().learn_last_price(Price{100}));
    d.book().rollback_to(sp1);
    EXPECT_EQ(d.last(), 100);
    // A trade after it is undone back to the learnt price, not to "none".
    const Book::Savepoint sp2 = d.book().savepoint();
    EXPECT_EQ(fills(d.place(limit(3, Alice, Buy, 105, 1))), (Fills{{1, 3, 105, 1, 4}}));
    EXPECT_EQ(d.last(), 105);
    d.book().rollback_to(sp2);
    EXPECT_EQ(d.last(), 100);
    d.book().rollback_to(sp0);
    EXPECT_EQ(d.last(), 100);
    EXPECT_FALSE(d.has(2));
}

TEST_F(StopLastPrice, NotLearntOverATradeOrOutOfRange) {
    EXPECT_FALSE(d.book().learn_last_price(Price{-1}));
    EXPECT_FALSE(d.book().learn_last_price(Price{kMaxPrice + 1}));
    EXPECT_EQ(d.last(), 0);
    EXPECT_TRUE(d.book().learn_last_price(Price{0})) << "nothing traded before either";
    d.trade_at(100);
    const uint64_t hash = d.hash();
    EXPECT_FALSE(d.book().learn_last_price(Price{90}))
        << "the book's own trade is newer than any it could learn";
    EXPECT_EQ(d.last(), 100);
    EXPECT_EQ(d.hash(), hash);
}

// ===========================================================================
// Savepoints.

TEST_F(StopRollback, RollbackAfterACascadeRestoresPendingStopsLastPriceAndHash) {
    d.rest(limit(1, Bob, Buy, 100, 2));
    d.rest(limit(2, Bob, Buy, 99, 2));
    d.rest(limit(3, Bob, Buy, 98, 5));
    d.trade_at(101);
    d.arm(stop_market(10, Dave, Sell, 100, 2));
    d.arm(stop_limit(11, Carol, Sell, 99, 97, 4));
    d.arm(stop_market(12, Dave, Sell, 90, 1));
    const Book::Savepoint sp = d.book().savepoint();
    const uint64_t hash0 = d.hash();
    const Snapshot snap0 = Snapshot::of(d.book());
    const Pends sells0 = d.pending(Sell);

    const Result first = d.place(limit(20, Alice, Sell, 100, 2));
    const Trigs cascade = triggered_of(first);
    const Fills traded = fills(first);
    EXPECT_EQ(traded, (Fills{{1, 20, 100, 2, 0}, {2, 10, 99, 2, 0}, {3, 11, 98, 4, 1}}));
    EXPECT_EQ(cascade.size(), 2u);
    EXPECT_EQ(d.last(), 98);
    EXPECT_EQ(d.pending(Sell), (Pends{{12, Dave, Sell, 90, 0, 1, Mkt}}));
    const uint64_t hash1 = d.hash();
    EXPECT_NE(hash1, hash0);

    d.book().rollback_to(sp);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(diff_snapshots(Snapshot::of(d.book()), snap0), "");
    EXPECT_EQ(d.pending(Sell), sells0);
    EXPECT_EQ(d.last(), 101);
    EXPECT_EQ(d.book().stop_count(), 3u);

    // The same command again does the same.
    const Result again = d.place(limit(20, Alice, Sell, 100, 2));
    EXPECT_EQ(fills(again), traded);
    EXPECT_EQ(triggered_of(again), cascade);
    EXPECT_EQ(d.hash(), hash1);
}

TEST_F(StopRollback, NestedMarksAroundPlaceAmendAndCancelOfStops) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    const Book::Savepoint sp0 = d.book().savepoint();
    const uint64_t h0 = d.hash();
    d.arm(stop_market(10, Dave, Buy, 101, 3));
    d.arm(stop_market(11, Dave, Buy, 101, 3));
    const Book::Savepoint sp1 = d.book().savepoint();
    const uint64_t h1 = d.hash();
    const Pends buys1 = d.pending(Buy);
    EXPECT_TRUE(d.amend(10, 0, 5).accepted());
    EXPECT_TRUE(d.cancel(11).accepted());
    d.arm(stop_market(12, Dave, Buy, 102, 3));
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 101, 0, 5, Mkt}, {12, Dave, Buy, 102, 0, 3, Mkt}}));

    d.book().rollback_to(sp1);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), h1);
    EXPECT_EQ(d.pending(Buy), buys1);
    d.book().rollback_to(sp0);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), h0);
    EXPECT_EQ(d.book().stop_count(), 0u);
    EXPECT_FALSE(d.has(10));
}

// ===========================================================================
// state_hash.

TEST_F(StopHash, AnyDifferenceInThePendingStopsChangesTheHash) {
    // Books with the same sequence, orders and last price that differ only in
    // one pending stop order.
    const auto book_with = [](const std::vector<NewOrder>& stops) {
        auto d = std::make_unique<StopDesk>();
        d->rest(limit(1, Bob, Sell, 101, 5));
        for (const NewOrder& o : stops) d->arm(o);
        d->book().set_seq(1000);
        return d;
    };
    const NewOrder base = stop_limit(10, Dave, Buy, 105, 106, 5);
    const auto tweak = [&](auto&& f) {
        NewOrder o = base;
        f(o);
        return o;
    };
    const uint64_t h = book_with({base})->hash();

    EXPECT_EQ(book_with({base})->hash(), h) << "the same book hashes the same";
    EXPECT_NE(book_with({})->hash(), h) << "no stop";
    EXPECT_NE(book_with({tweak([](NewOrder& o) { o.id = 11; })})->hash(), h) << "id";
    EXPECT_NE(book_with({tweak([](NewOrder& o) { o.owner = Erin; })})->hash(), h) << "owner";
    EXPECT_NE(book_with({tweak([](NewOrder& o) { o.stop = Price{104}; })})->hash(), h) << "stop price";
    EXPECT_NE(book_with({tweak([](NewOrder& o) { o.price = Price{107}; })})->hash(), h) << "limit price";
    EXPECT_NE(book_with({tweak([](NewOrder& o) { o.qty = Qty{6}; })})->hash(), h) << "quantity";
    EXPECT_NE(book_with({tweak([](NewOrder& o) { o.tif = Ioc; })})->hash(), h) << "tif";
    EXPECT_NE(book_with({tweak([](NewOrder& o) { o.stp = Stp::CancelBoth; })})->hash(), h) << "stp";
    EXPECT_NE(book_with({tweak([](NewOrder& o) {
                  o.type = Mkt;
                  o.price = Price{0};
              })})->hash(),
              h)
        << "type";
    EXPECT_NE(book_with({tweak([](NewOrder& o) { o.side = Sell; })})->hash(), h)
        << "side (no trade yet: it waits)";

    const NewOrder other = stop_limit(11, Erin, Buy, 105, 106, 5);
    EXPECT_NE(book_with({base, other})->hash(), book_with({other, base})->hash())
        << "queue order at one stop price";
}

TEST_F(StopHash, LastPriceIsPartOfTheState) {
    StopDesk a, b;
    a.rest(limit(1, Bob, Sell, 101, 5));
    b.rest(limit(1, Bob, Sell, 101, 5));
    EXPECT_EQ(a.hash(), b.hash());
    b.book().set_last_price(Price{100});
    EXPECT_NE(a.hash(), b.hash());
    EXPECT_EQ(b.seq(), a.seq()) << "set_last_price does not advance the sequence";
    a.book().set_last_price(Price{100});
    EXPECT_EQ(a.hash(), b.hash());
}

// ===========================================================================
// Moving a pending stop order's stop price: amend(id, price, qty, new_stop).

TEST_F(StopMove, BuyStopMovesUpThenDown) {
    d.trade_at(100);
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));
    d.arm(stop_limit(11, Carol, Buy, 107, 108, 5));
    const uint64_t s = d.seq();

    const Result up = d.amend(10, 106, 5, 108);

    EXPECT_TRUE(up.accepted()) << reject_name(up);
    EXPECT_EQ(up.seq, s + 1);
    EXPECT_EQ(d.seq(), s + 1);
    EXPECT_EQ(up.pending.v, 5);
    EXPECT_FALSE(up.priority_kept);
    EXPECT_EQ(outcome(up), done(0, 0));
    EXPECT_EQ(level_changes(up), Changes{});
    EXPECT_EQ(d.stop(10), (Pend{10, Dave, Buy, 108, 106, 5}));
    EXPECT_EQ(d.pending(Buy), (Pends{{11, Carol, Buy, 107, 108, 5}, {10, Dave, Buy, 108, 106, 5}}));

    const Result down = d.amend(10, 106, 5, 101);

    EXPECT_TRUE(down.accepted()) << reject_name(down);
    EXPECT_EQ(down.seq, s + 2);
    EXPECT_EQ(d.stop(10), (Pend{10, Dave, Buy, 101, 106, 5}));
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 101, 106, 5}, {11, Carol, Buy, 107, 108, 5}}));
    EXPECT_EQ(d.pending(Sell), Pends{});
    EXPECT_EQ(d.ladder(), Ladder{}) << "moving a stop touches no level of the book";
    EXPECT_EQ(d.book().stop_count(), 2u);
    EXPECT_EQ(d.last(), 100);
}

TEST_F(StopMove, SellStopMovesDownThenUp) {
    d.trade_at(100);
    d.arm(stop_limit(10, Dave, Sell, 95, 94, 5));
    d.arm(stop_market(11, Carol, Sell, 93, 5));
    const uint64_t s = d.seq();

    const Result down = d.amend(10, 94, 5, 90);

    EXPECT_TRUE(down.accepted()) << reject_name(down);
    EXPECT_EQ(down.seq, s + 1);
    EXPECT_EQ(down.pending.v, 5);
    EXPECT_EQ(d.stop(10), (Pend{10, Dave, Sell, 90, 94, 5}));
    EXPECT_EQ(d.pending(Sell), (Pends{{11, Carol, Sell, 93, 0, 5, Mkt}, {10, Dave, Sell, 90, 94, 5}}));

    const Result up = d.amend(10, 94, 5, 99);

    EXPECT_TRUE(up.accepted()) << reject_name(up);
    EXPECT_EQ(up.seq, s + 2);
    EXPECT_EQ(d.pending(Sell), (Pends{{10, Dave, Sell, 99, 94, 5}, {11, Carol, Sell, 93, 0, 5, Mkt}}));
    EXPECT_EQ(d.pending(Buy), Pends{});
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(StopMove, JoinsTheBackOfTheNewStopPricesQueueAndLeavesTheOld) {
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 1));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 2));
    d.arm(stop_limit(12, Erin, Buy, 107, 108, 3));
    d.arm(stop_limit(13, Bob, Buy, 103, 104, 4));

    // 10 leaves 11 alone at 105 and waits behind 12, older there, at 107.
    EXPECT_TRUE(d.amend(10, 106, 1, 107).accepted());
    EXPECT_EQ(d.pending(Buy), (Pends{{13, Bob, Buy, 103, 104, 4},
                                     {11, Carol, Buy, 105, 106, 2},
                                     {12, Erin, Buy, 107, 108, 3},
                                     {10, Dave, Buy, 107, 106, 1}}));

    // 13 was alone at 103: that stop price is gone.
    EXPECT_TRUE(d.amend(13, 104, 4, 105).accepted());
    EXPECT_EQ(d.pending(Buy), (Pends{{11, Carol, Buy, 105, 106, 2},
                                     {13, Bob, Buy, 105, 104, 4},
                                     {12, Erin, Buy, 107, 108, 3},
                                     {10, Dave, Buy, 107, 106, 1}}));

    // Even the oldest at a stop price goes to the back of another's, a lower quantity notwithstanding.
    const Result r = d.amend(12, 108, 1, 105);
    EXPECT_FALSE(r.priority_kept);
    EXPECT_EQ(d.pending(Buy), (Pends{{11, Carol, Buy, 105, 106, 2},
                                     {13, Bob, Buy, 105, 104, 4},
                                     {12, Erin, Buy, 105, 108, 1},
                                     {10, Dave, Buy, 107, 106, 1}}));

    // Cancelling a moved stop takes it from its new queue.
    EXPECT_EQ(outcome(d.cancel(13)), done(0, 0, 4, CancelReason::User));
    EXPECT_EQ(
        d.pending(Buy),
        (Pends{{11, Carol, Buy, 105, 106, 2}, {12, Erin, Buy, 105, 108, 1}, {10, Dave, Buy, 107, 106, 1}}));
    EXPECT_EQ(d.book().stop_count(), 3u);
}

TEST_F(StopMove, MovedStopsTriggerInTheirNewQueuesOrder) {
    d.arm(stop_market(10, Dave, Buy, 105, 1));
    d.arm(stop_market(11, Carol, Buy, 103, 1));
    d.arm(stop_market(12, Erin, Buy, 103, 1));
    EXPECT_TRUE(d.amend(10, 0, 1, 103).accepted());  // 11, 12, 10
    EXPECT_TRUE(d.amend(11, 0, 1, 104).accepted());  // away ...
    EXPECT_TRUE(d.amend(11, 0, 1, 103).accepted());  // ... and back, last: 12, 10, 11
    EXPECT_EQ(d.pending(Buy), (Pends{{12, Erin, Buy, 103, 0, 1, Mkt},
                                     {10, Dave, Buy, 103, 0, 1, Mkt},
                                     {11, Carol, Buy, 103, 0, 1, Mkt}}));
    d.rest(limit(1, Bob, Sell, 103, 1));
    d.rest(limit(2, Bob, Sell, 120, 10));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 103, 1));

    EXPECT_EQ(fills(r),
              (Fills{{1, 20, 103, 1, 0}, {2, 12, 120, 1, 9}, {2, 10, 120, 1, 8}, {2, 11, 120, 1, 7}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(12, Erin, Buy, s + 2, done(1, 0), Reject::None, 1, 1),
                                      trig(10, Dave, Buy, s + 3, done(1, 0), Reject::None, 2, 2),
                                      trig(11, Carol, Buy, s + 4, done(1, 0), Reject::None, 3, 3)}));
    EXPECT_EQ(d.book().stop_count(), 0u);
}

TEST_F(StopMove, BuyStopTriggersAtItsNewStopNotItsOld) {
    d.rest(limit(1, Bob, Sell, 101, 1));
    d.rest(limit(2, Bob, Sell, 103, 1));
    d.rest(limit(3, Bob, Sell, 110, 10));
    d.arm(stop_market(10, Dave, Buy, 101, 1));
    EXPECT_TRUE(d.amend(10, 0, 1, 103).accepted());

    // A trade at its old stop price: it would have run; now it waits.
    const Result at_old = d.place(limit(20, Alice, Buy, 101, 1));
    EXPECT_EQ(fills(at_old), (Fills{{1, 20, 101, 1, 0}}));
    EXPECT_EQ(triggered_of(at_old), Trigs{});
    EXPECT_EQ(d.last(), 101);
    EXPECT_EQ(d.stop(10), (Pend{10, Dave, Buy, 103, 0, 1, Mkt}));
    const uint64_t s = d.seq();

    // A trade at its new one runs it.
    const Result at_new = d.place(limit(21, Alice, Buy, 103, 1));
    EXPECT_EQ(fills(at_new), (Fills{{2, 21, 103, 1, 0}, {3, 10, 110, 1, 9}}));
    EXPECT_EQ(triggered_of(at_new), (Trigs{trig(10, Dave, Buy, s + 2, done(1, 0), Reject::None, 1, 1)}));
    EXPECT_FALSE(d.has(10));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 110, 9, 1}}));
}

TEST_F(StopMove, SellStopTriggersAtItsNewStopNotItsOld) {
    d.rest(limit(1, Carol, Buy, 99, 1));
    d.rest(limit(2, Carol, Buy, 97, 1));
    d.rest(limit(3, Carol, Buy, 90, 5));
    d.arm(stop_limit(10, Erin, Sell, 99, 89, 2));
    EXPECT_TRUE(d.amend(10, 89, 2, 97).accepted());

    const Result at_old = d.place(limit(20, Alice, Sell, 99, 1));
    EXPECT_EQ(fills(at_old), (Fills{{1, 20, 99, 1, 0}}));
    EXPECT_EQ(triggered_of(at_old), Trigs{});
    EXPECT_EQ(d.stop(10), (Pend{10, Erin, Sell, 97, 89, 2}));
    const uint64_t s = d.seq();

    const Result at_new = d.place(limit(21, Alice, Sell, 97, 1));
    EXPECT_EQ(fills(at_new), (Fills{{2, 21, 97, 1, 0}, {3, 10, 90, 2, 3}}));
    EXPECT_EQ(triggered_of(at_new), (Trigs{trig(10, Erin, Sell, s + 2, done(2, 0), Reject::None, 1, 1)}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 90, 3, 1}}));
}

TEST_F(StopMove, MovedCloserItTriggersSooner) {
    d.rest(limit(1, Bob, Sell, 102, 1));
    d.rest(limit(2, Bob, Sell, 110, 10));
    d.trade_at(100);
    d.arm(stop_market(10, Dave, Buy, 108, 1));
    EXPECT_TRUE(d.amend(10, 0, 1, 102).accepted());
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 102, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 102, 1, 0}, {2, 10, 110, 1, 9}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(1, 0), Reject::None, 1, 1)}));
}

TEST_F(StopMove, BuyStopToAPriceTheLastTradeReachedIsRefused) {
    d.trade_at(100);
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 5));
    const uint64_t seq0 = d.seq(), hash0 = d.hash();
    const Pends buys0 = d.pending(Buy);

    const Result at = d.amend(10, 106, 5, 100);
    EXPECT_REJECT(at, StopWouldTrigger) << "a buy stop at the last price";
    expect_rejected_result(at, seq0);
    EXPECT_EQ(at.pending.v, 0);
    EXPECT_REJECT(d.amend(10, 106, 5, 99), StopWouldTrigger) << "below it";
    EXPECT_REJECT(d.amend(10, 106, 5, 1), StopWouldTrigger);
    EXPECT_REJECT(d.amend(10, 107, 3, 90), StopWouldTrigger) << "with a new price and quantity too";
    EXPECT_REJECT(d.amend(11, 106, 9, 100), StopWouldTrigger);

    EXPECT_EQ(d.seq(), seq0);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.pending(Buy), buys0);
    EXPECT_EQ(d.ladder(), Ladder{});

    // One tick above the last price waits.
    EXPECT_TRUE(d.amend(10, 106, 5, 101).accepted());
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 101, 106, 5}, {11, Carol, Buy, 105, 106, 5}}));
}

TEST_F(StopMove, SellStopToAPriceTheLastTradeReachedIsRefused) {
    d.trade_at(100);
    d.arm(stop_limit(10, Dave, Sell, 95, 94, 5));
    d.arm(stop_market(11, Carol, Sell, 90, 5));
    const uint64_t seq0 = d.seq(), hash0 = d.hash();
    const Pends sells0 = d.pending(Sell);

    EXPECT_REJECT(d.amend(10, 94, 5, 100), StopWouldTrigger) << "a sell stop at the last price";
    EXPECT_REJECT(d.amend(10, 94, 5, 101), StopWouldTrigger) << "above it";
    EXPECT_REJECT(d.amend(10, 94, 5, kMaxPrice), StopWouldTrigger);
    EXPECT_REJECT(d.amend(10, 93, 2, 100), StopWouldTrigger) << "with a new price and quantity too";
    EXPECT_REJECT(d.amend(11, 0, 5, 120), StopWouldTrigger) << "a stop-market";

    EXPECT_EQ(d.seq(), seq0);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.pending(Sell), sells0);

    EXPECT_TRUE(d.amend(10, 94, 5, 99).accepted());
    EXPECT_EQ(d.pending(Sell), (Pends{{10, Dave, Sell, 99, 94, 5}, {11, Carol, Sell, 90, 0, 5, Mkt}}));
}

TEST_F(StopMove, BeforeAnyTradeAnyNewStopIsAccepted) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Bob, Buy, 99, 5));
    d.arm(stop_market(10, Dave, Buy, 105, 1));
    d.arm(stop_market(11, Carol, Sell, 95, 1));
    ASSERT_EQ(d.last(), 0);

    EXPECT_TRUE(d.amend(10, 0, 1, 1).accepted()) << "a buy stop below every price";
    EXPECT_TRUE(d.amend(11, 0, 1, kMaxPrice).accepted()) << "a sell stop above every price";
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 1, 0, 1, Mkt}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{11, Carol, Sell, kMaxPrice, 0, 1, Mkt}}));
    EXPECT_TRUE(d.amend(10, 0, 1, kMaxPrice).accepted());
    EXPECT_TRUE(d.amend(11, 0, 1, 1).accepted());
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, kMaxPrice, 0, 1, Mkt}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{11, Carol, Sell, 1, 0, 1, Mkt}}));
    EXPECT_TRUE(d.amend(10, 0, 1, 1).accepted()) << "a buy and a sell stop at one stop price";
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 1, 0, 1, Mkt}}));
    EXPECT_EQ(d.pending(Sell), (Pends{{11, Carol, Sell, 1, 0, 1, Mkt}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 5, 1}, {Bid, 99, 5, 1}}));
}

TEST_F(StopMove, NewLimitPriceAndQuantityMoveWithIt) {
    d.rest(limit(1, Bob, Sell, 104, 1));
    d.rest(limit(2, Bob, Sell, 106, 2));
    d.rest(limit(3, Bob, Sell, 107, 10));
    d.arm(stop_limit(10, Dave, Buy, 110, 105, 5));

    const Result m = d.amend(10, 106, 4, 104);

    EXPECT_TRUE(m.accepted()) << reject_name(m);
    EXPECT_EQ(m.pending.v, 4);
    EXPECT_EQ(d.stop(10), (Pend{10, Dave, Buy, 104, 106, 4}));
    const uint64_t s = d.seq();

    // It runs as a buy of 4 limit 106: takes the 2 at 106 and rests 2.
    const Result r = d.place(limit(20, Alice, Buy, 104, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 104, 1, 0}, {2, 10, 106, 2, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(2, 2), Reject::None, 1, 1)}));
    EXPECT_EQ(d.order(10), (Ord{10, 106, 2}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 107, 10, 1}, {Bid, 106, 2, 1}}));
}

TEST_F(StopMove, StopMarketMovesWithPriceZeroOnly) {
    d.trade_at(100);
    d.arm(stop_market(10, Dave, Sell, 95, 5, Ioc));
    d.arm(stop_market(11, Carol, Sell, 90, 5, Fok));
    const uint64_t hash0 = d.hash();

    EXPECT_REJECT(d.amend(10, 90, 5, 90), InvalidPrice) << "a stop-market order has no limit price";
    EXPECT_REJECT(d.amend(10, 1, 5, 85), InvalidPrice);
    EXPECT_REJECT(d.amend(10, -1, 5, 85), InvalidPrice);
    EXPECT_REJECT(d.amend(10, 7, 5, 100), InvalidPrice) << "before StopWouldTrigger";
    EXPECT_REJECT(d.amend(10, 7, 5, -1), InvalidPrice) << "before InvalidStopPrice";
    EXPECT_EQ(d.hash(), hash0);

    EXPECT_TRUE(d.amend(10, 0, 5, 90).accepted());
    EXPECT_EQ(d.pending(Sell),
              (Pends{{11, Carol, Sell, 90, 0, 5, Mkt, Fok}, {10, Dave, Sell, 90, 0, 5, Mkt, Ioc}}));
    EXPECT_TRUE(d.amend(10, 0, 7, 92).accepted());
    EXPECT_EQ(d.stop(10), (Pend{10, Dave, Sell, 92, 0, 7, Mkt, Ioc})) << "type and tif stay";
}

TEST_F(StopMove, ItsOwnStopPriceIsAnAmendWithoutAMove) {
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 5));
    d.arm(stop_limit(12, Erin, Buy, 105, 106, 5));
    const uint64_t s = d.seq();

    EXPECT_REJECT(d.amend(11, 106, 5, 105), NoChange);
    EXPECT_EQ(d.seq(), s);

    const Result down = d.amend(11, 106, 3, 105);
    EXPECT_TRUE(down.priority_kept) << "same price, lower quantity: keeps its place";
    EXPECT_EQ(down.seq, s + 1);
    EXPECT_EQ(
        d.pending(Buy),
        (Pends{{10, Dave, Buy, 105, 106, 5}, {11, Carol, Buy, 105, 106, 3}, {12, Erin, Buy, 105, 106, 5}}));

    const Result up = d.amend(11, 106, 4, 105);
    EXPECT_FALSE(up.priority_kept);
    EXPECT_EQ(
        d.pending(Buy),
        (Pends{{10, Dave, Buy, 105, 106, 5}, {12, Erin, Buy, 105, 106, 5}, {11, Carol, Buy, 105, 106, 4}}));

    const Result price = d.amend(10, 107, 5, 105);
    EXPECT_FALSE(price.priority_kept);
    EXPECT_EQ(
        d.pending(Buy),
        (Pends{{12, Erin, Buy, 105, 106, 5}, {11, Carol, Buy, 105, 106, 4}, {10, Dave, Buy, 105, 107, 5}}));

    d.arm(stop_market(13, Dave, Sell, 95, 2));
    EXPECT_REJECT(d.amend(13, 0, 2, 95), NoChange);
    EXPECT_TRUE(d.amend(13, 0, 1, 95).priority_kept);
}

TEST_F(StopMove, ANewStopWithTheSamePriceAndQuantityIsAChange) {
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));
    d.arm(stop_limit(11, Carol, Buy, 107, 106, 5));
    const uint64_t s = d.seq();

    const Result r = d.amend(10, 106, 5, 107);

    EXPECT_TRUE(r.accepted()) << reject_name(r);
    EXPECT_EQ(r.seq, s + 1);
    EXPECT_FALSE(r.priority_kept);
    EXPECT_EQ(d.pending(Buy), (Pends{{11, Carol, Buy, 107, 106, 5}, {10, Dave, Buy, 107, 106, 5}}));
}

TEST_F(StopMove, OutOfRangeStopPricesAndTheOrderOfChecks) {
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));
    const uint64_t hash0 = d.hash();

    EXPECT_REJECT(d.amend(10, 106, 5, -1), InvalidStopPrice);
    EXPECT_REJECT(d.amend(10, 106, 5, kInt64Min), InvalidStopPrice);
    EXPECT_REJECT(d.amend(10, 106, 5, kMaxPrice + 1), InvalidStopPrice);
    EXPECT_REJECT(d.amend(10, 106, 5, kInt64Max), InvalidStopPrice);
    EXPECT_REJECT(d.amend(10, 107, 3, -1), InvalidStopPrice) << "with a valid new price and quantity";
    // First failure wins: not found, then the price, then the quantity, then the stop price.
    EXPECT_REJECT(d.amend(99, 106, 5, -1), OrderNotFound);
    EXPECT_REJECT(d.amend(0, 106, 5, 107), OrderNotFound);
    EXPECT_REJECT(d.amend(10, 0, 5, -1), InvalidPrice);
    EXPECT_REJECT(d.amend(10, kMaxPrice + 1, 5, kMaxPrice + 1), InvalidPrice);
    EXPECT_REJECT(d.amend(10, 106, 0, -1), InvalidQuantity);
    EXPECT_REJECT(d.amend(10, 106, kMaxQty + 1, kMaxPrice + 1), InvalidQuantity);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.stop(10), (Pend{10, Dave, Buy, 105, 106, 5}));

    // After a trade: the price and quantity still come before StopWouldTrigger.
    d.trade_at(100);
    EXPECT_REJECT(d.amend(10, 0, 5, 100), InvalidPrice);
    EXPECT_REJECT(d.amend(10, 106, 0, 100), InvalidQuantity);
    EXPECT_REJECT(d.amend(10, 106, 5, 100), StopWouldTrigger);
    EXPECT_REJECT(d.amend(10, 106, 5, -100), InvalidStopPrice) << "InvalidStopPrice before StopWouldTrigger";

    EXPECT_TRUE(d.amend(10, 106, 5, kMaxPrice).accepted()) << "kMaxPrice is a valid stop price";
    EXPECT_EQ(d.stop(10), (Pend{10, Dave, Buy, kMaxPrice, 106, 5}));
}

TEST_F(StopMove, AnOrderInTheBookHasNoStopPriceToMove) {
    d.rest(limit(1, Bob, Buy, 99, 5));
    d.rest(limit(2, Carol, Buy, 99, 5));
    d.rest(limit(3, Dave, Sell, 101, 5));
    const uint64_t seq0 = d.seq(), hash0 = d.hash();
    const Queue bids0 = d.queue(Buy);

    const Result r = d.amend(1, 99, 3, 105);
    EXPECT_REJECT(r, InvalidStopPrice) << "a lower quantity with a stop price";
    expect_rejected_result(r, seq0);
    EXPECT_REJECT(d.amend(1, 101, 5, 105), InvalidStopPrice) << "a crossing price: nothing trades";
    EXPECT_REJECT(d.amend(1, 99, 5, 105), InvalidStopPrice) << "rather than NoChange";
    EXPECT_REJECT(d.amend(1, 99, 5, -1), InvalidStopPrice) << "any stop price but 0";
    EXPECT_REJECT(d.amend(1, 99, 5, kMaxPrice + 1), InvalidStopPrice);
    EXPECT_REJECT(d.amend(1, 0, 0, 105), InvalidStopPrice) << "before the price and quantity";
    EXPECT_REJECT(d.amend(3, 100, 5, 1), InvalidStopPrice);
    EXPECT_REJECT(d.amend(4, 99, 5, 105), OrderNotFound);

    EXPECT_EQ(d.seq(), seq0);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.queue(Buy), bids0);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 5, 1}, {Bid, 99, 10, 2}}));
    EXPECT_EQ(d.book().stop_count(), 0u);
    EXPECT_EQ(d.last(), 0);

    // Without one, the same amend is the usual one.
    const Result ok = d.amend(1, 99, 3);
    EXPECT_TRUE(ok.priority_kept);
    EXPECT_EQ(d.queue(Buy), (Queue{{1, 99, 3}, {2, 99, 5}}));
}

TEST_F(StopMove, ATriggeredStopRestingInTheBookHasNoStopPriceToMove) {
    d.rest(limit(1, Bob, Sell, 101, 1));
    d.arm(stop_limit(10, Dave, Buy, 101, 100, 3));  // its limit under its stop: it rests when run
    const Result r = d.place(limit(20, Alice, Buy, 101, 1));
    ASSERT_EQ(triggered_of(r).size(), 1u);
    ASSERT_EQ(d.order(10), (Ord{10, 100, 3}));
    const uint64_t seq0 = d.seq(), hash0 = d.hash();

    EXPECT_REJECT(d.amend(10, 100, 3, 105), InvalidStopPrice);
    EXPECT_REJECT(d.amend(10, 100, 2, 102), InvalidStopPrice);
    EXPECT_REJECT(d.amend(10, 100, 3, 101), InvalidStopPrice) << "its old stop price too";
    EXPECT_EQ(d.seq(), seq0);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 100, 3, 1}}));
    EXPECT_EQ(d.pending(Buy), Pends{});

    EXPECT_TRUE(d.amend(10, 100, 2).priority_kept);
    EXPECT_EQ(d.order(10), (Ord{10, 100, 2}));
}

TEST_F(StopMove, SequenceAdvancesByOneOnAMoveAndNotOnARefusal) {
    d.trade_at(100);
    d.arm(stop_market(10, Dave, Buy, 105, 1));
    d.arm(stop_market(11, Dave, Sell, 95, 1));
    const uint64_t s = d.seq();

    const Result a = d.amend(10, 0, 1, 102);
    EXPECT_EQ(a.seq, s + 1);
    EXPECT_EQ(d.seq(), s + 1);
    const Result b = d.amend(10, 0, 1, 100);
    EXPECT_REJECT(b, StopWouldTrigger);
    EXPECT_EQ(b.seq, s + 1) << "a refusal reports the sequence as it is";
    EXPECT_EQ(d.seq(), s + 1);
    const Result c = d.amend(11, 0, 2, 97);
    EXPECT_EQ(c.seq, s + 2);
    EXPECT_EQ(c.triggered.size(), 0u);
    const Result e = d.amend(11, 0, 2, -5);
    EXPECT_EQ(e.seq, s + 2);
    EXPECT_EQ(d.seq(), s + 2);
}

TEST_F(StopMove, RollbackRestoresTheQueuesBeforeTheMove) {
    d.trade_at(100);
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 5));
    d.arm(stop_market(12, Erin, Buy, 107, 2));
    d.arm(stop_market(13, Erin, Sell, 95, 2));
    const Book::Savepoint sp0 = d.book().savepoint();
    const uint64_t h0 = d.hash();
    const Snapshot snap0 = Snapshot::of(d.book());

    EXPECT_TRUE(d.amend(10, 106, 5, 107).accepted());
    EXPECT_TRUE(d.amend(12, 0, 2, 103).accepted());  // it was alone at 107
    const Book::Savepoint sp1 = d.book().savepoint();
    const uint64_t h1 = d.hash();
    const Pends buys1 = d.pending(Buy);
    EXPECT_EQ(buys1, (Pends{{12, Erin, Buy, 103, 0, 2, Mkt},
                            {11, Carol, Buy, 105, 106, 5},
                            {10, Dave, Buy, 107, 106, 5}}));
    EXPECT_TRUE(d.amend(11, 106, 9, 107).accepted());  // 105 empties
    EXPECT_TRUE(d.amend(13, 0, 2, 99).accepted());
    EXPECT_NE(d.hash(), h1);

    d.book().rollback_to(sp1);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), h1);
    EXPECT_EQ(d.pending(Buy), buys1);
    EXPECT_EQ(d.pending(Sell), (Pends{{13, Erin, Sell, 95, 0, 2, Mkt}}));

    d.book().rollback_to(sp0);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), h0);
    EXPECT_EQ(diff_snapshots(Snapshot::of(d.book()), snap0), "");

    // The same moves again give the same book.
    EXPECT_TRUE(d.amend(10, 106, 5, 107).accepted());
    EXPECT_TRUE(d.amend(12, 0, 2, 103).accepted());
    EXPECT_EQ(d.hash(), h1);
}

TEST_F(StopMove, TheSameQueuesPlacedOrMovedHashTheSame) {
    // Moved: 10 from 105 to 107, behind 11.
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 5));
    d.arm(stop_limit(11, Carol, Buy, 107, 106, 5));
    EXPECT_TRUE(d.amend(10, 106, 5, 107).accepted());
    // Placed so: 11 then 10 at 107, at the same sequence.
    StopDesk twin;
    twin.arm(stop_limit(11, Carol, Buy, 107, 106, 5));
    twin.arm(stop_limit(10, Dave, Buy, 107, 106, 5));
    twin.book().set_seq(d.seq());
    EXPECT_EQ(twin.hash(), d.hash());
    twin.expect_consistent();
}

// Capacity: a move frees its own slot (and its old stop price's, if it was
// alone there) before it takes one.

TEST(StopMoveCapacity, EveryOrderSlotUsedAMoveStillSucceeds) {
    StopDesk d(3, 8);
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Bob, Buy, 99, 5));
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 1));
    EXPECT_REJECT(d.place(stop_limit(11, Dave, Buy, 107, 106, 1)), OrderCapacity) << "the book is full";

    EXPECT_TRUE(d.amend(10, 106, 1, 107).accepted());
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 107, 106, 1}}));
    EXPECT_TRUE(d.amend(10, 108, 4, 104).accepted());
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 104, 108, 4}}));
    EXPECT_EQ(d.book().order_count(), 2u);
    EXPECT_EQ(d.book().stop_count(), 1u);
    d.expect_consistent();
}

TEST(StopMoveCapacity, EveryOrderSlotUsedAMoveBesideOthersSucceeds) {
    StopDesk d(4, 8);
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 1));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 1));
    d.arm(stop_limit(12, Carol, Buy, 107, 106, 1));
    EXPECT_REJECT(d.place(limit(13, Carol, Buy, 99, 1)), OrderCapacity);

    EXPECT_TRUE(d.amend(10, 106, 1, 107).accepted()) << "to an existing stop price";
    EXPECT_TRUE(d.amend(11, 106, 1, 109).accepted()) << "to a new one";
    EXPECT_EQ(
        d.pending(Buy),
        (Pends{{12, Carol, Buy, 107, 106, 1}, {10, Dave, Buy, 107, 106, 1}, {11, Carol, Buy, 109, 106, 1}}));
    d.expect_consistent();
}

TEST(StopMoveCapacity, EveryLevelSlotUsedALoneStopStillMoves) {
    StopDesk d(16, 3);
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Bob, Buy, 99, 5));
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 1));
    EXPECT_REJECT(d.place(stop_limit(11, Dave, Buy, 107, 106, 1)), LevelCapacity)
        << "every level slot is used";

    EXPECT_TRUE(d.amend(10, 106, 1, 107).accepted());
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 107, 106, 1}}));
    EXPECT_TRUE(d.amend(10, 106, 1, 103).accepted());
    EXPECT_EQ(d.pending(Buy), (Pends{{10, Dave, Buy, 103, 106, 1}}));
    EXPECT_EQ(d.book().level_count(), 2u);
    d.expect_consistent();
}

TEST(StopMoveCapacity, EveryLevelSlotUsedAStopWithCompanyMovesOnlyToAnExistingStopPrice) {
    StopDesk d(16, 4);
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Bob, Buy, 99, 5));
    d.arm(stop_limit(10, Dave, Buy, 105, 106, 1));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 1));
    d.arm(stop_limit(12, Erin, Buy, 107, 106, 1));
    const uint64_t seq0 = d.seq(), hash0 = d.hash();
    const Pends buys0 = d.pending(Buy);

    // 11 stays at 105, so 10 leaves no slot behind: a new stop price needs one.
    EXPECT_REJECT(d.amend(10, 106, 1, 109), LevelCapacity);
    EXPECT_REJECT(d.amend(10, 106, 1, 103), LevelCapacity);
    EXPECT_EQ(d.seq(), seq0);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.pending(Buy), buys0);

    EXPECT_TRUE(d.amend(10, 106, 1, 107).accepted()) << "an existing stop price needs no slot";
    EXPECT_EQ(
        d.pending(Buy),
        (Pends{{11, Carol, Buy, 105, 106, 1}, {12, Erin, Buy, 107, 106, 1}, {10, Dave, Buy, 107, 106, 1}}));
    // Now 11 is alone at 105: its slot serves its new stop price.
    EXPECT_TRUE(d.amend(11, 106, 1, 109).accepted());
    EXPECT_EQ(
        d.pending(Buy),
        (Pends{{12, Erin, Buy, 107, 106, 1}, {10, Dave, Buy, 107, 106, 1}, {11, Carol, Buy, 109, 106, 1}}));
    d.expect_consistent();
}

TEST(StopMoveCapacity, PendingTotalAtTheNewStopPriceMustFitInt64) {
    StopDesk d(32, 8);
    for (OrderId id = 1; id <= 9; ++id) d.arm(stop_market(id, Bob, Buy, 105, kMaxQty));
    const int64_t rest = kInt64Max - 9 * kMaxQty;
    d.arm(stop_limit(10, Bob, Buy, 105, 106, rest));  // 105's total is INT64_MAX
    d.arm(stop_market(11, Carol, Buy, 107, 5));
    const uint64_t hash0 = d.hash();

    EXPECT_REJECT(d.amend(11, 0, 1, 105), QuantityOverflow);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.stop(11), (Pend{11, Carol, Buy, 107, 0, 5, Mkt}));

    // Its own quantity leaves its old stop price before the new one's total is judged.
    EXPECT_TRUE(d.amend(10, 106, rest, 106).accepted());
    EXPECT_TRUE(d.amend(11, 0, 5, 105).accepted());
    EXPECT_REJECT(d.amend(10, 106, rest, 105), QuantityOverflow);
    EXPECT_TRUE(d.amend(10, 106, rest - 5, 105).accepted()) << "exactly INT64_MAX";
    EXPECT_EQ(d.pending(Buy).back(), (Pend{10, Bob, Buy, 105, 106, rest - 5}));
    d.expect_consistent();
}

// ===========================================================================
// Stop-limit icebergs: a stop-limit GTC order with a display waits with all
// of its quantity and shows nothing; triggered, it runs as an incoming
// iceberg placed then: it trades all it can as a taker and rests with a tip.

TEST_F(StopIceberg, PlacedItWaitsWithItsWholeQuantityAndShowsNothing) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.rest(limit(2, Carol, Buy, 99, 5));
    const Ladder book{{Ask, 101, 5, 1}, {Bid, 99, 5, 1}};
    const uint64_t seq0 = d.seq();

    // Buy stop 105 limit 106, 12 lots to be shown 3 at a time.
    const Result r = d.place(with_display(stop_limit(10, Alice, Buy, 105, 106, 12), 3));

    EXPECT_TRUE(r.accepted()) << reject_name(r);
    EXPECT_EQ(r.seq, seq0 + 1);
    EXPECT_EQ(r.pending.v, 12) << "all of it waits, not a tip";
    EXPECT_EQ(outcome(r), done(0, 0));
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(level_changes(r), Changes{});
    EXPECT_EQ(d.ladder(), book) << "no tip in any level";
    EXPECT_EQ(d.book().order_count(), 2u);
    EXPECT_EQ(d.book().level_count(), 2u);
    EXPECT_EQ(d.book().stop_count(), 1u);

    RestingOrder o;
    ASSERT_TRUE(d.book().find(10, o));
    EXPECT_EQ(o.qty.v, 12);
    EXPECT_EQ(o.visible.v, 0);
    EXPECT_EQ(o.display.v, 3);
    EXPECT_EQ(o.stop.v, 105);
    EXPECT_EQ(o.price.v, 106);
    EXPECT_EQ(o.type, Lmt);
    EXPECT_EQ(o.tif, Gtc);
    EXPECT_FALSE(o.post_only);
    std::vector<RestingOrder> listed;
    d.book().stops(Buy, listed);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].qty.v, 12);
    EXPECT_EQ(listed[0].visible.v, 0);
    EXPECT_EQ(listed[0].display.v, 3);

    // Beside plain stops, on either side.
    d.arm(stop_limit(11, Bob, Buy, 105, 106, 2));
    d.arm(with_display(stop_limit(12, Carol, Sell, 95, 94, 7), 7));
    EXPECT_EQ(d.pending(Buy),
              (Pends{with_display({10, Alice, Buy, 105, 106, 12}, 3), {11, Bob, Buy, 105, 106, 2}}));
    EXPECT_EQ(d.pending(Sell), (Pends{with_display({12, Carol, Sell, 95, 94, 7}, 7)}));
    EXPECT_EQ(d.ladder(), book);
}

TEST_F(StopIceberg, TriggeredItTradesItsWholeQuantityAndRestsWithATip) {
    d.rest(limit(1, Bob, Sell, 100, 2));
    d.rest(limit(2, Carol, Sell, 101, 6));
    d.rest(limit(3, Bob, Sell, 103, 5));
    d.arm(with_display(stop_limit(10, Dave, Buy, 100, 101, 15), 4));
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    // Dave's stop takes 7, more than a tip of 4: a taker trades all it can. 8 rest, 4 of them shown.
    EXPECT_EQ(outcome(r), done(1, 0));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 1}, {1, 10, 100, 1, 0}, {2, 10, 101, 6, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(7, 8), Reject::None, 1, 1)}));
    EXPECT_EQ(level_changes(r),
              (Changes{{Ask, 100, 1, 1}, {Ask, 100, 0, 0}, {Ask, 101, 0, 0}, {Bid, 101, 4, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 103, 5, 1}, {Bid, 101, 4, 1}}));
    EXPECT_EQ(d.shown(10), (IceOrder{10, 101, 8, 4, 4}));
    EXPECT_EQ(d.book().stop_count(), 0u);
    EXPECT_EQ(d.last(), 101);

    // Its tip trades as any iceberg's: taken whole, it is refilled from the
    // hidden part and goes to the back of its level, behind Bob's newer bid.
    d.rest(limit(4, Bob, Buy, 101, 2));
    const Result t = d.place(limit(21, Erin, Sell, 101, 4));
    EXPECT_EQ(fills(t), (Fills{{10, 21, 101, 4, 4}}));
    ASSERT_EQ(t.fills.size(), 1u);
    EXPECT_TRUE(t.fills[0].maker_requeued);
    EXPECT_EQ(t.fills[0].maker_visible.v, 4);
    EXPECT_EQ(level_changes(t), (Changes{{Bid, 101, 6, 2}}));
    EXPECT_EQ(d.queue(Bid), (Queue{{4, 101, 2}, {10, 101, 4}}));
    EXPECT_EQ(d.shown(10), (IceOrder{10, 101, 4, 4, 4}));

    const Result u = d.place(limit(22, Erin, Sell, 101, 5));
    EXPECT_EQ(fills(u), (Fills{{4, 22, 101, 2, 0}, {10, 22, 101, 3, 1}}));
    EXPECT_EQ(d.shown(10), (IceOrder{10, 101, 1, 1, 4}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 103, 5, 1}, {Bid, 101, 1, 1}}));
}

TEST_F(StopIceberg, InACascadeATriggeredIcebergRestsAndTheNextStopQueuesBehindItsTip) {
    d.rest(limit(1, Bob, Buy, 100, 2));
    d.rest(limit(2, Bob, Buy, 99, 2));
    d.rest(limit(3, Bob, Buy, 98, 3));
    d.rest(limit(4, Bob, Buy, 96, 5));
    d.arm(stop_market(10, Dave, Sell, 100, 2));
    d.arm(with_display(stop_limit(11, Carol, Sell, 99, 97, 10), 2));
    d.arm(stop_limit(12, Erin, Sell, 98, 97, 3));
    d.arm(stop_market(13, Dave, Sell, 95, 1));
    const uint64_t s = d.seq();

    // Alice trades at 100: Dave's stop at 99, Carol's iceberg at 98, whose
    // 7 left rest at 97 with a tip of 2; Erin's stop, triggered by that trade,
    // rests behind the tip.
    const Result r = d.place(limit(20, Alice, Sell, 100, 2));

    EXPECT_EQ(outcome(r), done(2, 0));
    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 2, 0}, {2, 10, 99, 2, 0}, {3, 11, 98, 3, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Sell, s + 2, done(2, 0), Reject::None, 1, 1),
                                      trig(11, Carol, Sell, s + 3, done(3, 7), Reject::None, 2, 2),
                                      trig(12, Erin, Sell, s + 4, done(0, 3), Reject::None, 3, 4)}));
    EXPECT_EQ(
        level_changes(r),
        (Changes{{Bid, 100, 0, 0}, {Bid, 99, 0, 0}, {Bid, 98, 0, 0}, {Ask, 97, 2, 1}, {Ask, 97, 5, 2}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 97, 5, 2}, {Bid, 96, 5, 1}}));
    EXPECT_EQ(d.queue(Ask), (Queue{{11, 97, 7}, {12, 97, 3}}));
    EXPECT_EQ(d.shown(11), (IceOrder{11, 97, 7, 2, 2}));
    EXPECT_EQ(d.pending(Sell), (Pends{{13, Dave, Sell, 95, 0, 1, Mkt}}));
    EXPECT_EQ(d.last(), 98);
    EXPECT_EQ(d.seq(), s + 4);

    // A buyer takes Carol's tip, refilled behind Erin's order, then Erin's.
    const Result t = d.place(limit(21, Bob, Buy, 97, 4));
    EXPECT_EQ(fills(t), (Fills{{11, 21, 97, 2, 5}, {12, 21, 97, 2, 1}}));
    EXPECT_EQ(d.queue(Ask), (Queue{{12, 97, 1}, {11, 97, 5}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 97, 3, 2}, {Bid, 96, 5, 1}}));
}

TEST_F(StopIceberg, AmendKeepsItsDisplayAndItsPlaceWhenReducedAtTheSamePrice) {
    d.arm(with_display(stop_limit(10, Dave, Buy, 105, 106, 12), 3));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 5));
    d.arm(with_display(stop_limit(12, Erin, Buy, 105, 106, 8), 2));
    const uint64_t s = d.seq();

    const Result down = d.amend(10, 106, 9);

    EXPECT_TRUE(down.accepted()) << reject_name(down);
    EXPECT_EQ(down.seq, s + 1);
    EXPECT_TRUE(down.priority_kept);
    EXPECT_EQ(down.pending.v, 9);
    EXPECT_EQ(level_changes(down), Changes{});
    EXPECT_EQ(d.pending(Buy), (Pends{with_display({10, Dave, Buy, 105, 106, 9}, 3),
                                     {11, Carol, Buy, 105, 106, 5},
                                     with_display({12, Erin, Buy, 105, 106, 8}, 2)}));

    // More quantity, or a new limit price: to the back, still an iceberg.
    EXPECT_FALSE(d.amend(10, 106, 10).priority_kept);
    EXPECT_FALSE(d.amend(12, 107, 8).priority_kept);
    EXPECT_EQ(d.pending(Buy), (Pends{{11, Carol, Buy, 105, 106, 5},
                                     with_display({10, Dave, Buy, 105, 106, 10}, 3),
                                     with_display({12, Erin, Buy, 105, 107, 8}, 2)}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(StopIceberg, AmendToMoreThanKMaxIcebergPartsTipsIsInvalidDisplay) {
    d.trade_at(100);
    d.arm(with_display(stop_limit(10, Dave, Buy, 105, 106, 12), 3));
    d.arm(stop_limit(11, Carol, Buy, 105, 106, 5));
    const uint64_t seq0 = d.seq(), hash0 = d.hash();
    const Pends buys0 = d.pending(Buy);

    const Result r = d.amend(10, 106, 301);
    EXPECT_REJECT(r, InvalidDisplay) << "101 tips of 3";
    expect_rejected_result(r, seq0);
    EXPECT_REJECT(d.amend(10, 107, 301), InvalidDisplay) << "with a new limit price";
    EXPECT_REJECT(d.amend(10, 106, kMaxQty), InvalidDisplay);
    // First failure wins: the price, the quantity, the tips, then the stop price.
    EXPECT_REJECT(d.amend(10, 0, 301), InvalidPrice);
    EXPECT_REJECT(d.amend(10, 106, kMaxQty + 1), InvalidQuantity);
    EXPECT_REJECT(d.amend(10, 106, 301, -1), InvalidDisplay) << "before InvalidStopPrice";
    EXPECT_REJECT(d.amend(10, 106, 301, 100), InvalidDisplay) << "before StopWouldTrigger";
    EXPECT_REJECT(d.amend(10, 106, 301, 107), InvalidDisplay) << "a move too";
    EXPECT_EQ(d.seq(), seq0);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.pending(Buy), buys0);

    // A plain stop has no tips to count; exactly kMaxIcebergParts tips are allowed.
    EXPECT_TRUE(d.amend(11, 106, 301).accepted());
    EXPECT_TRUE(d.amend(10, 106, 300).accepted());
    EXPECT_EQ(d.stop(10), with_display({10, Dave, Buy, 105, 106, 300}, 3));
}

TEST_F(StopIceberg, AQuantityBelowItsDisplayIsKeptAndRestsWhole) {
    d.rest(limit(1, Bob, Sell, 100, 1));
    d.rest(limit(2, Bob, Sell, 102, 5));
    d.arm(with_display(stop_limit(10, Dave, Buy, 100, 101, 10), 6));

    const Result a = d.amend(10, 101, 4);
    EXPECT_TRUE(a.accepted()) << reject_name(a);
    EXPECT_TRUE(a.priority_kept);
    EXPECT_EQ(d.stop(10), with_display({10, Dave, Buy, 100, 101, 4}, 6))
        << "its display stays above its quantity";
    const uint64_t s = d.seq();

    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(0, 4), Reject::None, 1, 1)}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Bid, 101, 4, 1}}));
    EXPECT_EQ(d.shown(10), (IceOrder{10, 101, 4, 4, 6})) << "all of it shown";
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 5, 1}, {Bid, 101, 4, 1}}));

    // Still an iceberg of display 6: amended up in the book, it shows a tip of 6.
    EXPECT_TRUE(d.amend(10, 101, 9).accepted());
    EXPECT_EQ(d.shown(10), (IceOrder{10, 101, 9, 6, 6}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 5, 1}, {Bid, 101, 6, 1}}));
}

TEST_F(StopIceberg, MovingItsStopKeepsItsDisplay) {
    d.rest(limit(1, Bob, Sell, 102, 1));
    d.rest(limit(2, Carol, Sell, 108, 5));
    d.trade_at(100);
    d.arm(with_display(stop_limit(10, Dave, Buy, 105, 106, 12), 3));
    d.arm(stop_limit(11, Carol, Buy, 103, 104, 2));

    const Result m = d.amend(10, 106, 12, 103);
    EXPECT_TRUE(m.accepted()) << reject_name(m);
    EXPECT_FALSE(m.priority_kept);
    EXPECT_EQ(m.pending.v, 12);
    EXPECT_EQ(d.pending(Buy),
              (Pends{{11, Carol, Buy, 103, 104, 2}, with_display({10, Dave, Buy, 103, 106, 12}, 3)}));

    // With a new limit price and quantity too.
    EXPECT_TRUE(d.amend(10, 107, 8, 102).accepted());
    EXPECT_EQ(d.pending(Buy),
              (Pends{with_display({10, Dave, Buy, 102, 107, 8}, 3), {11, Carol, Buy, 103, 104, 2}}));
    EXPECT_REJECT(d.amend(10, 107, 301, 101), InvalidDisplay) << "still counted in tips of 3";
    const uint64_t s = d.seq();

    // It runs at its new stop price as an iceberg of display 3.
    const Result r = d.place(limit(20, Alice, Buy, 102, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 102, 1, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, s + 2, done(0, 8), Reject::None, 1, 1)}));
    EXPECT_EQ(d.shown(10), (IceOrder{10, 107, 8, 3, 3}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 108, 5, 1}, {Bid, 107, 3, 1}}));
    EXPECT_EQ(d.pending(Buy), (Pends{{11, Carol, Buy, 103, 104, 2}}));
}

TEST_F(StopIceberg, CancelRemovesAllOfIt) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.arm(with_display(stop_limit(10, Dave, Buy, 105, 106, 12), 3));
    const uint64_t s = d.seq();
    const uint64_t hash_before_stop = [&] {
        StopDesk twin;
        twin.rest(limit(1, Bob, Sell, 101, 5));
        twin.book().set_seq(s + 1);
        return twin.hash();
    }();

    const Result r = d.cancel(10);

    EXPECT_EQ(r.seq, s + 1);
    EXPECT_EQ(outcome(r), done(0, 0, 12, CancelReason::User)) << "its whole quantity";
    EXPECT_EQ(level_changes(r), Changes{});
    EXPECT_FALSE(d.has(10));
    EXPECT_EQ(d.book().stop_count(), 0u);
    EXPECT_EQ(d.hash(), hash_before_stop) << "the book is as if it had never been placed";

    // Triggered and resting with a hidden part, it is cancelled whole too.
    d.arm(with_display(stop_limit(11, Dave, Buy, 101, 101, 12), 3));
    EXPECT_EQ(triggered_of(d.place(limit(20, Alice, Buy, 101, 1))).size(), 1u);
    EXPECT_EQ(d.shown(11), (IceOrder{11, 101, 8, 3, 3}));
    const Result c = d.cancel(11);
    EXPECT_EQ(outcome(c), done(0, 0, 8, CancelReason::User));
    EXPECT_EQ(level_changes(c), (Changes{{Bid, 101, 0, 0}}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(StopIceberg, LoadedADisplayAboveItsQuantityIsKeptAndTooManyTipsOrAStopMarketRefused) {
    d.book().set_last_price(Price{99});
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 100, 1)), None);
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 103, 10)), None);
    RestingOrder ice = stored_stop(10, Dave, Buy, 100, 101, 12);
    ice.display = Qty{3};
    EXPECT_REJECT(d.load(ice), None);
    RestingOrder above = stored_stop(11, Carol, Buy, 100, 102, 4);
    above.display = Qty{6};  // as an amend below its display leaves it
    EXPECT_REJECT(d.load(above), None);

    RestingOrder many = stored_stop(12, Erin, Buy, 100, 101, 301);
    many.display = Qty{3};
    EXPECT_REJECT(d.load(many), InvalidDisplay) << "101 tips of 3";
    RestingOrder market = stored_stop(12, Erin, Buy, 100, 0, 12, Mkt);
    market.display = Qty{3};
    EXPECT_REJECT(d.load(market), InvalidCombination) << "a stop-market order with a display";
    RestingOrder ioc = stored_stop(12, Erin, Buy, 100, 101, 12, Lmt, Ioc);
    ioc.display = Qty{3};
    EXPECT_REJECT(d.load(ioc), InvalidCombination) << "an IOC stop with a display";
    RestingOrder huge = stored_stop(12, Erin, Buy, 100, 101, 5);
    huge.display = Qty{kMaxQty + 1};  // above its quantity, but no display can be that large
    EXPECT_REJECT(d.load(huge), InvalidDisplay) << "a display above kMaxQty";

    EXPECT_EQ(d.pending(Buy), (Pends{with_display({10, Dave, Buy, 100, 101, 12}, 3),
                                     with_display({11, Carol, Buy, 100, 102, 4}, 6)}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 103, 10, 1}, {Ask, 100, 1, 1}}));
    d.book().set_seq(500);

    // They run as placed ones would: Dave's rests with a tip of 3, Carol's whole.
    const Result r = d.place(limit(20, Alice, Buy, 100, 1));

    EXPECT_EQ(fills(r), (Fills{{1, 20, 100, 1, 0}}));
    EXPECT_EQ(triggered_of(r), (Trigs{trig(10, Dave, Buy, 502, done(0, 12), Reject::None, 1, 1),
                                      trig(11, Carol, Buy, 503, done(0, 4), Reject::None, 1, 2)}));
    EXPECT_EQ(d.shown(10), (IceOrder{10, 101, 12, 3, 3}));
    EXPECT_EQ(d.shown(11), (IceOrder{11, 102, 4, 4, 6}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 103, 10, 1}, {Bid, 102, 4, 1}, {Bid, 101, 3, 1}}));
}

TEST_F(StopIceberg, ABookReloadedWithItsPendingIcebergsEqualsIt) {
    d.rest(limit(1, Bob, Sell, 101, 5));
    d.arm(with_display(stop_limit(10, Dave, Buy, 105, 106, 12), 3));
    d.arm(with_display(stop_limit(11, Erin, Sell, 95, 94, 10), 4));
    d.arm(stop_limit(12, Erin, Sell, 95, 94, 3));
    EXPECT_TRUE(d.amend(11, 94, 2).accepted());  // below its display
    EXPECT_TRUE(d.amend(10, 106, 12, 104).accepted());

    StopDesk loaded;
    for (Side s : {Sell, Buy}) {
        std::vector<RestingOrder> os;
        d.book().orders(s, os);
        for (const RestingOrder& o : os) EXPECT_REJECT(loaded.load(o), None);
        d.book().stops(s, os);
        for (const RestingOrder& o : os) EXPECT_REJECT(loaded.load(o), None);
    }
    loaded.book().set_seq(d.seq());

    EXPECT_EQ(diff_snapshots(Snapshot::of(loaded.book()), Snapshot::of(d.book())), "");
    EXPECT_EQ(loaded.hash(), d.hash());
    EXPECT_EQ(loaded.stop(11), with_display({11, Erin, Sell, 95, 94, 2}, 4));
}

TEST_F(StopIceberg, RollbackRestoresItPendingAsItWas) {
    d.rest(limit(1, Bob, Sell, 100, 2));
    d.rest(limit(2, Carol, Sell, 101, 6));
    d.arm(with_display(stop_limit(10, Dave, Buy, 100, 101, 15), 4));
    const Book::Savepoint sp0 = d.book().savepoint();
    const uint64_t h0 = d.hash();
    const Snapshot snap0 = Snapshot::of(d.book());

    EXPECT_TRUE(d.amend(10, 101, 3, 102).accepted());  // below its display, and moved
    const Book::Savepoint sp1 = d.book().savepoint();
    const uint64_t h1 = d.hash();
    EXPECT_TRUE(d.amend(10, 101, 20, 100).accepted());
    const Result r = d.place(limit(20, Alice, Buy, 100, 1));
    EXPECT_EQ(triggered_of(r).size(), 1u);
    EXPECT_EQ(d.shown(10), (IceOrder{10, 101, 13, 4, 4}));

    d.book().rollback_to(sp1);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), h1);
    EXPECT_EQ(d.stop(10), with_display({10, Dave, Buy, 102, 101, 3}, 4));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 6, 1}, {Ask, 100, 2, 1}}));

    d.book().rollback_to(sp0);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), h0);
    EXPECT_EQ(diff_snapshots(Snapshot::of(d.book()), snap0), "");
    EXPECT_EQ(d.stop(10), with_display({10, Dave, Buy, 100, 101, 15}, 4));

    // It runs as it would have.
    const uint64_t s = d.seq();
    const Result again = d.place(limit(20, Alice, Buy, 100, 1));
    EXPECT_EQ(triggered_of(again), (Trigs{trig(10, Dave, Buy, s + 2, done(7, 8), Reject::None, 1, 1)}));
    EXPECT_EQ(d.shown(10), (IceOrder{10, 101, 8, 4, 4}));

    // Dave cancels it and places another stop-limit iceberg instead; a rollback undoes both.
    const Book::Savepoint sp2 = d.book().savepoint();
    const uint64_t h2 = d.hash();
    EXPECT_TRUE(d.cancel(10).accepted());
    d.arm(with_display(stop_limit(11, Dave, Sell, 95, 94, 9), 2));
    d.book().rollback_to(sp2);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), h2);
    EXPECT_EQ(d.shown(10), (IceOrder{10, 101, 8, 4, 4}));
    EXPECT_EQ(d.book().stop_count(), 0u);
}

TEST_F(StopIceberg, StateHashCountsAPendingStopsDisplay) {
    // Books with the same sequence, orders and pending stop but for its display.
    const auto book_with = [](int64_t display) {
        auto d = std::make_unique<StopDesk>();
        d->rest(limit(1, Bob, Sell, 101, 5));
        d->arm(with_display(stop_limit(10, Dave, Buy, 105, 106, 12), display));
        d->book().set_seq(1000);
        return d;
    };
    const uint64_t plain = book_with(0)->hash(), three = book_with(3)->hash();

    EXPECT_EQ(book_with(3)->hash(), three) << "the same book hashes the same";
    EXPECT_NE(three, plain) << "an iceberg and a plain stop order";
    EXPECT_NE(book_with(4)->hash(), three) << "another display";
    EXPECT_NE(book_with(12)->hash(), plain) << "a display of all of it is still an iceberg";
}

}  // namespace
