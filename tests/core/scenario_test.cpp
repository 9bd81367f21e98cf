// Scenario tests for the matching core, written from a trader's point of view:
// "given this book, this order produces these fills and this book".
//
// The contract is extension/core/SEMANTICS.md. Every command goes through a
// Desk, which also checks the rules that hold for every command: the book
// validates, an accepted command advances the sequence by exactly 1, a
// rejected command changes nothing (sequence, state_hash, counts) and returns
// an empty result, the result is cleared before being filled, and every fill
// names the maker's owner.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "book.h"
#include "desk_support.h"

namespace {

using namespace pgx::core;
using namespace pgx::test::desk;

// ---------------------------------------------------------------------------
// Expected values: small comparable, printable records.

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

// A resting order removed by self-trade prevention.
struct Sc {
    OrderId id;
    OwnerId owner;
    Side side;
    int64_t price;
    int64_t qty;
    CancelReason reason = CancelReason::SelfTrade;
};
bool operator==(const Sc& a, const Sc& b) {
    return a.id == b.id && a.owner == b.owner && a.side == b.side && a.price == b.price && a.qty == b.qty &&
           a.reason == b.reason;
}
std::ostream& operator<<(std::ostream& os, const Sc& c) {
    return os << "#" << c.id << " (owner " << c.owner << ") " << side_name(c.side) << " " << c.qty << " @ "
              << c.price << " " << reason_name(c.reason);
}
using Removed = std::vector<Sc>;

Removed stp_removed(const Result& r) {
    Removed v;
    for (const Cancelled& c : r.stp_cancelled)
        v.push_back({c.id, c.owner, c.side, c.price.v, c.qty.v, c.reason});
    return v;
}

// ---------------------------------------------------------------------------
// Orders.

NewOrder limit(OrderId id, OwnerId owner, Side side, int64_t price, int64_t qty, Tif tif = Tif::Gtc) {
    NewOrder o;
    o.id = id;
    o.owner = owner;
    o.side = side;
    o.type = OrderType::Limit;
    o.tif = tif;
    o.price = Price{price};
    o.qty = Qty{qty};
    return o;
}

NewOrder market(OrderId id, OwnerId owner, Side side, int64_t qty, Tif tif = Tif::Gtc) {
    NewOrder o = limit(id, owner, side, 0, qty, tif);
    o.type = OrderType::Market;
    return o;
}

NewOrder with_stp(NewOrder o, Stp mode) {
    o.stp = mode;
    return o;
}

NewOrder as_post_only(NewOrder o) {
    o.post_only = true;
    return o;
}

RestingOrder stored(OrderId id, OwnerId owner, Side side, int64_t price, int64_t qty, Stp stp = kDefaultStp,
                    bool post_only = false) {
    RestingOrder o;
    o.id = id;
    o.owner = owner;
    o.side = side;
    o.price = Price{price};
    o.qty = Qty{qty};
    o.stp = stp;
    o.post_only = post_only;
    return o;
}

// ---------------------------------------------------------------------------
// A book in its own memory, with checked commands and readable queries.

constexpr BookConfig kDefaultConfig{64, 32};

class Desk {
public:
    explicit Desk(BookConfig cfg = kDefaultConfig)
        : bytes_(Book::required_bytes(cfg)),
          mem_((bytes_ + 7) / 8),
          book_(formatted(mem_, bytes_, cfg), bytes_) {}

    Book& book() { return book_; }
    const Book& book() const { return book_; }
    const void* region() const { return mem_.data(); }
    size_t bytes() const { return bytes_; }

    Result place(const NewOrder& o) {
        SCOPED_TRACE("place #" + std::to_string(o.id));
        Result r = run([&](Result& out) { return book_.place(o, out); });
        if (r.accepted()) {
            for (const Fill& f : r.fills) EXPECT_EQ(f.taker, o.id);
            owners_[o.id] = o.owner;
        }
        return r;
    }

    Result cancel(OrderId id) {
        SCOPED_TRACE("cancel #" + std::to_string(id));
        return run([&](Result& out) { return book_.cancel(id, out); });
    }

    Result amend(OrderId id, int64_t price, int64_t qty) {
        SCOPED_TRACE("amend #" + std::to_string(id));
        Result r = run([&](Result& out) { return book_.amend(id, Price{price}, Qty{qty}, out); });
        if (r.accepted()) {
            for (const Fill& f : r.fills) EXPECT_EQ(f.taker, id);
        }
        return r;
    }

    Reject load(const RestingOrder& o) {
        SCOPED_TRACE("load_resting #" + std::to_string(o.id));
        const uint64_t seq0 = book_.seq();
        const uint64_t hash0 = book_.state_hash();
        const uint32_t orders0 = book_.order_count();
        const Reject r = book_.load_resting(o);
        expect_valid();
        EXPECT_EQ(book_.seq(), seq0) << "load_resting must not advance the sequence";
        if (r == Reject::None) {
            EXPECT_EQ(book_.order_count(), orders0 + 1);
            owners_[o.id] = o.owner;
        } else {
            EXPECT_EQ(book_.state_hash(), hash0) << "a rejected load_resting changed the book";
            EXPECT_EQ(book_.order_count(), orders0);
        }
        return r;
    }

    // Place a GTC limit order that is expected to rest in full without trading.
    void rest(OrderId id, OwnerId owner, Side side, int64_t price, int64_t qty, Stp stp = kDefaultStp,
              bool post_only = false) {
        NewOrder o = with_stp(limit(id, owner, side, price, qty), stp);
        o.post_only = post_only;
        const Result r = place(o);
        EXPECT_TRUE(r.accepted()) << "setup order #" << id << " rejected: " << reject_name(r);
        EXPECT_EQ(outcome(r), (Out{0, qty, 0})) << "setup order #" << id << " did not simply rest";
    }

    Ladder ladder() const { return ladder_of(book_); }

    // One side's resting orders in priority order (best price first, then oldest first).
    Queue queue(Side s) const {
        Queue v;
        std::vector<RestingOrder> os;
        book_.orders(s, os);
        for (const RestingOrder& o : os) v.push_back({o.id, o.price.v, o.qty.v});
        return v;
    }

    // The best level of a side, or {side, 0, 0, 0} if the side is empty.
    Lv top(Side s) const {
        LevelView lv{};
        if (!book_.best(s, lv)) return {s, 0, 0, 0};
        return {s, lv.price.v, lv.qty.v, lv.count};
    }

    bool has(OrderId id) const {
        RestingOrder o;
        return book_.find(id, o);
    }

    uint64_t hash() const { return book_.state_hash(); }
    uint64_t seq() const { return book_.seq(); }

    void expect_valid() const {
        const std::vector<std::string> problems = book_.validate();
        std::string all;
        for (const std::string& p : problems) all += "\n  " + p;
        EXPECT_TRUE(problems.empty()) << "book.validate():" << all;
    }

private:
    static void* formatted(std::vector<uint64_t>& mem, size_t bytes, const BookConfig& cfg) {
        EXPECT_GT(bytes, 0u);
        EXPECT_TRUE(Book::format(mem.data(), bytes, cfg));
        return mem.data();
    }

    template <class Cmd>
    Result run(Cmd&& cmd) {
        const uint64_t seq0 = book_.seq();
        const uint64_t hash0 = book_.state_hash();
        const uint32_t orders0 = book_.order_count();
        const uint32_t levels0 = book_.level_count();
        Result r = stale_result();
        const bool ok = cmd(r);
        EXPECT_EQ(ok, r.accepted());
        expect_valid();
        if (r.accepted()) {
            EXPECT_REJECT(r, None);
            EXPECT_EQ(r.seq, seq0 + 1) << "an accepted command advances the sequence by exactly 1";
            EXPECT_EQ(book_.seq(), seq0 + 1);
            for (const Fill& f : r.fills) {
                const auto it = owners_.find(f.maker);
                if (it == owners_.end()) {
                    ADD_FAILURE() << "fill against unknown maker #" << f.maker;
                    continue;
                }
                EXPECT_EQ(f.maker_owner, it->second) << "maker_owner of the fill against #" << f.maker;
            }
        } else {
            expect_rejected_result(r, seq0);
            EXPECT_EQ(book_.seq(), seq0) << "a reject must not advance the sequence";
            EXPECT_EQ(book_.state_hash(), hash0) << "a reject must not change the book";
            EXPECT_EQ(book_.order_count(), orders0);
            EXPECT_EQ(book_.level_count(), levels0);
        }
        return r;
    }

    size_t bytes_;
    std::vector<uint64_t> mem_;
    Book book_;
    std::map<OrderId, OwnerId> owners_;  // latest accepted owner of each id, to check fills
};

class BookScenario : public ::testing::Test {
protected:
    void TearDown() override { d.expect_valid(); }

    Desk d;
};

using ScenarioPriceTime = BookScenario;
using ScenarioMarket = BookScenario;
using ScenarioTif = BookScenario;
using ScenarioPostOnly = BookScenario;
using ScenarioStp = BookScenario;
using ScenarioCancel = BookScenario;
using ScenarioAmend = BookScenario;
using ScenarioRejects = BookScenario;
using ScenarioCapacity = BookScenario;
using ScenarioSequence = BookScenario;
using ScenarioLoad = BookScenario;
using ScenarioBest = BookScenario;
using ScenarioHash = BookScenario;
using ScenarioEvents = BookScenario;

// ===========================================================================
// Price-time priority.

TEST_F(ScenarioPriceTime, BuyerTakesTheCheapestAskFirstAtEachMakersPrice) {
    d.rest(1, Bob, Sell, 102, 5);
    d.rest(2, Carol, Sell, 101, 5);
    d.rest(3, Dave, Sell, 103, 5);

    const Result r = d.place(limit(10, Alice, Buy, 103, 12));

    EXPECT_EQ(fills(r), (Fills{{2, 10, 101, 5, 0}, {1, 10, 102, 5, 0}, {3, 10, 103, 2, 3}}));
    EXPECT_EQ(outcome(r), (Out{12, 0, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 101, 0, 0}, {Ask, 102, 0, 0}, {Ask, 103, 3, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 103, 3, 1}}));
}

