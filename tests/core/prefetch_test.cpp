// The prefetch hints (Book::prefetch_hash/prefetch_order/prefetch_neighbours)
// are read-only: a stream replayed with hints for the commands ahead, plus
// stale and garbage ids, must give exactly the results, sequence and
// state_hash of the same stream without hints, and write nothing to the undo
// log.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "random_stream.h"
#include "test_support.h"

namespace pgx::test {
namespace {

// The id a command refers to (the one a caller would announce).
OrderId id_of(const Command& c) {
    switch (c.kind) {
        case Command::Place: return c.order.id;
        case Command::Load: return c.resting.id;
        default: return c.id;
    }
}

struct Step {
    Command cmd;
    Result result;
    uint64_t hash;
};

// Records a stream and its outcome on a book without hints.
std::vector<Step> record(uint32_t max_orders, uint32_t max_levels, uint64_t seed, long n) {
    OwnedBook b(max_orders, max_levels);
    RandomStream stream(seed, 90, 110, 4);
    std::vector<Step> steps;
    std::vector<RestingOrder> bids, asks;
    std::vector<OrderId> live;
    for (long i = 0; i < n; ++i) {
        b->orders(Side::Buy, bids);
        b->orders(Side::Sell, asks);
        live.clear();
        for (const auto& o : bids) live.push_back(o.id);
        for (const auto& o : asks) live.push_back(o.id);
        Step s;
        s.cmd = stream.next(live);
        if (s.cmd.kind == Command::Amend && s.cmd.price.v == 0) {
            RestingOrder cur;
            s.cmd.price = Price{b->find(s.cmd.id, cur) ? cur.price.v : 90};
        }
        apply_command(*b, s.cmd, s.result);
        s.hash = b->state_hash();
        if (i % 8 == 0) b->commit();
        steps.push_back(s);
    }
    return steps;
}

// Replays with hints `a1`, `a2`, `a3` commands ahead and random junk hints.
void replay_with_hints(uint32_t max_orders, uint32_t max_levels, const std::vector<Step>& steps, size_t a1,
                       size_t a2, size_t a3) {
    OwnedBook b(max_orders, max_levels);
    std::mt19937_64 junk(a1 * 131 + a2 * 7 + a3);
    Result got;
    const size_t n = steps.size();
    for (size_t i = 0; i < n; ++i) {
        const size_t undo_before = b->undo_log().size();
        const uint64_t hash_before = b->state_hash();
        if (i + a1 < n) b->prefetch_hash(id_of(steps[i + a1].cmd));
        if (i + a2 < n) b->prefetch_order(id_of(steps[i + a2].cmd));
        if (i + a3 < n) b->prefetch_neighbours(id_of(steps[i + a3].cmd));
        if (i > 0) {  // the id just used: often cancelled or filled by now
            b->prefetch_order(id_of(steps[i - 1].cmd));
            b->prefetch_neighbours(id_of(steps[i - 1].cmd));
        }
        const OrderId garbage = (junk() & 1) ? junk() : junk() % 4096;
        b->prefetch_hash(garbage);
        b->prefetch_order(garbage);
        b->prefetch_neighbours(garbage);
        b->prefetch_hash(0);
        b->prefetch_order(0);
        b->prefetch_neighbours(0);
        ASSERT_EQ(b->undo_log().size(), undo_before) << "a hint wrote to the region at step " << i;
        ASSERT_EQ(b->state_hash(), hash_before) << "a hint changed the book at step " << i;

        apply_command(*b, steps[i].cmd, got);
        const std::string d = diff_results(got, steps[i].result);
        ASSERT_TRUE(d.empty()) << "step " << i << ": " << steps[i].cmd.describe() << ": " << d;
        ASSERT_EQ(b->state_hash(), steps[i].hash) << "step " << i << ": " << steps[i].cmd.describe();
        if (i % 8 == 0) b->commit();
        if (i % 97 == 0) {
            const auto problems = b->validate();
            ASSERT_TRUE(problems.empty()) << "step " << i << ": " << problems.front();
        }
    }
}

TEST(Prefetch, HintsChangeNothing) {
    const long n = env_long("PGX_DIFF_OPS", 1'000'000) >= 100'000 ? 20'000 : 4'000;
    const auto steps = record(2048, 256, 0x9f37c1, n);
    replay_with_hints(2048, 256, steps, 12, 6, 3);
    replay_with_hints(2048, 256, steps, 1, 1, 1);
    replay_with_hints(2048, 256, steps, 3, 2, 0);
}

TEST(Prefetch, HintsAtCapacityChangeNothing) {
    // Few order and level slots: the stream keeps the book full and rejects
    // for capacity, so hints see free-list slots and reused ids.
    const auto steps = record(6, 4, 0x9f37c2, 4'000);
    replay_with_hints(6, 4, steps, 12, 6, 3);
    replay_with_hints(6, 4, steps, 2, 1, 0);
}

TEST(Prefetch, HintsOnAnEmptyBookAndAcrossRollback) {
    OwnedBook b(64, 16);
    for (OrderId id : {OrderId{0}, OrderId{1}, OrderId{~uint64_t{0}}}) {
        b->prefetch_hash(id);
        b->prefetch_order(id);
        b->prefetch_neighbours(id);
    }
    Result r;
    ASSERT_TRUE(b->place(limit_order(1, 1, Side::Buy, Price{100}, Qty{5}), r));
    ASSERT_TRUE(b->place(limit_order(2, 1, Side::Buy, Price{100}, Qty{5}), r));
    ASSERT_TRUE(b->place(limit_order(3, 1, Side::Buy, Price{100}, Qty{5}), r));
    b->commit();
    const uint64_t before = b->state_hash();
    const auto sp = b->savepoint();
    ASSERT_TRUE(b->cancel(2, r));
    b->prefetch_neighbours(2);  // gone, but still in the undo log
    b->prefetch_neighbours(1);
    b->rollback_to(sp);
    b->prefetch_neighbours(2);
    EXPECT_EQ(b->state_hash(), before);
    EXPECT_TRUE(b->validate().empty());
    ASSERT_TRUE(b->cancel(2, r));
    EXPECT_EQ(r.cancelled, Qty{5});
}

}  // namespace
}  // namespace pgx::test
