// Scenario tests for iceberg orders, written from a trader's point of view:
// "given this book, this order produces these fills and this book".
//
// The contract is extension/core/SEMANTICS.md ("Icebergs" and every mention
// of display, visible, hidden, maker_visible, maker_requeued). Every command
// goes through an IceDesk, which also checks the rules that hold for every
// command: the book validates, an accepted command advances the sequence by
// exactly 1 and reports each touched level as the book now shows it, a
// rejected command changes nothing (sequence, state_hash, orders with their
// tips) and returns an empty result, and every fill names the taker and the
// maker's owner and agrees with the maker as it rests afterwards.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
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

// ---------------------------------------------------------------------------
// Expected values.

// A fill as the taker sees it: maker, price, quantity, and the maker after it:
// all it has left, the part of that shown, whether it was sent to the back.
struct IceFill {
    OrderId maker;
    int64_t price;
    int64_t qty;
    int64_t left;
    int64_t shown;
    bool requeued;
};
bool operator==(const IceFill& a, const IceFill& b) {
    return a.maker == b.maker && a.price == b.price && a.qty == b.qty && a.left == b.left &&
           a.shown == b.shown && a.requeued == b.requeued;
}
std::ostream& operator<<(std::ostream& os, const IceFill& f) {
    return os << "maker #" << f.maker << ": " << f.qty << " @ " << f.price << " (left " << f.left
              << ", shown " << f.shown << (f.requeued ? ", requeued)" : ")");
}
using IceFills = std::vector<IceFill>;

using IceQueue = std::vector<IceOrder>;

IceFills ice_fills(const Result& r) {
    IceFills v;
    for (const Fill& f : r.fills)
        v.push_back({f.maker, f.price.v, f.qty.v, f.maker_remaining.v, f.maker_visible.v, f.maker_requeued});
    return v;
}
Out done(int64_t filled, int64_t resting, int64_t cancelled = 0, CancelReason reason = CancelReason::None) {
    return {filled, resting, cancelled, reason};
}

// ---------------------------------------------------------------------------
// Orders.

NewOrder plain(OrderId id, OwnerId owner, Side side, int64_t price, int64_t qty) {
    return limit_order(id, owner, side, Price{price}, Qty{qty});
}

NewOrder iceberg(OrderId id, OwnerId owner, Side side, int64_t price, int64_t qty, int64_t display) {
    NewOrder o = plain(id, owner, side, price, qty);
    o.display = Qty{display};
    return o;
}

NewOrder tif(NewOrder o, Tif t) {
    o.tif = t;
    return o;
}

NewOrder stp(NewOrder o, Stp mode) {
    o.stp = mode;
    return o;
}

NewOrder post_only(NewOrder o) {
    o.post_only = true;
    return o;
}

NewOrder market_with_display(OrderId id, OwnerId owner, Side side, int64_t qty, int64_t display) {
    NewOrder o = iceberg(id, owner, side, 0, qty, display);
    o.type = OrderType::Market;
    return o;
}

// A stored order for load_resting.
RestingOrder stored(OrderId id, OwnerId owner, Side side, int64_t price, int64_t qty, int64_t display,
                    int64_t visible) {
    RestingOrder o;
    o.id = id;
    o.owner = owner;
    o.side = side;
    o.price = Price{price};
    o.qty = Qty{qty};
    o.display = Qty{display};
    o.visible = Qty{visible};
    return o;
}

// The state hash as the book computed it before icebergs existed (git history
// of book.cpp), from what the book reports: sequence, then per side (bids
// first) each level best first (price, shown total, count) and its orders in
// time priority (id, owner, shown quantity, post-only and STP mode).
uint64_t pre_iceberg_hash(const Book& b) {
    using detail::mix64;
    uint64_t h = mix64(b.seq() ^ 0x5eed);
    auto add = [&h](uint64_t v) { h = mix64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2))); };
    for (int s = 0; s < 2; ++s) {
        add(0xB00C0000u + s);
        std::vector<LevelView> lv;
        std::vector<RestingOrder> os;
        b.levels(static_cast<Side>(s), SIZE_MAX, lv);
        b.orders(static_cast<Side>(s), os);
        size_t k = 0;
        for (const LevelView& l : lv) {
            add(static_cast<uint64_t>(l.price.v));
            add(static_cast<uint64_t>(l.qty.v));
            add(l.count);
            for (; k < os.size() && os[k].price == l.price; ++k) {
                add(os[k].id);
                add(os[k].owner);
                add(static_cast<uint64_t>(os[k].visible.v));
                add(uint64_t{os[k].post_only} << 8 | static_cast<uint8_t>(os[k].stp));
            }
        }
        EXPECT_EQ(k, os.size()) << "orders() and levels() disagree";
    }
    // Since stop orders, the last trade price (and pending stops: none here).
    if (b.last_price().v != 0) add(static_cast<uint64_t>(b.last_price().v) ^ 0x1a57000000000000ULL);
    return h;
}

// ---------------------------------------------------------------------------
// A book in its own memory, with checked commands and readable queries.

class IceDesk {
public:
    explicit IceDesk(uint32_t max_orders = 64, uint32_t max_levels = 32) : ob_(max_orders, max_levels) {}

    Book& book() { return *ob_.book; }
    const Book& book() const { return *ob_.book; }

    Result place(const NewOrder& o) {
        SCOPED_TRACE("place #" + std::to_string(o.id));
        Result r = run(o.id, [&](Result& out) { return book().place(o, out); });
        if (r.accepted()) {
            EXPECT_EQ(r.filled.v + r.resting.v + r.cancelled.v, o.qty.v)
                << "place: filled + resting + cancelled";
            owners_[o.id] = o.owner;
            RestingOrder ro;
            if (r.resting.v > 0 && expect_found(o.id, ro)) {
                EXPECT_EQ(ro.qty.v, r.resting.v);
                EXPECT_EQ(ro.display.v, o.display.v);
                EXPECT_EQ(ro.visible.v, o.display.v > 0 ? std::min(o.display.v, r.resting.v) : r.resting.v)
                    << "a remainder rests with a fresh tip";
            }
        }
        return r;
    }

    Result cancel(OrderId id) {
        SCOPED_TRACE("cancel #" + std::to_string(id));
        return run(id, [&](Result& out) { return book().cancel(id, out); });
    }