TEST_F(ScenarioPriceTime, SellerHitsTheHighestBidFirst) {
    d.rest(1, Bob, Buy, 98, 4);
    d.rest(2, Carol, Buy, 100, 4);
    d.rest(3, Dave, Buy, 99, 4);

    const Result r = d.place(limit(10, Alice, Sell, 99, 6));

    EXPECT_EQ(fills(r), (Fills{{2, 10, 100, 4, 0}, {3, 10, 99, 2, 2}}));
    EXPECT_EQ(outcome(r), (Out{6, 0, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}, {Bid, 99, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 99, 2, 1}, {Bid, 98, 4, 1}}));
}

TEST_F(ScenarioPriceTime, AtEqualPriceTheOldestOrderTradesFirst) {
    d.rest(1, Bob, Sell, 101, 2);
    d.rest(2, Carol, Sell, 101, 3);
    d.rest(3, Dave, Sell, 101, 4);

    const Result r = d.place(limit(10, Alice, Buy, 101, 4));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 101, 2, 0}, {2, 10, 101, 2, 1}}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 101, 5, 2}}));
    EXPECT_EQ(d.queue(Ask), (Queue{{2, 101, 1}, {3, 101, 4}}));
}

TEST_F(ScenarioPriceTime, TakerGetsPriceImprovementAtTheMakersPrice) {
    d.rest(1, Bob, Sell, 100, 5);
    d.rest(2, Carol, Buy, 95, 5);

    const Result buy = d.place(limit(10, Alice, Buy, 105, 5));
    EXPECT_EQ(fills(buy), (Fills{{1, 10, 100, 5, 0}}));
    EXPECT_EQ(outcome(buy), (Out{5, 0, 0}));

    const Result sell = d.place(limit(11, Alice, Sell, 90, 5));
    EXPECT_EQ(fills(sell), (Fills{{2, 11, 95, 5, 0}}));
    EXPECT_EQ(outcome(sell), (Out{5, 0, 0}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(ScenarioPriceTime, MakerPartiallyFilledKeepsItsPlace) {
    d.rest(1, Bob, Sell, 100, 10);
    d.rest(2, Carol, Sell, 100, 10);

    const Result r = d.place(limit(10, Alice, Buy, 100, 4));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 4, 6}}));
    EXPECT_EQ(outcome(r), (Out{4, 0, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 16, 2}}));
    EXPECT_EQ(d.queue(Ask), (Queue{{1, 100, 6}, {2, 100, 10}}));

    const Result next = d.place(limit(11, Dave, Buy, 100, 7));
    EXPECT_EQ(fills(next), (Fills{{1, 11, 100, 6, 0}, {2, 11, 100, 1, 9}}));
}

TEST_F(ScenarioPriceTime, TakerRemainderRestsAtItsOwnLimitPrice) {
    d.rest(1, Bob, Sell, 100, 3);
    d.rest(2, Bob, Sell, 101, 3);

    const Result r = d.place(limit(10, Alice, Buy, 100, 5));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 3, 0}}));
    EXPECT_EQ(outcome(r), (Out{3, 2, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Bid, 100, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 3, 1}, {Bid, 100, 2, 1}}));
    EXPECT_EQ(d.queue(Bid), (Queue{{10, 100, 2}}));
}

TEST_F(ScenarioPriceTime, NewOrderJoinsTheBackOfItsLevel) {
    d.rest(1, Bob, Buy, 100, 5);
    const Result r = d.place(limit(10, Alice, Buy, 100, 3));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 8, 2}}));
    EXPECT_EQ(d.queue(Bid), (Queue{{1, 100, 5}, {10, 100, 3}}));

    const Result sell = d.place(limit(11, Carol, Sell, 100, 6));
    EXPECT_EQ(fills(sell), (Fills{{1, 11, 100, 5, 0}, {10, 11, 100, 1, 2}}));
}

TEST_F(ScenarioPriceTime, NonCrossingLimitOrderJustRests) {
    d.rest(1, Bob, Sell, 101, 5);

    const Result r = d.place(limit(10, Alice, Buy, 100, 5));

    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(outcome(r), (Out{0, 5, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 5, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 5, 1}, {Bid, 100, 5, 1}}));
}

TEST_F(ScenarioPriceTime, FillNamesTheMakersOwner) {
    d.rest(1, Bob, Sell, 100, 1);
    d.rest(2, Carol, Sell, 100, 1);

    const Result r = d.place(limit(10, Alice, Buy, 100, 2));

    ASSERT_EQ(r.fills.size(), 2u);
    EXPECT_EQ(r.fills[0].maker_owner, Bob);
    EXPECT_EQ(r.fills[1].maker_owner, Carol);
}

// ===========================================================================
// Market orders.

TEST_F(ScenarioMarket, SweepsSeveralLevelsAtEachMakersPrice) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Carol, Sell, 101, 3);
    d.rest(3, Dave, Sell, 102, 4);

    const Result r = d.place(market(10, Alice, Buy, 6));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}, {2, 10, 101, 3, 0}, {3, 10, 102, 1, 3}}));
    EXPECT_EQ(outcome(r), (Out{6, 0, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Ask, 101, 0, 0}, {Ask, 102, 3, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 3, 1}}));
}

TEST_F(ScenarioMarket, RemainderIsCancelledAndNeverRests) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Bob, Sell, 105, 1);

    const Result r = d.place(market(10, Alice, Buy, 5));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}, {2, 10, 105, 1, 0}}));
    EXPECT_EQ(outcome(r), (Out{3, 0, 2, CancelReason::MarketNoLiquidity}));
    EXPECT_EQ(d.ladder(), Ladder{});
    EXPECT_FALSE(d.has(10));
    EXPECT_EQ(d.book().order_count(), 0u);
}

TEST_F(ScenarioMarket, IntoAnEmptyBookIsAcceptedAndCancelled) {
    const Result r = d.place(market(10, Alice, Sell, 5));

    EXPECT_TRUE(r.accepted());
    EXPECT_EQ(r.seq, 1u);
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(level_changes(r), Changes{});
    EXPECT_EQ(outcome(r), (Out{0, 0, 5, CancelReason::MarketNoLiquidity}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(ScenarioMarket, MarketSellCrossesEveryBidWhateverItsPrice) {
    d.rest(1, Bob, Buy, 1, 2);
    d.rest(2, Carol, Buy, kMaxPrice, 3);

    const Result r = d.place(market(10, Alice, Sell, 5));

    EXPECT_EQ(fills(r), (Fills{{2, 10, kMaxPrice, 3, 0}, {1, 10, 1, 2, 0}}));
    EXPECT_EQ(outcome(r), (Out{5, 0, 0}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(ScenarioMarket, IocMarketRemainderIsStillMarketNoLiquidity) {
    d.rest(1, Bob, Sell, 100, 2);

    const Result r = d.place(market(10, Alice, Buy, 5, Tif::Ioc));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}}));
    EXPECT_EQ(outcome(r), (Out{2, 0, 3, CancelReason::MarketNoLiquidity}));
}

TEST_F(ScenarioMarket, FokMarketFillsCompletelyOrNotAtAll) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Carol, Sell, 200, 3);

    EXPECT_REJECT(d.place(market(10, Alice, Buy, 6, Tif::Fok)), FokUnfillable);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 200, 3, 1}, {Ask, 100, 2, 1}}));

    const Result r = d.place(market(11, Alice, Buy, 5, Tif::Fok));
    EXPECT_EQ(fills(r), (Fills{{1, 11, 100, 2, 0}, {2, 11, 200, 3, 0}}));
    EXPECT_EQ(outcome(r), (Out{5, 0, 0}));
    EXPECT_EQ(d.ladder(), Ladder{});

    EXPECT_REJECT(d.place(market(12, Alice, Buy, 1, Tif::Fok)), FokUnfillable);
}

// ===========================================================================
// Time in force: IOC and FOK.

TEST_F(ScenarioTif, IocRemainderIsCancelled) {
    d.rest(1, Bob, Sell, 100, 3);
    d.rest(2, Bob, Sell, 101, 3);

    const Result r = d.place(limit(10, Alice, Buy, 100, 5, Tif::Ioc));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 3, 0}}));
    EXPECT_EQ(outcome(r), (Out{3, 0, 2, CancelReason::Ioc}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 3, 1}}));
    EXPECT_FALSE(d.has(10));
}

TEST_F(ScenarioTif, IocThatCannotTradeIsAcceptedAndCancelled) {
    d.rest(1, Bob, Sell, 101, 3);

    const Result r = d.place(limit(10, Alice, Buy, 100, 5, Tif::Ioc));

    EXPECT_TRUE(r.accepted());
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(level_changes(r), Changes{});
    EXPECT_EQ(outcome(r), (Out{0, 0, 5, CancelReason::Ioc}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 3, 1}}));
}

TEST_F(ScenarioTif, IocFilledInFullCancelsNothing) {
    d.rest(1, Bob, Sell, 100, 5);

    const Result r = d.place(limit(10, Alice, Buy, 100, 5, Tif::Ioc));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 5, 0}}));
    EXPECT_EQ(outcome(r), (Out{5, 0, 0, CancelReason::None}));
}

TEST_F(ScenarioTif, FokFillableAcrossLevelsTrades) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Carol, Sell, 101, 3);
    d.rest(3, Dave, Sell, 102, 9);

    const Result r = d.place(limit(10, Alice, Buy, 101, 5, Tif::Fok));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}, {2, 10, 101, 3, 0}}));
    EXPECT_EQ(outcome(r), (Out{5, 0, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Ask, 101, 0, 0}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 9, 1}}));
}

TEST_F(ScenarioTif, FokNotFillableIsRejectedWithNothingChanged) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Carol, Sell, 101, 3);
    d.rest(3, Dave, Sell, 102, 9);
    const uint64_t hash0 = d.hash();
    const uint64_t seq0 = d.seq();

    // Only 5 lots are offered at or below 101.
    const Result r = d.place(limit(10, Alice, Buy, 101, 6, Tif::Fok));

    EXPECT_REJECT(r, FokUnfillable);
    EXPECT_EQ(d.hash(), hash0);
    EXPECT_EQ(d.seq(), seq0);
    EXPECT_EQ(d.queue(Ask), (Queue{{1, 100, 2}, {2, 101, 3}, {3, 102, 9}}));
}

