// A seeded random command stream over a narrow price band: limit and market
// orders with every TIF and STP mode, post-only, icebergs, stop orders
// (stop-limit and stop-market, any TIF, their stop prices just beyond the
// last trade price so that trades trigger them, often in cascades; many
// stop-limit GTC orders are icebergs, and some stops carry a display they
// may not: on a stop-market or IOC/FOK stop, too many tips, above the
// quantity), cancels and amends of live, pending and unknown ids (an amend of
// a pending stop sometimes moves its stop price: mostly just beyond the last
// price, sometimes to one the last price has reached, to its own, or out of
// range; rarely an amend of an order in the book asks for one; an amend of a
// pending iceberg stop sometimes takes its quantity below its display, to
// exactly kMaxIcebergParts tips or beyond), duplicates and invalid input, and
// load_resting (the path that rebuilds a book from storage; it may cross or
// duplicate, and loads pending stops too, icebergs among them, some with a
// display above their quantity as an amend leaves it). With `huge`, half of
// the quantities are near kMaxQty and most orders buy, so level totals
// overflow.
// Shared by the differential and undo tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "types.h"

namespace pgx::test {

using namespace pgx::core;

struct Command {
    enum Kind { Place, Cancel, Amend, Load } kind = Place;
    NewOrder order;         // Place
    RestingOrder resting;   // Load
    OrderId id = 0;  // Cancel, Amend
    Price price{0};  // Amend
    Qty qty{0};      // Amend
    Price stop{0};   // Amend: the new stop price (0: keep it)

    std::string describe() const {
        std::ostringstream s;
        if (kind == Place)
            s << "place{id=" << order.id << " owner=" << order.owner << " side=" << int(order.side)
              << " type=" << int(order.type) << " tif=" << int(order.tif) << " price=" << order.price.v
              << " qty=" << order.qty.v << " post_only=" << order.post_only << " stp=" << int(order.stp)
              << " display=" << order.display.v << " stop=" << order.stop.v << "}";
        else if (kind == Cancel)
            s << "cancel{id=" << id << "}";
        else if (kind == Amend)
            s << "amend{id=" << id << " price=" << price.v << " qty=" << qty.v << " stop=" << stop.v << "}";
        else
            s << "load{id=" << resting.id << " owner=" << resting.owner << " side=" << int(resting.side)
              << " price=" << resting.price.v << " qty=" << resting.qty.v
              << " post_only=" << resting.post_only << " stp=" << int(resting.stp)
              << " display=" << resting.display.v << " visible=" << resting.visible.v
              << " stop=" << resting.stop.v << " type=" << int(resting.type) << " tif=" << int(resting.tif)
              << "}";
        return s.str();
    }
};

// Applies one stream command to any book with the Book command interface
// (the real book or the reference book).
template <class B>
void apply_command(B& b, const Command& c, Result& r) {
    switch (c.kind) {
        case Command::Place: b.place(c.order, r); break;
        case Command::Cancel: b.cancel(c.id, r); break;
        case Command::Amend: b.amend(c.id, c.price, c.qty, r, c.stop); break;
        case Command::Load: {
            r.clear();
            const Reject reject = b.load_resting(c.resting);
            if (reject != Reject::None) r.status = Status::Rejected, r.reject = reject;
            break;
        }
    }
}

class RandomStream {
public:
    // `stop_pct`: the percentage of new orders (and of loads) that are stop orders.
    RandomStream(uint64_t seed, int64_t lo, int64_t hi, int owners, bool huge = false, int stop_pct = 8)
        : rng_(seed), lo_(lo), hi_(hi), owners_(owners), huge_(huge), stop_pct_(stop_pct) {}

    // The next command; `live` are the ids resting right now.
    Command next(const std::vector<OrderId>& live) { return next(live, none_, 0); }

    // The same, knowing the pending stop orders' ids and the last trade price
    // (0: none, or unknown): cancels and amends then target pending stops too,
    // and new stops mostly get a stop price the last price has not reached.
    Command next(const std::vector<OrderId>& live, const std::vector<OrderId>& pending, int64_t last_price) {
        stops_ = nullptr;
        return next_command(live, pending, last_price);
    }

