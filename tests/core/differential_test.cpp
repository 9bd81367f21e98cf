// The real book against the naive reference book: the same seeded random
// command stream, every result (the stop orders it triggered included) and the
// whole book (orders, levels, pending stops, last price) compared after every
// step.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "random_stream.h"
#include "reference_book.h"
#include "test_support.h"

namespace pgx::test {
namespace {

struct Config {
    const char* name;
    uint32_t max_orders, max_levels;
    int64_t lo, hi;  // price band
    int owners;
    uint64_t seed;
    double share;  // share of PGX_DIFF_OPS
    bool huge = false;  // quantities near kMaxQty
    int stop_pct = 8;   // percentage of new orders that are stop orders
};

// Outcomes seen, so the test can insist that the stream exercised every rule.
struct Coverage {
    std::array<long, 32> rejects{};
    long accepted = 0, fills = 0, stp_by_mode[4] = {}, market_no_liquidity = 0, ioc = 0, rested = 0, kept = 0,
         requeued = 0, user_cancels = 0, iceberg_rested = 0, refills = 0;
    // Stop orders: placed (pending) or loaded, cancelled and amended while
    // pending, triggered (and how those ran: filled, rested, rejected), and
    // cascades (a stop triggered only by the trades of stops triggered
    // before it in the same command); multi: commands that triggered >= 2.
    long stops_placed = 0, stops_loaded = 0, stop_cancels = 0, stop_kept = 0, stop_requeued = 0,
         triggered = 0, triggered_filled = 0, triggered_rested = 0, triggered_market = 0, cascades = 0,
         multi = 0, max_triggered = 0;
    std::array<long, 32> triggered_rejects{};
    std::array<long, 32> stop_rejects{};  // of places, loads and amends of stop orders
    // Amends that move a pending stop to a new stop price: accepted, and
    // rejected by reason; amends of an order in the book given a stop price.
    long stop_moves = 0, stop_amends_own_stop = 0;
    std::array<long, 32> stop_move_rejects{};
    std::array<long, 32> book_amend_with_stop{};  // by reject (None: accepted, which must not happen)
    // Stop-limit icebergs (stop orders with a display): placed and loaded
    // (loaded with a display above their quantity, as an amend leaves it),
    // places and loads of stop orders with a display refused, by reason;
    // amends of pending icebergs (accepted; to a quantity below the display;
    // moves of their stop price; refused, by reason), cancels; triggered, how
    // many of those rested, rested with a hidden part, rested whole with a
    // display above what rested, and fills that later refilled the tip of a
    // triggered iceberg resting in the book.
    long ice_placed = 0, ice_loaded = 0, ice_loaded_above_qty = 0, ice_amended = 0, ice_amended_below = 0,
         ice_moved = 0, ice_cancelled = 0, ice_triggered = 0, ice_rested = 0, ice_rested_hidden = 0,
         ice_rested_whole = 0, ice_refilled = 0;
    std::array<long, 32> ice_rejects{};        // places and loads of stops with a display
    std::array<long, 32> ice_amend_rejects{};  // amends of pending iceberg stops
    std::unordered_set<OrderId> ice_resting;   // triggered icebergs that rested (this run's ids)

    // The stop iceberg part of add(): `target` is the pending stop the
    // command names (before it ran; null if none), `before` the pending stops
    // before it ran.
    void add_icebergs(const Command& c, const Result& r, const RestingOrder* target, bool move,
                      const std::unordered_map<OrderId, const RestingOrder*>& before) {
        const bool placed = c.kind == Command::Place && c.order.stop.v > 0 && c.order.display.v != 0;
        const bool loaded = c.kind == Command::Load && c.resting.stop.v > 0 && c.resting.display.v != 0;
        const bool iceberg_target = target && target->display.v > 0;
        if ((c.kind == Command::Place || c.kind == Command::Load) && r.accepted())
            ice_resting.erase(c.kind == Command::Place ? c.order.id : c.resting.id);  // a new order
        if (!r.accepted()) {
            if (placed || loaded) ++ice_rejects[static_cast<size_t>(r.reject)];
            if (iceberg_target && c.kind == Command::Amend)
                ++ice_amend_rejects[static_cast<size_t>(r.reject)];
            return;
        }
        if (placed) ++ice_placed;
        if (loaded) ++ice_loaded;
        if (loaded && c.resting.display > c.resting.qty) ++ice_loaded_above_qty;
        if (iceberg_target && c.kind == Command::Amend) {
            ++ice_amended;
            if (c.qty < target->display) ++ice_amended_below;
            if (move) ++ice_moved;
        }
        if (iceberg_target && c.kind == Command::Cancel) ++ice_cancelled;
        for (const Fill& f : r.fills)
            if (f.maker_requeued && ice_resting.count(f.maker)) ++ice_refilled;
        for (const Triggered& t : r.triggered) {
            const auto it = before.find(t.id);
            if (it == before.end() || it->second->display.v == 0) continue;
            const int64_t display = it->second->display.v;
            ++ice_triggered;
            if (t.resting.v == 0) continue;
            ++ice_rested;
            if (t.resting.v > display) ++ice_rested_hidden;
            if (display > t.resting.v && display > it->second->qty.v) ++ice_rested_whole;
            ice_resting.insert(t.id);
        }
    }