TEST_F(ScenarioTif, FokWithNothingToTradeIsRejected) {
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, 100, 1, Tif::Fok)), FokUnfillable);
    d.rest(1, Bob, Sell, 101, 5);
    EXPECT_REJECT(d.place(limit(11, Alice, Buy, 100, 1, Tif::Fok)), FokUnfillable);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 5, 1}}));
}

TEST_F(ScenarioTif, FokWithCancelNewestIsUnfillableWhenOwnOrderIsInTheWay) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Alice, Sell, 101, 3);
    d.rest(3, Carol, Sell, 102, 5);

    // 10 lots are offered up to 102, but matching would stop at Alice's own
    // ask after 2 lots.
    EXPECT_REJECT(d.place(with_stp(limit(10, Alice, Buy, 102, 6, Tif::Fok), Stp::CancelNewest)),
                  FokUnfillable);
    EXPECT_REJECT(d.place(limit(11, Alice, Buy, 102, 6, Tif::Fok)), FokUnfillable) << "default stp";
    EXPECT_EQ(d.queue(Ask), (Queue{{1, 100, 2}, {2, 101, 3}, {3, 102, 5}}));

    // Without STP the same order trades with itself and fills.
    const Result r = d.place(with_stp(limit(12, Alice, Buy, 102, 6, Tif::Fok), Stp::None));
    EXPECT_EQ(fills(r), (Fills{{1, 12, 100, 2, 0}, {2, 12, 101, 3, 0}, {3, 12, 102, 1, 4}}));
    EXPECT_EQ(outcome(r), (Out{6, 0, 0}));
}

TEST_F(ScenarioTif, FokWithCancelNewestFillsWhenOwnOrderIsBeyondWhatItNeeds) {
    d.rest(1, Bob, Sell, 100, 5);
    d.rest(2, Alice, Sell, 100, 5);

    const Result r = d.place(limit(10, Alice, Buy, 100, 5, Tif::Fok));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 5, 0}}));
    EXPECT_EQ(outcome(r), (Out{5, 0, 0}));
    EXPECT_EQ(stp_removed(r), Removed{});
    EXPECT_EQ(d.queue(Ask), (Queue{{2, 100, 5}}));
}

TEST_F(ScenarioTif, FokWithCancelOldestDoesNotCountOwnQuantity) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Alice, Sell, 100, 3);
    d.rest(3, Carol, Sell, 101, 3);

    // 8 lots are offered up to 101, 3 of them Alice's own: only 5 can trade.
    EXPECT_REJECT(d.place(with_stp(limit(10, Alice, Buy, 101, 6, Tif::Fok), Stp::CancelOldest)),
                  FokUnfillable);
    EXPECT_EQ(d.queue(Ask), (Queue{{1, 100, 2}, {2, 100, 3}, {3, 101, 3}}));

    const Result r = d.place(with_stp(limit(11, Alice, Buy, 101, 5, Tif::Fok), Stp::CancelOldest));
    EXPECT_EQ(fills(r), (Fills{{1, 11, 100, 2, 0}, {3, 11, 101, 3, 0}}));
    EXPECT_EQ(stp_removed(r), (Removed{{2, Alice, Sell, 100, 3}}));
    EXPECT_EQ(outcome(r), (Out{5, 0, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Ask, 101, 0, 0}}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(ScenarioTif, FokWithCancelBothIsUnfillableWhenOwnOrderIsInTheWay) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Alice, Sell, 100, 3);
    d.rest(3, Carol, Sell, 101, 3);

    EXPECT_REJECT(d.place(with_stp(limit(10, Alice, Buy, 101, 4, Tif::Fok), Stp::CancelBoth)), FokUnfillable);
    EXPECT_EQ(d.queue(Ask), (Queue{{1, 100, 2}, {2, 100, 3}, {3, 101, 3}}));

    // Two lots are filled before Alice's own ask is reached: no STP at all.
    const Result r = d.place(with_stp(limit(11, Alice, Buy, 101, 2, Tif::Fok), Stp::CancelBoth));
    EXPECT_EQ(fills(r), (Fills{{1, 11, 100, 2, 0}}));
    EXPECT_EQ(stp_removed(r), Removed{});
    EXPECT_EQ(outcome(r), (Out{2, 0, 0}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 3, 1}, {Ask, 100, 3, 1}}));
}

// ===========================================================================
// Post-only.

TEST_F(ScenarioPostOnly, RestsWhenItDoesNotCross) {
    d.rest(1, Bob, Sell, 101, 5);

    const Result r = d.place(as_post_only(limit(10, Alice, Buy, 100, 5)));

    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(outcome(r), (Out{0, 5, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 5, 1}}));
    RestingOrder o;
    ASSERT_TRUE(d.book().find(10, o));
    EXPECT_TRUE(o.post_only);
    EXPECT_EQ(o.owner, Alice);
}

TEST_F(ScenarioPostOnly, RestsInAnEmptyBook) {
    const Result r = d.place(as_post_only(limit(10, Alice, Sell, 100, 5)));
    EXPECT_EQ(outcome(r), (Out{0, 5, 0}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 5, 1}}));
}

TEST_F(ScenarioPostOnly, RejectedWhenItWouldTake) {
    d.rest(1, Bob, Sell, 100, 5);

    EXPECT_REJECT(d.place(as_post_only(limit(10, Alice, Buy, 101, 5))), PostOnlyWouldTake);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 5, 1}}));
}

TEST_F(ScenarioPostOnly, EqualPriceCountsAsCrossing) {
    d.rest(1, Bob, Sell, 100, 5);
    d.rest(2, Carol, Buy, 98, 5);

    EXPECT_REJECT(d.place(as_post_only(limit(10, Alice, Buy, 100, 1))), PostOnlyWouldTake);
    EXPECT_REJECT(d.place(as_post_only(limit(11, Alice, Sell, 98, 1))), PostOnlyWouldTake);
    EXPECT_REJECT(d.place(as_post_only(limit(12, Alice, Sell, 97, 1))), PostOnlyWouldTake);

    // Inside the spread it rests; at the new best bid a post-only sell crosses.
    EXPECT_EQ(outcome(d.place(as_post_only(limit(13, Alice, Buy, 99, 1)))), (Out{0, 1, 0}));
    EXPECT_REJECT(d.place(as_post_only(limit(14, Alice, Sell, 99, 1))), PostOnlyWouldTake);
    EXPECT_EQ(outcome(d.place(as_post_only(limit(14, Alice, Sell, 100, 1)))), (Out{0, 1, 0}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 6, 2}, {Bid, 99, 1, 1}, {Bid, 98, 5, 1}}));
}

TEST_F(ScenarioPostOnly, WouldTakeEvenAgainstItsOwnersOrder) {
    // The post-only check comes before matching, so STP never gets a say.
    d.rest(1, Alice, Sell, 100, 5);
    EXPECT_REJECT(d.place(as_post_only(limit(10, Alice, Buy, 100, 5))), PostOnlyWouldTake);
}

TEST_F(ScenarioPostOnly, WithMarketIocOrFokIsAnInvalidCombination) {
    d.rest(1, Bob, Sell, 100, 5);

    EXPECT_REJECT(d.place(as_post_only(market(10, Alice, Buy, 1))), InvalidCombination);
    EXPECT_REJECT(d.place(as_post_only(market(10, Alice, Buy, 1, Tif::Ioc))), InvalidCombination);
    EXPECT_REJECT(d.place(as_post_only(limit(10, Alice, Buy, 99, 1, Tif::Ioc))), InvalidCombination);
    EXPECT_REJECT(d.place(as_post_only(limit(10, Alice, Buy, 99, 1, Tif::Fok))), InvalidCombination);
    // Also when the order would not cross and on the other side.
    EXPECT_REJECT(d.place(as_post_only(limit(10, Alice, Sell, 200, 1, Tif::Ioc))), InvalidCombination);
}

// ===========================================================================
// Self-trade prevention. The book: Bob 2 @ 100, Alice 3 @ 100, Carol 4 @ 101;
// Alice buys 7 up to 101.

class ScenarioStpModes : public BookScenario {
protected:
    void SetUp() override {
        d.rest(1, Bob, Sell, 100, 2);
        d.rest(2, Alice, Sell, 100, 3);
        d.rest(3, Carol, Sell, 101, 4);
    }
    Result alice_buys(Stp mode) { return d.place(with_stp(limit(10, Alice, Buy, 101, 7), mode)); }
};

TEST_F(ScenarioStpModes, NoneTradesWithItself) {
    const Result r = alice_buys(Stp::None);

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}, {2, 10, 100, 3, 0}, {3, 10, 101, 2, 2}}));
    ASSERT_EQ(r.fills.size(), 3u);
    EXPECT_EQ(r.fills[1].maker_owner, Alice);
    EXPECT_EQ(stp_removed(r), Removed{});
    EXPECT_EQ(outcome(r), (Out{7, 0, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Ask, 101, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 2, 1}}));
}

TEST_F(ScenarioStpModes, CancelNewestCancelsTheTakersRemainder) {
    const Result r = alice_buys(Stp::CancelNewest);

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}}));
    EXPECT_EQ(stp_removed(r), Removed{});
    EXPECT_EQ(outcome(r), (Out{2, 0, 5, CancelReason::SelfTrade}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 3, 1}}));
    EXPECT_EQ(d.queue(Ask), (Queue{{2, 100, 3}, {3, 101, 4}}));
    EXPECT_EQ(d.queue(Bid), Queue{}) << "the remainder must not rest";
}

TEST_F(ScenarioStpModes, CancelOldestRemovesTheRestingOrderAndKeepsMatching) {
    const Result r = alice_buys(Stp::CancelOldest);

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}, {3, 10, 101, 4, 0}}));
    EXPECT_EQ(stp_removed(r), (Removed{{2, Alice, Sell, 100, 3}}));
    EXPECT_EQ(outcome(r), (Out{6, 1, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Ask, 101, 0, 0}, {Bid, 101, 1, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 101, 1, 1}}));
    EXPECT_FALSE(d.has(2));
}