    // The same, given the pending stop orders themselves: an amend that moves
    // one's stop price then knows its side and its own stop price.
    Command next(const std::vector<OrderId>& live, const std::vector<RestingOrder>& pending_stops,
                 int64_t last_price) {
        pending_ids_.clear();
        for (const RestingOrder& o : pending_stops) pending_ids_.push_back(o.id);
        stops_ = &pending_stops;
        return next_command(live, pending_ids_, last_price);
    }

private:
    Command next_command(const std::vector<OrderId>& live, const std::vector<OrderId>& pending,
                         int64_t last_price) {
        live_ = &live;
        pending_ = &pending;
        last_ = last_price;
        Command c;
        if (pick(100) < 3) {
            c.kind = Command::Load;
            c.resting = random_resting();
            return c;
        }
        const int k = pick(100);
        if (k < 55) {
            c.kind = Command::Place;
            c.order = random_order();
        } else if (k < 75) {
            c.kind = Command::Cancel;
            c.id = some_id();
        } else {
            c.kind = Command::Amend;
            c.id = some_id();
            const int a = pick(10);
            c.price = Price{a < 6 ? 0 : price()};  // 0 = keep; filled in by the caller
            c.qty = Qty{quantity()};
            if (const RestingOrder* p = pending_stop(c.id); p && p->display.v > 0)
                c.qty = Qty{iceberg_stop_quantity(p->display.v, c.qty.v)};
            if (pick(50) == 0) c.qty = Qty{-pick(3)};
            if (pick(60) == 0) c.price = Price{kMaxPrice + 1};
            c.stop = Price{new_stop(c.id)};
        }
        return c;
    }

    // The pending stop order `id`, if it is one and the stops are known.
    const RestingOrder* pending_stop(OrderId id) const {
        if (!stops_) return nullptr;
        for (const RestingOrder& o : *stops_)
            if (o.id == id) return &o;
        return nullptr;
    }

    // The new quantity of an amend of a pending iceberg stop with tip
    // `display` (`qty`: the one drawn for any amend): sometimes below its
    // display (kept: it rests whole), exactly kMaxIcebergParts tips (the most
    // it may have) or one lot more (InvalidDisplay).
    int64_t iceberg_stop_quantity(int64_t display, int64_t qty) {
        const bool fits = display <= (kMaxQty - 1) / kMaxIcebergParts;  // 100 tips and a lot more fit kMaxQty
        switch (pick(8)) {
            case 0:
            case 1:
                return display > 1 ? 1 + pick(display - 1) : qty;
            case 2:
                return fits ? display * kMaxIcebergParts : qty;
            case 3:
                return fits ? display * kMaxIcebergParts + 1 + pick(std::min<int64_t>(display, 50)) : qty;
            default:
                return qty;
        }
    }

    // The new stop price of an amend of `id` (0: keep its own). For a pending
    // stop order, 2 times in 5 a move: mostly to a stop price the last trade
    // price has not reached (another pending stop's, or a few ticks beyond
    // it; with huge quantities one or two, where huge stops pile up),
    // sometimes to one it has (StopWouldTrigger), to its own (no move), to
    // the far end or out of range. For any other id rarely one
    // (InvalidStopPrice for an order in the book).
    int64_t new_stop(OrderId id) {
        const RestingOrder* p = nullptr;
        bool pending = false;
        for (size_t i = 0; i < pending_->size() && !pending; ++i)
            if ((*pending_)[i] == id) {
                pending = true;
                if (stops_) p = &(*stops_)[i];
            }
        if (!pending) return pick(40) == 0 ? (pick(4) == 0 ? -1 - pick(3) : price()) : 0;
        if (pick(5) < 3) return 0;
        const Side s = p ? p->side : pick(2) ? Side::Buy : Side::Sell;  // without the order, a guess
        const int64_t k = pick(20);
        if (k < 3 && p) {  // behind the stops waiting at another pending stop's stop price (of its side)
            const RestingOrder& q =
                (*stops_)[static_cast<size_t>(pick(static_cast<int64_t>(stops_->size())))];
            if (q.side == s) return q.stop.v;
        }
        if (k < 12) {  // beyond the last price
            if (last_ <= 0) return price();
            const int64_t d = 1 + pick(huge_ ? 2 : 4);
            return std::max<int64_t>(1, s == Side::Buy ? last_ + d : last_ - d);
        }
        if (k < 15) {  // reached by the last price (before any trade, any stop waits)
            if (last_ <= 0) return price();
            const int64_t d = pick(3);
            return std::max<int64_t>(1, s == Side::Buy ? last_ - d : last_ + d);
        }
        if (k < 17) return p ? p->stop.v : price();  // its own: an amend without a move
        if (k == 17) return kMaxPrice;
        return pick(2) ? -1 - pick(3) : kMaxPrice + 1 + pick(3);
    }

