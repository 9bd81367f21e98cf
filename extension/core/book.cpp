// The order book: region layout, matching, undo-logged mutation, checks.
// See book.h for the memory model and SEMANTICS.md for the exact rules.
#include "book.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace pgx::core {

using detail::HashSlot;
using detail::Header;
using detail::kNil;

namespace {

constexpr uint64_t kMagic = 0x4b4f4f4258454750ULL;  // "PGEXBOOK"
// 2: 8-byte id hash entries (tag + slot); 3: Robin Hood, windowed homes; 4: icebergs; 5: stop orders
constexpr uint32_t kVersion = 5;
constexpr uint32_t kMaxSlots = 1u << 30;

using detail::mix64;

inline size_t align64(size_t x) { return (x + 63) & ~size_t{63}; }

struct Layout {
    uint32_t hash_slots = 0;
    size_t off_orders = 0, off_levels = 0, off_hash = 0, total = 0;
};

// Computes where each array lives in a region for this configuration.
bool compute_layout(const BookConfig& c, Layout& l) {
    if (c.max_orders == 0 || c.max_levels == 0 || c.max_orders > kMaxSlots || c.max_levels > kMaxSlots)
        return false;
    uint64_t slots = 16;
    while (slots < 2ull * c.max_orders) slots <<= 1;
    l.hash_slots = static_cast<uint32_t>(slots);
    l.off_orders = align64(sizeof(Header));
    l.off_levels = align64(l.off_orders + size_t{c.max_orders} * sizeof(detail::Order));
    l.off_hash = align64(l.off_levels + size_t{c.max_levels} * sizeof(detail::Level));
    l.total = align64(l.off_hash + size_t{l.hash_slots} * sizeof(HashSlot));
    return true;
}

inline int si(Side s) { return static_cast<int>(s); }
constexpr int kBuyStops = 2, kSellStops = 3;  // the pending stops' trees (2 + side)

}  // namespace

std::string_view to_string(Reject r) {
    switch (r) {
        case Reject::None: return "none";
        case Reject::InvalidOrderId: return "invalid_order_id";
        case Reject::DuplicateOrderId: return "duplicate_order_id";
        case Reject::InvalidSide: return "invalid_side";
        case Reject::InvalidType: return "invalid_type";
        case Reject::InvalidTif: return "invalid_time_in_force";
        case Reject::InvalidStp: return "invalid_stp";
        case Reject::InvalidPrice: return "invalid_price";
        case Reject::InvalidQuantity: return "invalid_quantity";
        case Reject::InvalidCombination: return "invalid_combination";
        case Reject::PostOnlyWouldTake: return "post_only_would_take";
        case Reject::FokUnfillable: return "fok_unfillable";
        case Reject::OrderCapacity: return "order_capacity";
        case Reject::LevelCapacity: return "level_capacity";
        case Reject::QuantityOverflow: return "quantity_overflow";
        case Reject::OrderNotFound: return "order_not_found";
        case Reject::NoChange: return "no_change";
        case Reject::WouldCross: return "would_cross";
        case Reject::InvalidDisplay: return "invalid_display";
        case Reject::InvalidStopPrice: return "invalid_stop_price";
        case Reject::StopWouldTrigger: return "stop_would_trigger";
    }
    return "unknown";
}

std::string_view to_string(CancelReason r) {
    switch (r) {
        case CancelReason::None: return "none";
        case CancelReason::Ioc: return "ioc";
        case CancelReason::MarketNoLiquidity: return "market_no_liquidity";
        case CancelReason::SelfTrade: return "self_trade";
        case CancelReason::User: return "user";
    }
    return "unknown";
}

// ---------------------------------------------------------------- region ---

size_t Book::required_bytes(const BookConfig& cfg) {
    Layout l;
    return compute_layout(cfg, l) ? l.total : 0;
}

bool Book::format(void* mem, size_t size, const BookConfig& cfg) {
    Layout l;
    if (mem == nullptr || reinterpret_cast<uintptr_t>(mem) % 8 != 0 || !compute_layout(cfg, l) ||
        size < l.total)
        return false;
    char* base = static_cast<char*>(mem);
    Header h;
    std::memset(&h, 0, sizeof h);
    h.magic = kMagic;
    h.version = kVersion;
    h.max_orders = cfg.max_orders;
    h.max_levels = cfg.max_levels;
    h.hash_slots = l.hash_slots;
    h.region_bytes = l.total;
    h.off_orders = l.off_orders;
    h.off_levels = l.off_levels;
    h.off_hash = l.off_hash;
    for (int t = 0; t < 4; ++t) h.best[t] = h.root[t] = kNil;
    h.free_order = kNil;
    h.free_level = kNil;
    std::memcpy(base, &h, sizeof h);
    // Order and level slots are handed out from the watermarks and initialised
    // then; only the hash must start out empty.
    std::memset(base + l.off_hash, 0, size_t{l.hash_slots} * sizeof(HashSlot));
    return true;
}

Book::Book(void* mem, size_t size) : base_(static_cast<char*>(mem)), size_(size) {
    h_ = reinterpret_cast<Header*>(base_);
    if (mem == nullptr || size < sizeof(Header) || h_->magic != kMagic || h_->version != kVersion ||
        h_->region_bytes > size)
        throw std::invalid_argument("region does not hold an order book of this version");
    orders_ = reinterpret_cast<Order*>(base_ + h_->off_orders);
    levels_ = reinterpret_cast<Level*>(base_ + h_->off_levels);
    hash_ = reinterpret_cast<HashSlot*>(base_ + h_->off_hash);
    hash_mask_ = h_->hash_slots - 1;
    hash_shift_ = static_cast<uint32_t>(__builtin_ctz(h_->hash_slots));
}