    // `move`: an amend of a pending stop with a new stop price other than 0 and its own.
    void add(const Command& c, const Result& r, bool pending_target, bool move = false) {
        if (c.kind == Command::Amend && pending_target && move)
            ++(r.accepted() ? stop_moves : stop_move_rejects[static_cast<size_t>(r.reject)]);
        if (c.kind == Command::Amend && pending_target && !move && c.stop.v != 0 && r.accepted())
            ++stop_amends_own_stop;
        if (c.kind == Command::Amend && !pending_target && c.stop.v != 0)
            ++book_amend_with_stop[static_cast<size_t>(r.reject)];
        const bool stop_cmd = (c.kind == Command::Place && c.order.stop.v > 0) ||
                              (c.kind == Command::Load && c.resting.stop.v > 0) ||
                              (c.kind == Command::Amend && pending_target);
        if (c.kind == Command::Load && r.accepted() && c.resting.stop.v > 0) ++stops_loaded;
        if (!r.accepted()) {
            ++rejects[static_cast<size_t>(r.reject)];
            if (stop_cmd) ++stop_rejects[static_cast<size_t>(r.reject)];
            return;
        }
        if (r.pending.v > 0 && c.kind == Command::Place) ++stops_placed;
        if (pending_target && c.kind == Command::Cancel) ++stop_cancels;
        if (pending_target && c.kind == Command::Amend) ++(r.priority_kept ? stop_kept : stop_requeued);
        triggered += static_cast<long>(r.triggered.size());
        if (r.triggered.size() >= 2) ++multi;
        max_triggered = std::max(max_triggered, static_cast<long>(r.triggered.size()));
        for (const Triggered& t : r.triggered) {
            if (t.reject != Reject::None) ++triggered_rejects[static_cast<size_t>(t.reject)];
            if (t.filled.v > 0) ++triggered_filled;
            if (t.resting.v > 0) ++triggered_rested;
            if (t.cancel_reason == CancelReason::MarketNoLiquidity) ++triggered_market;
        }
        ++accepted;
        fills += static_cast<long>(r.fills.size());
        for (const Fill& f : r.fills) refills += f.maker_requeued;
        if (c.kind == Command::Place && c.order.display.v > 0 && c.order.display < r.resting)
            ++iceberg_rested;
        if (c.kind == Command::Place && (r.cancel_reason == CancelReason::SelfTrade || !r.stp_cancelled.empty()))
            ++stp_by_mode[static_cast<int>(c.order.stp)];
        if (r.cancel_reason == CancelReason::MarketNoLiquidity) ++market_no_liquidity;
        if (r.cancel_reason == CancelReason::Ioc) ++ioc;
        if (r.cancel_reason == CancelReason::User) ++user_cancels;
        if (r.resting.v > 0) ++rested;
        if (c.kind == Command::Amend && !pending_target) ++(r.priority_kept ? kept : requeued);
    }
    long rej(Reject r) const { return rejects[static_cast<size_t>(r)]; }

