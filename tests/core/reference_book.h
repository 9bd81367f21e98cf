// A naive reference order book: SEMANTICS.md written as plainly as possible
// (std::map of std::deque, linear searches, rollback by copying the state).
// A resting order is a RestingOrder: qty all it has left, visible the part
// shown (an iceberg's tip), display its tip size (0: not an iceberg). A
// pending stop order is a RestingOrder too (stop > 0, its type and tif, price
// its limit or 0, visible 0, display its tip size if a stop-limit iceberg,
// qty all of it), in a FIFO per side and stop price, outside the book; the
// trades of a place or amend run the stops they trigger (an iceberg as an
// incoming iceberg: it rests with a tip), and an amend may move a pending
// stop to the back of another stop price's queue.
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
    Price last_price() const { return Price{state_.last_price}; }
    void set_seq(uint64_t seq) { seq_ = seq; }
    void set_last_price(Price p) { state_.last_price = p.v; }

    // Matches and rests an incoming order; a stop order goes to the pending stops.
    bool place(const NewOrder& o, Result& out) {
        out.clear();
        Reject r = validate(o);
        if (r == Reject::None && o.stop.v > 0) {
            r = add_stop(to_stop(o));
            if (r == Reject::None) out.pending = o.qty;
            return finish(out, r);  // nothing traded: nothing can trigger
        }
        if (r == Reject::None) {
            State before = state_;
            Touched touched;
            r = execute(o, out, touched);
            if (r != Reject::None) state_ = before;
            else report_levels(touched, out);
        }
        const bool ok = finish(out, r);
        if (ok) run_triggers(out);
        return ok;
    }

    // Removes a resting order or a pending stop order.
    bool cancel(OrderId id, Result& out) {
        out.clear();
        StopWhere sw;
        if (locate_stop(id, sw)) {
            out.cancelled = stop_queue(sw)[sw.index].qty;
            out.cancel_reason = CancelReason::User;
            erase_stop(sw);
            return finish(out, Reject::None);
        }
        Where w;
        if (!locate(id, w)) return finish(out, Reject::OrderNotFound);
        const RestingOrder o = level(w)[w.index];
        erase(w);
        out.cancelled = o.qty;  // shown and hidden
        out.cancel_reason = CancelReason::User;
        report_levels({{o.side, o.price.v}}, out);
        return finish(out, Reject::None);
    }

    // Changes price and/or remaining quantity of a resting order; of a pending
    // stop order also its stop price, when new_stop is neither 0 nor its own.
    bool amend(OrderId id, Price price, Qty qty, Result& out, Price new_stop = Price{0}) {
        out.clear();
        StopWhere sw;
        if (locate_stop(id, sw)) return amend_stop(sw, price, qty, new_stop, out);
        Where w;
        if (!locate(id, w)) return finish(out, Reject::OrderNotFound);
        if (new_stop.v != 0) return finish(out, Reject::InvalidStopPrice);  // in the book: no stop price
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
            finish(out, Reject::None);
            run_triggers(out);  // (nothing traded)
            return true;
        }
        State before = state_;
        erase(w);
        Touched touched{{o.side, o.price.v}};
        const NewOrder re{o.id, o.owner,     o.side, OrderType::Limit, Tif::Gtc, price,
                          qty,  o.post_only, o.stp,  o.display};
        const Reject r = execute(re, out, touched);
        if (r != Reject::None) state_ = before;
        else report_levels(touched, out);
        const bool ok = finish(out, r);
        if (ok) run_triggers(out);
        return ok;
    }

    // Appends a resting order without matching (rebuild from storage); an
    // order with stop > 0 goes to the back of its stop price's queue.
    Reject load_resting(const RestingOrder& o) {
        if (o.stop.v != 0) return load_stop(o);
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
        if (known(o.id)) return Reject::DuplicateOrderId;
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

    // A side's pending stop orders in the order they would trigger.
    void stops(Side s, std::vector<RestingOrder>& out) const {
        out.clear();
        for (const auto& [k, q] : stop_side(s))
            for (const auto& o : q) out.push_back(o);
    }

    // A resting order (stop 0) or a pending stop order.
    bool find(OrderId id, RestingOrder& o) const {
        StopWhere sw;
        if (locate_stop(id, sw)) {
            o = state_.stops[static_cast<int>(sw.side)].at(sw.key)[sw.index];
            return true;
        }
        Where w;
        if (!locate(id, w)) return false;
        o = state_.sides[static_cast<int>(w.side)].at(w.key)[w.index];
        return true;
    }

    // In the book only.
    uint32_t order_count() const {
        size_t n = 0;
        for (const auto& sd : state_.sides)
            for (const auto& [k, q] : sd) n += q.size();
        return static_cast<uint32_t>(n);
    }
    uint32_t level_count() const {
        return static_cast<uint32_t>(state_.sides[0].size() + state_.sides[1].size());
    }
    uint32_t stop_count() const {
        size_t n = 0;
        for (const auto& sd : state_.stops)
            for (const auto& [k, q] : sd) n += q.size();
        return static_cast<uint32_t>(n);
    }

private:
    // Keyed so that the best price comes first on both sides.
    using Side_ = std::map<int64_t, std::deque<RestingOrder>>;
    struct State {
        Side_ sides[2];
        // Pending stops, keyed so that the next to trigger comes first: buy
        // stops by stop price (lowest first), sell stops by minus it.
        Side_ stops[2];
        int64_t last_price = 0;  // of the most recent fill (0: none yet)
    };
    struct Where {
        Side side;
        int64_t key;
        size_t index;
    };
    using StopWhere = Where;
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

    // ---- pending stops ----
    static int64_t stop_key(Side s, int64_t stop) { return s == Side::Buy ? stop : -stop; }
    Side_& stop_side(Side s) { return state_.stops[static_cast<int>(s)]; }
    const Side_& stop_side(Side s) const { return state_.stops[static_cast<int>(s)]; }
    std::deque<RestingOrder>& stop_queue(const StopWhere& w) { return stop_side(w.side)[w.key]; }

    bool locate_stop(OrderId id, StopWhere& w) const { return locate_in(state_.stops, id, w); }

    // Resting in the book or pending.
    bool known(OrderId id) const {
        Where w;
        return locate(id, w) || locate_stop(id, w);
    }

    void erase_stop(const StopWhere& w) {
        auto& q = stop_queue(w);
        q.erase(q.begin() + static_cast<long>(w.index));
        if (q.empty()) stop_side(w.side).erase(w.key);
    }

    int64_t stop_total(Side s, int64_t stop) const {
        auto it = stop_side(s).find(stop_key(s, stop));
        if (it == stop_side(s).end()) return 0;
        int64_t t = 0;
        for (const auto& o : it->second) t += o.qty.v;
        return t;
    }

    // Whether the last trade price has reached a stop (never before any trade).
    bool reached(Side s, int64_t stop) const {
        if (state_.last_price <= 0) return false;
        return s == Side::Buy ? state_.last_price >= stop : state_.last_price <= stop;
    }

    static RestingOrder to_stop(const NewOrder& o) {
        RestingOrder r;
        r.id = o.id;
        r.owner = o.owner;
        r.side = o.side;
        r.price = o.price;
        r.qty = o.qty;
        r.post_only = false;
        r.stp = o.stp;
        r.display = o.display;  // a stop-limit iceberg keeps its tip size; nothing is shown while it waits
        r.visible = Qty{0};
        r.stop = o.stop;
        r.type = o.type;
        r.tif = o.tif;
        return r;
    }

    // Capacity and overflow, then the back of its stop price's queue.
    Reject add_stop(const RestingOrder& o) {
        if (used_orders() >= max_orders_) return Reject::OrderCapacity;
        auto& sd = stop_side(o.side);
        auto it = sd.find(stop_key(o.side, o.stop.v));
        if (it == sd.end()) {
            if (used_levels() >= max_levels_) return Reject::LevelCapacity;
        } else if (stop_total(o.side, o.stop.v) > std::numeric_limits<int64_t>::max() - o.qty.v) {
            return Reject::QuantityOverflow;
        }
        sd[stop_key(o.side, o.stop.v)].push_back(o);
        return Reject::None;
    }

    // A stored stop order, checked exactly as place() checks a stop order,
    // except that a display above its quantity (an amend may leave one) is
    // checked as one of its quantity, and kept.
    Reject load_stop(const RestingOrder& o) {
        NewOrder n = as_new_order(o);
        if (n.display.v > n.qty.v && n.display.v <= kMaxQty) n.display = n.qty;  // (left by an amend)
        const Reject r = validate(n);
        if (r != Reject::None) return r;
        RestingOrder s = o;
        s.visible = Qty{0};
        return add_stop(s);
    }

    bool amend_stop(const StopWhere& w, Price price, Qty qty, Price new_stop, Result& out) {
        const RestingOrder o = stop_queue(w)[w.index];
        if (o.type == OrderType::Market ? price.v != 0 : price.v <= 0 || price.v > kMaxPrice)
            return finish(out, Reject::InvalidPrice);
        if (qty.v <= 0 || qty.v > kMaxQty) return finish(out, Reject::InvalidQuantity);
        // An iceberg: too many tips; a quantity below its display is kept (it rests whole).
        if (o.display.v > 0 && too_many_parts(qty.v, o.display.v)) return finish(out, Reject::InvalidDisplay);
        if (new_stop.v < 0 || new_stop.v > kMaxPrice) return finish(out, Reject::InvalidStopPrice);
        if (new_stop.v != 0 && new_stop != o.stop) {  // a move: to the back of the new stop price's queue
            if (reached(o.side, new_stop.v)) return finish(out, Reject::StopWouldTrigger);
            State before = state_;
            erase_stop(w);  // its slot (and its stop price, if it was alone there) first
            RestingOrder m = o;
            m.price = price;
            m.qty = qty;
            m.stop = new_stop;
            const Reject r = add_stop(m);
            if (r != Reject::None) state_ = before;
            else out.pending = qty;
            return finish(out, r);  // triggers nothing
        }
        if (price == o.price && qty == o.qty) return finish(out, Reject::NoChange);
        if (price == o.price && qty < o.qty) {
            stop_queue(w)[w.index].qty = qty;
            out.priority_kept = true;
        } else {
            if (stop_total(o.side, o.stop.v) - o.qty.v > std::numeric_limits<int64_t>::max() - qty.v)
                return finish(out, Reject::QuantityOverflow);
            auto& q = stop_queue(w);
            q.erase(q.begin() + static_cast<long>(w.index));
            RestingOrder m = o;
            m.price = price;
            m.qty = qty;
            q.push_back(m);
        }
        out.pending = qty;
        return finish(out, Reject::None);  // triggers nothing
    }

    // The next pending stop the last price triggers: buy stops first
    // (lowest stop, oldest), then sell stops (highest stop, oldest).
    bool next_triggered(RestingOrder& o) {
        for (Side s : {Side::Buy, Side::Sell}) {
            auto& sd = stop_side(s);
            if (sd.empty()) continue;
            auto it = sd.begin();
            if (!reached(s, it->second.front().stop.v)) continue;
            o = it->second.front();
            it->second.pop_front();
            if (it->second.empty()) sd.erase(it);
            return true;
        }
        return false;
    }

    // After an accepted place or amend: runs each stop the trades trigger as
    // an incoming order with its own sequence number, until none is left.
    void run_triggers(Result& out) {
        RestingOrder s;
        while (next_triggered(s)) {
            NewOrder o;
            o.id = s.id;
            o.owner = s.owner;
            o.side = s.side;
            o.type = s.type;
            o.tif = s.tif;
            o.price = s.price;
            o.qty = s.qty;
            o.post_only = false;
            o.stp = s.stp;
            o.display = s.display;  // a stop-limit iceberg trades whole and rests with a tip
            Triggered t{};
            t.id = s.id;
            t.owner = s.owner;
            t.side = s.side;
            t.seq = ++seq_;
            t.first_fill = static_cast<uint32_t>(out.fills.size());
            t.first_level = static_cast<uint32_t>(out.levels.size());
            t.first_stp = static_cast<uint32_t>(out.stp_cancelled.size());
            Result own;
            Touched touched;
            State before = state_;
            const Reject r = execute(o, own, touched);
            if (r != Reject::None) {
                state_ = before;
                t.filled = t.resting = Qty{0};
                t.cancelled = s.qty;
                t.cancel_reason = CancelReason::None;
                t.reject = r;
            } else {
                report_levels(touched, own);
                t.filled = own.filled;
                t.resting = own.resting;
                t.cancelled = own.cancelled;
                t.cancel_reason = own.cancel_reason;
                t.reject = Reject::None;
                out.fills.insert(out.fills.end(), own.fills.begin(), own.fills.end());
                out.levels.insert(out.levels.end(), own.levels.begin(), own.levels.end());
                out.stp_cancelled.insert(out.stp_cancelled.end(), own.stp_cancelled.begin(),
                                         own.stp_cancelled.end());
            }
            out.triggered.push_back(t);
        }
    }

    // Slots in use: the book's orders and levels and the pending stops' (capacity is shared).
    size_t used_orders() const { return order_count() + stop_count(); }
    size_t used_levels() const {
        return state_.sides[0].size() + state_.sides[1].size() + state_.stops[0].size() +
               state_.stops[1].size();
    }

    static bool crosses(const NewOrder& o, int64_t level_price) {
        if (o.type == OrderType::Market) return true;
        return o.side == Side::Buy ? level_price <= o.price.v : level_price >= o.price.v;
    }

    bool locate(OrderId id, Where& w) const { return locate_in(state_.sides, id, w); }

    // Where order `id` is among `sides` (the book's or the pending stops'), by a linear search.
    static bool locate_in(const Side_ (&sides)[2], OrderId id, Where& w) {
        if (id == 0) return false;
        for (int s = 0; s < 2; ++s)
            for (const auto& [k, q] : sides[s])
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
        if (o.stop.v < 0 || o.stop.v > kMaxPrice) return Reject::InvalidStopPrice;
        const bool rests_only = o.post_only || o.display.v > 0;
        if (rests_only && (o.type == OrderType::Market || o.tif != Tif::Gtc))
            return Reject::InvalidCombination;
        // Post-only on a stop order too; a stop-limit GTC order may be an iceberg.
        if (o.post_only && o.stop.v > 0) return Reject::InvalidCombination;
        if (known(o.id)) return Reject::DuplicateOrderId;
        if (o.stop.v > 0 && reached(o.side, o.stop.v)) return Reject::StopWouldTrigger;
        return Reject::None;
    }

    // True if the self-trade rule applies between this taker and maker.
    static bool self_trade(const NewOrder& o, const RestingOrder& m) {
        return o.stp != Stp::None && m.owner == o.owner;
    }

    Reject rest(const NewOrder& o, int64_t qty, int64_t shown) {
        if (used_orders() >= max_orders_) return Reject::OrderCapacity;
        auto& sd = side(o.side);
        auto it = sd.find(key(o.side, o.price.v));
        if (it == sd.end()) {
            if (used_levels() >= max_levels_) return Reject::LevelCapacity;
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
                state_.last_price = price;
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

    // One level change per level an order touched, in first-touched order, its state after that order.
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
