// A seeded random command stream over a narrow price band: limit and market
// orders with every TIF and STP mode, post-only, icebergs, cancels and amends of live
// and unknown ids, duplicates and invalid input, and load_resting (the path
// that rebuilds a book from storage; it may cross or duplicate). With `huge`,
// half of the quantities are near kMaxQty and most orders buy, so level
// totals overflow.
// Shared by the differential and undo tests.
#pragma once

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

    std::string describe() const {
        std::ostringstream s;
        if (kind == Place)
            s << "place{id=" << order.id << " owner=" << order.owner << " side=" << int(order.side)
              << " type=" << int(order.type) << " tif=" << int(order.tif) << " price=" << order.price.v
              << " qty=" << order.qty.v << " post_only=" << order.post_only << " stp=" << int(order.stp)
              << " display=" << order.display.v << "}";
        else if (kind == Cancel)
            s << "cancel{id=" << id << "}";
        else if (kind == Amend)
            s << "amend{id=" << id << " price=" << price.v << " qty=" << qty.v << "}";
        else
            s << "load{id=" << resting.id << " owner=" << resting.owner << " side=" << int(resting.side)
              << " price=" << resting.price.v << " qty=" << resting.qty.v << " display=" << resting.display.v
              << " visible=" << resting.visible.v << "}";
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
        case Command::Amend: b.amend(c.id, c.price, c.qty, r); break;
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
    RandomStream(uint64_t seed, int64_t lo, int64_t hi, int owners, bool huge = false)
        : rng_(seed), lo_(lo), hi_(hi), owners_(owners), huge_(huge) {}

    // The next command; `live` are the ids resting right now.
    Command next(const std::vector<OrderId>& live) {
        live_ = &live;
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
            if (pick(50) == 0) c.qty = Qty{-pick(3)};
            if (pick(60) == 0) c.price = Price{kMaxPrice + 1};
        }
        return c;
    }

private:
    int64_t pick(int64_t n) { return static_cast<int64_t>(rng_() % static_cast<uint64_t>(n)); }
    int64_t price() { return lo_ + pick(hi_ - lo_ + 1); }
    int64_t quantity() { return huge_ && pick(2) == 0 ? kMaxQty - pick(1000) : 1 + pick(20); }
    // An iceberg's tip for an order of qty > 0 (0: none). With huge
    // quantities only huge orders get one, a large fraction of the order:
    // a tip of a few lots on 10^18 would take a taker 10^17 refills.
    int64_t tip(int64_t qty) {
        if (!huge_) return 1 + pick(std::min<int64_t>(qty, 6));
        return qty > 1000 ? qty / (2 + pick(3)) : 0;  // (kMaxIcebergParts allows 100 tips)
    }

    // An order as storage would hand it back: new id (sometimes a resting
    // one), any price in the band (it may cross), rarely invalid.
    RestingOrder random_resting() {
        RestingOrder o;
        o.id = pick(10) == 0 && !live_->empty() ? (*live_)[static_cast<size_t>(pick(static_cast<int64_t>(live_->size())))]
                                                 : ++next_id_;
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

    // Mostly a resting id, sometimes a recent one (maybe filled), rarely unknown.
    OrderId some_id() {
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
    OrderId next_id_ = 0;
    std::vector<OrderId> recent_;
    const std::vector<OrderId>* live_ = nullptr;
};

}  // namespace pgx::test