// ----------------------------------------------------------------- slots ---

uint32_t Book::alloc_order() {
    uint32_t i = h_->free_order;
    if (i != kNil) {
        put(h_->free_order, ord(i).next);
    } else if (h_->order_watermark < h_->max_orders) {
        i = h_->order_watermark;
        put(h_->order_watermark, i + 1);
    } else {
        return kNil;
    }
    put(ord(i).in_use, uint8_t{1});
    return i;
}

void Book::free_order(uint32_t i) {
    put(ord(i).in_use, uint8_t{0});
    put(ord(i).next, h_->free_order);
    put(h_->free_order, i);
}

uint32_t Book::alloc_level() {
    uint32_t i = h_->free_level;
    if (i != kNil) {
        put(h_->free_level, lvl(i).worse);
    } else if (h_->level_watermark < h_->max_levels) {
        i = h_->level_watermark;
        put(h_->level_watermark, i + 1);
    } else {
        return kNil;
    }
    put(lvl(i).in_use, uint8_t{1});
    return i;
}

void Book::free_level(uint32_t i) {
    put(lvl(i).in_use, uint8_t{0});
    put(lvl(i).worse, h_->free_level);
    put(h_->free_level, i);
}

// ------------------------------------------------------------- id hash ---
// Open addressing with Robin Hood linear probing and backward-shift deletion
// (no tombstones). An entry holds a 32-bit tag of the id (see hash_tag) and
// the order slot; the home slot depends on the tag only, so two ids with the
// same tag share a home and are told apart by the order's id.
//
// Home slots. Callers hand out ids from a sequence, so the home keeps
// consecutive ids side by side: the table is read as windows of hash_slots
// consecutive tags, and a tag's home is its offset in its window xor a mix of
// the window's number. Within a window that is a permutation that keeps runs
// of ids together in their cache lines and pages (the xor only swaps aligned
// blocks), so the duplicate check of a new order and the cancel of a recent
// one hit lines that are already hot, and a book's live ids, mostly a window's
// worth of recent ones, spread over the table without piling up; windows land
// at unrelated offsets, and ids with a power-of-two stride spread out too.
//
// Robin Hood order. An insert that meets an entry closer to its home than the
// new one is to its own takes that place and moves the other on, so along a
// run every entry sits at most one step further from its home than the entry
// before it. A lookup stops as soon as it passes where its id would be, and a
// deletion shifts back only the entries displaced from their homes, stopping
// at the first one at its home: erasing from a run of consecutive ids, all at
// home, moves nothing, however long the run (hash_probe_test.cpp counts it).

uint32_t Book::hash_home(uint32_t tag) const {
    return (tag ^ static_cast<uint32_t>(mix64(tag >> hash_shift_))) & hash_mask_;
}

uint32_t Book::hash_disp(uint32_t i) const { return (i - hash_home(hash_[i].tag)) & hash_mask_; }

uint32_t Book::hash_find(uint64_t id) const {
    const uint32_t tag = hash_tag(id);
    const uint32_t home = hash_home(tag);
    for (uint32_t d = 0, i = home;; ++d, i = (i + 1) & hash_mask_) {
        const HashSlot& e = hash_[i];
        if (e.slot1 == 0) return kNil;
        // (The bound keeps validate() and the hints inside a damaged region.)
        if (e.tag == tag) {
            if (e.slot1 <= h_->max_orders && ord(e.slot1 - 1).id == id) return e.slot1 - 1;
        } else if (d != 0 && (hash_disp(i) < d || d > hash_mask_)) {
            return kNil;  // the id would sit before an entry closer to its home
        }
    }
}

void Book::hash_insert(uint64_t id, uint32_t slot) {
    HashSlot cur{hash_tag(id), slot + 1};
    uint32_t i = hash_home(cur.tag);
    for (uint32_t d = 0;; ++d, i = (i + 1) & hash_mask_) {
        HashSlot& e = hash_[i];
        if (e.slot1 == 0) {
            put(e.tag, cur.tag);
            put(e.slot1, cur.slot1);
            return;
        }
        const uint32_t ed = hash_disp(i);
        if (ed < d) {  // the resident is closer to its home: it moves on instead
            const HashSlot displaced = e;
            put(e.tag, cur.tag);
            put(e.slot1, cur.slot1);
            cur = displaced;
            d = ed;
        }
    }
}

// Removes the entry of `id`, which names order slot `slot`.
void Book::hash_erase(uint64_t id, uint32_t slot) {
    uint32_t i = hash_home(hash_tag(id));
    while (hash_[i].slot1 != slot + 1) i = (i + 1) & hash_mask_;
    // Shift the displaced entries after it back by one, up to the first empty
    // entry or entry at its home.
    for (uint32_t j = (i + 1) & hash_mask_; hash_[j].slot1 != 0 && hash_disp(j) != 0; j = (j + 1) & hash_mask_) {
        put(hash_[i].tag, hash_[j].tag);
        put(hash_[i].slot1, hash_[j].slot1);
        i = j;
    }
    put(hash_[i].slot1, uint32_t{0});  // an empty entry's tag is left as it was
}

// ---------------------------------------------------------------- treap ---
// Keys: bids by -price, asks by price, so that "better" is always smaller.
// Priorities derive from (side, price), so the shape depends only on the set
// of prices: the same logical book has the same tree.

void Book::split(uint32_t t, int64_t k, int s, uint32_t& l, uint32_t& r) {
    if (t == kNil) {
        l = r = kNil;
        return;
    }
    uint32_t a, b;
    if (key(s, lvl(t).price) < k) {
        split(lvl(t).right, k, s, a, b);
        put(lvl(t).right, a);
        l = t;
        r = b;
    } else {
        split(lvl(t).left, k, s, a, b);
        put(lvl(t).left, b);
        l = a;
        r = t;
    }
}