    Result amend(OrderId id, int64_t price, int64_t qty) {
        SCOPED_TRACE("amend #" + std::to_string(id));
        Result r = run(id, [&](Result& out) { return book().amend(id, Price{price}, Qty{qty}, out); });
        if (r.accepted()) {
            EXPECT_EQ(r.filled.v + r.resting.v + r.cancelled.v, qty) << "amend: filled + resting + cancelled";
            RestingOrder ro;
            if (r.resting.v > 0 && expect_found(id, ro)) {
                EXPECT_EQ(ro.qty.v, r.resting.v);
            }
        }
        return r;
    }

    Reject load(const RestingOrder& o) {
        SCOPED_TRACE("load_resting #" + std::to_string(o.id));
        const uint64_t seq0 = book().seq();
        const uint64_t hash0 = book().state_hash();
        const Snapshot snap0 = Snapshot::of(book());
        const Reject r = book().load_resting(o);
        expect_consistent();
        EXPECT_EQ(book().seq(), seq0) << "load_resting does not advance the sequence";
        if (r == Reject::None) {
            owners_[o.id] = o.owner;
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
    }

    Ladder ladder() const { return ladder_of(book()); }

    // One side's resting orders in priority order (best price first, then oldest first).
    IceQueue queue(Side s) const {
        IceQueue v;
        std::vector<RestingOrder> os;
        book().orders(s, os);
        for (const RestingOrder& o : os) v.push_back({o.id, o.price.v, o.qty.v, o.visible.v, o.display.v});
        return v;
    }

    // find(): the order as reported, or all zeros if it is not resting.
    IceOrder order(OrderId id) const {
        RestingOrder o;
        if (!book().find(id, o)) return {0, 0, 0, 0, 0};
        return {o.id, o.price.v, o.qty.v, o.visible.v, o.display.v};
    }

    bool has(OrderId id) const {
        RestingOrder o;
        return book().find(id, o);
    }

    uint64_t hash() const { return book().state_hash(); }
    uint64_t seq() const { return book().seq(); }

    // validate() is empty, and the book's public views agree with each other:
    // each level shows the sum of its orders' tips, and each order's tip fits
    // its display and its remaining quantity.
    void expect_consistent() const {
        const std::vector<std::string> problems = book().validate();
        std::string all;
        for (const std::string& p : problems) all += "\n  " + p;
        EXPECT_TRUE(problems.empty()) << "book.validate():" << all;
        for (Side s : {Buy, Sell}) {
            std::vector<LevelView> lv;
            std::vector<RestingOrder> os;
            book().levels(s, SIZE_MAX, lv);
            book().orders(s, os);
            size_t k = 0;
            for (const LevelView& l : lv) {
                int64_t shown = 0;
                uint32_t count = 0;
                for (; k < os.size() && os[k].price == l.price; ++k, ++count) {
                    const RestingOrder& o = os[k];
                    EXPECT_GT(o.visible.v, 0) << "#" << o.id << " rests with nothing shown";
                    EXPECT_LE(o.visible.v, o.qty.v) << "#" << o.id << " shows more than it has";
                    if (o.display.v == 0) {
                        EXPECT_EQ(o.visible.v, o.qty.v) << "plain #" << o.id << " hides quantity";
                    } else {
                        EXPECT_LE(o.visible.v, o.display.v) << "#" << o.id << " shows more than its display";
                    }
                    shown += o.visible.v;
                }
                EXPECT_EQ(l.qty.v, shown)
                    << side_name(s) << " " << l.price.v << ": total is not the sum of tips";
                EXPECT_EQ(l.count, count) << side_name(s) << " " << l.price.v;
            }
            EXPECT_EQ(k, os.size()) << side_name(s) << ": orders outside every level";
        }
    }

private:
    bool expect_found(OrderId id, RestingOrder& o) const {
        const bool found = book().find(id, o);
        EXPECT_TRUE(found) << "#" << id << " should be resting";
        return found;
    }

    // The level as the book shows it now ({side, price, 0, 0} if gone).
    Lv level_now(Side s, int64_t price) const {
        std::vector<LevelView> lv;
        book().levels(s, SIZE_MAX, lv);
        for (const LevelView& l : lv)
            if (l.price.v == price) return {s, price, l.qty.v, l.count};
        return {s, price, 0, 0};
    }

    template <class Cmd>
    Result run(OrderId subject, Cmd&& cmd) {
        const uint64_t seq0 = book().seq();
        const uint64_t hash0 = book().state_hash();
        const Snapshot snap0 = Snapshot::of(book());
        Result r = stale_result();
        const bool ok = cmd(r);
        EXPECT_EQ(ok, r.accepted());
        expect_consistent();
        if (r.accepted()) {
            EXPECT_REJECT(r, None);
            EXPECT_EQ(r.seq, seq0 + 1) << "an accepted command advances the sequence by exactly 1";
            EXPECT_EQ(book().seq(), seq0 + 1);
            std::map<OrderId, const Fill*> last;
            for (const Fill& f : r.fills) {
                EXPECT_EQ(f.taker, subject) << "fill against #" << f.maker;
                EXPECT_GT(f.qty.v, 0);
                const auto it = owners_.find(f.maker);
                if (it == owners_.end())
                    ADD_FAILURE() << "fill against unknown maker #" << f.maker;
                else
                    EXPECT_EQ(f.maker_owner, it->second) << "maker_owner of the fill against #" << f.maker;
                last[f.maker] = &f;
            }
            // Each maker's last fill describes it as it rests after the command.
            for (const auto& [id, f] : last) {
                RestingOrder o;
                if (f->maker_remaining.v == 0) {
                    EXPECT_FALSE(book().find(id, o)) << "filled maker #" << id << " is still resting";
                    EXPECT_EQ(f->maker_visible.v, 0) << "#" << id;
                } else if (expect_found(id, o)) {
                    EXPECT_EQ(o.qty.v, f->maker_remaining.v) << "maker #" << id;
                    EXPECT_EQ(o.visible.v, f->maker_visible.v) << "maker #" << id;
                }
            }
            // One level change per touched level, each the level as it is now.
            std::set<std::pair<Side, int64_t>> seen;
            for (const LevelChange& c : r.levels) {
                EXPECT_TRUE(seen.insert({c.side, c.price.v}).second)
                    << side_name(c.side) << " " << c.price.v << " reported twice";
                EXPECT_EQ((Lv{c.side, c.price.v, c.qty.v, c.count}), level_now(c.side, c.price.v));
            }
        } else {
            expect_rejected_result(r, seq0);
            EXPECT_EQ(book().seq(), seq0) << "a reject must not advance the sequence";
            EXPECT_EQ(book().state_hash(), hash0) << "a reject must not change the book";
            EXPECT_EQ(diff_snapshots(Snapshot::of(book()), snap0), "") << "a reject must not change the book";
        }
        return r;
    }

    OwnedBook ob_;
    std::map<OrderId, OwnerId> owners_;  // latest accepted owner of each id, to check fills
};

class IcebergScenario : public ::testing::Test {
protected:
    void TearDown() override { d.expect_consistent(); }

