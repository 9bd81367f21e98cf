// Savepoints and rollback: random commands under random nested savepoints;
// every rollback must restore the book exactly as it was at its savepoint
// (pending stop orders and the last trade price included; the stream places,
// triggers, amends and cancels stop orders).
#include <gtest/gtest.h>

#include <random>

#include "random_stream.h"
#include "test_support.h"

namespace pgx::test {
namespace {

struct Mark {
    Book::Savepoint sp;
    uint64_t hash;
    Snapshot snap;
};

// Applies one stream command to the book.
void apply(Book& b, Command c, Result& r) {
    if (c.kind == Command::Amend && c.price.v == 0) {
        RestingOrder cur;
        c.price = Price{b.find(c.id, cur) ? cur.price.v : 100};
    }
    apply_command(b, c, r);
}

// Ids resting in the book now.
std::vector<OrderId> live_ids(const Book& b) {
    std::vector<OrderId> ids;
    std::vector<RestingOrder> os;
    for (Side s : {Side::Buy, Side::Sell}) {
        b.orders(s, os);
        for (const auto& o : os) ids.push_back(o.id);
    }
    return ids;
}

// The pending stop orders now.
std::vector<RestingOrder> pending_stops(const Book& b) {
    std::vector<RestingOrder> all, os;
    for (Side s : {Side::Buy, Side::Sell}) {
        b.stops(s, os);
        all.insert(all.end(), os.begin(), os.end());
    }
    return all;
}

// The stream's next command for the book as it is.
Command next_for(RandomStream& stream, const Book& b) {
    return stream.next(live_ids(b), pending_stops(b), b.last_price().v);
}

TEST(Undo, NestedSavepointsRestoreTheExactState) {
    const long ops = std::max(20'000L, env_long("PGX_DIFF_OPS", 1'000'000) / 4);
    OwnedBook b(64, 16);  // small, so capacity rejects and slot reuse happen under savepoints too
    RandomStream stream(0xdeca1, 90, 110, 3, false, 15);
    std::mt19937_64 rng(7);
    std::vector<Mark> marks;
    Result r;
    long rollbacks = 0, deep = 0, triggered = 0;
    for (long step = 0; step < ops; ++step) {
        const int k = static_cast<int>(rng() % 100);
        if (k < 8 && marks.size() < 12) {
            marks.push_back(Mark{b->savepoint(), b->state_hash(), Snapshot::of(*b)});
        } else if (k < 13 && !marks.empty()) {
            // Roll back to a random open savepoint; the ones above it end.
            const size_t i = rng() % marks.size();
            b->rollback_to(marks[i].sp);
            ASSERT_EQ(b->state_hash(), marks[i].hash) << "step " << step;
            ASSERT_EQ(diff_snapshots(Snapshot::of(*b), marks[i].snap), "") << "step " << step;
            ASSERT_TRUE(b->validate().empty()) << "step " << step << ": " << b->validate().front();
            ++rollbacks;
            deep += static_cast<long>(marks.size() - i);
            marks.resize(i + 1);  // still open, like ROLLBACK TO SAVEPOINT
        } else if (k < 15 && !marks.empty()) {
            marks.pop_back();  // RELEASE: its changes belong to the enclosing savepoint now
        } else if (k < 16) {
            b->commit();
            marks.clear();
            ASSERT_EQ(b->undo_log().size(), 0u);
        } else {
            apply(*b, next_for(stream, *b), r);
            triggered += static_cast<long>(r.triggered.size());
        }
    }
    EXPECT_GT(rollbacks, ops / 100);
    EXPECT_GT(triggered, 0) << "no stop order triggered under savepoints";
    EXPECT_GT(deep, rollbacks);  // some rollbacks crossed nested savepoints
}

TEST(Undo, RollbackOfEverythingRestoresAnEmptyBook) {
    OwnedBook b(1024, 128);
    const uint64_t empty = b->state_hash();
    const auto sp = b->savepoint();
    RandomStream stream(42, 90, 110, 4);
    Result r;
    for (int i = 0; i < 5000; ++i) apply(*b, next_for(stream, *b), r);
    ASSERT_GT(b->seq(), 0u);
    ASSERT_GT(b->last_price().v, 0);
    b->rollback_to(sp);
    EXPECT_EQ(b->state_hash(), empty);
    EXPECT_EQ(b->order_count(), 0u);
    EXPECT_EQ(b->level_count(), 0u);
    EXPECT_EQ(b->stop_count(), 0u);
    EXPECT_EQ(b->last_price().v, 0);
    EXPECT_EQ(b->seq(), 0u);
    EXPECT_TRUE(b->validate().empty());
}

TEST(Undo, LogGrowsWithChangesAndRejectsAddNothing) {
    OwnedBook b(4096, 512);
    RandomStream stream(99, 90, 110, 4);
    Result r;
    size_t max_per_command = 0;
    for (int i = 0; i < 20000; ++i) {
        const size_t before = b->undo_log().size();
        apply(*b, next_for(stream, *b), r);
        const size_t added = b->undo_log().size() - before;
        if (!r.accepted()) {
            ASSERT_EQ(added, 0u) << "a rejected command left undo records";
        }
        // Proportional to the work done: a bounded number of writes per fill,
        // per level touched and per order rested or removed.
        const size_t work =
            1 + r.fills.size() + r.levels.size() + r.stp_cancelled.size() + r.triggered.size();
        max_per_command = std::max(max_per_command, added / work);
        if (i % 100 == 0) {
            b->commit();
            ASSERT_EQ(b->undo_log().size(), 0u);
        }
    }
    EXPECT_LE(max_per_command, 64u);
}

}  // namespace
}  // namespace pgx::test