uint32_t Book::merge(uint32_t l, uint32_t r) {
    if (l == kNil) return r;
    if (r == kNil) return l;
    if (lvl(l).prio >= lvl(r).prio) {
        put(lvl(l).right, merge(lvl(l).right, r));
        return l;
    }
    put(lvl(r).left, merge(l, lvl(r).left));
    return r;
}

void Book::treap_insert(int s, uint32_t n) {
    const int64_t k = key(s, lvl(n).price);
    uint32_t* link = &h_->root[s];
    while (*link != kNil && lvl(*link).prio >= lvl(n).prio)
        link = k < key(s, lvl(*link).price) ? &lvl(*link).left : &lvl(*link).right;
    uint32_t a, b;
    split(*link, k, s, a, b);
    put(lvl(n).left, a);
    put(lvl(n).right, b);
    put(*link, n);
}

void Book::treap_erase(int s, uint32_t n) {
    const int64_t k = key(s, lvl(n).price);
    uint32_t* link = &h_->root[s];
    while (*link != n) link = k < key(s, lvl(*link).price) ? &lvl(*link).left : &lvl(*link).right;
    put(*link, merge(lvl(n).left, lvl(n).right));
}

// --------------------------------------------------------------- levels ---

uint32_t Book::find_level(int s, int64_t price) const {
    const int64_t k = key(s, price);
    uint32_t t = h_->root[s];
    while (t != kNil) {
        const int64_t tk = key(s, lvl(t).price);
        if (k == tk) return t;
        t = k < tk ? lvl(t).left : lvl(t).right;
    }
    return kNil;
}

uint32_t Book::insert_level(int s, int64_t price) {
    const uint32_t n = alloc_level();
    if (n == kNil) return kNil;
    Level& L = lvl(n);
    put(L.price, price);
    put(L.qty, int64_t{0});
    put(L.count, uint32_t{0});
    put(L.head, kNil);
    put(L.tail, kNil);
    put(L.left, kNil);
    put(L.right, kNil);
    put(L.prio,
        static_cast<uint32_t>(mix64(static_cast<uint64_t>(price) ^ (static_cast<uint64_t>(s) << 62))));
    put(L.side, static_cast<uint8_t>(s & 1));
    put(L.stop, static_cast<uint8_t>(s >> 1));

    // The better neighbour: the level with the largest key below ours.
    const int64_t k = key(s, price);
    uint32_t pred = kNil;
    for (uint32_t t = h_->root[s]; t != kNil;) {
        if (key(s, lvl(t).price) < k) {
            pred = t;
            t = lvl(t).right;
        } else {
            t = lvl(t).left;
        }
    }
    uint32_t succ;
    if (pred == kNil) {
        succ = h_->best[s];
        put(h_->best[s], n);
    } else {
        succ = lvl(pred).worse;
        put(lvl(pred).worse, n);
    }
    put(L.better, pred);
    put(L.worse, succ);
    if (succ != kNil) put(lvl(succ).better, n);
    treap_insert(s, n);
    put(h_->live_levels, h_->live_levels + 1);
    put(h_->live_per_side[s], h_->live_per_side[s] + 1);
    return n;
}

void Book::erase_level(uint32_t li) {
    Level& L = lvl(li);
    const int s = tree_of(L);
    const uint32_t b = L.better, w = L.worse;
    if (b == kNil)
        put(h_->best[s], w);
    else
        put(lvl(b).worse, w);
    if (w != kNil) put(lvl(w).better, b);
    treap_erase(s, li);
    put(h_->live_levels, h_->live_levels - 1);
    put(h_->live_per_side[s], h_->live_per_side[s] - 1);
    free_level(li);
}

// --------------------------------------------------------------- orders ---

void Book::append_order(uint32_t li, uint32_t oi) {
    Level& L = lvl(li);
    Order& o = ord(oi);
    put(o.level, li);
    put(o.prev, L.tail);
    put(o.next, kNil);
    if (L.tail != kNil)
        put(ord(L.tail).next, oi);
    else
        put(L.head, oi);
    put(L.tail, oi);
    put(L.count, L.count + 1);
    put(L.qty, L.qty + o.qty);
}

void Book::unlink_order(uint32_t oi) {
    Order& o = ord(oi);
    Level& L = lvl(o.level);
    if (o.prev == kNil)
        put(L.head, o.next);
    else
        put(ord(o.prev).next, o.next);
    if (o.next == kNil)
        put(L.tail, o.prev);
    else
        put(ord(o.next).prev, o.prev);
    put(L.count, L.count - 1);
    put(L.qty, L.qty - o.qty);
}

// Unlinks order slot oi, frees it and its id, counts it out of `live`; true
// if its level emptied and was erased.
inline bool Book::release(uint32_t oi, uint32_t& live) {
    const uint32_t li = ord(oi).level;
    unlink_order(oi);
    hash_erase(ord(oi).id, oi);
    free_order(oi);
    put(live, live - 1);
    if (lvl(li).count != 0) return false;
    erase_level(li);
    return true;
}

// Takes an order out of the book entirely; returns true if its level emptied
// and was erased.
bool Book::remove_order(uint32_t oi) { return release(oi, h_->live_orders); }

// Takes a pending stop order out of the pending stops entirely.
void Book::remove_stop(uint32_t oi) { release(oi, h_->live_stops); }