    IceDesk d;
};

using IcebergResting = IcebergScenario;
using IcebergPriority = IcebergScenario;
using IcebergSweep = IcebergScenario;
using IcebergCancel = IcebergScenario;
using IcebergAmend = IcebergScenario;
using IcebergValidation = IcebergScenario;
using IcebergFok = IcebergScenario;
using IcebergStp = IcebergScenario;
using IcebergLoad = IcebergScenario;
using IcebergOverflow = IcebergScenario;
using IcebergRollback = IcebergScenario;
using IcebergHash = IcebergScenario;

// ===========================================================================
// Resting: the level shows only the tip.

TEST_F(IcebergResting, LevelShowsOnlyTheTipWhileTheWholeQuantityRests) {
    const Result r = d.place(iceberg(1, Bob, Sell, 100, 10, 3));
    EXPECT_EQ(outcome(r), done(0, 10));
    EXPECT_EQ(ice_fills(r), IceFills{});
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 3, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 3, 1}}));
    EXPECT_EQ(d.order(1), (IceOrder{1, 100, 10, 3, 3}));

    const Result joined = d.place(plain(2, Carol, Sell, 100, 5));
    EXPECT_EQ(level_changes(joined), (Ladder{{Ask, 100, 8, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 10, 3, 3}, {2, 100, 5, 5, 0}}));

    const Result bid = d.place(iceberg(3, Dave, Buy, 99, 50, 20));
    EXPECT_EQ(outcome(bid), done(0, 50));
    EXPECT_EQ(level_changes(bid), (Ladder{{Bid, 99, 20, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 8, 2}, {Bid, 99, 20, 1}}));
    EXPECT_EQ(d.order(3), (IceOrder{3, 99, 50, 20, 20}));
}

TEST_F(IcebergResting, IncomingIcebergTradesItsWholeQuantityAndHidesOnlyWhatRests) {
    d.rest(plain(1, Bob, Sell, 100, 5));
    d.rest(plain(2, Carol, Sell, 101, 5));

    const Result r = d.place(iceberg(10, Alice, Buy, 101, 20, 2));

    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 5, 0, 0, false}, {2, 101, 5, 0, 0, false}}));
    EXPECT_EQ(outcome(r), done(10, 10));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 0, 0}, {Ask, 101, 0, 0}, {Bid, 101, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 101, 2, 1}}));
    EXPECT_EQ(d.order(10), (IceOrder{10, 101, 10, 2, 2}));
}

TEST_F(IcebergResting, RemainderSmallerThanTheDisplayIsAllShown) {
    d.rest(plain(1, Bob, Sell, 100, 10));

    const Result r = d.place(iceberg(10, Alice, Buy, 100, 12, 5));

    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 10, 0, 0, false}}));
    EXPECT_EQ(outcome(r), done(10, 2));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 0, 0}, {Bid, 100, 2, 1}}));
    EXPECT_EQ(d.order(10), (IceOrder{10, 100, 2, 2, 5}));
}

// ===========================================================================
// Time priority: the tip keeps its place until it runs out.

TEST_F(IcebergPriority, TakerSmallerThanTheTipKeepsTheIcebergFirst) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 4));
    d.rest(plain(2, Carol, Sell, 100, 5));

    const Result r = d.place(plain(10, Alice, Buy, 100, 3));

    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 3, 7, 1, false}}));
    EXPECT_EQ(outcome(r), done(3, 0));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 6, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 7, 1, 4}, {2, 100, 5, 5, 0}}));
}

TEST_F(IcebergPriority, ExhaustedTipRefillsBehindTheOrdersThatCameLater) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 4));
    d.rest(plain(2, Carol, Sell, 100, 5));

    const Result r = d.place(plain(10, Alice, Buy, 100, 4));

    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 4, 6, 4, true}}));
    EXPECT_EQ(outcome(r), done(4, 0));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 9, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 100, 5, 5, 0}, {1, 100, 6, 4, 4}}));

    // A later order queues behind the refilled iceberg, as behind a new order.
    d.rest(plain(3, Carol, Sell, 100, 2));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 100, 5, 5, 0}, {1, 100, 6, 4, 4}, {3, 100, 2, 2, 0}}));

    // The next taker meets the order that was behind the iceberg first.
    const Result next = d.place(plain(11, Dave, Buy, 100, 6));
    EXPECT_EQ(ice_fills(next), (IceFills{{2, 100, 5, 0, 0, false}, {1, 100, 1, 5, 3, false}}));
    EXPECT_EQ(outcome(next), done(6, 0));
    EXPECT_EQ(level_changes(next), (Ladder{{Ask, 100, 5, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 5, 3, 4}, {3, 100, 2, 2, 0}}));
}

TEST_F(IcebergPriority, BidIcebergRefillsTheSameWay) {
    d.rest(iceberg(1, Bob, Buy, 100, 9, 3));
    d.rest(plain(2, Carol, Buy, 100, 1));
    d.rest(plain(3, Carol, Buy, 99, 4));

    const Result r = d.place(plain(10, Alice, Sell, 99, 5));

    EXPECT_EQ(ice_fills(r),
              (IceFills{{1, 100, 3, 6, 3, true}, {2, 100, 1, 0, 0, false}, {1, 100, 1, 5, 2, false}}));
    EXPECT_EQ(outcome(r), done(5, 0));
    EXPECT_EQ(level_changes(r), (Ladder{{Bid, 100, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 100, 2, 1}, {Bid, 99, 4, 1}}));
}

// ===========================================================================
// One taker through an iceberg several times.

