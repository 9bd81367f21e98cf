// The real book against the naive reference book: the same seeded random
// command stream, every result and the whole book compared after every step.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>

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
};

// Outcomes seen, so the test can insist that the stream exercised every rule.
struct Coverage {
    std::array<long, 32> rejects{};
    long accepted = 0, fills = 0, stp_by_mode[4] = {}, market_no_liquidity = 0, ioc = 0, rested = 0, kept = 0,
         requeued = 0, user_cancels = 0, iceberg_rested = 0, refills = 0;

    void add(const Command& c, const Result& r) {
        if (!r.accepted()) {
            ++rejects[static_cast<size_t>(r.reject)];
            return;
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
        if (c.kind == Command::Amend) ++(r.priority_kept ? kept : requeued);
    }
    long rej(Reject r) const { return rejects[static_cast<size_t>(r)]; }

    void print(const char* name, long ops) const {
        std::printf(
            "[%s] %ld ops: accepted %ld, fills %ld, rested %ld, ioc %ld, market_no_liquidity %ld, "
            "stp newest/oldest/both %ld/%ld/%ld, amend kept/requeued %ld/%ld, icebergs rested %ld, "
            "refilled %ld\n  rejects:",
            name, ops, accepted, fills, rested, ioc, market_no_liquidity, stp_by_mode[1], stp_by_mode[2],
            stp_by_mode[3], kept, requeued, iceberg_rested, refills);
        for (size_t i = 1; i < rejects.size(); ++i)
            if (rejects[i]) std::printf(" %s=%ld", std::string(to_string(static_cast<Reject>(i))).c_str(), rejects[i]);
        std::printf("\n");
    }
};

// Runs one configuration; returns the coverage seen.
Coverage run(const Config& cfg, long ops) {
    OwnedBook real(cfg.max_orders, cfg.max_levels);
    ref::ReferenceBook model(cfg.max_orders, cfg.max_levels);
    RandomStream stream(cfg.seed, cfg.lo, cfg.hi, cfg.owners, cfg.huge);
    Coverage cov;
    Result got, want;
    std::vector<OrderId> live;
    Snapshot expected = Snapshot::of(model);
    for (long step = 0; step < ops; ++step) {
        live.clear();
        for (const auto& side : expected.orders)
            for (const auto& o : side) live.push_back(o.id);
        Command c = stream.next(live);
        if (c.kind == Command::Amend && c.price.v == 0) {  // "keep the price"
            RestingOrder cur;
            c.price = Price{real->find(c.id, cur) ? cur.price.v : cfg.lo};
        }
        apply_command(*real, c, got);
        apply_command(model, c, want);
        const std::string where = std::string(cfg.name) + " seed " + std::to_string(cfg.seed) + " step " +
                                  std::to_string(step) + ": " + c.describe() + ": ";
        const std::string d = diff_results(got, want);
        if (!d.empty()) {
            ADD_FAILURE() << where << "result differs (real vs reference): " << d;
            return cov;
        }
        expected = Snapshot::of(model);
        const std::string s = diff_snapshots(Snapshot::of(*real), expected);
        if (!s.empty()) {
            ADD_FAILURE() << where << "book differs (real vs reference): " << s;
            return cov;
        }
        if (real->order_count() < 256 || step % 64 == 0) {
            const auto problems = real->validate();
            if (!problems.empty()) {
                ADD_FAILURE() << where << "invariant broken: " << problems.front();
                return cov;
            }
        }
        if (step % 16 == 0) real->commit();
        cov.add(c, got);
    }
    cov.print(cfg.name, ops);
    return cov;
}

const Config kConfigs[] = {
    {"roomy", 4096, 512, 90, 110, 4, 0x5eed0001, 0.35},
    {"few-levels", 16, 4, 95, 104, 4, 0x5eed0002, 0.2},
    {"few-orders", 6, 64, 95, 104, 4, 0x5eed0004, 0.15},
    {"wide", 4096, 64, 1, 400, 3, 0x5eed0003, 0.15},
    {"huge", 512, 64, 100, 101, 8, 0x5eed0005, 0.15, true},
};

TEST(Differential, RandomStreamsAgreeWithReference) {
    const long total = env_long("PGX_DIFF_OPS", 1'000'000);
    Coverage all;
    for (const Config& cfg : kConfigs) {
        const Coverage c = run(cfg, static_cast<long>(total * cfg.share));
        if (HasFailure()) return;
        for (size_t i = 0; i < all.rejects.size(); ++i) all.rejects[i] += c.rejects[i];
        all.fills += c.fills;
        for (int i = 0; i < 4; ++i) all.stp_by_mode[i] += c.stp_by_mode[i];
        all.market_no_liquidity += c.market_no_liquidity;
        all.ioc += c.ioc;
        all.kept += c.kept;
        all.requeued += c.requeued;
        all.user_cancels += c.user_cancels;
        all.rested += c.rested;
        all.iceberg_rested += c.iceberg_rested;
        all.refills += c.refills;
    }
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
    for (Reject r :
         {Reject::InvalidOrderId, Reject::DuplicateOrderId, Reject::InvalidSide, Reject::InvalidType,
          Reject::InvalidTif, Reject::InvalidStp, Reject::InvalidPrice, Reject::InvalidQuantity,
          Reject::InvalidCombination, Reject::PostOnlyWouldTake, Reject::FokUnfillable, Reject::OrderCapacity,
          Reject::LevelCapacity, Reject::OrderNotFound, Reject::NoChange, Reject::QuantityOverflow,
          Reject::WouldCross, Reject::InvalidDisplay})
        EXPECT_GT(all.rej(r), 0) << "never saw reject " << to_string(r);
}

}  // namespace
}  // namespace pgx::test
