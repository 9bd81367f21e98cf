// A naive reference order book: SEMANTICS.md written as plainly as possible
// (std::map of std::deque, linear searches, rollback by copying the state).
// A resting order is a RestingOrder: qty all it has left, visible the part
// shown (an iceberg's tip), display its tip size (0: not an iceberg).
// The differential test holds the real Book to it after every step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "types.h"

namespace pgx::ref {

using namespace pgx::core;

class ReferenceBook {
public:
    ReferenceBook(uint32_t max_orders, uint32_t max_levels) : max_orders_(max_orders), max_levels_(max_levels) {}

    uint64_t seq() const { return seq_; }

    // Matches and rests an incoming order.
    bool place(const NewOrder& o, Result& out) {
        out.clear();
        Reject r = validate(o);
        if (r == Reject::None) {
            State before = state_;
            Touched touched;
            r = execute(o, out, touched);
            if (r != Reject::None) state_ = before;
            else report_levels(touched, out);
        }
        return finish(out, r);
    }

    // Removes a resting order.
    bool cancel(OrderId id, Result& out) {
        out.clear();
        Where w;
        if (!locate(id, w)) return finish(out, Reject::OrderNotFound);
        const RestingOrder o = level(w)[w.index];
        erase(w);
        out.cancelled = o.qty;  // shown and hidden
        out.cancel_reason = CancelReason::User;
        report_levels({{o.side, o.price.v}}, out);
        return finish(out, Reject::None);
    }

    // Changes price and/or remaining quantity of a resting order.
    bool amend(OrderId id, Price price, Qty qty, Result& out) {
        out.clear();
        Where w;
        if (!locate(id, w)) return finish(out, Reject::OrderNotFound);
        if (price.v <= 0 || price.v > kMaxPrice) return finish(out, Reject::InvalidPrice);
        if (qty.v <= 0 || qty.v > kMaxQty) return finish(out, Reject::InvalidQuantity);
        RestingOrder o = level(w)[w.index];
        if (o.display.v > 0 && too_many_parts(qty.v, o.display.v)) return finish(out, Reject::InvalidDisplay);
        if (price == o.price && qty == o.qty) return finish(out, Reject::NoChange);
        if (price == o.price) {
            if (qty < o.qty) {  // keeps its place; an iceberg loses hidden quantity first
                RestingOrder& m = level(w)[w.index];
                m.qty = qty;
                m.visible = Qty{std::min(m.visible.v, qty.v)};
                out.priority_kept = true;
            } else {
                const int64_t shown = o.display.v > 0 ? std::min(o.display.v, qty.v) : qty.v;
                if (level_total(o.side, o.price.v) - o.visible.v >
                    std::numeric_limits<int64_t>::max() - shown)
                    return finish(out, Reject::QuantityOverflow);
                level(w).erase(level(w).begin() + static_cast<long>(w.index));
                o.qty = qty;
                o.visible = Qty{shown};
                level(w).push_back(o);
            }
            out.resting = qty;
            report_levels({{o.side, o.price.v}}, out);
            return finish(out, Reject::None);
        }
        State before = state_;
        erase(w);
        Touched touched{{o.side, o.price.v}};
        const NewOrder re{o.id, o.owner,     o.side, OrderType::Limit, Tif::Gtc, price,
                          qty,  o.post_only, o.stp,  o.display};
        const Reject r = execute(re, out, touched);
        if (r != Reject::None) state_ = before;
        else report_levels(touched, out);
        return finish(out, r);
    }

    // Appends a resting order without matching (rebuild from storage).
    Reject load_resting(const RestingOrder& o) {
        if (o.id == 0) return Reject::InvalidOrderId;
        if (static_cast<uint8_t>(o.side) > 1) return Reject::InvalidSide;
        if (static_cast<uint8_t>(o.stp) > 3) return Reject::InvalidStp;
        if (o.price.v <= 0 || o.price.v > kMaxPrice) return Reject::InvalidPrice;
        if (o.qty.v <= 0 || o.qty.v > kMaxQty) return Reject::InvalidQuantity;
        if (o.display.v < 0 || o.display.v > kMaxQty || o.visible.v < 0 || o.visible.v > o.qty.v)
            return Reject::InvalidDisplay;
        if (o.display.v > 0 ? o.visible.v > o.display.v || too_many_parts(o.qty.v, o.display.v)
                            : o.visible.v != 0 && o.visible != o.qty)
            return Reject::InvalidDisplay;
        Where w;
        if (locate(o.id, w)) return Reject::DuplicateOrderId;
        const NewOrder n{o.id,  o.owner,     o.side, OrderType::Limit, Tif::Gtc, o.price,
                         o.qty, o.post_only, o.stp,  o.display};
        const auto& opp = side(opposite(o.side));
        if (!opp.empty() && crosses(n, opp.begin()->second.front().price.v)) return Reject::WouldCross;
        int64_t shown = o.visible.v;
        if (shown == 0) shown = o.display.v > 0 ? std::min(o.display.v, o.qty.v) : o.qty.v;
        return rest(n, o.qty.v, shown);
    }