TEST_F(IcebergSweep, TakerMeetsTheIcebergAgainAfterTheOrdersAheadOfIt) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 3));
    d.rest(plain(2, Carol, Sell, 100, 2));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 5, 2}}));

    const Result r = d.place(plain(10, Alice, Buy, 100, 9));

    // Queue 1,2 -> 1's tip (3) runs out: refilled behind 2 -> 2 (2) -> 1's tip
    // (3) runs out: refilled, alone at the back -> 1 again for the last lot.
    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 3, 7, 3, true},
                                      {2, 100, 2, 0, 0, false},
                                      {1, 100, 3, 4, 3, true},
                                      {1, 100, 1, 3, 2, false}}));
    EXPECT_EQ(outcome(r), done(9, 0));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 2, 1}})) << "one change per level, the final shown total";
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 3, 2, 3}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 2, 1}}));
}

TEST_F(IcebergSweep, TwoIcebergsTakeTurns) {
    d.rest(iceberg(1, Bob, Sell, 100, 6, 2));
    d.rest(iceberg(2, Carol, Sell, 100, 6, 3));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 5, 2}}));

    const Result r = d.place(plain(10, Alice, Buy, 100, 10));

    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 2, 4, 2, true},
                                      {2, 100, 3, 3, 3, true},
                                      {1, 100, 2, 2, 2, true},
                                      {2, 100, 3, 0, 0, false}}));
    EXPECT_EQ(outcome(r), done(10, 0));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 2, 1}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 2, 2, 2}}));
}

TEST_F(IcebergSweep, LastTipIsWhatIsLeftAndTheFilledIcebergLeaves) {
    d.rest(iceberg(1, Bob, Sell, 100, 7, 3));
    d.rest(plain(2, Carol, Sell, 101, 4));

    const Result first = d.place(plain(10, Alice, Buy, 100, 3));
    EXPECT_EQ(ice_fills(first), (IceFills{{1, 100, 3, 4, 3, true}}));
    EXPECT_EQ(level_changes(first), (Ladder{{Ask, 100, 3, 1}}));
    EXPECT_EQ(d.order(1), (IceOrder{1, 100, 4, 3, 3}));

    const Result second = d.place(plain(11, Alice, Buy, 100, 3));
    EXPECT_EQ(ice_fills(second), (IceFills{{1, 100, 3, 1, 1, true}}));
    EXPECT_EQ(level_changes(second), (Ladder{{Ask, 100, 1, 1}}));
    EXPECT_EQ(d.order(1), (IceOrder{1, 100, 1, 1, 3}));

    const Result last = d.place(plain(12, Alice, Buy, 100, 3));
    EXPECT_EQ(ice_fills(last), (IceFills{{1, 100, 1, 0, 0, false}}));
    EXPECT_EQ(outcome(last), done(1, 2));
    EXPECT_EQ(level_changes(last), (Ladder{{Ask, 100, 0, 0}, {Bid, 100, 2, 1}}));
    EXPECT_FALSE(d.has(1));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 4, 1}, {Bid, 100, 2, 1}}));
}

TEST_F(IcebergSweep, WholeIcebergInOneCommandThenTheNextLevel) {
    d.rest(iceberg(1, Bob, Sell, 100, 7, 3));
    d.rest(plain(2, Carol, Sell, 101, 4));

    const Result r = d.place(plain(10, Alice, Buy, 101, 9));

    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 3, 4, 3, true},
                                      {1, 100, 3, 1, 1, true},
                                      {1, 100, 1, 0, 0, false},
                                      {2, 101, 2, 2, 2, false}}));
    EXPECT_EQ(outcome(r), done(9, 0));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 0, 0}, {Ask, 101, 2, 1}}));
    EXPECT_FALSE(d.has(1));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 101, 2, 2, 0}}));
}

// ===========================================================================
// cancel().

TEST_F(IcebergCancel, CancelsShownAndHiddenWhileTheLevelLosesOnlyTheTip) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 4));
    d.rest(plain(2, Carol, Sell, 100, 5));
    EXPECT_EQ(ice_fills(d.place(plain(10, Alice, Buy, 100, 1))), (IceFills{{1, 100, 1, 9, 3, false}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 8, 2}}));

    const Result r = d.cancel(1);

    EXPECT_EQ(outcome(r), done(0, 0, 9, CancelReason::User));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 5, 1}}));
    EXPECT_FALSE(d.has(1));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 100, 5, 5, 0}}));
}

TEST_F(IcebergCancel, LoneIcebergTakesItsLevelWithIt) {
    d.rest(iceberg(3, Dave, Sell, 101, 30, 10));

    const Result r = d.cancel(3);

    EXPECT_EQ(outcome(r), done(0, 0, 30, CancelReason::User));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 101, 0, 0}}));
    EXPECT_EQ(d.ladder(), Ladder{});
    EXPECT_REJECT(d.cancel(3), OrderNotFound);
}

// ===========================================================================
// amend().

TEST_F(IcebergAmend, LowerQuantityGivesUpHiddenFirstAndKeepsPriority) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 4));
    d.rest(plain(2, Carol, Sell, 100, 5));

    const Result r = d.amend(1, 100, 6);
    EXPECT_TRUE(r.priority_kept);
    EXPECT_EQ(outcome(r), done(0, 6));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 9, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 6, 4, 4}, {2, 100, 5, 5, 0}}));

    // Below the shown part: the tip shrinks, still first in line.
    const Result below = d.amend(1, 100, 3);
    EXPECT_TRUE(below.priority_kept);
    EXPECT_EQ(outcome(below), done(0, 3));
    EXPECT_EQ(level_changes(below), (Ladder{{Ask, 100, 8, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 3, 3, 4}, {2, 100, 5, 5, 0}}));

    // Nothing is hidden any more: filling the tip removes the order.
    const Result t = d.place(plain(10, Dave, Buy, 100, 3));
    EXPECT_EQ(ice_fills(t), (IceFills{{1, 100, 3, 0, 0, false}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 100, 5, 5, 0}}));
}

TEST_F(IcebergAmend, LowerQuantityOfAPartlyTradedTipKeepsTheTip) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 4));
    d.rest(plain(2, Carol, Sell, 100, 5));
    EXPECT_EQ(ice_fills(d.place(plain(10, Dave, Buy, 100, 1))), (IceFills{{1, 100, 1, 9, 3, false}}));

    const Result r = d.amend(1, 100, 5);

    EXPECT_TRUE(r.priority_kept);
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 8, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 5, 3, 4}, {2, 100, 5, 5, 0}}));
}