TEST_F(ScenarioStpModes, CancelBothRemovesTheRestingOrderAndCancelsTheTaker) {
    const Result r = alice_buys(Stp::CancelBoth);

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}}));
    EXPECT_EQ(stp_removed(r), (Removed{{2, Alice, Sell, 100, 3}}));
    EXPECT_EQ(outcome(r), (Out{2, 0, 5, CancelReason::SelfTrade}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 4, 1}}));
}

TEST_F(ScenarioStpModes, DefaultModeIsCancelNewest) {
    EXPECT_TRUE(NewOrder{}.stp == Stp::CancelNewest);
    EXPECT_TRUE(kDefaultStp == Stp::CancelNewest);

    const Result r = d.place(limit(10, Alice, Buy, 101, 7));  // stp left at its default

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}}));
    EXPECT_EQ(stp_removed(r), Removed{});
    EXPECT_EQ(outcome(r), (Out{2, 0, 5, CancelReason::SelfTrade}));
    EXPECT_EQ(d.queue(Ask), (Queue{{2, 100, 3}, {3, 101, 4}}));
}

TEST_F(ScenarioStp, DecidedByTheTakersModeNotTheMakers) {
    d.rest(1, Alice, Sell, 100, 3, Stp::None);
    d.rest(2, Alice, Sell, 101, 3, Stp::CancelBoth);

    // The maker does not mind self-trades, the taker does.
    const Result r1 = d.place(with_stp(limit(10, Alice, Buy, 100, 2), Stp::CancelNewest));
    EXPECT_EQ(fills(r1), Fills{});
    EXPECT_EQ(outcome(r1), (Out{0, 0, 2, CancelReason::SelfTrade}));
    EXPECT_EQ(d.queue(Ask), (Queue{{1, 100, 3}, {2, 101, 3}}));

    // The makers want protection, the taker does not: it trades with itself.
    const Result r2 = d.place(with_stp(limit(11, Alice, Buy, 101, 6), Stp::None));
    EXPECT_EQ(fills(r2), (Fills{{1, 11, 100, 3, 0}, {2, 11, 101, 3, 0}}));
    EXPECT_EQ(stp_removed(r2), Removed{});
    EXPECT_EQ(outcome(r2), (Out{6, 0, 0}));
}

TEST_F(ScenarioStp, OtherOwnersNeverTriggerIt) {
    d.rest(1, Bob, Sell, 100, 3);
    const Result r = d.place(with_stp(limit(10, Alice, Buy, 100, 3), Stp::CancelBoth));
    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 3, 0}}));
    EXPECT_EQ(stp_removed(r), Removed{});
    EXPECT_EQ(outcome(r), (Out{3, 0, 0}));
}

TEST_F(ScenarioStp, OwnOrderFirstInLineWithCancelNewestTradesNothing) {
    d.rest(1, Alice, Sell, 100, 3);
    d.rest(2, Bob, Sell, 100, 3);

    const Result r = d.place(limit(10, Alice, Buy, 100, 5));

    EXPECT_TRUE(r.accepted());
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(level_changes(r), Changes{});
    EXPECT_EQ(outcome(r), (Out{0, 0, 5, CancelReason::SelfTrade}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 6, 2}}));
}

TEST_F(ScenarioStp, CancelOldestRemovesEachOwnOrderInTurn) {
    d.rest(1, Alice, Sell, 100, 1);
    d.rest(2, Bob, Sell, 100, 2);
    d.rest(3, Alice, Sell, 100, 3);
    d.rest(4, Alice, Sell, 101, 4);
    d.rest(5, Carol, Sell, 102, 5);

    const Result r = d.place(with_stp(limit(10, Alice, Buy, 102, 4), Stp::CancelOldest));

    EXPECT_EQ(stp_removed(r),
              (Removed{{1, Alice, Sell, 100, 1}, {3, Alice, Sell, 100, 3}, {4, Alice, Sell, 101, 4}}));
    EXPECT_EQ(fills(r), (Fills{{2, 10, 100, 2, 0}, {5, 10, 102, 2, 3}}));
    EXPECT_EQ(outcome(r), (Out{4, 0, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Ask, 101, 0, 0}, {Ask, 102, 3, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 3, 1}}));
}

TEST_F(ScenarioStp, SellerWithCancelOldest) {
    d.rest(1, Alice, Buy, 100, 3);
    d.rest(2, Bob, Buy, 99, 3);

    const Result r = d.place(with_stp(limit(10, Alice, Sell, 99, 4), Stp::CancelOldest));

    EXPECT_EQ(stp_removed(r), (Removed{{1, Alice, Buy, 100, 3}}));
    EXPECT_EQ(fills(r), (Fills{{2, 10, 99, 3, 0}}));
    EXPECT_EQ(outcome(r), (Out{3, 1, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}, {Bid, 99, 0, 0}, {Ask, 99, 1, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 99, 1, 1}}));
}

TEST_F(ScenarioStp, MarketOrderStoppedBySelfTradeReportsSelfTrade) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Alice, Sell, 101, 2);

    const Result r = d.place(market(10, Alice, Buy, 5));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}}));
    EXPECT_EQ(outcome(r), (Out{2, 0, 3, CancelReason::SelfTrade}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}})) << "Alice's own level 101 is untouched";
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 2, 1}}));
}

TEST_F(ScenarioStp, IocWithCancelOldestCancelsItsRemainderAsIoc) {
    d.rest(1, Alice, Sell, 100, 2);
    d.rest(2, Bob, Sell, 100, 1);

    const Result r = d.place(with_stp(limit(10, Alice, Buy, 100, 5, Tif::Ioc), Stp::CancelOldest));

    EXPECT_EQ(stp_removed(r), (Removed{{1, Alice, Sell, 100, 2}}));
    EXPECT_EQ(fills(r), (Fills{{2, 10, 100, 1, 0}}));
    EXPECT_EQ(outcome(r), (Out{1, 0, 4, CancelReason::Ioc}));
    EXPECT_EQ(d.ladder(), Ladder{});
}

// ===========================================================================
// Cancel.

TEST_F(ScenarioCancel, RemovesTheOrderAndReportsItsLevel) {
    d.rest(1, Bob, Buy, 100, 2);
    d.rest(2, Carol, Buy, 100, 3);

    const Result r = d.cancel(1);

    EXPECT_EQ(outcome(r), (Out{0, 0, 2, CancelReason::User}));
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 3, 1}}));
    EXPECT_EQ(d.queue(Bid), (Queue{{2, 100, 3}}));
    EXPECT_FALSE(d.has(1));
}

TEST_F(ScenarioCancel, LastOrderOfALevelReportsTheLevelGone) {
    d.rest(1, Bob, Buy, 100, 2);
    d.rest(2, Bob, Buy, 99, 3);

    const Result r = d.cancel(1);

    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}}));
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 99, 3, 1}));
    EXPECT_EQ(d.book().level_count(Bid), 1u);
}

TEST_F(ScenarioCancel, UnknownOrZeroIdIsOrderNotFound) {
    d.rest(1, Bob, Buy, 100, 2);
    EXPECT_REJECT(d.cancel(42), OrderNotFound);
    EXPECT_REJECT(d.cancel(0), OrderNotFound);
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 100, 2, 1}}));
}

TEST_F(ScenarioCancel, CancellingTwiceIsOrderNotFound) {
    d.rest(1, Bob, Buy, 100, 2);
    EXPECT_TRUE(d.cancel(1).accepted());
    EXPECT_REJECT(d.cancel(1), OrderNotFound);
    EXPECT_EQ(d.ladder(), Ladder{});
}

TEST_F(ScenarioCancel, FilledOrderIsGonePartiallyFilledCancelsItsRemainder) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Bob, Sell, 100, 5);
    d.place(limit(10, Alice, Buy, 100, 5));  // fills #1 and 3 of #2

    EXPECT_REJECT(d.cancel(1), OrderNotFound);
    EXPECT_REJECT(d.cancel(10), OrderNotFound) << "the taker never rested";
    const Result r = d.cancel(2);
    EXPECT_EQ(outcome(r), (Out{0, 0, 2, CancelReason::User}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}}));
}

TEST_F(ScenarioCancel, CancelFromTheMiddleKeepsTheOthersInOrder) {
    d.rest(1, Bob, Sell, 100, 1);
    d.rest(2, Carol, Sell, 100, 1);
    d.rest(3, Dave, Sell, 100, 1);

    d.cancel(2);
    const Result r = d.place(limit(10, Alice, Buy, 100, 5, Tif::Ioc));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 1, 0}, {3, 10, 100, 1, 0}}));
}

TEST_F(ScenarioCancel, ByIdAmongManyOrders) {
    // 40 orders over 10 levels; cancel them in a scrambled order.
    for (OrderId id = 1; id <= 40; ++id) {
        const Side side = id % 2 ? Buy : Sell;
        const int64_t price =
            side == Buy ? 100 - static_cast<int64_t>(id % 10) : 101 + static_cast<int64_t>(id % 10);
        d.rest(id, Bob, side, price, static_cast<int64_t>(id));
    }
    uint32_t left = 40;
    for (OrderId k = 0; k < 40; ++k) {
        const OrderId id = (k * 17) % 40 + 1;  // 17 is coprime with 40: every id once
        const Result r = d.cancel(id);
        EXPECT_EQ(outcome(r), (Out{0, 0, static_cast<int64_t>(id), CancelReason::User})) << "#" << id;
        EXPECT_EQ(r.levels.size(), 1u);
        EXPECT_FALSE(d.has(id));
        EXPECT_EQ(d.book().order_count(), --left);
    }
    EXPECT_EQ(d.ladder(), Ladder{});
    EXPECT_EQ(d.book().level_count(), 0u);
}

TEST_F(ScenarioCancel, CancelledIdCanBeUsedAgain) {
    d.rest(1, Bob, Buy, 100, 2);
    d.cancel(1);
    d.rest(1, Carol, Sell, 105, 4);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 105, 4, 1}}));
}

// ===========================================================================
// Amend.