// Records a level's state after this command; consecutive touches of one
// level collapse into one entry (a command touches each level in one run).
// (Results are written in place, field by field, here and in match(): an
// element built on the stack and pushed as a whole is copied with a wide load
// that waits for the narrower stores that built it.)
void Book::note_level(Result& out, Side s, int64_t price, uint32_t li_or_nil) {
    LevelChange* c;
    if (out.levels.size() > note_floor_ && out.levels.back().side == s &&
        out.levels.back().price.v == price) {
        c = &out.levels.back();
    } else {
        c = &out.levels.emplace_back();
        c->side = s;
        c->price = Price{price};
    }
    c->qty = Qty{li_or_nil != kNil ? lvl(li_or_nil).qty : 0};
    c->count = li_or_nil != kNil ? lvl(li_or_nil).count : 0;
}

// ------------------------------------------------------------- matching ---

Reject Book::validate_new(const NewOrder& o) const {
    if (o.id == 0) return Reject::InvalidOrderId;
    if (static_cast<uint8_t>(o.side) > 1) return Reject::InvalidSide;
    if (static_cast<uint8_t>(o.type) > 1) return Reject::InvalidType;
    if (static_cast<uint8_t>(o.tif) > 2) return Reject::InvalidTif;
    if (static_cast<uint8_t>(o.stp) > 3) return Reject::InvalidStp;
    if (o.type == OrderType::Limit ? (o.price.v <= 0 || o.price.v > kMaxPrice) : o.price.v != 0)
        return Reject::InvalidPrice;
    if (o.qty.v <= 0 || o.qty.v > kMaxQty) return Reject::InvalidQuantity;
    if (o.display.v != 0 &&
        (o.display.v < 0 || o.display.v > o.qty.v || !iceberg_parts_ok(o.qty.v, o.display.v)))
        return Reject::InvalidDisplay;
    if (o.stop.v < 0 || o.stop.v > kMaxPrice) return Reject::InvalidStopPrice;
    if ((o.post_only || o.display.v != 0) && (o.type == OrderType::Market || o.tif != Tif::Gtc))
        return Reject::InvalidCombination;
    if (o.post_only && o.stop.v != 0) return Reject::InvalidCombination;  // a stop-limit may be an iceberg
    if (hash_find(o.id) != kNil) return Reject::DuplicateOrderId;
    if (o.stop.v != 0 && stop_reached(o.side, o.stop.v)) return Reject::StopWouldTrigger;
    return Reject::None;
}

// Whether the last trade price has reached a stop price of this side (buy: last >= stop; sell: last <= stop).
bool Book::stop_reached(Side s, int64_t stop) const {
    const int64_t last = h_->last_price;
    return last != 0 && (s == Side::Buy ? stop <= last : stop >= last);
}

bool Book::crosses(const NewOrder& o, Price level_price) const {
    if (o.type == OrderType::Market) return true;
    return o.side == Side::Buy ? level_price <= o.price : level_price >= o.price;
}

// How much a taker would trade right now, following matching's rules,
// without changing anything (the FOK check). An iceberg counts whole, as
// its refills come round again, except at a level where the taker meets an
// order of its own that stops it (CancelNewest, CancelBoth): the refills of
// the icebergs ahead of that order queue behind it, so only their tips count.
__attribute__((noinline, cold)) Qty Book::fillable(const NewOrder& o) const {
    const int64_t need = o.qty.v;
    int64_t fill = 0;
    for (uint32_t li = h_->best[si(opposite(o.side))]; li != kNil && fill < need; li = lvl(li).worse) {
        const Level& L = lvl(li);
        if (!crosses(o, Price{L.price})) break;
        // The tips met so far, and the orders met so far whole (at most `need`: no overflow). The
        // walk ends where the tips alone cover `need`, where the taker would stop, or at the level's
        // end, where every refill has come round.
        int64_t shown = 0, whole = 0;
        for (uint32_t oi = L.head; oi != kNil && fill + shown < need; oi = ord(oi).next) {
            const Order& m = ord(oi);
            if (m.owner == o.owner && o.stp != Stp::None) {
                if (o.stp == Stp::CancelOldest) continue;
                return Qty{fill + std::min(need - fill, shown)};  // the taker would be cancelled here
            }
            shown += m.qty;
            whole = std::min(need, whole + m.qty + m.hidden);
        }
        fill += std::min(need - fill, whole);
    }
    return Qty{fill};
}

// Trades the taker against the opposite side; returns true if self-trade
// prevention stopped the taker. An iceberg maker whose shown part runs out is
// refilled at the back of its level, where the taker may meet it again; a
// refill that would overflow its level's total stops matching with
// `reject` = QuantityOverflow (the caller undoes the command).
bool Book::match(const NewOrder& o, Result& out, int64_t& remaining, Reject& reject) {
    const Side os = opposite(o.side);
    while (remaining > 0) {
        const uint32_t li = h_->best[si(os)];
        if (li == kNil || !crosses(o, Price{lvl(li).price})) return false;
        Level& L = lvl(li);
        const int64_t price = L.price;
        bool erased = false, stopped = false, changed = false;
        for (uint32_t oi = L.head; oi != kNil && remaining > 0 && !stopped;) {
            Order& m = ord(oi);
            const uint32_t next = m.next;
            if (m.owner == o.owner && o.stp != Stp::None) {
                if (o.stp == Stp::CancelNewest) {
                    stopped = true;
                    break;
                }
                Cancelled& x = out.stp_cancelled.emplace_back();
                x.id = m.id;
                x.owner = m.owner;
                x.side = os;
                x.price = Price{price};
                x.qty = Qty{m.qty + m.hidden};
                x.reason = CancelReason::SelfTrade;
                erased = remove_order(oi);
                changed = true;
                stopped = o.stp == Stp::CancelBoth;
                oi = next;
                continue;
            }
            const int64_t q = std::min(remaining, m.qty);
            put(m.qty, m.qty - q);
            put(L.qty, L.qty - q);
            remaining -= q;
            changed = true;
            out.filled.v += q;
            Fill& f = out.fills.emplace_back();
            f.maker = m.id;
            f.maker_owner = m.owner;
            f.taker = o.id;
            f.price = Price{price};
            f.qty = Qty{q};
            f.maker_remaining = Qty{m.qty + m.hidden};
            f.maker_requeued = false;
            if (m.qty == 0) {
                if (m.hidden == 0) {
                    erased = remove_order(oi);
                } else if (refill(oi)) {
                    f.maker_requeued = true;
                } else {
                    reject = Reject::QuantityOverflow;
                    return false;
                }
            }
            f.maker_visible = Qty{m.qty};
            oi = next;
        }
        if (changed) note_level(out, os, price, erased ? kNil : li);  // CancelNewest may stop at once
        if (stopped) return true;
    }
    return false;
}