TEST_F(IcebergAmend, HigherQuantityRequeuesWithAFreshTip) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 4));
    d.rest(plain(2, Carol, Sell, 100, 5));
    EXPECT_EQ(ice_fills(d.place(plain(10, Dave, Buy, 100, 1))), (IceFills{{1, 100, 1, 9, 3, false}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 8, 2}}));

    const Result r = d.amend(1, 100, 12);

    EXPECT_FALSE(r.priority_kept);
    EXPECT_EQ(outcome(r), done(0, 12));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 9, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 100, 5, 5, 0}, {1, 100, 12, 4, 4}}));
}

TEST_F(IcebergAmend, NewPriceReentersWithTheSameDisplayAndCanTrade) {
    d.rest(iceberg(1, Bob, Sell, 101, 10, 4));
    d.rest(plain(2, Carol, Sell, 101, 1));
    d.rest(plain(3, Dave, Buy, 99, 2));

    const Result r = d.amend(1, 99, 10);

    EXPECT_FALSE(r.priority_kept);
    EXPECT_EQ(ice_fills(r), (IceFills{{3, 99, 2, 0, 0, false}}));
    EXPECT_EQ(outcome(r), done(2, 8));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 101, 1, 1}, {Bid, 99, 0, 0}, {Ask, 99, 4, 1}}));
    EXPECT_EQ(d.order(1), (IceOrder{1, 99, 8, 4, 4}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 1, 1}, {Ask, 99, 4, 1}}));

    // Still an iceberg of display 4 at its new price.
    const Result t = d.place(plain(10, Alice, Buy, 99, 5));
    EXPECT_EQ(ice_fills(t), (IceFills{{1, 99, 4, 4, 4, true}, {1, 99, 1, 3, 3, false}}));
    EXPECT_EQ(d.order(1), (IceOrder{1, 99, 3, 3, 4}));
}

TEST_F(IcebergAmend, QuantityOfMoreThanMaxPartsTipsIsInvalidDisplay) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 4));
    d.rest(plain(2, Carol, Sell, 100, 5));
    d.rest(iceberg(3, Dave, Sell, 100, 5, 5));
    const IceQueue before{{1, 100, 10, 4, 4}, {2, 100, 5, 5, 0}, {3, 100, 5, 5, 5}};
    ASSERT_EQ(kMaxIcebergParts, 100);

    EXPECT_REJECT(d.amend(1, 100, 401), InvalidDisplay);
    EXPECT_REJECT(d.amend(1, 101, 401), InvalidDisplay) << "at a new price too";
    EXPECT_REJECT(d.amend(3, 100, 501), InvalidDisplay);
    EXPECT_REJECT(d.amend(1, 0, 401), InvalidPrice) << "the price is checked first";
    EXPECT_REJECT(d.amend(1, 100, 0), InvalidQuantity);
    EXPECT_REJECT(d.amend(99, 100, 401), OrderNotFound);
    EXPECT_EQ(d.queue(Ask), before);

    const Result r = d.amend(1, 100, 400);
    EXPECT_TRUE(r.accepted()) << reject_name(r);
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 100, 5, 5, 0}, {3, 100, 5, 5, 5}, {1, 100, 400, 4, 4}}));
    EXPECT_REJECT(d.amend(1, 100, 400), NoChange);

    // A plain order has no such limit.
    EXPECT_EQ(outcome(d.amend(2, 100, 10'000)), done(0, 10'000));
}

// ===========================================================================
// Validation in place().

TEST_F(IcebergValidation, DisplayOutOfRangeIsInvalidDisplay) {
    ASSERT_EQ(kMaxIcebergParts, 100);
    EXPECT_REJECT(d.place(iceberg(1, Bob, Sell, 100, 5, -1)), InvalidDisplay);
    EXPECT_REJECT(d.place(iceberg(1, Bob, Sell, 100, 5, 6)), InvalidDisplay);
    EXPECT_REJECT(d.place(iceberg(1, Bob, Sell, 100, 301, 3)), InvalidDisplay);
    EXPECT_REJECT(d.place(iceberg(1, Bob, Sell, 100, kMaxQty, kMaxQty / 100 - 1)), InvalidDisplay);
    EXPECT_EQ(d.ladder(), Ladder{});

    EXPECT_EQ(outcome(d.place(iceberg(1, Bob, Sell, 100, 300, 3))), done(0, 300));
    EXPECT_EQ(d.order(1), (IceOrder{1, 100, 300, 3, 3}));
    EXPECT_EQ(outcome(d.place(iceberg(2, Bob, Sell, 101, kMaxQty, kMaxQty / 100))), done(0, kMaxQty));
    EXPECT_EQ(d.order(2), (IceOrder{2, 101, kMaxQty, kMaxQty / 100, kMaxQty / 100}));
}

TEST_F(IcebergValidation, DisplayOnMarketIocOrFokIsAnInvalidCombination) {
    d.rest(plain(1, Bob, Sell, 100, 5));

    EXPECT_REJECT(d.place(market_with_display(10, Alice, Buy, 5, 1)), InvalidCombination);
    EXPECT_REJECT(d.place(tif(iceberg(10, Alice, Buy, 100, 5, 1), Tif::Ioc)), InvalidCombination);
    EXPECT_REJECT(d.place(tif(iceberg(10, Alice, Buy, 100, 5, 1), Tif::Fok)), InvalidCombination);
    // The display itself is checked first.
    EXPECT_REJECT(d.place(market_with_display(10, Alice, Buy, 5, -1)), InvalidDisplay);
    EXPECT_REJECT(d.place(tif(iceberg(10, Alice, Buy, 100, 5, 6), Tif::Ioc)), InvalidDisplay);
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 5, 5, 0}}));
}

TEST_F(IcebergValidation, InvalidDisplayComesAfterPriceAndQuantityAndBeforeDuplicateId) {
    d.rest(plain(1, Bob, Sell, 100, 5));

    EXPECT_REJECT(d.place(iceberg(10, Alice, Buy, 0, 5, -1)), InvalidPrice);
    EXPECT_REJECT(d.place(iceberg(10, Alice, Buy, 99, 0, -1)), InvalidQuantity);
    EXPECT_REJECT(d.place(iceberg(1, Alice, Buy, 99, 5, 6)), InvalidDisplay);
    EXPECT_REJECT(d.place(iceberg(1, Alice, Buy, 99, 5, 5)), DuplicateOrderId);
    EXPECT_REJECT(d.place(tif(iceberg(1, Alice, Buy, 99, 5, 5), Tif::Ioc)), InvalidCombination);
}