TEST_F(ScenarioAmend, ReducingQuantityKeepsPriority) {
    d.rest(1, Bob, Buy, 100, 5);
    d.rest(2, Carol, Buy, 100, 5);

    const Result r = d.amend(1, 100, 3);

    EXPECT_TRUE(r.priority_kept);
    EXPECT_EQ(outcome(r), (Out{0, 3, 0}));
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 8, 2}}));
    EXPECT_EQ(d.queue(Bid), (Queue{{1, 100, 3}, {2, 100, 5}}));

    // Proof: the next seller hits #1 first.
    const Result sell = d.place(limit(10, Alice, Sell, 100, 4));
    EXPECT_EQ(fills(sell), (Fills{{1, 10, 100, 3, 0}, {2, 10, 100, 1, 4}}));
}

TEST_F(ScenarioAmend, IncreasingQuantityLosesPriority) {
    d.rest(1, Bob, Buy, 100, 5);
    d.rest(2, Carol, Buy, 100, 5);

    const Result r = d.amend(1, 100, 8);

    EXPECT_FALSE(r.priority_kept);
    EXPECT_EQ(outcome(r), (Out{0, 8, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 13, 2}}));
    EXPECT_EQ(d.queue(Bid), (Queue{{2, 100, 5}, {1, 100, 8}}));

    const Result sell = d.place(limit(10, Alice, Sell, 100, 6));
    EXPECT_EQ(fills(sell), (Fills{{2, 10, 100, 5, 0}, {1, 10, 100, 1, 7}}));
}

TEST_F(ScenarioAmend, NewQuantityIsTheNewRemainingQuantity) {
    d.rest(1, Bob, Sell, 100, 10);
    d.rest(2, Carol, Sell, 100, 10);
    d.place(limit(10, Alice, Buy, 100, 4));  // #1 has 6 left

    EXPECT_REJECT(d.amend(1, 100, 6), NoChange);
    const Result r = d.amend(1, 100, 3);
    EXPECT_TRUE(r.priority_kept);
    EXPECT_EQ(outcome(r), (Out{0, 3, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 13, 2}}));
    EXPECT_EQ(d.queue(Ask), (Queue{{1, 100, 3}, {2, 100, 10}}));
}

TEST_F(ScenarioAmend, PriceChangeRequeuesAtTheBackOfTheNewLevel) {
    d.rest(1, Bob, Buy, 100, 5);
    d.rest(2, Carol, Buy, 101, 5);

    const Result r = d.amend(1, 101, 5);

    EXPECT_FALSE(r.priority_kept);
    EXPECT_EQ(outcome(r), (Out{0, 5, 0}));
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}, {Bid, 101, 10, 2}})) << "old level first";
    EXPECT_EQ(d.queue(Bid), (Queue{{2, 101, 5}, {1, 101, 5}}));

    const Result sell = d.place(limit(10, Alice, Sell, 101, 5));
    EXPECT_EQ(fills(sell), (Fills{{2, 10, 101, 5, 0}}));
}

TEST_F(ScenarioAmend, PriceAndQuantityTogether) {
    d.rest(1, Bob, Sell, 105, 5);
    d.rest(2, Carol, Sell, 104, 5);

    const Result r = d.amend(1, 104, 2);

    EXPECT_FALSE(r.priority_kept);
    EXPECT_EQ(outcome(r), (Out{0, 2, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 105, 0, 0}, {Ask, 104, 7, 2}}));
    EXPECT_EQ(d.queue(Ask), (Queue{{2, 104, 5}, {1, 104, 2}}));
}

TEST_F(ScenarioAmend, PriceChangeThatCrossesTrades) {
    d.rest(1, Alice, Buy, 100, 5);
    d.rest(2, Bob, Sell, 102, 3);
    d.rest(3, Carol, Sell, 104, 3);

    const Result r = d.amend(1, 103, 5);

    EXPECT_EQ(fills(r), (Fills{{2, 1, 102, 3, 0}}));
    EXPECT_EQ(outcome(r), (Out{3, 2, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}, {Ask, 102, 0, 0}, {Bid, 103, 2, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 104, 3, 1}, {Bid, 103, 2, 1}}));
}

TEST_F(ScenarioAmend, PriceChangeThatFillsCompletelyLeavesTheBook) {
    d.rest(1, Alice, Buy, 100, 3);
    d.rest(2, Bob, Sell, 101, 5);

    const Result r = d.amend(1, 101, 3);

    EXPECT_EQ(fills(r), (Fills{{2, 1, 101, 3, 2}}));
    EXPECT_EQ(outcome(r), (Out{3, 0, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}, {Ask, 101, 2, 1}}));
    EXPECT_FALSE(d.has(1));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 2, 1}}));
}

TEST_F(ScenarioAmend, PriceChangeKeepsOwnerPostOnlyAndStp) {
    d.rest(1, Alice, Buy, 99, 5, Stp::CancelOldest, /*post_only=*/true);

    d.amend(1, 98, 4);

    RestingOrder o;
    ASSERT_TRUE(d.book().find(1, o));
    EXPECT_EQ(o.owner, Alice);
    EXPECT_EQ(o.side, Buy);
    EXPECT_EQ(o.price.v, 98);
    EXPECT_EQ(o.qty.v, 4);
    EXPECT_TRUE(o.post_only);
    EXPECT_TRUE(o.stp == Stp::CancelOldest);
}

TEST_F(ScenarioAmend, PriceChangeUsesTheOrdersStpMode) {
    d.rest(1, Alice, Buy, 100, 5);  // default CancelNewest
    d.rest(2, Alice, Sell, 102, 3);

    const Result r = d.amend(1, 102, 5);

    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(outcome(r), (Out{0, 0, 5, CancelReason::SelfTrade}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}}));
    EXPECT_FALSE(d.has(1));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 3, 1}}));
}

TEST_F(ScenarioAmend, PriceChangeWithCancelOldestRemovesOwnOrder) {
    d.rest(1, Alice, Buy, 100, 5, Stp::CancelOldest);
    d.rest(2, Alice, Sell, 102, 3);
    d.rest(3, Bob, Sell, 102, 1);

    const Result r = d.amend(1, 102, 5);

    EXPECT_EQ(stp_removed(r), (Removed{{2, Alice, Sell, 102, 3}}));
    EXPECT_EQ(fills(r), (Fills{{3, 1, 102, 1, 0}}));
    EXPECT_EQ(outcome(r), (Out{1, 4, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}, {Ask, 102, 0, 0}, {Bid, 102, 4, 1}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 102, 4, 1}}));
}

TEST_F(ScenarioAmend, PostOnlyAmendedToACrossingPriceIsRejectedAndUnchanged) {
    d.rest(1, Bob, Buy, 99, 5);
    d.rest(2, Alice, Buy, 99, 5, kDefaultStp, /*post_only=*/true);
    d.rest(3, Carol, Sell, 101, 5);

    EXPECT_REJECT(d.amend(2, 101, 5), PostOnlyWouldTake);
    EXPECT_REJECT(d.amend(2, 102, 5), PostOnlyWouldTake);
    EXPECT_EQ(d.queue(Bid), (Queue{{1, 99, 5}, {2, 99, 5}}));

    const Result r = d.amend(2, 100, 5);
    EXPECT_EQ(outcome(r), (Out{0, 5, 0}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 5, 1}, {Bid, 100, 5, 1}, {Bid, 99, 5, 1}}));
}

TEST_F(ScenarioAmend, UnknownIdIsOrderNotFoundWhateverElseIsWrong) {
    d.rest(1, Bob, Buy, 100, 5);
    EXPECT_REJECT(d.amend(42, 100, 5), OrderNotFound);
    EXPECT_REJECT(d.amend(42, 0, 0), OrderNotFound);
    EXPECT_REJECT(d.amend(0, 100, 5), OrderNotFound);
}

TEST_F(ScenarioAmend, SamePriceAndQuantityIsNoChange) {
    d.rest(1, Bob, Buy, 100, 5);
    EXPECT_REJECT(d.amend(1, 100, 5), NoChange);
}

TEST_F(ScenarioAmend, InvalidPriceAndQuantity) {
    d.rest(1, Bob, Buy, 100, 5);

    EXPECT_REJECT(d.amend(1, 0, 5), InvalidPrice);
    EXPECT_REJECT(d.amend(1, -1, 5), InvalidPrice);
    EXPECT_REJECT(d.amend(1, kMaxPrice + 1, 5), InvalidPrice);
    EXPECT_REJECT(d.amend(1, kInt64Min, 5), InvalidPrice);
    EXPECT_REJECT(d.amend(1, 100, 0), InvalidQuantity);
    EXPECT_REJECT(d.amend(1, 100, -3), InvalidQuantity);
    EXPECT_REJECT(d.amend(1, 100, kMaxQty + 1), InvalidQuantity);
    EXPECT_REJECT(d.amend(1, 0, 0), InvalidPrice) << "price is checked before quantity";
    EXPECT_REJECT(d.amend(1, 100, 0), InvalidQuantity) << "quantity is checked before NoChange";

    const Result r = d.amend(1, kMaxPrice, kMaxQty);
    EXPECT_EQ(outcome(r), (Out{0, kMaxQty, 0}));
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, kMaxPrice, kMaxQty, 1}}));
}

TEST_F(ScenarioAmend, RejectedReentryUndoesTheWholeAmend) {
    Desk small({8, 2});
    small.rest(1, Bob, Buy, 100, 5);
    small.rest(2, Carol, Buy, 100, 5);
    small.rest(3, Dave, Sell, 105, 5);

    // Moving #1 to 98 needs a third level.
    EXPECT_REJECT(small.amend(1, 98, 5), LevelCapacity);
    EXPECT_EQ(small.queue(Bid), (Queue{{1, 100, 5}, {2, 100, 5}}));
    small.expect_valid();
}