// Refills an iceberg whose shown part ran out from its hidden part and puts
// it at the back of its level; false (nothing changed) if the level's total
// would overflow.
__attribute__((noinline, cold)) bool Book::refill(uint32_t oi) {
    Order& m = ord(oi);
    const int64_t shown = std::min(m.display, m.hidden);
    if (lvl(m.level).qty > std::numeric_limits<int64_t>::max() - shown) return false;
    const uint32_t li = m.level;
    unlink_order(oi);
    put(m.qty, shown);
    put(m.hidden, m.hidden - shown);
    append_order(li, oi);
    return true;
}

// Where an order that adds `qty` to the level at `price` of `tree` goes:
// checks that an order slot is free, makes the level if it is missing and
// checks that its total stays <= INT64_MAX; the level in li. Writes nothing
// when it rejects.
inline Reject Book::level_for(int tree, int64_t price, int64_t qty, uint32_t& li) {
    if (h_->free_order == kNil && h_->order_watermark == h_->max_orders) return Reject::OrderCapacity;
    li = find_level(tree, price);
    if (li == kNil) {
        li = insert_level(tree, price);
        if (li == kNil) return Reject::LevelCapacity;
    } else if (lvl(li).qty > std::numeric_limits<int64_t>::max() - qty) {
        return Reject::QuantityOverflow;
    }
    return Reject::None;
}

// Puts a GTC remainder of `qty` at the back of its level, `visible` of it shown.
Reject Book::rest(const NewOrder& o, int64_t qty, int64_t visible, Result& out) {
    uint32_t li;
    if (const Reject r = level_for(si(o.side), o.price.v, visible, li); r != Reject::None) return r;
    const uint32_t oi = alloc_order();
    Order& m = ord(oi);
    put(m.id, o.id);
    put(m.owner, o.owner);
    put(m.price, o.price.v);
    put(m.qty, visible);
    put(m.display, o.display.v);
    put(m.hidden, qty - visible);
    put(m.side, static_cast<uint8_t>(o.side));
    put(m.flags, static_cast<uint8_t>(o.post_only ? detail::kPostOnly : 0));
    put(m.stp, static_cast<uint8_t>(o.stp));
    hash_insert(o.id, oi);
    append_order(li, oi);
    put(h_->live_orders, h_->live_orders + 1);
    note_level(out, o.side, o.price.v, li);
    out.resting = Qty{qty};
    return Reject::None;
}

// Runs a validated order through post-only, FOK, matching and its remainder.
Reject Book::execute(const NewOrder& o, Result& out) {
    const uint32_t best_opp = h_->best[si(opposite(o.side))];
    if (o.post_only && best_opp != kNil && crosses(o, Price{lvl(best_opp).price}))
        return Reject::PostOnlyWouldTake;
    if (o.tif == Tif::Fok && fillable(o) < o.qty) return Reject::FokUnfillable;

    int64_t remaining = o.qty.v;
    Reject reject = Reject::None;
    const size_t fills_before = out.fills.size();
    const bool stopped = match(o, out, remaining, reject);
    if (reject != Reject::None) return reject;
    if (out.fills.size() != fills_before) put_always(h_->last_price, out.fills.back().price.v);
    if (remaining == 0) return Reject::None;
    if (stopped) {
        out.cancel_reason = CancelReason::SelfTrade;
    } else if (o.type == OrderType::Market) {
        out.cancel_reason = CancelReason::MarketNoLiquidity;
    } else if (o.tif != Tif::Gtc) {
        out.cancel_reason = CancelReason::Ioc;  // FOK never gets here: it was checked
    } else {
        return rest(o, remaining, o.display.v > 0 ? std::min(o.display.v, remaining) : remaining, out);
    }
    out.cancelled = Qty{remaining};
    return Reject::None;
}

// Ends a command: on reject, undo everything since `sp` and report only the
// reason; on success, advance the sequence.
bool Book::finish(Result& out, Savepoint sp, Reject r) {
    if (r != Reject::None) {
        rollback_to(sp);
        out.clear();
        out.status = Status::Rejected;
        out.reject = r;
    } else {
        put(h_->seq, h_->seq + 1);
    }
    out.seq = h_->seq;
    return r == Reject::None;
}

bool Book::place(const NewOrder& o, Result& out) {
    out.clear();
    const Savepoint sp = savepoint();
    Reject r = validate_new(o);
    if (r == Reject::None) {
        if (o.stop.v == 0) {
            r = execute(o, out);
        } else if ((r = add_stop(o)) == Reject::None) {
            out.pending = o.qty;
        }
    }
    const bool ok = finish(out, sp, r);
    if (ok && !out.fills.empty() && h_->live_stops != 0) trigger_stops(out);
    return ok;
}