TEST_F(IcebergValidation, DisplayEqualToQuantityBehavesAsAPlainOrder) {
    const Result r = d.place(iceberg(1, Bob, Sell, 100, 5, 5));
    EXPECT_EQ(outcome(r), done(0, 5));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 5, 1}}));
    EXPECT_EQ(d.order(1), (IceOrder{1, 100, 5, 5, 5}));
    d.rest(plain(2, Carol, Sell, 100, 5));

    EXPECT_EQ(ice_fills(d.place(plain(10, Alice, Buy, 100, 2))), (IceFills{{1, 100, 2, 3, 3, false}}));
    const Result t = d.place(plain(11, Alice, Buy, 100, 4));
    EXPECT_EQ(ice_fills(t), (IceFills{{1, 100, 3, 0, 0, false}, {2, 100, 1, 4, 4, false}}));
    EXPECT_EQ(level_changes(t), (Ladder{{Ask, 100, 4, 1}}));
    EXPECT_FALSE(d.has(1));
}

TEST_F(IcebergValidation, PostOnlyIcebergRestsUnlessItWouldTake) {
    d.rest(plain(1, Bob, Sell, 101, 5));

    EXPECT_REJECT(d.place(post_only(iceberg(10, Alice, Buy, 101, 10, 2))), PostOnlyWouldTake);

    const Result r = d.place(post_only(iceberg(10, Alice, Buy, 100, 10, 2)));
    EXPECT_EQ(outcome(r), done(0, 10));
    EXPECT_EQ(level_changes(r), (Ladder{{Bid, 100, 2, 1}}));
    RestingOrder o;
    ASSERT_TRUE(d.book().find(10, o));
    EXPECT_TRUE(o.post_only);
    EXPECT_EQ(d.order(10), (IceOrder{10, 100, 10, 2, 2}));
}

// ===========================================================================
// Fill-or-kill against icebergs.

TEST_F(IcebergFok, CountsHiddenQuantityAndFillsThroughRefills) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 3));
    d.rest(plain(2, Carol, Sell, 100, 2));
    d.rest(plain(3, Dave, Sell, 101, 50));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 50, 1}, {Ask, 100, 5, 2}}));
    const uint64_t hash0 = d.hash();

    EXPECT_REJECT(d.place(tif(plain(10, Alice, Buy, 100, 13), Tif::Fok)), FokUnfillable);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 10, 3, 3}, {2, 100, 2, 2, 0}, {3, 101, 50, 50, 0}}));

    const Result r = d.place(tif(plain(11, Alice, Buy, 100, 12), Tif::Fok));
    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 3, 7, 3, true},
                                      {2, 100, 2, 0, 0, false},
                                      {1, 100, 3, 4, 3, true},
                                      {1, 100, 3, 1, 1, true},
                                      {1, 100, 1, 0, 0, false}}));
    EXPECT_EQ(outcome(r), done(12, 0));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 0, 0}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 50, 1}}));
}

TEST_F(IcebergFok, CancelNewestMeetsItsOwnOrderOnceTheIcebergRefillsBehindIt) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 3));
    d.rest(plain(2, Alice, Sell, 100, 5));
    d.rest(plain(3, Carol, Sell, 101, 20));
    const uint64_t hash0 = d.hash();

    // Bob's 3 -> Bob refills behind Alice's own 2 -> the taker meets its own
    // order and stops, though Bob and Carol hold plenty.
    EXPECT_REJECT(d.place(tif(plain(10, Alice, Buy, 101, 6), Tif::Fok)), FokUnfillable);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 10, 3, 3}, {2, 100, 5, 5, 0}, {3, 101, 20, 20, 0}}));

    // Bob's tip alone is fillable.
    const Result fok = d.place(tif(plain(11, Alice, Buy, 101, 3), Tif::Fok));
    EXPECT_EQ(ice_fills(fok), (IceFills{{1, 100, 3, 7, 3, true}}));
    EXPECT_EQ(outcome(fok), done(3, 0));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 100, 5, 5, 0}, {1, 100, 7, 3, 3}, {3, 101, 20, 20, 0}}));

    // Now Alice's own order is first in line.
    EXPECT_REJECT(d.place(tif(plain(12, Alice, Buy, 101, 1), Tif::Fok)), FokUnfillable);
}

TEST_F(IcebergFok, GtcWithCancelNewestStopsAtItsOwnOrderAfterTheRefill) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 3));
    d.rest(plain(2, Alice, Sell, 100, 5));

    const Result r = d.place(plain(10, Alice, Buy, 100, 6));

    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 3, 7, 3, true}}));
    EXPECT_EQ(outcome(r), done(3, 0, 3, CancelReason::SelfTrade));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 8, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 100, 5, 5, 0}, {1, 100, 7, 3, 3}}));
    EXPECT_EQ(d.queue(Bid), IceQueue{});
}

// ===========================================================================
// Self-trade prevention against icebergs.

TEST_F(IcebergStp, CancelOldestRemovesTheWholeIcebergHiddenIncluded) {
    d.rest(iceberg(1, Alice, Sell, 100, 10, 3));
    d.rest(plain(2, Bob, Sell, 100, 4));
    EXPECT_EQ(ice_fills(d.place(plain(9, Carol, Buy, 100, 1))), (IceFills{{1, 100, 1, 9, 2, false}}));

    const Result r = d.place(stp(plain(10, Alice, Buy, 100, 5), Stp::CancelOldest));

    EXPECT_EQ(removals(r), (Removals{{1, Alice, Sell, 100, 9}}));
    EXPECT_EQ(ice_fills(r), (IceFills{{2, 100, 4, 0, 0, false}}));
    EXPECT_EQ(outcome(r), done(4, 1));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 0, 0}, {Bid, 100, 1, 1}}));
    EXPECT_FALSE(d.has(1));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 100, 1, 1}}));
}

