// Helpers shared by the core tests: a book in its own heap region, and
// readable comparisons of results and book states.
#pragma once

#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "book.h"

namespace pgx::test {

using namespace pgx::core;

// A formatted book that owns its region.
struct OwnedBook {
    std::vector<uint64_t> mem;
    std::unique_ptr<Book> book;
    OwnedBook(uint32_t max_orders, uint32_t max_levels) {
        const BookConfig cfg{max_orders, max_levels};
        mem.resize((Book::required_bytes(cfg) + 7) / 8);
        if (!Book::format(mem.data(), mem.size() * 8, cfg)) std::abort();
        book = std::make_unique<Book>(mem.data(), mem.size() * 8);
    }
    Book* operator->() { return book.get(); }
    Book& operator*() { return *book; }
};

// An integer from the environment, or the default.
inline long env_long(const char* name, long dflt) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtol(v, nullptr, 10) : dflt;
}

inline std::string describe(const NewOrder& o) {
    std::ostringstream s;
    s << "place{id=" << o.id << " owner=" << o.owner << " side=" << int(o.side) << " type=" << int(o.type)
      << " tif=" << int(o.tif) << " price=" << o.price.v << " qty=" << o.qty.v << " post_only=" << o.post_only
      << " stp=" << int(o.stp) << " display=" << o.display.v;
    if (o.stop.v != 0) s << " stop=" << o.stop.v;
    s << "}";
    return s.str();
}

// Empty if equal, else the first difference.
inline std::string diff_results(const Result& a, const Result& b) {
    std::ostringstream s;
    if (a.status != b.status) s << "status " << int(a.status) << " vs " << int(b.status) << "; ";
    if (a.reject != b.reject) s << "reject " << to_string(a.reject) << " vs " << to_string(b.reject) << "; ";
    if (a.seq != b.seq) s << "seq " << a.seq << " vs " << b.seq << "; ";
    if (a.filled != b.filled) s << "filled " << a.filled.v << " vs " << b.filled.v << "; ";
    if (a.resting != b.resting) s << "resting " << a.resting.v << " vs " << b.resting.v << "; ";
    if (a.pending != b.pending) s << "pending " << a.pending.v << " vs " << b.pending.v << "; ";
    if (a.cancelled != b.cancelled) s << "cancelled " << a.cancelled.v << " vs " << b.cancelled.v << "; ";
    if (a.cancel_reason != b.cancel_reason)
        s << "cancel_reason " << to_string(a.cancel_reason) << " vs " << to_string(b.cancel_reason) << "; ";
    if (a.priority_kept != b.priority_kept) s << "priority_kept differs; ";
    if (a.fills.size() != b.fills.size()) {
        s << "fills " << a.fills.size() << " vs " << b.fills.size() << "; ";
    } else {
        for (size_t i = 0; i < a.fills.size(); ++i) {
            const Fill &x = a.fills[i], &y = b.fills[i];
            if (x.maker != y.maker || x.maker_owner != y.maker_owner || x.taker != y.taker ||
                x.price != y.price || x.qty != y.qty || x.maker_remaining != y.maker_remaining ||
                x.maker_visible != y.maker_visible || x.maker_requeued != y.maker_requeued)
                s << "fill " << i << ": maker " << x.maker << "/" << y.maker << " price " << x.price.v << "/"
                  << y.price.v << " qty " << x.qty.v << "/" << y.qty.v << " rem " << x.maker_remaining.v
                  << "/" << y.maker_remaining.v << " visible " << x.maker_visible.v << "/"
                  << y.maker_visible.v << " requeued " << x.maker_requeued << "/" << y.maker_requeued << "; ";
        }
    }
    if (a.levels.size() != b.levels.size()) {
        s << "levels " << a.levels.size() << " vs " << b.levels.size() << "; ";
    } else {
        for (size_t i = 0; i < a.levels.size(); ++i) {
            const LevelChange &x = a.levels[i], &y = b.levels[i];
            if (x.side != y.side || x.price != y.price || x.qty != y.qty || x.count != y.count)
                s << "level change " << i << ": " << int(x.side) << "@" << x.price.v << " " << x.qty.v << "/"
                  << x.count << " vs " << int(y.side) << "@" << y.price.v << " " << y.qty.v << "/" << y.count << "; ";
        }
    }
    if (a.stp_cancelled.size() != b.stp_cancelled.size()) {
        s << "stp_cancelled " << a.stp_cancelled.size() << " vs " << b.stp_cancelled.size() << "; ";
    } else {
        for (size_t i = 0; i < a.stp_cancelled.size(); ++i) {
            const Cancelled &x = a.stp_cancelled[i], &y = b.stp_cancelled[i];
            if (x.id != y.id || x.owner != y.owner || x.side != y.side || x.price != y.price || x.qty != y.qty ||
                x.reason != y.reason)
                s << "stp_cancelled " << i << " differs; ";
        }
    }
    if (a.triggered.size() != b.triggered.size()) {
        s << "triggered " << a.triggered.size() << " vs " << b.triggered.size() << "; ";
    } else {
        for (size_t i = 0; i < a.triggered.size(); ++i) {
            const Triggered &x = a.triggered[i], &y = b.triggered[i];
            if (x.id != y.id || x.owner != y.owner || x.side != y.side || x.seq != y.seq ||
                x.filled != y.filled || x.resting != y.resting || x.cancelled != y.cancelled ||
                x.cancel_reason != y.cancel_reason || x.reject != y.reject || x.first_fill != y.first_fill ||
                x.first_level != y.first_level || x.first_stp != y.first_stp)
                s << "triggered " << i << ": id " << x.id << "/" << y.id << " owner " << x.owner << "/"
                  << y.owner << " side " << int(x.side) << "/" << int(y.side) << " seq " << x.seq << "/"
                  << y.seq << " filled " << x.filled.v << "/" << y.filled.v << " resting " << x.resting.v
                  << "/" << y.resting.v << " cancelled " << x.cancelled.v << "/" << y.cancelled.v
                  << " reason " << to_string(x.cancel_reason) << "/" << to_string(y.cancel_reason)
                  << " reject " << to_string(x.reject) << "/" << to_string(y.reject)
                  << " first fill/level/stp " << x.first_fill << "/" << x.first_level << "/" << x.first_stp
                  << " vs " << y.first_fill << "/" << y.first_level << "/" << y.first_stp << "; ";
        }
    }
    return s.str();
}