// Puts a validated stop order at the back of its side's queue at its stop price.
Reject Book::add_stop(const NewOrder& o) {
    uint32_t li;
    if (const Reject r = level_for(kStopTrees + si(o.side), o.stop.v, o.qty.v, li); r != Reject::None)
        return r;
    const uint32_t oi = alloc_order();
    Order& m = ord(oi);
    put(m.id, o.id);
    put(m.owner, o.owner);
    put(m.price, o.price.v);
    put(m.qty, o.qty.v);  // all of it: nothing is shown or hidden while it waits
    put(m.display, o.display.v);
    put(m.hidden, int64_t{0});
    put(m.side, static_cast<uint8_t>(o.side));
    put(m.flags, static_cast<uint8_t>((o.type == OrderType::Market ? detail::kMarket : 0) |
                                      static_cast<uint8_t>(o.tif) << detail::kTifShift));
    put(m.stp, static_cast<uint8_t>(o.stp));
    hash_insert(o.id, oi);
    append_order(li, oi);
    put(h_->live_stops, h_->live_stops + 1);
    return Reject::None;
}

// Runs the pending stops the last trade price has reached, one at a time,
// each as an incoming order with its own sequence number, until none is
// reached (their trades move the price: a cascade). See SEMANTICS.md.
__attribute__((noinline)) void Book::trigger_stops(Result& out) {
    // The command's own order's outcome, kept aside while the triggered ones run.
    const Qty filled = out.filled, resting = out.resting, cancelled = out.cancelled;
    const CancelReason reason = out.cancel_reason;
    for (;;) {
        uint32_t li = h_->best[kBuyStops];
        if (li == kNil || !stop_reached(Side::Buy, lvl(li).price)) {
            li = h_->best[kSellStops];
            if (li == kNil || !stop_reached(Side::Sell, lvl(li).price)) break;
        }
        NewOrder n = as_new_order(view(ord(lvl(li).head)));
        n.stop = Price{0};  // an iceberg (a stop-limit with a display) rests as one
        remove_stop(lvl(li).head);
        Triggered t{};
        t.id = n.id;
        t.owner = n.owner;
        t.side = n.side;
        t.first_fill = static_cast<uint32_t>(out.fills.size());
        t.first_level = static_cast<uint32_t>(out.levels.size());
        t.first_stp = static_cast<uint32_t>(out.stp_cancelled.size());
        out.filled = out.resting = out.cancelled = Qty{0};
        out.cancel_reason = CancelReason::None;
        note_floor_ = t.first_level;  // its level changes are its own
        const Savepoint sp = savepoint();
        t.reject = execute(n, out);
        if (t.reject != Reject::None) {  // undone; all of it cancelled
            rollback_to(sp);
            out.fills.resize(t.first_fill);
            out.levels.resize(t.first_level);
            out.stp_cancelled.resize(t.first_stp);
            out.filled = out.resting = Qty{0};
            out.cancelled = n.qty;
            out.cancel_reason = CancelReason::None;
        }
        put(h_->seq, h_->seq + 1);
        t.seq = h_->seq;
        t.filled = out.filled;
        t.resting = out.resting;
        t.cancelled = out.cancelled;
        t.cancel_reason = out.cancel_reason;
        out.triggered.push_back(t);
    }
    note_floor_ = 0;
    out.filled = filled;
    out.resting = resting;
    out.cancelled = cancelled;
    out.cancel_reason = reason;
}

bool Book::cancel(OrderId id, Result& out) {
    out.clear();
    const Savepoint sp = savepoint();
    const uint32_t oi = id == 0 ? kNil : hash_find(id);
    if (oi == kNil) return finish(out, sp, Reject::OrderNotFound);
    const Order& m = ord(oi);
    const Side s = static_cast<Side>(m.side);
    const int64_t price = m.price;
    const uint32_t li = m.level;
    out.cancelled = Qty{m.qty + m.hidden};
    out.cancel_reason = CancelReason::User;
    if (lvl(li).stop) {  // a pending stop: in no level of the book
        remove_stop(oi);
        return finish(out, sp, Reject::None);
    }
    const bool erased = remove_order(oi);
    note_level(out, s, price, erased ? kNil : li);
    return finish(out, sp, Reject::None);
}

bool Book::amend(OrderId id, Price new_price, Qty new_qty, Result& out, Price new_stop) {
    out.clear();
    const Savepoint sp = savepoint();
    const uint32_t oi = id == 0 ? kNil : hash_find(id);
    if (oi == kNil) return finish(out, sp, Reject::OrderNotFound);
    if (lvl(ord(oi).level).stop) return amend_stop(oi, new_price, new_qty, new_stop, out, sp);
    if (new_stop.v != 0) return finish(out, sp, Reject::InvalidStopPrice);  // in the book: no stop to move
    if (new_price.v <= 0 || new_price.v > kMaxPrice) return finish(out, sp, Reject::InvalidPrice);
    if (new_qty.v <= 0 || new_qty.v > kMaxQty) return finish(out, sp, Reject::InvalidQuantity);
    Order& m = ord(oi);
    if (m.display > 0 && !iceberg_parts_ok(new_qty.v, m.display))
        return finish(out, sp, Reject::InvalidDisplay);
    const Side s = static_cast<Side>(m.side);
    const uint32_t li = m.level;
    const int64_t total = m.qty + m.hidden;
    if (new_price.v == m.price) {
        if (new_qty.v == total) return finish(out, sp, Reject::NoChange);
        if (new_qty.v < total) {  // an iceberg gives up hidden quantity first
            const int64_t shown = std::min(m.qty, new_qty.v);
            put(lvl(li).qty, lvl(li).qty - (m.qty - shown));
            put(m.qty, shown);
            put(m.hidden, new_qty.v - shown);
            out.priority_kept = true;
        } else {
            const int64_t shown = m.display > 0 ? std::min(m.display, new_qty.v) : new_qty.v;
            if (lvl(li).qty - m.qty > std::numeric_limits<int64_t>::max() - shown)
                return finish(out, sp, Reject::QuantityOverflow);
            unlink_order(oi);
            put(m.qty, shown);
            put(m.hidden, new_qty.v - shown);
            append_order(li, oi);
        }
        note_level(out, s, m.price, li);
        out.resting = new_qty;
        return finish(out, sp, Reject::None);
    }
    const NewOrder re{m.id,
                      m.owner,
                      s,
                      OrderType::Limit,
                      Tif::Gtc,
                      new_price,
                      new_qty,
                      (m.flags & detail::kPostOnly) != 0,
                      static_cast<Stp>(m.stp),
                      Qty{m.display}};
    const int64_t old_price = m.price;
    const bool erased = remove_order(oi);
    note_level(out, s, old_price, erased ? kNil : li);
    const bool ok = finish(out, sp, execute(re, out));
    if (ok && !out.fills.empty() && h_->live_stops != 0) trigger_stops(out);
    return ok;
}