TEST_F(ScenarioAmend, PriceChangeFreesTheOldLevelBeforeReentering) {
    Desk small({8, 2});
    small.rest(1, Bob, Buy, 100, 5);
    small.rest(3, Dave, Sell, 105, 5);

    // #1 is alone at 100: leaving frees that level for the new price.
    const Result r = small.amend(1, 98, 5);
    EXPECT_EQ(outcome(r), (Out{0, 5, 0}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}, {Bid, 98, 5, 1}}));
    EXPECT_EQ(small.ladder(), (Ladder{{Ask, 105, 5, 1}, {Bid, 98, 5, 1}}));
    small.expect_valid();
}

TEST_F(ScenarioAmend, IncreaseThatWouldOverflowTheLevelIsRejected) {
    const int64_t last = kInt64Max - 9 * kMaxQty;
    for (OrderId id = 1; id <= 9; ++id) d.rest(id, Bob, Buy, 100, kMaxQty);
    d.rest(10, Bob, Buy, 100, last);
    d.rest(11, Carol, Buy, 99, 1);
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 100, kInt64Max, 10}));

    EXPECT_REJECT(d.amend(10, 100, last + 1), QuantityOverflow);
    EXPECT_REJECT(d.amend(11, 100, 1), QuantityOverflow) << "moving into the full level";
    EXPECT_EQ(d.queue(Bid).back(), (Ord{11, 99, 1}));

    const Result r = d.amend(10, 100, last - 1);
    EXPECT_TRUE(r.priority_kept);
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, kInt64Max - 1, 10}}));
}

// ===========================================================================
// Validation rejects in place().

TEST_F(ScenarioRejects, FirstFailureWinsInTheDocumentedOrder) {
    d.rest(1, Bob, Sell, 100, 5);

    NewOrder o;
    o.id = 0;
    o.owner = Alice;
    o.side = static_cast<Side>(7);
    o.type = static_cast<OrderType>(7);
    o.tif = static_cast<Tif>(7);
    o.stp = static_cast<Stp>(7);
    o.price = Price{5};
    o.qty = Qty{0};
    o.post_only = true;

    EXPECT_REJECT(d.place(o), InvalidOrderId);
    o.id = 1;  // resting already
    EXPECT_REJECT(d.place(o), InvalidSide);
    o.side = Buy;
    EXPECT_REJECT(d.place(o), InvalidType);
    o.type = OrderType::Market;  // with a price
    EXPECT_REJECT(d.place(o), InvalidTif);
    o.tif = Tif::Ioc;
    EXPECT_REJECT(d.place(o), InvalidStp);
    o.stp = Stp::None;
    EXPECT_REJECT(d.place(o), InvalidPrice);
    o.price = Price{0};
    EXPECT_REJECT(d.place(o), InvalidQuantity);
    o.qty = Qty{kMaxQty + 1};
    EXPECT_REJECT(d.place(o), InvalidQuantity);
    o.qty = Qty{10};
    EXPECT_REJECT(d.place(o), InvalidCombination) << "post-only market";
    o.type = OrderType::Limit;
    o.price = Price{100};
    EXPECT_REJECT(d.place(o), InvalidCombination) << "post-only IOC";
    o.tif = Tif::Fok;
    EXPECT_REJECT(d.place(o), InvalidCombination) << "post-only FOK";
    o.tif = Tif::Gtc;
    EXPECT_REJECT(d.place(o), DuplicateOrderId);
    o.id = 10;
    EXPECT_REJECT(d.place(o), PostOnlyWouldTake);
    o.post_only = false;
    o.tif = Tif::Fok;
    EXPECT_REJECT(d.place(o), FokUnfillable);
    o.qty = Qty{5};

    const Result r = d.place(o);
    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 5, 0}}));
    EXPECT_EQ(outcome(r), (Out{5, 0, 0}));
}

TEST_F(ScenarioRejects, PairsOfFaultsReportTheEarlierOne) {
    d.rest(1, Bob, Sell, 100, 5);

    EXPECT_REJECT(d.place(limit(0, Alice, Buy, 100, 0)), InvalidOrderId) << "id 0 wins over a bad qty";
    EXPECT_REJECT(d.place(limit(0, Alice, static_cast<Side>(2), -5, kMaxQty + 1)), InvalidOrderId);
    EXPECT_REJECT(d.place(limit(10, Alice, static_cast<Side>(2), -5, 1)), InvalidSide);
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, 0, 0)), InvalidPrice) << "price before quantity";
    EXPECT_REJECT(d.place(with_stp(limit(10, Alice, Buy, 0, 1), static_cast<Stp>(4))), InvalidStp);
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, 100, 1, static_cast<Tif>(3))), InvalidTif);
    EXPECT_REJECT(d.place(as_post_only(limit(10, Alice, Buy, 100, 0, Tif::Ioc))), InvalidQuantity);
    EXPECT_REJECT(d.place(as_post_only(limit(1, Alice, Buy, 90, 1, Tif::Ioc))), InvalidCombination)
        << "combination before duplicate";
    EXPECT_REJECT(d.place(as_post_only(limit(1, Alice, Buy, 100, 1))), DuplicateOrderId)
        << "duplicate before post-only would take";
    EXPECT_REJECT(d.place(limit(1, Alice, Buy, 100, 50, Tif::Fok)), DuplicateOrderId)
        << "duplicate before FOK unfillable";
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 5, 1}}));
}

TEST_F(ScenarioRejects, LimitPriceBoundaries) {
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, 0, 1)), InvalidPrice);
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, -1, 1)), InvalidPrice);
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, kInt64Min, 1)), InvalidPrice);
    EXPECT_REJECT(d.place(limit(10, Alice, Sell, kMaxPrice + 1, 1)), InvalidPrice);
    EXPECT_REJECT(d.place(limit(10, Alice, Sell, kInt64Max, 1)), InvalidPrice);

    d.rest(10, Alice, Sell, kMaxPrice, 1);
    d.rest(11, Alice, Buy, 1, 1);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, kMaxPrice, 1, 1}, {Bid, 1, 1, 1}}));

    const Result r = d.place(limit(12, Bob, Buy, kMaxPrice, 1));
    EXPECT_EQ(fills(r), (Fills{{10, 12, kMaxPrice, 1, 0}}));
}

TEST_F(ScenarioRejects, MarketOrderWithAPriceIsInvalidPrice) {
    NewOrder o = market(10, Alice, Buy, 1);
    o.price = Price{100};
    EXPECT_REJECT(d.place(o), InvalidPrice);
    o.price = Price{-1};
    EXPECT_REJECT(d.place(o), InvalidPrice);
}

TEST_F(ScenarioRejects, QuantityBoundaries) {
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, 100, 0)), InvalidQuantity);
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, 100, -1)), InvalidQuantity);
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, 100, kMaxQty + 1)), InvalidQuantity);
    EXPECT_REJECT(d.place(limit(10, Alice, Buy, 100, kInt64Max)), InvalidQuantity);
    EXPECT_REJECT(d.place(market(10, Alice, Buy, 0)), InvalidQuantity);
    EXPECT_REJECT(d.place(market(10, Alice, Buy, kMaxQty + 1)), InvalidQuantity);

    d.rest(10, Alice, Buy, 100, kMaxQty);
    const Result r = d.place(market(11, Bob, Sell, kMaxQty));
    EXPECT_EQ(fills(r), (Fills{{10, 11, 100, kMaxQty, 0}}));
}

TEST_F(ScenarioRejects, DuplicateRestingId) {
    d.rest(1, Bob, Sell, 100, 5);

    EXPECT_REJECT(d.place(limit(1, Alice, Buy, 90, 1)), DuplicateOrderId);
    EXPECT_REJECT(d.place(limit(1, Alice, Buy, 100, 1)), DuplicateOrderId) << "even if it would trade";
    EXPECT_REJECT(d.place(limit(1, Alice, Buy, 100, 1, Tif::Ioc)), DuplicateOrderId);
    EXPECT_REJECT(d.place(market(1, Alice, Buy, 1)), DuplicateOrderId);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 5, 1}}));

    // Only resting ids count: a taker id that never rested is free again,
    // and so is the id of a maker that was filled.
    d.place(limit(10, Alice, Buy, 100, 2, Tif::Ioc));
    d.rest(10, Alice, Buy, 90, 1);
    d.place(limit(11, Carol, Buy, 100, 3));
    d.rest(1, Dave, Buy, 91, 1);
    EXPECT_EQ(d.queue(Bid), (Queue{{1, 91, 1}, {10, 90, 1}}));
}

// ===========================================================================
// Capacity rejects of the resting remainder.

TEST_F(ScenarioCapacity, NoFreeOrderSlotRejectsOnlyARestingRemainder) {
    Desk small({2, 8});
    small.rest(1, Bob, Buy, 99, 5);
    small.rest(2, Bob, Sell, 101, 5);

    EXPECT_REJECT(small.place(limit(3, Alice, Buy, 98, 1)), OrderCapacity);
    EXPECT_REJECT(small.place(limit(3, Alice, Buy, 99, 1)), OrderCapacity) << "existing level";
    EXPECT_EQ(outcome(small.place(limit(3, Alice, Buy, 98, 1, Tif::Ioc))), (Out{0, 0, 1, CancelReason::Ioc}));
    EXPECT_EQ(outcome(small.place(limit(4, Alice, Buy, 101, 2))), (Out{2, 0, 0})) << "fully filled";

    // Filling #2 (3 left) frees its slot for the remainder.
    const Result r = small.place(limit(5, Alice, Buy, 101, 5));
    EXPECT_EQ(fills(r), (Fills{{2, 5, 101, 3, 0}}));
    EXPECT_EQ(outcome(r), (Out{3, 2, 0}));
    EXPECT_EQ(small.ladder(), (Ladder{{Bid, 101, 2, 1}, {Bid, 99, 5, 1}}));
    small.expect_valid();
}

TEST_F(ScenarioCapacity, NoFreeLevelSlotRejectsANewLevelOnly) {
    Desk small({8, 2});
    small.rest(1, Bob, Buy, 99, 5);
    small.rest(2, Bob, Sell, 101, 5);

    EXPECT_REJECT(small.place(limit(3, Alice, Buy, 98, 1)), LevelCapacity);
    EXPECT_REJECT(small.place(limit(3, Alice, Sell, 102, 1)), LevelCapacity);
    small.rest(3, Alice, Buy, 99, 1);

    // Emptying the 101 ask level frees a level slot for the remainder.
    const Result r = small.place(limit(4, Alice, Buy, 102, 7));
    EXPECT_EQ(fills(r), (Fills{{2, 4, 101, 5, 0}}));
    EXPECT_EQ(outcome(r), (Out{5, 2, 0}));
    EXPECT_EQ(small.ladder(), (Ladder{{Bid, 102, 2, 1}, {Bid, 99, 6, 2}}));
    small.expect_valid();
}