TEST_F(IcebergStp, CancelBothRemovesTheWholeIceberg) {
    d.rest(iceberg(1, Alice, Sell, 100, 10, 3));

    const Result r = d.place(stp(plain(10, Alice, Buy, 100, 2), Stp::CancelBoth));

    EXPECT_EQ(removals(r), (Removals{{1, Alice, Sell, 100, 10}}));
    EXPECT_EQ(ice_fills(r), IceFills{});
    EXPECT_EQ(outcome(r), done(0, 0, 2, CancelReason::SelfTrade));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 0, 0}}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(IcebergStp, CancelOldestMeetsItsOwnOrderBetweenTwoVisitsToTheIceberg) {
    d.rest(iceberg(1, Bob, Sell, 100, 6, 3));
    d.rest(plain(2, Alice, Sell, 100, 5));

    const Result r = d.place(stp(plain(10, Alice, Buy, 100, 6), Stp::CancelOldest));

    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 3, 3, 3, true}, {1, 100, 3, 0, 0, false}}));
    EXPECT_EQ(removals(r), (Removals{{2, Alice, Sell, 100, 5}}));
    EXPECT_EQ(outcome(r), done(6, 0));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 0, 0}}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

// ===========================================================================
// load_resting.

TEST_F(IcebergLoad, FreshOrPartialTipsAsStored) {
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 100, 10, 4, 0)), None);
    EXPECT_EQ(d.order(1), (IceOrder{1, 100, 10, 4, 4})) << "visible 0: a fresh tip";
    EXPECT_REJECT(d.load(stored(2, Carol, Sell, 100, 9, 4, 2)), None);
    EXPECT_EQ(d.order(2), (IceOrder{2, 100, 9, 2, 4})) << "an explicit partial tip";
    EXPECT_REJECT(d.load(stored(3, Dave, Sell, 101, 2, 4, 0)), None);
    EXPECT_EQ(d.order(3), (IceOrder{3, 101, 2, 2, 4})) << "a fresh tip is at most what is left";
    EXPECT_REJECT(d.load(stored(4, Bob, Buy, 99, 5, 0, 0)), None);
    EXPECT_REJECT(d.load(stored(5, Carol, Buy, 99, 3, 0, 3)), None);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 2, 1}, {Ask, 100, 6, 2}, {Bid, 99, 8, 2}}));
    EXPECT_EQ(d.queue(Bid), (IceQueue{{4, 99, 5, 5, 0}, {5, 99, 3, 3, 0}}));
    EXPECT_EQ(d.seq(), 0u);

    // Loaded tips trade and refill like placed ones.
    const Result r = d.place(plain(10, Alice, Buy, 100, 6));
    EXPECT_EQ(ice_fills(r), (IceFills{{1, 100, 4, 6, 4, true}, {2, 100, 2, 7, 4, true}}));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, 8, 2}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 6, 4, 4}, {2, 100, 7, 4, 4}, {3, 101, 2, 2, 4}}));
}

TEST_F(IcebergLoad, InvalidTipsAreInvalidDisplay) {
    d.rest(plain(1, Bob, Sell, 100, 5));

    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 10, -1, 0)), InvalidDisplay) << "display < 0";
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 10, 4, -1)), InvalidDisplay) << "visible < 0";
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 10, 4, 5)), InvalidDisplay) << "visible > display";
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 3, 4, 4)), InvalidDisplay) << "visible > qty";
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 5, 0, 3)), InvalidDisplay) << "plain, 0 < visible < qty";
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 5, 0, 6)), InvalidDisplay) << "plain, visible > qty";
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 401, 4, 0)), InvalidDisplay) << "101 parts";
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 401, 4, 4)), InvalidDisplay) << "101 parts";

    // First failure wins.
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 0, 10, 4, 5)), InvalidPrice);
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 0, 4, 5)), InvalidQuantity);
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 100, 10, 4, 5)), InvalidDisplay);
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 100, 10, 4, 4)), DuplicateOrderId);
    EXPECT_REJECT(d.load(stored(2, Bob, Buy, 100, 10, 4, 4)), WouldCross);
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 5, 5, 0}}));

    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 100, 400, 4, 1)), None) << "100 parts";
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 5, 5, 0}, {2, 100, 400, 1, 4}}));
}

TEST_F(IcebergLoad, LoadedBookEqualsThePlacedBook) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 4));
    d.rest(plain(2, Carol, Sell, 100, 5));
    d.rest(iceberg(3, Dave, Buy, 98, 20, 6));
    EXPECT_EQ(ice_fills(d.place(plain(10, Alice, Buy, 100, 5))),
              (IceFills{{1, 100, 4, 6, 4, true}, {2, 100, 1, 4, 4, false}}));
    EXPECT_EQ(ice_fills(d.place(plain(11, Alice, Sell, 98, 2))), (IceFills{{3, 98, 2, 18, 4, false}}));
    EXPECT_EQ(d.queue(Ask), (IceQueue{{2, 100, 4, 4, 0}, {1, 100, 6, 4, 4}}));

    IceDesk loaded;
    for (Side s : {Sell, Buy}) {
        std::vector<RestingOrder> os;
        d.book().orders(s, os);
        for (const RestingOrder& o : os) EXPECT_REJECT(loaded.load(o), None);
    }
    loaded.book().set_seq(d.seq());
    loaded.book().set_last_price(d.book().last_price());

    EXPECT_EQ(diff_snapshots(Snapshot::of(loaded.book()), Snapshot::of(d.book())), "");
    EXPECT_EQ(loaded.hash(), d.hash());
}

// ===========================================================================
// Level totals near INT64_MAX.

TEST_F(IcebergOverflow, RefillThatWouldOverflowTheLevelRejectsTheWholeCommand) {
    constexpr int64_t kTip = kMaxQty / 100;
    d.rest(iceberg(1, Bob, Sell, 100, kMaxQty, kTip));
    EXPECT_EQ(ice_fills(d.place(plain(50, Carol, Buy, 100, kTip - 1))),
              (IceFills{{1, 100, kTip - 1, kMaxQty - kTip + 1, 1, false}}));
    for (OrderId id = 2; id <= 10; ++id) d.rest(plain(id, Dave, Sell, 100, kMaxQty));
    const int64_t last = kInt64Max - 1 - 9 * kMaxQty;
    d.rest(plain(11, Dave, Sell, 100, last));
    d.rest(plain(12, Carol, Sell, 99, 3));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, kInt64Max, 11}, {Ask, 99, 3, 1}}));
    const uint64_t hash0 = d.hash();

    // 3 at 99, then the tip of 1 at 100 runs out and a new tip of 10^16 does
    // not fit in the level: the fill at 99 is undone with the rest.
    EXPECT_REJECT(d.place(plain(60, Alice, Buy, 100, 4)), QuantityOverflow);
    EXPECT_REJECT(d.place(plain(60, Alice, Buy, 100, 1000)), QuantityOverflow);
    NewOrder sweep = plain(60, Alice, Buy, 0, 4);
    sweep.type = OrderType::Market;
    EXPECT_REJECT(d.place(sweep), QuantityOverflow);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.order(1), (IceOrder{1, 100, kMaxQty - kTip + 1, 1, kTip}));
    EXPECT_EQ(d.order(12), (IceOrder{12, 99, 3, 3, 0}));

    // With room for the new tip the same order trades.
    EXPECT_EQ(outcome(d.cancel(2)), done(0, 0, kMaxQty, CancelReason::User));
    const Result r = d.place(plain(60, Alice, Buy, 100, 4));
    EXPECT_EQ(ice_fills(r), (IceFills{{12, 99, 3, 0, 0, false}, {1, 100, 1, kMaxQty - kTip, kTip, true}}));
    EXPECT_EQ(outcome(r), done(4, 0));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 99, 0, 0}, {Ask, 100, kInt64Max - kMaxQty - 1 + kTip, 10}}));
}