// amend() of a pending stop order: a new quantity and limit price, and a new
// stop price unless new_stop is 0 or its own.
bool Book::amend_stop(uint32_t oi, Price new_price, Qty new_qty, Price new_stop, Result& out, Savepoint sp) {
    Order& m = ord(oi);
    if ((m.flags & detail::kMarket) ? new_price.v != 0 : (new_price.v <= 0 || new_price.v > kMaxPrice))
        return finish(out, sp, Reject::InvalidPrice);
    if (new_qty.v <= 0 || new_qty.v > kMaxQty) return finish(out, sp, Reject::InvalidQuantity);
    if (m.display > 0 && !iceberg_parts_ok(new_qty.v, m.display))
        return finish(out, sp, Reject::InvalidDisplay);
    if (new_stop.v < 0 || new_stop.v > kMaxPrice) return finish(out, sp, Reject::InvalidStopPrice);
    const int64_t stop = lvl(m.level).price;
    if (new_stop.v != 0 && new_stop.v != stop) {  // to the back of the new stop price's queue
        const Side s = static_cast<Side>(m.side);
        if (stop_reached(s, new_stop.v)) return finish(out, sp, Reject::StopWouldTrigger);
        NewOrder n = as_new_order(view(m));
        n.price = new_price;
        n.qty = new_qty;
        n.stop = new_stop;
        remove_stop(oi);  // frees its slot and maybe its level first, so a full book can still move it
        const Reject r = add_stop(n);
        if (r == Reject::None) out.pending = new_qty;
        return finish(out, sp, r);
    }
    if (new_price.v == m.price && new_qty.v == m.qty) return finish(out, sp, Reject::NoChange);
    Level& L = lvl(m.level);
    if (new_price.v == m.price && new_qty.v < m.qty) {  // keeps its place
        put(L.qty, L.qty - (m.qty - new_qty.v));
        put(m.qty, new_qty.v);
        out.priority_kept = true;
    } else {
        if (L.qty - m.qty > std::numeric_limits<int64_t>::max() - new_qty.v)
            return finish(out, sp, Reject::QuantityOverflow);
        const uint32_t li = m.level;
        unlink_order(oi);
        put(m.price, new_price.v);
        put(m.qty, new_qty.v);
        append_order(li, oi);
    }
    out.pending = new_qty;
    return finish(out, sp, Reject::None);
}

Reject Book::load_resting(const RestingOrder& o) {
    if (o.stop.v != 0) {  // a pending stop order, checked as place() checks it
        const NewOrder n = as_new_order(o);
        NewOrder checked = n;  // an amend may have taken an iceberg's quantity below its display
        if (n.display.v <= kMaxQty) checked.display = Qty{std::min(n.display.v, n.qty.v)};
        const Reject r = validate_new(checked);
        return r != Reject::None ? r : add_stop(n);
    }
    if (o.id == 0) return Reject::InvalidOrderId;
    if (static_cast<uint8_t>(o.side) > 1) return Reject::InvalidSide;
    if (static_cast<uint8_t>(o.stp) > 3) return Reject::InvalidStp;
    if (o.price.v <= 0 || o.price.v > kMaxPrice) return Reject::InvalidPrice;
    if (o.qty.v <= 0 || o.qty.v > kMaxQty) return Reject::InvalidQuantity;
    const int64_t display = o.display.v, visible = o.visible.v;
    if (display < 0 || display > kMaxQty || visible < 0 || visible > o.qty.v ||
        (display > 0 && visible > display) || (display == 0 && visible != 0 && visible != o.qty.v) ||
        (display > 0 && !iceberg_parts_ok(o.qty.v, display)))
        return Reject::InvalidDisplay;
    if (hash_find(o.id) != kNil) return Reject::DuplicateOrderId;
    const NewOrder n{o.id,  o.owner,     o.side, OrderType::Limit, Tif::Gtc, o.price,
                     o.qty, o.post_only, o.stp,  o.display};
    const uint32_t best_opp = h_->best[si(opposite(o.side))];
    if (best_opp != kNil && crosses(n, Price{lvl(best_opp).price})) return Reject::WouldCross;
    scratch_.clear();
    const int64_t shown = visible > 0 ? visible : display > 0 ? std::min(display, o.qty.v) : o.qty.v;
    return rest(n, o.qty.v, shown, scratch_);  // rest() rejects before writing anything
}