TEST_F(ScenarioCapacity, OrderCapacityIsCheckedBeforeLevelCapacity) {
    Desk small({2, 2});
    small.rest(1, Bob, Buy, 99, 5);
    small.rest(2, Bob, Sell, 101, 5);
    EXPECT_REJECT(small.place(limit(3, Alice, Buy, 98, 1)), OrderCapacity);
    small.expect_valid();
}

TEST_F(ScenarioCapacity, LevelTotalMayReachButNotExceedInt64Max) {
    const int64_t last = kInt64Max - 9 * kMaxQty;
    for (OrderId id = 1; id <= 9; ++id) d.rest(id, Bob, Buy, 100, kMaxQty);
    d.rest(10, Bob, Buy, 100, last);
    EXPECT_EQ(d.ladder(), (Ladder{{Bid, 100, kInt64Max, 10}}));

    EXPECT_REJECT(d.place(limit(11, Alice, Buy, 100, 1)), QuantityOverflow);
    d.rest(11, Alice, Buy, 99, 1);

    const Result r = d.place(market(12, Carol, Sell, 2));
    EXPECT_EQ(fills(r), (Fills{{1, 12, 100, 2, kMaxQty - 2}}));
    EXPECT_EQ(outcome(d.place(limit(13, Alice, Buy, 100, 2))), (Out{0, 2, 0}));
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 100, kInt64Max, 11}));
}

// ===========================================================================
// Sequence numbers.

TEST_F(ScenarioSequence, AdvancesByOnePerAcceptedCommandOnly) {
    EXPECT_EQ(d.seq(), 0u);
    EXPECT_EQ(d.place(limit(1, Bob, Sell, 100, 5)).seq, 1u);             // rests
    EXPECT_EQ(d.place(limit(2, Alice, Buy, 100, 1)).seq, 2u);            // trades
    EXPECT_EQ(d.place(limit(3, Alice, Buy, 90, 1, Tif::Ioc)).seq, 3u);   // nothing happens
    EXPECT_EQ(d.place(market(4, Alice, Sell, 1)).seq, 4u);               // empty side
    EXPECT_EQ(d.place(limit(5, Bob, Buy, 100, 1)).seq, 5u);              // STP, no trade
    EXPECT_EQ(d.place(limit(6, Alice, Buy, 100, 9, Tif::Fok)).seq, 5u);  // rejected
    EXPECT_EQ(d.place(limit(0, Alice, Buy, 100, 1)).seq, 5u);            // rejected
    EXPECT_EQ(d.cancel(42).seq, 5u);                                     // rejected
    EXPECT_EQ(d.amend(1, 100, 4).seq, 5u);                               // NoChange
    EXPECT_EQ(d.amend(1, 100, 3).seq, 6u);
    EXPECT_EQ(d.amend(1, 101, 3).seq, 7u);
    EXPECT_EQ(d.cancel(1).seq, 8u);
    EXPECT_EQ(d.seq(), 8u);
}

TEST_F(ScenarioSequence, LoadRestingAndSetSeqDoNotCountAsCommands) {
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 100, 5)), None);
    EXPECT_REJECT(d.load(stored(2, Bob, Buy, 99, 5)), None);
    EXPECT_EQ(d.seq(), 0u);

    d.book().set_seq(41);
    EXPECT_EQ(d.seq(), 41u);
    d.expect_valid();

    EXPECT_REJECT(d.load(stored(3, Bob, Buy, 98, 5)), None);
    EXPECT_EQ(d.seq(), 41u);
    EXPECT_EQ(d.cancel(77).seq, 41u) << "a reject reports the current sequence";
    EXPECT_EQ(d.place(limit(10, Alice, Buy, 100, 1)).seq, 42u);
}

// ===========================================================================
// load_resting.

TEST_F(ScenarioLoad, RebuildsTimePriorityInCallOrder) {
    EXPECT_REJECT(d.load(stored(3, Bob, Sell, 100, 1)), None);
    EXPECT_REJECT(d.load(stored(1, Carol, Sell, 100, 2)), None);
    EXPECT_REJECT(d.load(stored(4, Bob, Sell, 101, 4)), None);
    EXPECT_REJECT(d.load(stored(2, Dave, Sell, 100, 3)), None);
    EXPECT_REJECT(d.load(stored(5, Bob, Buy, 99, 5)), None);

    EXPECT_EQ(d.queue(Ask), (Queue{{3, 100, 1}, {1, 100, 2}, {2, 100, 3}, {4, 101, 4}}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 101, 4, 1}, {Ask, 100, 6, 3}, {Bid, 99, 5, 1}}));
    EXPECT_EQ(d.seq(), 0u);

    const Result r = d.place(limit(10, Alice, Buy, 101, 5));
    EXPECT_EQ(fills(r), (Fills{{3, 10, 100, 1, 0}, {1, 10, 100, 2, 0}, {2, 10, 100, 2, 1}}));
    EXPECT_EQ(r.seq, 1u);
}

TEST_F(ScenarioLoad, KeepsOwnerPostOnlyAndStp) {
    EXPECT_REJECT(d.load(stored(1, Alice, Buy, 99, 5, Stp::CancelBoth, /*post_only=*/true)), None);
    EXPECT_REJECT(d.load(stored(2, Bob, Sell, 101, 5, Stp::None)), None);

    RestingOrder o;
    ASSERT_TRUE(d.book().find(1, o));
    EXPECT_EQ(o.owner, Alice);
    EXPECT_EQ(o.side, Buy);
    EXPECT_EQ(o.price.v, 99);
    EXPECT_EQ(o.qty.v, 5);
    EXPECT_TRUE(o.post_only);
    EXPECT_TRUE(o.stp == Stp::CancelBoth);

    // The loaded post-only flag is honoured by amend.
    EXPECT_REJECT(d.amend(1, 101, 5), PostOnlyWouldTake);
}

TEST_F(ScenarioLoad, RejectsAnOrderThatWouldCross) {
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 100, 5)), None);
    EXPECT_REJECT(d.load(stored(2, Bob, Buy, 100, 5)), WouldCross) << "equal price crosses";
    EXPECT_REJECT(d.load(stored(2, Bob, Buy, 101, 5)), WouldCross);
    EXPECT_REJECT(d.load(stored(2, Bob, Buy, 99, 5)), None);
    EXPECT_REJECT(d.load(stored(3, Bob, Sell, 99, 5)), WouldCross);
    EXPECT_REJECT(d.load(stored(3, Bob, Sell, 98, 5)), WouldCross);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 5, 1}, {Bid, 99, 5, 1}}));
}

TEST_F(ScenarioLoad, FirstFailureWinsInTheDocumentedOrder) {
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, 100, 5)), None);

    RestingOrder o = stored(0, Alice, static_cast<Side>(9), 0, 0, static_cast<Stp>(9));
    EXPECT_REJECT(d.load(o), InvalidOrderId);
    o.id = 1;  // resting already
    EXPECT_REJECT(d.load(o), InvalidSide);
    o.side = Buy;
    EXPECT_REJECT(d.load(o), InvalidStp);
    o.stp = Stp::None;
    EXPECT_REJECT(d.load(o), InvalidPrice);
    o.price = Price{kMaxPrice + 1};
    EXPECT_REJECT(d.load(o), InvalidPrice);
    o.price = Price{100};  // would cross
    EXPECT_REJECT(d.load(o), InvalidQuantity);
    o.qty = Qty{kMaxQty + 1};
    EXPECT_REJECT(d.load(o), InvalidQuantity);
    o.qty = Qty{5};
    EXPECT_REJECT(d.load(o), DuplicateOrderId);
    o.id = 2;
    EXPECT_REJECT(d.load(o), WouldCross);
    o.price = Price{99};
    EXPECT_REJECT(d.load(o), None);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 100, 5, 1}, {Bid, 99, 5, 1}}));
}

TEST_F(ScenarioLoad, AcceptsTheMaximumPriceAndQuantity) {
    EXPECT_REJECT(d.load(stored(1, Bob, Sell, kMaxPrice, kMaxQty)), None);
    EXPECT_REJECT(d.load(stored(2, Bob, Buy, 1, kMaxQty)), None);
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, kMaxPrice, kMaxQty, 1}, {Bid, 1, kMaxQty, 1}}));
}

TEST_F(ScenarioLoad, CapacityRejects) {
    Desk orders_full({2, 4});
    EXPECT_REJECT(orders_full.load(stored(1, Bob, Sell, 100, 5)), None);
    EXPECT_REJECT(orders_full.load(stored(2, Bob, Buy, 99, 5)), None);
    EXPECT_REJECT(orders_full.load(stored(3, Bob, Buy, 99, 5)), OrderCapacity);

    Desk levels_full({4, 2});
    EXPECT_REJECT(levels_full.load(stored(1, Bob, Sell, 100, 5)), None);
    EXPECT_REJECT(levels_full.load(stored(2, Bob, Buy, 99, 5)), None);
    EXPECT_REJECT(levels_full.load(stored(3, Bob, Buy, 98, 5)), LevelCapacity);
    EXPECT_REJECT(levels_full.load(stored(3, Bob, Buy, 99, 5)), None);

    Desk both_full({2, 2});
    EXPECT_REJECT(both_full.load(stored(1, Bob, Sell, 100, 5)), None);
    EXPECT_REJECT(both_full.load(stored(2, Bob, Buy, 99, 5)), None);
    EXPECT_REJECT(both_full.load(stored(3, Bob, Buy, 98, 5)), OrderCapacity);

    const int64_t last = kInt64Max - 9 * kMaxQty;
    for (OrderId id = 1; id <= 9; ++id) EXPECT_REJECT(d.load(stored(id, Bob, Buy, 100, kMaxQty)), None);
    EXPECT_REJECT(d.load(stored(10, Bob, Buy, 100, last + 1)), QuantityOverflow);
    EXPECT_REJECT(d.load(stored(10, Bob, Buy, 100, last)), None);
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 100, kInt64Max, 10}));
}