    void merge(const Coverage& c) {
        for (size_t i = 0; i < rejects.size(); ++i) rejects[i] += c.rejects[i];
        for (size_t i = 0; i < triggered_rejects.size(); ++i) triggered_rejects[i] += c.triggered_rejects[i];
        for (size_t i = 0; i < stop_rejects.size(); ++i) stop_rejects[i] += c.stop_rejects[i];
        for (size_t i = 0; i < stop_move_rejects.size(); ++i) stop_move_rejects[i] += c.stop_move_rejects[i];
        for (size_t i = 0; i < book_amend_with_stop.size(); ++i)
            book_amend_with_stop[i] += c.book_amend_with_stop[i];
        stop_moves += c.stop_moves;
        stop_amends_own_stop += c.stop_amends_own_stop;
        for (size_t i = 0; i < ice_rejects.size(); ++i) ice_rejects[i] += c.ice_rejects[i];
        for (size_t i = 0; i < ice_amend_rejects.size(); ++i) ice_amend_rejects[i] += c.ice_amend_rejects[i];
        ice_placed += c.ice_placed;
        ice_loaded += c.ice_loaded;
        ice_loaded_above_qty += c.ice_loaded_above_qty;
        ice_amended += c.ice_amended;
        ice_amended_below += c.ice_amended_below;
        ice_moved += c.ice_moved;
        ice_cancelled += c.ice_cancelled;
        ice_triggered += c.ice_triggered;
        ice_rested += c.ice_rested;
        ice_rested_hidden += c.ice_rested_hidden;
        ice_rested_whole += c.ice_rested_whole;
        ice_refilled += c.ice_refilled;
        accepted += c.accepted;
        fills += c.fills;
        for (int i = 0; i < 4; ++i) stp_by_mode[i] += c.stp_by_mode[i];
        market_no_liquidity += c.market_no_liquidity;
        ioc += c.ioc;
        kept += c.kept;
        requeued += c.requeued;
        user_cancels += c.user_cancels;
        rested += c.rested;
        iceberg_rested += c.iceberg_rested;
        refills += c.refills;
        stops_placed += c.stops_placed;
        stops_loaded += c.stops_loaded;
        stop_cancels += c.stop_cancels;
        stop_kept += c.stop_kept;
        stop_requeued += c.stop_requeued;
        triggered += c.triggered;
        triggered_filled += c.triggered_filled;
        triggered_rested += c.triggered_rested;
        triggered_market += c.triggered_market;
        cascades += c.cascades;
        multi += c.multi;
        max_triggered = std::max(max_triggered, c.max_triggered);
    }