TEST_F(IcebergOverflow, NewIcebergNeedsRoomOnlyForItsTip) {
    for (OrderId id = 1; id <= 9; ++id) d.rest(plain(id, Bob, Sell, 100, kMaxQty));
    d.rest(plain(10, Bob, Sell, 100, kInt64Max - 9 * kMaxQty - 5));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, kInt64Max - 5, 10}}));

    EXPECT_REJECT(d.place(iceberg(20, Alice, Sell, 100, 500, 6)), QuantityOverflow);
    const Result r = d.place(iceberg(20, Alice, Sell, 100, 500, 5));
    EXPECT_EQ(outcome(r), done(0, 500));
    EXPECT_EQ(level_changes(r), (Ladder{{Ask, 100, kInt64Max, 11}}));
    EXPECT_EQ(d.order(20), (IceOrder{20, 100, 500, 5, 5}));
}

// ===========================================================================
// Savepoints.

TEST_F(IcebergRollback, RollbackAcrossRefillsRestoresTheBookExactly) {
    d.rest(iceberg(1, Bob, Sell, 100, 10, 3));
    d.rest(plain(2, Carol, Sell, 100, 2));
    d.rest(plain(3, Dave, Buy, 98, 4));
    const Book::Savepoint sp1 = d.book().savepoint();
    const uint64_t hash0 = d.hash();
    const Snapshot snap0 = Snapshot::of(d.book());

    const Result first = d.place(plain(10, Alice, Buy, 100, 9));
    const IceFills expected{
        {1, 100, 3, 7, 3, true}, {2, 100, 2, 0, 0, false}, {1, 100, 3, 4, 3, true}, {1, 100, 1, 3, 2, false}};
    EXPECT_EQ(ice_fills(first), expected);
    const uint64_t hash1 = d.hash();
    const Snapshot snap1 = Snapshot::of(d.book());
    EXPECT_NE(hash1, hash0);

    const Book::Savepoint sp2 = d.book().savepoint();
    const Result second = d.place(plain(11, Alice, Buy, 100, 4));
    EXPECT_EQ(ice_fills(second), (IceFills{{1, 100, 2, 1, 1, true}, {1, 100, 1, 0, 0, false}}));
    EXPECT_EQ(outcome(second), done(3, 1));
    EXPECT_NE(d.hash(), hash1);

    d.book().rollback_to(sp2);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), hash1);
    EXPECT_EQ(diff_snapshots(Snapshot::of(d.book()), snap1), "");

    d.book().rollback_to(sp1);
    d.expect_consistent();
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(diff_snapshots(Snapshot::of(d.book()), snap0), "");
    EXPECT_EQ(d.queue(Ask), (IceQueue{{1, 100, 10, 3, 3}, {2, 100, 2, 2, 0}}));

    // The same command again does the same.
    EXPECT_EQ(ice_fills(d.place(plain(10, Alice, Buy, 100, 9))), expected);
    EXPECT_EQ(d.hash(), hash1);
}

// ===========================================================================
// state_hash.

TEST_F(IcebergHash, BookWithoutIcebergsHashesAsBeforeIcebergs) {
    IceDesk a;
    a.rest(plain(1, Bob, Sell, 101, 5));
    a.rest(plain(2, Carol, Sell, 101, 3));
    a.rest(post_only(plain(3, Dave, Sell, 103, 7)));
    a.rest(stp(plain(4, Bob, Buy, 99, 4), Stp::CancelOldest));
    a.rest(plain(5, Carol, Buy, 98, 6));
    EXPECT_EQ(ice_fills(a.place(plain(10, Alice, Buy, 101, 6))),
              (IceFills{{1, 101, 5, 0, 0, false}, {2, 101, 1, 2, 2, false}}));
    EXPECT_TRUE(a.amend(5, 98, 2).accepted());
    EXPECT_TRUE(a.cancel(4).accepted());
    EXPECT_EQ(a.hash(), pre_iceberg_hash(a.book()));

    // The same orders loaded into another book hash the same.
    IceDesk b;
    for (Side s : {Sell, Buy}) {
        std::vector<RestingOrder> os;
        a.book().orders(s, os);
        for (const RestingOrder& o : os) EXPECT_REJECT(b.load(o), None);
    }
    b.book().set_seq(a.seq());
    b.book().set_last_price(a.book().last_price());
    EXPECT_EQ(b.hash(), a.hash());
    EXPECT_EQ(b.hash(), pre_iceberg_hash(b.book()));
}

TEST_F(IcebergHash, IcebergDiffersFromAPlainOrderShowingTheSame) {
    IceDesk ice;
    IceDesk shown;
    IceDesk bigger;
    ice.rest(iceberg(1, Bob, Sell, 100, 10, 4));
    shown.rest(plain(1, Bob, Sell, 100, 4));
    bigger.rest(iceberg(1, Bob, Sell, 100, 12, 4));
    EXPECT_EQ(ice.ladder(), shown.ladder());
    EXPECT_EQ(ice.ladder(), bigger.ladder());

    EXPECT_EQ(pre_iceberg_hash(ice.book()), shown.hash()) << "the books differ only in what is hidden";
    EXPECT_NE(ice.hash(), shown.hash());
    EXPECT_NE(ice.hash(), bigger.hash()) << "the hidden quantity is part of the state";
}

}  // namespace