// ===========================================================================
// best().

TEST_F(ScenarioBest, EmptySidesHaveNoBest) {
    LevelView lv{};
    EXPECT_FALSE(d.book().best(Buy, lv));
    EXPECT_FALSE(d.book().best(Sell, lv));
    d.rest(1, Bob, Buy, 100, 5);
    EXPECT_TRUE(d.book().best(Buy, lv));
    EXPECT_FALSE(d.book().best(Sell, lv));
}

TEST_F(ScenarioBest, FollowsInsertsAndRemovals) {
    d.rest(1, Bob, Buy, 100, 5);
    d.rest(2, Bob, Buy, 98, 5);
    d.rest(3, Bob, Buy, 99, 5);
    d.rest(4, Carol, Buy, 100, 2);
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 100, 7, 2}));

    d.rest(5, Bob, Buy, 101, 1);
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 101, 1, 1}));
    d.cancel(5);
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 100, 7, 2}));
    d.cancel(3);  // a level behind the best
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 100, 7, 2}));

    d.place(market(10, Alice, Sell, 7));  // empties 100
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 98, 5, 1}));
    EXPECT_EQ(d.book().level_count(Bid), 1u);
    d.cancel(2);
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 0, 0, 0}));
    EXPECT_EQ(d.book().level_count(Bid), 0u);
}

TEST_F(ScenarioBest, AskSideAfterSweepsAndAmends) {
    d.rest(1, Bob, Sell, 103, 1);
    d.rest(2, Bob, Sell, 101, 1);
    d.rest(3, Bob, Sell, 102, 1);
    d.rest(4, Bob, Sell, 104, 1);
    EXPECT_EQ(d.top(Ask), (Lv{Ask, 101, 1, 1}));
    EXPECT_EQ(d.book().level_count(Ask), 4u);

    d.place(limit(10, Alice, Buy, 102, 2));  // removes 101 and 102
    EXPECT_EQ(d.top(Ask), (Lv{Ask, 103, 1, 1}));
    d.amend(1, 105, 1);  // the best level moves away
    EXPECT_EQ(d.top(Ask), (Lv{Ask, 104, 1, 1}));
    d.amend(1, 100, 1);  // and comes back better
    EXPECT_EQ(d.top(Ask), (Lv{Ask, 100, 1, 1}));
    EXPECT_EQ(d.book().level_count(Ask), 2u);
    EXPECT_EQ(d.top(Bid), (Lv{Bid, 0, 0, 0}));
}

// ===========================================================================
// state_hash().

// Builds the same small book on any desk.
void build_reference_book(Desk& x) {
    x.rest(1, Bob, Buy, 100, 5);
    x.rest(2, Carol, Buy, 100, 3);
    x.rest(3, Dave, Sell, 102, 4);
    x.rest(4, Bob, Sell, 103, 1);
    x.place(limit(5, Alice, Buy, 102, 2));
    x.amend(2, 101, 3);
    x.cancel(4);
}

TEST_F(ScenarioHash, EqualForTheSameLogicalBookWhateverTheSlotLayout) {
    Desk a;
    Desk b;
    // a hands out and frees 20 order slots and several level slots first;
    // b only advances its sequence by the same amount.
    for (OrderId id = 100; id < 120; ++id)
        a.rest(id, Bob, id % 2 ? Buy : Sell,
               id % 2 ? 90 - static_cast<int64_t>(id % 7) : 110 + static_cast<int64_t>(id % 5), 1);
    for (OrderId k = 0; k < 20; ++k) a.cancel(100 + (k * 7) % 20);
    for (OrderId id = 100; id < 140; ++id) b.place(limit(id, Bob, Buy, 100, 1, Tif::Ioc));
    ASSERT_EQ(a.seq(), b.seq());
    EXPECT_EQ(a.hash(), b.hash()) << "both books are empty at the same sequence";

    build_reference_book(a);
    build_reference_book(b);

    EXPECT_EQ(a.ladder(), b.ladder());
    EXPECT_EQ(a.queue(Buy), b.queue(Buy));
    EXPECT_EQ(a.queue(Sell), b.queue(Sell));
    EXPECT_EQ(a.seq(), b.seq());
    EXPECT_EQ(a.hash(), b.hash());
    ASSERT_EQ(a.bytes(), b.bytes());
    EXPECT_NE(std::memcmp(a.region(), b.region(), a.bytes()), 0) << "the layouts were meant to differ";
}

TEST_F(ScenarioHash, DiffersWhenAQuantityDiffers) {
    Desk a;
    Desk b;
    build_reference_book(a);
    build_reference_book(b);
    ASSERT_EQ(a.hash(), b.hash());

    a.rest(20, Bob, Sell, 110, 5);
    b.rest(20, Bob, Sell, 110, 6);
    EXPECT_NE(a.hash(), b.hash());
}

TEST_F(ScenarioHash, DiffersWhenTimePriorityDiffers) {
    Desk a;
    Desk b;
    a.rest(1, Bob, Buy, 100, 5);
    a.rest(2, Bob, Buy, 100, 5);
    b.rest(2, Bob, Buy, 100, 5);
    b.rest(1, Bob, Buy, 100, 5);
    EXPECT_EQ(a.ladder(), b.ladder());
    EXPECT_NE(a.hash(), b.hash());
}

TEST_F(ScenarioHash, IncludesTheSequence) {
    Desk a;
    Desk b;
    build_reference_book(a);
    build_reference_book(b);
    b.book().set_seq(b.seq() + 1);
    EXPECT_NE(a.hash(), b.hash());
}

TEST_F(ScenarioHash, LoadedBookEqualsThePlacedBook) {
    Desk placed;
    build_reference_book(placed);

    Desk loaded;
    for (Side s : {Sell, Buy}) {
        std::vector<RestingOrder> os;
        placed.book().orders(s, os);
        for (const RestingOrder& o : os) EXPECT_REJECT(loaded.load(o), None);
    }
    loaded.book().set_seq(placed.seq());
    loaded.book().set_last_price(placed.book().last_price());

    EXPECT_EQ(loaded.ladder(), placed.ladder());
    EXPECT_EQ(loaded.hash(), placed.hash());
}

// ===========================================================================
// What a result reports.

TEST_F(ScenarioEvents, OneLevelChangePerTouchedLevelInFirstTouchedOrder) {
    d.rest(1, Bob, Sell, 100, 2);
    d.rest(2, Carol, Sell, 100, 2);
    d.rest(3, Dave, Sell, 101, 3);
    d.rest(4, Bob, Sell, 102, 3);

    const Result r = d.place(limit(10, Alice, Buy, 101, 10));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 2, 0}, {2, 10, 100, 2, 0}, {3, 10, 101, 3, 0}}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 0, 0}, {Ask, 101, 0, 0}, {Bid, 101, 3, 1}}));
    EXPECT_EQ(outcome(r), (Out{7, 3, 0}));
    EXPECT_EQ(d.ladder(), (Ladder{{Ask, 102, 3, 1}, {Bid, 101, 3, 1}}));
}

TEST_F(ScenarioEvents, LevelTouchedBySelfTradePreventionAndAFillIsReportedOnce) {
    d.rest(1, Alice, Sell, 100, 2);
    d.rest(2, Bob, Sell, 100, 3);

    const Result r = d.place(with_stp(limit(10, Alice, Buy, 100, 2), Stp::CancelOldest));

    EXPECT_EQ(stp_removed(r), (Removed{{1, Alice, Sell, 100, 2}}));
    EXPECT_EQ(fills(r), (Fills{{2, 10, 100, 2, 1}}));
    EXPECT_EQ(level_changes(r), (Changes{{Ask, 100, 1, 1}}));
}

TEST_F(ScenarioEvents, AmendToABetterPriceReportsTheOldLevelFirst) {
    d.rest(1, Bob, Sell, 103, 5);
    d.rest(2, Bob, Sell, 101, 5);

    const Result r = d.amend(1, 100, 5);

    EXPECT_EQ(level_changes(r), (Changes{{Ask, 103, 0, 0}, {Ask, 100, 5, 1}}));
}

TEST_F(ScenarioEvents, ReusedResultIsClearedByARejectedCommand) {
    d.rest(1, Bob, Sell, 100, 5);
    d.rest(2, Alice, Sell, 101, 5);

    Result r;
    ASSERT_TRUE(d.book().place(with_stp(limit(10, Alice, Buy, 101, 6), Stp::CancelOldest), r));
    ASSERT_FALSE(r.fills.empty());
    ASSERT_FALSE(r.levels.empty());
    ASSERT_FALSE(r.stp_cancelled.empty());
    const uint64_t seq = d.seq();

    EXPECT_FALSE(d.book().place(limit(11, Carol, Buy, 100, 1, Tif::Fok), r));
    EXPECT_REJECT(r, FokUnfillable);
    EXPECT_TRUE(r.status == Status::Rejected);
    EXPECT_EQ(r.seq, seq);
    EXPECT_EQ(fills(r), Fills{});
    EXPECT_EQ(level_changes(r), Changes{});
    EXPECT_EQ(stp_removed(r), Removed{});
    EXPECT_EQ(outcome(r), (Out{0, 0, 0}));
}

TEST_F(ScenarioEvents, FillsAreInExecutionOrderWithMakersRemaining) {
    d.rest(1, Bob, Buy, 100, 1);
    d.rest(2, Carol, Buy, 100, 4);
    d.rest(3, Dave, Buy, 99, 6);

    const Result r = d.place(market(10, Alice, Sell, 8));

    EXPECT_EQ(fills(r), (Fills{{1, 10, 100, 1, 0}, {2, 10, 100, 4, 0}, {3, 10, 99, 3, 3}}));
    EXPECT_EQ(level_changes(r), (Changes{{Bid, 100, 0, 0}, {Bid, 99, 3, 1}}));
}

}  // namespace