    int64_t pick(int64_t n) { return static_cast<int64_t>(rng_() % static_cast<uint64_t>(n)); }
    OrderId one_of(const std::vector<OrderId>& ids) {
        return ids[static_cast<size_t>(pick(static_cast<int64_t>(ids.size())))];
    }

    // A stop price for a stop order of side `s`: mostly one the last trade
    // price has not reached yet (a few ticks beyond it; with huge quantities
    // one tick, so that huge stops pile up at one stop price), sometimes one
    // it has (StopWouldTrigger); anywhere in the band while nothing has traded.
    int64_t stop_price(Side s) {
        if (last_ <= 0) return price();
        const int64_t d = pick(12) == 0 ? -pick(3) : huge_ ? 1 : 1 + pick(5);
        return std::max<int64_t>(1, s == Side::Buy ? last_ + d : last_ - d);
    }
    // A stop-limit order's limit price: around its stop, mostly beyond it.
    // With huge quantities inside the band, and for half of the buys at its
    // bottom, under the trade that triggers them: they rest on the bids that
    // pile up there, whose totals overflow.
    int64_t stop_limit(Side s, int64_t stop, int64_t off) {
        const int64_t p = std::max<int64_t>(1, s == Side::Buy ? stop + off : stop - off);
        if (!huge_) return p;
        return s == Side::Buy && pick(2) == 0 ? lo_ : std::min(std::max(p, lo_), hi_);
    }
    int64_t price() { return lo_ + pick(hi_ - lo_ + 1); }
    int64_t quantity() { return huge_ && pick(2) == 0 ? kMaxQty - pick(1000) : 1 + pick(20); }
    // An iceberg's tip for an order of qty > 0 (0: none). With huge
    // quantities only huge orders get one, a large fraction of the order:
    // a tip of a few lots on 10^18 would take a taker 10^17 refills.
    int64_t tip(int64_t qty) {
        if (!huge_) return 1 + pick(std::min<int64_t>(qty, 6));
        return qty > 1000 ? qty / (2 + pick(3)) : 0;  // (kMaxIcebergParts allows 100 tips)
    }

    // A quantity and display with one tip too many (or more): InvalidDisplay.
    void too_many_tips(Qty& qty, Qty& display) {
        if (huge_) {
            qty = Qty{kMaxQty - pick(1000)};
            display = Qty{qty.v / kMaxIcebergParts - 1 - pick(1000)};
        } else {
            display = Qty{1 + pick(4)};
            qty = Qty{display.v * kMaxIcebergParts + 1 + pick(display.v * 20)};
        }
    }