    // All resting orders of a side, best price first, then time priority.
    void orders(Side s, std::vector<RestingOrder>& out) const {
        out.clear();
        for (const auto& [k, q] : side(s))
            for (const auto& o : q) out.push_back(o);
    }

    // Up to `depth` aggregated levels of a side, best first.
    void levels(Side s, size_t depth, std::vector<LevelView>& out) const {
        out.clear();
        for (const auto& [k, q] : side(s)) {
            if (out.size() == depth) break;
            out.push_back(LevelView{q.front().price, Qty{level_total(s, q.front().price.v)},
                                    static_cast<uint32_t>(q.size())});
        }
    }

    uint32_t order_count() const {
        size_t n = 0;
        for (const auto& sd : state_.sides)
            for (const auto& [k, q] : sd) n += q.size();
        return static_cast<uint32_t>(n);
    }

private:
    // Keyed so that the best price comes first on both sides.
    using Side_ = std::map<int64_t, std::deque<RestingOrder>>;
    struct State {
        Side_ sides[2];
    };
    struct Where {
        Side side;
        int64_t key;
        size_t index;
    };
    using Touched = std::vector<std::pair<Side, int64_t>>;

    // More than kMaxIcebergParts tips of `display` in qty (written out, unlike the core's test).
    static bool too_many_parts(int64_t qty, int64_t display) {
        int64_t parts = qty / display + (qty % display != 0);
        return parts > kMaxIcebergParts;
    }

    static int64_t key(Side s, int64_t price) { return s == Side::Buy ? -price : price; }
    Side_& side(Side s) { return state_.sides[static_cast<int>(s)]; }
    const Side_& side(Side s) const { return state_.sides[static_cast<int>(s)]; }
    std::deque<RestingOrder>& level(const Where& w) { return side(w.side)[w.key]; }

    static bool crosses(const NewOrder& o, int64_t level_price) {
        if (o.type == OrderType::Market) return true;
        return o.side == Side::Buy ? level_price <= o.price.v : level_price >= o.price.v;
    }

    bool locate(OrderId id, Where& w) const {
        if (id == 0) return false;
        for (int s = 0; s < 2; ++s)
            for (const auto& [k, q] : state_.sides[s])
                for (size_t i = 0; i < q.size(); ++i)
                    if (q[i].id == id) {
                        w = Where{static_cast<Side>(s), k, i};
                        return true;
                    }
        return false;
    }

    void erase(const Where& w) {
        auto& q = level(w);
        q.erase(q.begin() + static_cast<long>(w.index));
        if (q.empty()) side(w.side).erase(w.key);
    }

    int64_t level_total(Side s, int64_t price) const {
        auto it = side(s).find(key(s, price));
        if (it == side(s).end()) return 0;
        int64_t t = 0;
        for (const auto& o : it->second) t += o.visible.v;  // what the book shows
        return t;
    }

    size_t level_count() const { return state_.sides[0].size() + state_.sides[1].size(); }

    Reject validate(const NewOrder& o) const {
        if (o.id == 0) return Reject::InvalidOrderId;
        if (static_cast<uint8_t>(o.side) > 1) return Reject::InvalidSide;
        if (static_cast<uint8_t>(o.type) > 1) return Reject::InvalidType;
        if (static_cast<uint8_t>(o.tif) > 2) return Reject::InvalidTif;
        if (static_cast<uint8_t>(o.stp) > 3) return Reject::InvalidStp;
        if (o.type == OrderType::Limit) {
            if (o.price.v <= 0 || o.price.v > kMaxPrice) return Reject::InvalidPrice;
        } else if (o.price.v != 0) {
            return Reject::InvalidPrice;
        }
        if (o.qty.v <= 0 || o.qty.v > kMaxQty) return Reject::InvalidQuantity;
        if (o.display.v < 0 || o.display.v > o.qty.v ||
            (o.display.v > 0 && too_many_parts(o.qty.v, o.display.v)))
            return Reject::InvalidDisplay;
        const bool rests_only = o.post_only || o.display.v > 0;
        if (rests_only && (o.type == OrderType::Market || o.tif != Tif::Gtc))
            return Reject::InvalidCombination;
        Where w;
        if (locate(o.id, w)) return Reject::DuplicateOrderId;
        return Reject::None;
    }

    // True if the self-trade rule applies between this taker and maker.
    static bool self_trade(const NewOrder& o, const RestingOrder& m) {
        return o.stp != Stp::None && m.owner == o.owner;
    }