// Empty if the two order lists are equal, else the first difference.
inline std::string diff_orders(const std::vector<RestingOrder>& a, const std::vector<RestingOrder>& b) {
    if (a.size() != b.size()) return "order count " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        const RestingOrder &x = a[i], &y = b[i];
        if (x.id != y.id || x.owner != y.owner || x.side != y.side || x.price != y.price || x.qty != y.qty ||
            x.post_only != y.post_only || x.stp != y.stp || x.display != y.display ||
            x.visible != y.visible || x.stop != y.stop || x.type != y.type || x.tif != y.tif)
            return "order " + std::to_string(i) + ": id " + std::to_string(x.id) + " vs " +
                   std::to_string(y.id) + ", stop " + std::to_string(x.stop.v) + " vs " +
                   std::to_string(y.stop.v) + ", type/tif " + std::to_string(int(x.type)) + "/" +
                   std::to_string(int(x.tif)) + " vs " + std::to_string(int(y.type)) + "/" +
                   std::to_string(int(y.tif)) + ", price " + std::to_string(x.price.v) + " vs " +
                   std::to_string(y.price.v) + ", qty " + std::to_string(x.qty.v) + " vs " +
                   std::to_string(y.qty.v) + ", visible/display " + std::to_string(x.visible.v) + "/" +
                   std::to_string(x.display.v) + " vs " + std::to_string(y.visible.v) + "/" +
                   std::to_string(y.display.v);
    }
    return {};
}

inline std::string diff_levels(const std::vector<LevelView>& a, const std::vector<LevelView>& b) {
    if (a.size() != b.size()) return "level count " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].price != b[i].price || a[i].qty != b[i].qty || a[i].count != b[i].count)
            return "level " + std::to_string(i) + " at " + std::to_string(a[i].price.v) + " vs " +
                   std::to_string(b[i].price.v);
    return {};
}

// Both sides' orders, levels and pending stop orders, for comparing two books or two moments.
struct Snapshot {
    std::vector<RestingOrder> orders[2];
    std::vector<LevelView> levels[2];
    std::vector<RestingOrder> stops[2];  // in trigger order
    uint64_t seq = 0;
    int64_t last_price = 0;
    uint32_t order_count = 0, level_count = 0, stop_count = 0;
    template <class B>
    static Snapshot of(const B& b) {
        Snapshot s;
        for (int i = 0; i < 2; ++i) {
            b.orders(static_cast<Side>(i), s.orders[i]);
            b.levels(static_cast<Side>(i), SIZE_MAX, s.levels[i]);
            b.stops(static_cast<Side>(i), s.stops[i]);
        }
        s.seq = b.seq();
        s.last_price = b.last_price().v;
        s.order_count = b.order_count();
        s.level_count = b.level_count();
        s.stop_count = b.stop_count();
        return s;
    }
};

inline std::string diff_snapshots(const Snapshot& a, const Snapshot& b) {
    for (int i = 0; i < 2; ++i) {
        std::string d = diff_orders(a.orders[i], b.orders[i]);
        if (d.empty()) d = diff_levels(a.levels[i], b.levels[i]);
        if (!d.empty()) return (i == 0 ? "bids: " : "asks: ") + d;
    }
    for (int i = 0; i < 2; ++i) {
        const std::string d = diff_orders(a.stops[i], b.stops[i]);
        if (!d.empty()) return (i == 0 ? "buy stops: " : "sell stops: ") + d;
    }
    if (a.seq != b.seq) return "seq " + std::to_string(a.seq) + " vs " + std::to_string(b.seq);
    if (a.last_price != b.last_price)
        return "last_price " + std::to_string(a.last_price) + " vs " + std::to_string(b.last_price);
    if (a.order_count != b.order_count)
        return "order_count " + std::to_string(a.order_count) + " vs " + std::to_string(b.order_count);
    if (a.level_count != b.level_count)
        return "level_count " + std::to_string(a.level_count) + " vs " + std::to_string(b.level_count);
    if (a.stop_count != b.stop_count)
        return "stop_count " + std::to_string(a.stop_count) + " vs " + std::to_string(b.stop_count);
    return {};
}

}  // namespace pgx::test