    // An order as storage would hand it back: new id (sometimes a resting
    // one), any price in the band (it may cross), rarely invalid.
    RestingOrder random_resting() {
        RestingOrder o;
        o.id = pick(10) == 0 && !live_->empty() ? (*live_)[static_cast<size_t>(pick(static_cast<int64_t>(live_->size())))]
                                                 : ++next_id_;
        if (!pending_->empty() && pick(40) == 0) o.id = one_of(*pending_);  // a duplicate of a pending stop
        o.owner = 1 + static_cast<OwnerId>(pick(owners_));
        o.side = pick(2) ? Side::Buy : Side::Sell;
        o.price = Price{price()};
        o.qty = Qty{quantity()};
        o.post_only = pick(8) == 0;
        o.stp = static_cast<Stp>(pick(4));
        if (o.qty.v > 1 && pick(5) == 0 && tip(o.qty.v) > 0) {  // an iceberg, its tip fresh or partly taken
            o.display = Qty{tip(o.qty.v)};
            o.visible = Qty{pick(2) ? 0 : 1 + pick(o.display.v)};
        } else if (pick(4) == 0) {
            o.visible = o.qty;  // said explicitly: all of it
        }
        if (pick(25) == 0) {  // the type and tif of an order for the book are not read
            o.type = static_cast<OrderType>(pick(3));
            o.tif = static_cast<Tif>(pick(4));
        }
        if (pick(100) < stop_pct_) {  // a pending stop order, as storage would hand it back
            o.stop = Price{stop_price(o.side)};
            o.type = pick(3) == 0 ? OrderType::Market : OrderType::Limit;
            o.tif = static_cast<Tif>(pick(3));
            o.price = Price{o.type == OrderType::Market ? 0 : stop_limit(o.side, o.stop.v, pick(5) - 1)};
            o.post_only = false;
            o.display = Qty{0};
            // A stop-limit GTC iceberg; sometimes with a display above its quantity, as an amend leaves it.
            if (o.type == OrderType::Limit && o.tif == Tif::Gtc && pick(3) == 0) {
                o.display = Qty{tip(o.qty.v)};
                if (o.display.v > 0 && pick(4) == 0)
                    o.display = Qty{std::min(kMaxQty, o.qty.v + 1 + pick(5))};
            }
            o.visible = Qty{pick(3) == 0 ? pick(5) : 0};  // not read
            switch (pick(30)) {
                case 0:
                    o.post_only = true;
                    break;
                case 1:
                    o.display = Qty{pick(2) ? 1 : -1};
                    break;
                case 2:
                    o.type = static_cast<OrderType>(2 + pick(10));
                    break;
                case 3:
                    o.tif = static_cast<Tif>(3 + pick(10));
                    break;
                case 4:
                    o.stop = Price{kMaxPrice + 1};
                    break;
                case 5:
                    o.price = Price{o.type == OrderType::Market ? 5 : 0};
                    break;
                case 6:
                    o.stop = Price{-1 - pick(3)};
                    break;  // stop <= 0: a plain order, its stop not read
                case 7:  // a display on a stop-market or an IOC/FOK stop (InvalidCombination)
                    o.display = Qty{std::max<int64_t>(1, o.qty.v / (1 + pick(3)))};
                    if (pick(2)) {
                        o.type = OrderType::Market;
                        o.price = Price{0};
                    } else {
                        o.tif = pick(2) ? Tif::Ioc : Tif::Fok;
                    }
                    break;
                case 8:  // too many tips (InvalidDisplay)
                    too_many_tips(o.qty, o.display);
                    break;
                default:
                    break;
            }
        }
        switch (pick(40)) {
            case 0: o.qty = Qty{0}; break;
            case 1: o.price = Price{0}; break;
            case 2: o.id = 0; break;
            case 3:
                o.display = Qty{-1};
                break;
            case 4:
                o.visible = Qty{o.display.v + 1 + pick(3)};
                break;
            default: break;
        }
        return o;
    }

    // Mostly a resting id, sometimes a pending stop's or a recent one (maybe
    // filled or triggered), rarely unknown.
    OrderId some_id() {
        if (pending_ && !pending_->empty() && pick(5) == 0) return one_of(*pending_);
        const int64_t k = pick(20);
        if (k < 13 && !live_->empty()) return (*live_)[static_cast<size_t>(pick(static_cast<int64_t>(live_->size())))];
        if (k < 19 && !recent_.empty()) return recent_[static_cast<size_t>(pick(static_cast<int64_t>(recent_.size())))];
        return pick(3) == 0 ? 0 : next_id_ + 1000;
    }