    void print(const char* name, long ops) const {
        std::printf(
            "[%s] %ld ops: accepted %ld, fills %ld, rested %ld, ioc %ld, market_no_liquidity %ld, "
            "stp newest/oldest/both %ld/%ld/%ld, amend kept/requeued %ld/%ld, icebergs rested %ld, "
            "refilled %ld\n  rejects:",
            name, ops, accepted, fills, rested, ioc, market_no_liquidity, stp_by_mode[1], stp_by_mode[2],
            stp_by_mode[3], kept, requeued, iceberg_rested, refills);
        for (size_t i = 1; i < rejects.size(); ++i)
            if (rejects[i]) std::printf(" %s=%ld", std::string(to_string(static_cast<Reject>(i))).c_str(), rejects[i]);
        std::printf(
            "\n  stops: placed %ld, loaded %ld, cancelled %ld, amend kept/requeued %ld/%ld, triggered %ld "
            "(filled "
            "%ld, rested %ld, market_no_liquidity %ld), cascades %ld, commands triggering >= 2: %ld (most "
            "%ld)\n"
            "  triggered rejects:",
            stops_placed, stops_loaded, stop_cancels, stop_kept, stop_requeued, triggered, triggered_filled,
            triggered_rested, triggered_market, cascades, multi, max_triggered);
        for (size_t i = 1; i < triggered_rejects.size(); ++i)
            if (triggered_rejects[i])
                std::printf(" %s=%ld", std::string(to_string(static_cast<Reject>(i))).c_str(),
                            triggered_rejects[i]);
        std::printf("\n  stop order rejects:");
        for (size_t i = 1; i < stop_rejects.size(); ++i)
            if (stop_rejects[i])
                std::printf(" %s=%ld", std::string(to_string(static_cast<Reject>(i))).c_str(),
                            stop_rejects[i]);
        std::printf(
            "\n  stop price moves: accepted %ld, amends naming their own stop price accepted %ld, refused:",
            stop_moves, stop_amends_own_stop);
        for (size_t i = 1; i < stop_move_rejects.size(); ++i)
            if (stop_move_rejects[i])
                std::printf(" %s=%ld", std::string(to_string(static_cast<Reject>(i))).c_str(),
                            stop_move_rejects[i]);
        std::printf("\n  amends of book orders (or unknown ids) with a stop price:");
        for (size_t i = 0; i < book_amend_with_stop.size(); ++i)
            if (book_amend_with_stop[i])
                std::printf(" %s=%ld", std::string(to_string(static_cast<Reject>(i))).c_str(),
                            book_amend_with_stop[i]);
        std::printf(
            "\n  stop icebergs: placed %ld, loaded %ld (display above qty %ld), amended %ld "
            "(below display %ld, moved %ld), cancelled %ld, triggered %ld (rested %ld, with a hidden part "
            "%ld, whole with a display above its qty %ld), tips of triggered icebergs refilled %ld\n"
            "  stop icebergs refused:",
            ice_placed, ice_loaded, ice_loaded_above_qty, ice_amended, ice_amended_below, ice_moved,
            ice_cancelled, ice_triggered, ice_rested, ice_rested_hidden, ice_rested_whole, ice_refilled);
        for (size_t i = 1; i < ice_rejects.size(); ++i)
            if (ice_rejects[i])
                std::printf(" %s=%ld", std::string(to_string(static_cast<Reject>(i))).c_str(),
                            ice_rejects[i]);
        std::printf("; their amends refused:");
        for (size_t i = 1; i < ice_amend_rejects.size(); ++i)
            if (ice_amend_rejects[i])
                std::printf(" %s=%ld", std::string(to_string(static_cast<Reject>(i))).c_str(),
                            ice_amend_rejects[i]);
        std::printf("\n");
    }
};

// Empty if both books agree on what find(id) reports.
std::string diff_find(const Book& real, const ref::ReferenceBook& model, OrderId id) {
    RestingOrder a, b;
    const bool fa = real.find(id, a), fb = model.find(id, b);
    if (fa != fb)
        return "find(" + std::to_string(id) + ") " + (fa ? "found" : "not found") + " vs " +
               (fb ? "found" : "not found");
    if (!fa) return {};
    const std::string d = diff_orders({a}, {b});
    return d.empty() ? d : "find(" + std::to_string(id) + "): " + d;
}

// Whether a last trade price `last` triggers a stop order of side `s` with stop price `stop`.
bool reaches(Side s, int64_t stop, int64_t last) {
    return last > 0 && (s == Side::Buy ? last >= stop : last <= stop);
}

// Runs one configuration; returns the coverage seen.
Coverage run(const Config& cfg, long ops) {
    OwnedBook real(cfg.max_orders, cfg.max_levels);
    ref::ReferenceBook model(cfg.max_orders, cfg.max_levels);
    RandomStream stream(cfg.seed, cfg.lo, cfg.hi, cfg.owners, cfg.huge, cfg.stop_pct);
    Coverage cov;
    Result got, want;
    std::vector<OrderId> live;
    std::vector<RestingOrder> pending;
    std::unordered_map<OrderId, const RestingOrder*> pending_by_id;
    Snapshot expected = Snapshot::of(model);
    for (long step = 0; step < ops; ++step) {
        live.clear();
        pending.clear();
        pending_by_id.clear();
        for (const auto& side : expected.orders)
            for (const auto& o : side) live.push_back(o.id);
        for (const auto& side : expected.stops)
            for (const auto& o : side) {
                pending.push_back(o);
                pending_by_id[o.id] = &o;
            }
        Command c = stream.next(live, pending, expected.last_price);
        if (c.kind == Command::Amend && c.price.v == 0) {  // "keep the price" (a stop-market's is 0)
            RestingOrder cur;
            c.price = Price{model.find(c.id, cur) ? cur.price.v : cfg.lo};
        }
        const auto target = pending_by_id.find(c.id);
        const bool pending_target =
            (c.kind == Command::Cancel || c.kind == Command::Amend) && target != pending_by_id.end();
        const bool move =
            c.kind == Command::Amend && pending_target && c.stop.v != 0 && c.stop.v != target->second->stop.v;
        apply_command(*real, c, got);
        apply_command(model, c, want);
        const auto where = [&] {  // built only for a failure
            return std::string(cfg.name) + " seed " + std::to_string(cfg.seed) + " step " +
                   std::to_string(step) + ": " + c.describe() + ": ";
        };
        std::string d = diff_results(got, want);
        if (d.empty() && got.accepted() && c.kind != Command::Load &&
            real->seq() != got.seq + got.triggered.size())
            d = "seq() " + std::to_string(real->seq()) + " is not the result's seq plus the triggered";
        if (d.empty()) {
            const OrderId id = c.kind == Command::Place  ? c.order.id
                               : c.kind == Command::Load ? c.resting.id
                                                         : c.id;
            d = diff_find(*real, model, id);
            for (size_t i = 0; d.empty() && i < got.triggered.size(); ++i)
                d = diff_find(*real, model, got.triggered[i].id);
        }
        if (!d.empty()) {
            ADD_FAILURE() << where() << "result differs (real vs reference): " << d;
            return cov;
        }
        if (!want.triggered.empty()) {  // cascades: triggered only by earlier triggered stops' trades
            int64_t after_own = expected.last_price;
            if (want.triggered[0].first_fill > 0)
                after_own = want.fills[want.triggered[0].first_fill - 1].price.v;
            for (const Triggered& t : want.triggered) {
                const auto it = pending_by_id.find(t.id);
                if (it != pending_by_id.end() && !reaches(t.side, it->second->stop.v, after_own))
                    ++cov.cascades;
            }
        }
        cov.add(c, got, pending_target, move);
        cov.add_icebergs(c, got, pending_target ? target->second : nullptr, move, pending_by_id);
        expected = Snapshot::of(model);
        const std::string s = diff_snapshots(Snapshot::of(*real), expected);
        if (!s.empty()) {
            ADD_FAILURE() << where() << "book differs (real vs reference): " << s;
            return cov;
        }
        if (real->order_count() < 256 || step % 64 == 0) {
            const auto problems = real->validate();
            if (!problems.empty()) {
                ADD_FAILURE() << where() << "invariant broken: " << problems.front();
                return cov;
            }
        }
        if (step % 16 == 0) real->commit();
    }
    cov.print(cfg.name, ops);
    return cov;
}

const Config kConfigs[] = {
    {"roomy", 4096, 512, 90, 110, 4, 0x5eed0001, 0.25},
    {"few-levels", 16, 4, 95, 104, 4, 0x5eed0002, 0.2},
    {"few-orders", 6, 64, 95, 104, 4, 0x5eed0004, 0.15},
    {"wide", 4096, 64, 1, 400, 3, 0x5eed0003, 0.15},
    {"huge", 512, 64, 100, 101, 8, 0x5eed0005, 0.13, true, 15},
    {"stops", 256, 16, 95, 105, 4, 0x5eed0006, 0.12, false, 35},
};

TEST(Differential, RandomStreamsAgreeWithReference) {
    const long total = env_long("PGX_DIFF_OPS", 1'000'000);
    Coverage all;
    for (const Config& cfg : kConfigs) {
        const Coverage c = run(cfg, static_cast<long>(total * cfg.share));
        if (HasFailure()) return;
        all.merge(c);
    }
    all.print("all", total);
    if (total < 100'000) return;  // a short smoke run need not reach every rule
    // The stream must keep exercising every rule, or this test proves little.
    EXPECT_GT(all.fills, 0);
    EXPECT_GT(all.rested, 0);
    EXPECT_GT(all.user_cancels, 0);
    EXPECT_GT(all.ioc, 0);
    EXPECT_GT(all.market_no_liquidity, 0);
    EXPECT_GT(all.stp_by_mode[1], 0) << "CancelNewest";
    EXPECT_GT(all.stp_by_mode[2], 0) << "CancelOldest";
    EXPECT_GT(all.stp_by_mode[3], 0) << "CancelBoth";
    EXPECT_GT(all.kept, 0);
    EXPECT_GT(all.requeued, 0);
    EXPECT_GT(all.iceberg_rested, 0) << "an iceberg resting with a hidden part";
    EXPECT_GT(all.refills, 0) << "an iceberg's tip refilled";
    for (Reject r : {Reject::InvalidOrderId,    Reject::DuplicateOrderId, Reject::InvalidSide,
                     Reject::InvalidType,       Reject::InvalidTif,       Reject::InvalidStp,
                     Reject::InvalidPrice,      Reject::InvalidQuantity,  Reject::InvalidCombination,
                     Reject::PostOnlyWouldTake, Reject::FokUnfillable,    Reject::OrderCapacity,
                     Reject::LevelCapacity,     Reject::OrderNotFound,    Reject::NoChange,
                     Reject::QuantityOverflow,  Reject::WouldCross,       Reject::InvalidDisplay,
                     Reject::InvalidStopPrice,  Reject::StopWouldTrigger})
        EXPECT_GT(all.rej(r), 0) << "never saw reject " << to_string(r);
    EXPECT_GT(all.stops_placed, 0);
    EXPECT_GT(all.stops_loaded, 0);
    EXPECT_GT(all.stop_cancels, 0);
    EXPECT_GT(all.stop_kept, 0);
    EXPECT_GT(all.stop_requeued, 0);
    EXPECT_GT(all.triggered, 0);
    EXPECT_GT(all.triggered_filled, 0);
    EXPECT_GT(all.triggered_rested, 0);
    EXPECT_GT(all.cascades, 0) << "a stop triggered by a triggered stop's trades";
    EXPECT_GT(all.multi, 0);
    // (A triggered stop frees its own order slot before it runs, so OrderCapacity cannot reject it; a
    // level slot only if it was the last pending stop at its stop price.)
    for (Reject r : {Reject::FokUnfillable, Reject::LevelCapacity})
        EXPECT_GT(all.triggered_rejects[static_cast<size_t>(r)], 0)
            << "no triggered stop rejected with " << to_string(r);
    for (Reject r : {Reject::OrderCapacity, Reject::LevelCapacity, Reject::QuantityOverflow, Reject::NoChange,
                     Reject::InvalidStopPrice, Reject::InvalidCombination, Reject::StopWouldTrigger})
        EXPECT_GT(all.stop_rejects[static_cast<size_t>(r)], 0)
            << "no stop order rejected with " << to_string(r);
    // Moving a pending stop's stop price (amend's new_stop).
    EXPECT_GT(all.stop_moves, 0);
    EXPECT_GT(all.stop_amends_own_stop, 0) << "an amend naming its own stop price";
    for (Reject r : {Reject::StopWouldTrigger, Reject::InvalidStopPrice, Reject::LevelCapacity,
                     Reject::InvalidPrice, Reject::InvalidQuantity})
        EXPECT_GT(all.stop_move_rejects[static_cast<size_t>(r)], 0)
            << "no stop move rejected with " << to_string(r);
    if (total >= 1'000'000) {  // (a few in a million: a huge stop moved onto a pile of huge stops)
        EXPECT_GT(all.stop_move_rejects[static_cast<size_t>(Reject::QuantityOverflow)], 0)
            << "no stop move rejected with quantity_overflow";
    }
    EXPECT_GT(all.book_amend_with_stop[static_cast<size_t>(Reject::InvalidStopPrice)], 0)
        << "an amend of an order in the book with a stop price";
    EXPECT_EQ(all.book_amend_with_stop[static_cast<size_t>(Reject::None)], 0)
        << "an amend of an order in the book with a stop price was accepted";
    // Stop-limit icebergs.
    EXPECT_GT(all.ice_placed, 0);
    EXPECT_GT(all.ice_loaded, 0);
    EXPECT_GT(all.ice_loaded_above_qty, 0) << "a stored iceberg stop with a display above its quantity";
    EXPECT_GT(all.ice_amended, 0);
    EXPECT_GT(all.ice_amended_below, 0) << "a pending iceberg amended below its display";
    EXPECT_GT(all.ice_moved, 0) << "a pending iceberg's stop price moved";
    EXPECT_GT(all.ice_cancelled, 0);
    EXPECT_GT(all.ice_triggered, 0);
    EXPECT_GT(all.ice_rested_hidden, 0) << "a triggered iceberg resting with a hidden part";
    EXPECT_GT(all.ice_rested_whole, 0) << "a triggered iceberg amended below its display resting whole";
    EXPECT_GT(all.ice_refilled, 0) << "the tip of a triggered iceberg refilled";
    for (Reject r : {Reject::InvalidCombination, Reject::InvalidDisplay})
        EXPECT_GT(all.ice_rejects[static_cast<size_t>(r)], 0)
            << "no stop with a display refused with " << to_string(r);
    EXPECT_GT(all.ice_amend_rejects[static_cast<size_t>(Reject::InvalidDisplay)], 0)
        << "no amend of a pending iceberg refused for too many tips";
}

}  // namespace
}  // namespace pgx::test