void Book::set_seq(uint64_t seq) { put(h_->seq, seq); }

void Book::set_last_price(Price p) { put(h_->last_price, p.v); }

// No undo entry for last_price can be live while it is 0: only a fill writes
// it, with a price > 0, and undoing that fill removes its entry.
bool Book::learn_last_price(Price p) {
    if (h_->last_price != 0 || p.v < 0 || p.v > kMaxPrice) return false;
    h_->last_price = p.v;
    return true;
}

// ------------------------------------------------------------- prefetch ---
// Read-only hints; see book.h. Every index is checked against the region's
// bounds so that a hint can never read outside it, whatever the id.

namespace {
inline void prefetch_line(const void* p) { __builtin_prefetch(p, 1, 3); }
}  // namespace

void Book::prefetch_hash(OrderId id) const {
    if (id == 0) return;
    prefetch_line(&hash_[hash_home(hash_tag(id))]);
}

void Book::prefetch_order(OrderId id) const {
    if (id == 0) return;
    // The first entry with the id's tag, unconfirmed: confirming would read
    // the very order line this hint is meant to start loading.
    const uint32_t tag = hash_tag(id);
    for (uint32_t i = hash_home(tag);; i = (i + 1) & hash_mask_) {
        const HashSlot& e = hash_[i];
        if (e.slot1 == 0) return;
        if (e.tag == tag) {
            if (e.slot1 <= h_->max_orders) prefetch_line(&ord(e.slot1 - 1));
            return;
        }
    }
}

void Book::prefetch_neighbours(OrderId id) const {
    if (id == 0) return;
    const uint32_t oi = hash_find(id);
    if (oi >= h_->max_orders) return;
    const Order& o = ord(oi);
    if (o.prev < h_->max_orders) prefetch_line(&ord(o.prev));
    if (o.next < h_->max_orders) prefetch_line(&ord(o.next));
    if (o.level < h_->max_levels) prefetch_line(&lvl(o.level));
}

// -------------------------------------------------------------- queries ---

bool Book::best(Side s, LevelView& lv) const {
    const uint32_t li = h_->best[si(s)];
    if (li == kNil) return false;
    lv = LevelView{Price{lvl(li).price}, Qty{lvl(li).qty}, lvl(li).count};
    return true;
}

// An order as seen from outside: resting in the book, or a pending stop.
RestingOrder Book::view(const Order& m) const {
    RestingOrder o{m.id,
                   m.owner,
                   static_cast<Side>(m.side),
                   Price{m.price},
                   Qty{m.qty + m.hidden},
                   (m.flags & detail::kPostOnly) != 0,
                   static_cast<Stp>(m.stp),
                   Qty{m.display},
                   Qty{m.qty}};
    if (lvl(m.level).stop) {
        o.visible = Qty{0};
        o.stop = Price{lvl(m.level).price};
        o.type = (m.flags & detail::kMarket) ? OrderType::Market : OrderType::Limit;
        o.tif = static_cast<Tif>((m.flags >> detail::kTifShift) & 3);
    }
    return o;
}

bool Book::find(OrderId id, RestingOrder& o) const {
    const uint32_t oi = id == 0 ? kNil : hash_find(id);
    if (oi == kNil) return false;
    o = view(ord(oi));
    return true;
}

void Book::levels(Side s, size_t depth, std::vector<LevelView>& out) const {
    out.clear();
    for (uint32_t li = h_->best[si(s)]; li != kNil && out.size() < depth; li = lvl(li).worse)
        out.push_back(LevelView{Price{lvl(li).price}, Qty{lvl(li).qty}, lvl(li).count});
}

void Book::orders(Side s, std::vector<RestingOrder>& out) const {
    out.clear();
    for (uint32_t li = h_->best[si(s)]; li != kNil; li = lvl(li).worse)
        for (uint32_t oi = lvl(li).head; oi != kNil; oi = ord(oi).next) out.push_back(view(ord(oi)));
}

void Book::stops(Side s, std::vector<RestingOrder>& out) const {
    out.clear();
    for (uint32_t li = h_->best[kStopTrees + si(s)]; li != kNil; li = lvl(li).worse)
        for (uint32_t oi = lvl(li).head; oi != kNil; oi = ord(oi).next) out.push_back(view(ord(oi)));
}

uint64_t Book::state_hash() const {
    uint64_t h = mix64(h_->seq ^ 0x5eed);
    auto add = [&h](uint64_t v) { h = mix64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2))); };
    for (int s = 0; s < 4; ++s) {
        if (s >= kStopTrees && h_->best[s] == kNil) continue;
        add(0xB00C0000u + s);
        for (uint32_t li = h_->best[s]; li != kNil; li = lvl(li).worse) {
            add(static_cast<uint64_t>(lvl(li).price));
            add(static_cast<uint64_t>(lvl(li).qty));
            add(lvl(li).count);
            for (uint32_t oi = lvl(li).head; oi != kNil; oi = ord(oi).next) {
                const Order& m = ord(oi);
                add(m.id);
                add(m.owner);
                add(static_cast<uint64_t>(m.qty));
                add(uint64_t{m.flags} << 8 | m.stp);
                if (m.display != 0) {  // (a book without icebergs hashes as before they existed)
                    add(static_cast<uint64_t>(m.display));
                    add(static_cast<uint64_t>(m.hidden));
                }
                if (s >= kStopTrees) add(static_cast<uint64_t>(m.price));  // a pending stop's limit price
            }
        }
    }
    // (A book that never traded and never held a stop order hashes as before stop orders existed.)
    if (h_->last_price != 0) add(static_cast<uint64_t>(h_->last_price) ^ 0x1a57000000000000ULL);
    return h;
}

}  // namespace pgx::core