    NewOrder random_order() {
        NewOrder o;
        o.id = ++next_id_;
        if (pick(40) == 0 && !recent_.empty()) o.id = some_id();  // often a duplicate of a resting id
        recent_.push_back(o.id);
        if (recent_.size() > 64) recent_.erase(recent_.begin());
        o.owner = 1 + static_cast<OwnerId>(pick(owners_));
        // With huge quantities, mostly buys: bids pile up until a level's total overflows.
        o.side = (huge_ ? pick(5) != 0 : pick(2) != 0) ? Side::Buy : Side::Sell;
        o.type = pick(10) == 0 ? OrderType::Market : OrderType::Limit;
        const int t = static_cast<int>(pick(10));
        o.tif = t < 6 ? Tif::Gtc : t < 8 ? Tif::Ioc : Tif::Fok;
        o.price = Price{o.type == OrderType::Limit ? price() : 0};
        o.qty = Qty{quantity()};
        o.post_only = o.type == OrderType::Limit && o.tif == Tif::Gtc && pick(8) == 0;
        o.stp = static_cast<Stp>(pick(4));
        // Icebergs: a small tip of a larger order, mostly on resting GTC limit orders.
        if (o.type == OrderType::Limit && o.tif == Tif::Gtc && pick(4) == 0) o.display = Qty{tip(o.qty.v)};
        if (pick(100) < stop_pct_) {  // a stop order: stop-limit or stop-market, any tif
            o.post_only = false;
            o.display = Qty{0};
            o.stop = Price{stop_price(o.side)};
            if (o.type == OrderType::Limit) o.price = Price{stop_limit(o.side, o.stop.v, pick(6) - 1)};
            // A stop-limit GTC order is often an iceberg.
            if (o.type == OrderType::Limit && o.tif == Tif::Gtc && pick(5) < 2) o.display = Qty{tip(o.qty.v)};
            switch (pick(25)) {  // occasional invalid stop input
                case 0:
                    o.stop = Price{-1 - pick(3)};
                    break;
                case 1:
                    o.stop = Price{kMaxPrice + 1};
                    break;
                case 2:
                    o.post_only = o.type == OrderType::Limit && o.tif == Tif::Gtc;  // maybe on an iceberg
                    break;
                case 3:  // a display on any stop: InvalidCombination unless a stop-limit GTC
                    o.display = Qty{std::max<int64_t>(1, o.qty.v / (1 + pick(3)))};
                    break;
                case 4:  // too many tips, or exactly kMaxIcebergParts
                    too_many_tips(o.qty, o.display);
                    if (pick(3) == 0 && o.display.v <= kMaxQty / kMaxIcebergParts)
                        o.qty = Qty{o.display.v * kMaxIcebergParts};
                    break;
                case 5:  // a display above the quantity (InvalidDisplay)
                    o.display = Qty{o.qty.v + 1 + pick(3)};
                    break;
                default:
                    break;
            }
        }
        switch (pick(120)) {  // occasional invalid input
            case 0: o.id = 0; break;
            case 1: o.qty = Qty{0}; break;
            case 2: o.qty = Qty{-5}; break;
            case 3: o.qty = Qty{kMaxQty + 1}; break;
            case 4: o.price = Price{o.type == OrderType::Limit ? 0 : 7}; break;
            case 5: o.price = Price{-1}; break;
            case 6: o.side = static_cast<Side>(2 + pick(200)); break;
            case 7: o.type = static_cast<OrderType>(2 + pick(200)); break;
            case 8: o.tif = static_cast<Tif>(3 + pick(200)); break;
            case 9: o.stp = static_cast<Stp>(4 + pick(200)); break;
            case 10: o.post_only = true; o.tif = Tif::Ioc; break;
            case 11: o.price = Price{kMaxPrice + 1}; break;
            case 12:
                o.display = Qty{o.qty.v + 1};
                break;
            case 13:
                o.display = Qty{-1};
                break;
            case 14:
                o.display = Qty{1};
                o.tif = pick(2) ? Tif::Ioc : Tif::Fok;
                break;
            default: break;
        }
        return o;
    }

    std::mt19937_64 rng_;
    int64_t lo_, hi_;
    int owners_;
    bool huge_;
    int stop_pct_;
    OrderId next_id_ = 0;
    std::vector<OrderId> recent_;
    const std::vector<OrderId>* live_ = nullptr;
    const std::vector<OrderId>* pending_ = nullptr;
    const std::vector<RestingOrder>* stops_ = nullptr;  // the pending stops, parallel to *pending_ (if known)
    std::vector<OrderId> pending_ids_;
    const std::vector<OrderId> none_;
    int64_t last_ = 0;
};

}  // namespace pgx::test
