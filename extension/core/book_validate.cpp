// Book::validate(): every structural invariant of the region, checked from
// scratch. Used after each step of the tests and by exchange.verify().
#include <limits>
#include <string>
#include <vector>

#include "book.h"

namespace pgx::core {

using detail::kNil;

namespace {

// Collects violations as readable lines.
struct Problems {
    std::vector<std::string> lines;
    void add(const std::string& s) { lines.push_back(s); }
};

std::string side_name(int tree) {
    static const char* const names[4] = {"bid", "ask", "buy stop", "sell stop"};
    return names[tree];
}

}  // namespace

std::vector<std::string> Book::validate() const {
    Problems p;
    const detail::Header& h = *h_;
    if (h.order_watermark > h.max_orders) p.add("order watermark beyond capacity");
    if (h.level_watermark > h.max_levels) p.add("level watermark beyond capacity");
    if (!p.lines.empty()) return p.lines;

    uint64_t orders_seen = 0, stops_seen = 0, levels_seen = 0;
    for (int s = 0; s < 4; ++s) {  // the trees: bids, asks, buy stops, sell stops
        const bool stops = s >= kStopTrees;
        uint32_t n_levels = 0, prev = kNil;
        std::vector<uint32_t> list;
        for (uint32_t li = h.best[s]; li != kNil; prev = li, li = lvl(li).worse) {
            if (li >= h.level_watermark || ++n_levels > h.max_levels) {
                p.add(side_name(s) + " level list leaves the handed-out slots or loops");
                return p.lines;
            }
            list.push_back(li);
            const Level& L = lvl(li);
            const std::string at = side_name(s) + " level " + std::to_string(L.price);
            if (!L.in_use) p.add(at + ": slot not in use");
            if (tree_of(L) != s) p.add(at + ": wrong side or tree");
            if (L.better != prev) p.add(at + ": better link broken");
            if (prev != kNil && key(s, lvl(prev).price) >= key(s, L.price))
                p.add(at + ": not strictly worse than the level before it");
            if (L.price <= 0 || L.price > kMaxPrice) p.add(at + ": price out of range");
            uint32_t count = 0, oprev = kNil;
            __int128 total = 0;
            for (uint32_t oi = L.head; oi != kNil; oprev = oi, oi = ord(oi).next) {
                if (oi >= h.order_watermark || ++count > h.max_orders) {
                    p.add(at + ": order list leaves the handed-out slots or loops");
                    return p.lines;
                }
                const Order& m = ord(oi);
                const std::string o = at + " order " + std::to_string(m.id);
                if (!m.in_use) p.add(o + ": slot not in use");
                if (m.level != li) p.add(o + ": points at another level");
                if (m.side != L.side) p.add(o + ": wrong side");
                if (!stops && m.price != L.price) p.add(o + ": price differs from its level");
                if (!stops && m.flags > detail::kPostOnly) p.add(o + ": stop-order flags on a resting order");
                if (stops && ((m.flags & detail::kPostOnly) || ((m.flags >> detail::kTifShift) & 3) > 2 ||
                              m.flags >> (detail::kTifShift + 2) != 0))
                    p.add(o + ": flags of a pending stop out of range");
                if (stops &&
                    ((m.flags & detail::kMarket) ? m.price != 0 : (m.price <= 0 || m.price > kMaxPrice)))
                    p.add(o + ": limit price of a pending stop out of range");
                if (stops && m.display != 0 &&
                    ((m.flags & (detail::kMarket | 3 << detail::kTifShift)) != 0 || m.display < 0 ||
                     m.display > kMaxQty || !iceberg_parts_ok(m.qty, m.display)))
                    p.add(o + ": display quantity of a pending stop not a stop-limit GTC iceberg's");
                if (stops && m.hidden != 0) p.add(o + ": a pending stop with hidden quantity");
                if (m.qty <= 0 || m.qty > kMaxQty) p.add(o + ": quantity out of range");
                if (!stops && (m.display < 0 || m.hidden < 0 || (m.display == 0 && m.hidden != 0) ||
                               (m.display > 0 && m.qty > m.display) || m.hidden > kMaxQty - m.qty))
                    p.add(o + ": iceberg shown/hidden/display quantities inconsistent");
                if (m.prev != oprev) p.add(o + ": prev link broken");
                if (hash_find(m.id) != oi) p.add(o + ": id hash does not lead to it");
                total += m.qty;
            }
            if (L.tail != oprev) p.add(at + ": tail is not the last order");
            if (count == 0) p.add(at + ": empty level left in the book");
            if (count != L.count) p.add(at + ": count " + std::to_string(L.count) + " but " +
                                        std::to_string(count) + " orders");
            if (total != L.qty) p.add(at + ": total differs from the sum of its orders");
            (stops ? stops_seen : orders_seen) += count;
        }
        if (n_levels != h.live_per_side[s]) p.add(side_name(s) + " level count differs from the header");
        levels_seen += n_levels;

        // The treap holds exactly the listed levels, in order, as a heap.
        std::vector<uint32_t> inorder, stack;
        for (uint32_t t = h.root[s]; t != kNil || !stack.empty();) {
            while (t != kNil) {
                if (t >= h.level_watermark || stack.size() > h.max_levels) {
                    p.add(side_name(s) + " treap leaves the handed-out slots or loops");
                    return p.lines;
                }
                for (uint32_t c : {lvl(t).left, lvl(t).right})
                    if (c != kNil && lvl(c).prio > lvl(t).prio) p.add(side_name(s) + " treap heap order broken");
                stack.push_back(t);
                t = lvl(t).left;
            }
            t = stack.back();
            stack.pop_back();
            inorder.push_back(t);
            if (inorder.size() > h.max_levels) {
                p.add(side_name(s) + " treap loops");
                return p.lines;
            }
            t = lvl(t).right;
        }
        if (inorder != list) p.add(side_name(s) + " treap and level list disagree");
    }

    LevelView bid, ask;
    if (best(Side::Buy, bid) && best(Side::Sell, ask) && bid.price >= ask.price) p.add("book is crossed");
    if (orders_seen != h.live_orders) p.add("resting order count differs from the header");
    if (stops_seen != h.live_stops) p.add("pending stop count differs from the header");
    if (h.last_price < 0 || h.last_price > kMaxPrice) p.add("last price out of range");
    for (int s = kStopTrees; s < 4; ++s)
        if (h.best[s] != kNil && stop_reached(static_cast<Side>(s - kStopTrees), lvl(h.best[s]).price))
            p.add(side_name(s) + " at " + std::to_string(lvl(h.best[s]).price) +
                  " is pending though the last price " + std::to_string(h.last_price) + " has reached it");
    if (levels_seen != h.live_levels) p.add("level count differs from the header");

    uint64_t hashed = 0;
    for (uint32_t i = 0; i <= hash_mask_; ++i) {
        if (hash_[i].slot1 == 0) continue;  // empty (its tag means nothing)
        ++hashed;
        const uint32_t oi = hash_[i].slot1 - 1;
        if (oi >= h.order_watermark || !ord(oi).in_use || hash_tag(ord(oi).id) != hash_[i].tag) {
            p.add("id hash entry " + std::to_string(i) + " points at a wrong slot");
            continue;
        }
        if (hash_find(ord(oi).id) != oi) p.add("id hash entry " + std::to_string(i) + " is not found by its id");
        // Robin Hood order: an entry away from its home follows an entry at most one step less displaced.
        const uint32_t d = hash_disp(i), prev = (i - 1) & hash_mask_;
        if (d != 0 && (hash_[prev].slot1 == 0 || d > hash_disp(prev) + 1))
            p.add("id hash entry " + std::to_string(i) + " is out of Robin Hood order");
    }
    if (hashed != uint64_t{h.live_orders} + h.live_stops)
        p.add("id hash holds " + std::to_string(hashed) + " ids for " + std::to_string(h.live_orders) +
              " orders and " + std::to_string(h.live_stops) + " pending stops");

    uint64_t free_orders = 0;
    for (uint32_t i = h.free_order; i != kNil; i = ord(i).next) {
        if (i >= h.order_watermark || ++free_orders > h.order_watermark) {
            p.add("order free list leaves the handed-out slots or loops");
            break;
        }
        if (ord(i).in_use) p.add("order slot " + std::to_string(i) + " is free and in use");
    }
    if (free_orders + h.live_orders + h.live_stops != h.order_watermark) p.add("order slots leaked");
    uint64_t free_levels = 0;
    for (uint32_t i = h.free_level; i != kNil; i = lvl(i).worse) {
        if (i >= h.level_watermark || ++free_levels > h.level_watermark) {
            p.add("level free list leaves the handed-out slots or loops");
            break;
        }
        if (lvl(i).in_use) p.add("level slot " + std::to_string(i) + " is free and in use");
    }
    if (free_levels + h.live_levels != h.level_watermark) p.add("level slots leaked");
    return p.lines;
}

}  // namespace pgx::core