    Reject rest(const NewOrder& o, int64_t qty, int64_t shown) {
        if (order_count() >= max_orders_) return Reject::OrderCapacity;
        auto& sd = side(o.side);
        auto it = sd.find(key(o.side, o.price.v));
        if (it == sd.end()) {
            if (level_count() >= max_levels_) return Reject::LevelCapacity;
        } else if (level_total(o.side, o.price.v) > std::numeric_limits<int64_t>::max() - shown) {
            return Reject::QuantityOverflow;
        }
        sd[key(o.side, o.price.v)].push_back(RestingOrder{o.id, o.owner, o.side, o.price, Qty{qty},
                                                          o.post_only, o.stp, o.display, Qty{shown}});
        return Reject::None;
    }

    // Post-only, FOK, matching and the remainder; leaves state dirty on reject.
    Reject execute(const NewOrder& o, Result& out, Touched& touched) {
        const Side os = opposite(o.side);
        auto& opp = side(os);
        if (o.post_only && !opp.empty() && crosses(o, opp.begin()->second.front().price.v))
            return Reject::PostOnlyWouldTake;

        int64_t remaining = o.qty.v;
        bool stopped = false;
        while (remaining > 0 && !stopped && !opp.empty()) {
            auto it = opp.begin();
            const int64_t price = it->second.front().price.v;
            if (!crosses(o, price)) break;
            const size_t touched_before = touched.size();
            touched.push_back({os, price});
            bool changed = false;
            auto& q = it->second;
            size_t i = 0;
            while (i < q.size() && remaining > 0) {
                RestingOrder& m = q[i];
                if (self_trade(o, m)) {
                    if (o.stp == Stp::CancelNewest) {
                        stopped = true;
                        break;
                    }
                    out.stp_cancelled.push_back(
                        Cancelled{m.id, m.owner, os, m.price, m.qty, CancelReason::SelfTrade});  // all of it
                    q.erase(q.begin() + static_cast<long>(i));
                    changed = true;
                    if (o.stp == Stp::CancelBoth) {
                        stopped = true;
                        break;
                    }
                    continue;
                }
                const int64_t t = std::min(remaining, m.visible.v);
                m.qty.v -= t;
                m.visible.v -= t;
                remaining -= t;
                changed = true;
                out.filled.v += t;
                Fill f{m.id, m.owner, o.id, Price{price}, Qty{t}, m.qty, m.visible, false};
                if (m.qty.v == 0) {
                    q.erase(q.begin() + static_cast<long>(i));
                } else if (m.visible.v == 0) {  // an iceberg's tip ran out: a new one, at the back
                    RestingOrder again = m;
                    again.visible = Qty{std::min(again.display.v, again.qty.v)};
                    if (level_total(os, price) > std::numeric_limits<int64_t>::max() - again.visible.v)
                        return Reject::QuantityOverflow;
                    q.erase(q.begin() + static_cast<long>(i));
                    q.push_back(again);
                    f.maker_visible = again.visible;
                    f.maker_requeued = true;
                } else {
                    ++i;
                }
                out.fills.push_back(f);
            }
            if (!changed) touched.resize(touched_before);  // an untouched level is not reported
            if (q.empty()) opp.erase(it);
        }
        if (remaining == 0) return Reject::None;
        if (o.tif == Tif::Fok) return Reject::FokUnfillable;  // all or nothing: the caller restores the book
        if (stopped) out.cancel_reason = CancelReason::SelfTrade;
        else if (o.type == OrderType::Market) out.cancel_reason = CancelReason::MarketNoLiquidity;
        else if (o.tif != Tif::Gtc) out.cancel_reason = CancelReason::Ioc;
        else {
            const Reject r =
                rest(o, remaining, o.display.v > 0 ? std::min(o.display.v, remaining) : remaining);
            if (r != Reject::None) return r;
            touched.push_back({o.side, o.price.v});
            out.resting = Qty{remaining};
            return Reject::None;
        }
        out.cancelled = Qty{remaining};
        return Reject::None;
    }

    // One level change per touched level, in first-touched order, final state.
    void report_levels(const Touched& touched, Result& out) const {
        Touched seen;
        for (const auto& t : touched) {
            if (std::find(seen.begin(), seen.end(), t) != seen.end()) continue;
            seen.push_back(t);
            auto it = side(t.first).find(key(t.first, t.second));
            const uint32_t count = it == side(t.first).end() ? 0 : static_cast<uint32_t>(it->second.size());
            out.levels.push_back(LevelChange{t.first, Price{t.second}, Qty{level_total(t.first, t.second)}, count});
        }
    }

    bool finish(Result& out, Reject r) {
        if (r != Reject::None) {
            out.clear();
            out.status = Status::Rejected;
            out.reject = r;
        } else {
            ++seq_;
        }
        out.seq = seq_;
        return r == Reject::None;
    }

    uint32_t max_orders_, max_levels_;
    State state_;
    uint64_t seq_ = 0;
};

}  // namespace pgx::ref
