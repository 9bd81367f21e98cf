// The fixed-size region: formatting, attaching, filling it to capacity,
// clean capacity rejects, and reuse of freed slots.
#include <gtest/gtest.h>

#include <stdexcept>

#include "test_support.h"

namespace pgx::test {
namespace {

// A GTC limit order without self-trade prevention.
NewOrder limit(OrderId id, Side side, int64_t price, int64_t qty, OwnerId owner = 1) {
    NewOrder o = limit_order(id, owner, side, Price{price}, Qty{qty});
    o.stp = Stp::None;
    return o;
}

TEST(Capacity, FormatRefusesARegionTooSmallOrAnInvalidConfig) {
    const BookConfig cfg{1000, 100};
    const size_t need = Book::required_bytes(cfg);
    ASSERT_GT(need, 1000u * 64);
    std::vector<uint64_t> mem(need / 8);
    EXPECT_FALSE(Book::format(mem.data(), need - 8, cfg));
    EXPECT_TRUE(Book::format(mem.data(), need, cfg));
    EXPECT_EQ(Book::required_bytes(BookConfig{0, 10}), 0u);
    EXPECT_EQ(Book::required_bytes(BookConfig{10, 0}), 0u);
    EXPECT_FALSE(Book::format(mem.data(), need, BookConfig{0, 10}));
}

TEST(Capacity, AttachRefusesARegionThatIsNotABook) {
    std::vector<uint64_t> mem(4096, 0);
    EXPECT_THROW(Book(mem.data(), mem.size() * 8), std::invalid_argument);
    OwnedBook b(10, 10);
    EXPECT_THROW(Book(b.mem.data(), 64), std::invalid_argument);  // shorter than the formatted region
}

TEST(Capacity, FillOrdersExactlyThenRejectCleanlyThenReuse) {
    constexpr uint32_t kOrders = 20000;
    OwnedBook b(kOrders, 400);
    Result r;
    // Bids 1..100, asks 201..300, 20000 orders in all.
    for (OrderId id = 1; id <= kOrders; ++id) {
        const bool buy = id % 2;
        ASSERT_TRUE(b->place(limit(id, buy ? Side::Buy : Side::Sell, buy ? 1 + id % 100 : 201 + id % 100, 3), r))
            << "order " << id << ": " << to_string(r.reject);
    }
    b->commit();
    ASSERT_EQ(b->order_count(), kOrders);
    ASSERT_TRUE(b->validate().empty());

    const uint64_t hash = b->state_hash();
    const uint64_t seq = b->seq();
    EXPECT_FALSE(b->place(limit(kOrders + 1, Side::Buy, 50, 1), r));
    EXPECT_EQ(r.reject, Reject::OrderCapacity);
    EXPECT_TRUE(r.fills.empty());
    EXPECT_EQ(b->state_hash(), hash);
    EXPECT_EQ(b->seq(), seq);
    EXPECT_EQ(b->undo_log().size(), 0u);

    // A taker that trades and still has a remainder has emptied every maker it
    // met, so its own fills free the slot it rests in: accepted on a full book.
    // Asks sit on 50 levels 201, 203, ..., 299 of 200 orders x 3 lots each.
    EXPECT_TRUE(b->place(limit(kOrders + 2, Side::Buy, 201, 601), r));
    EXPECT_EQ(r.filled.v, 600);
    EXPECT_EQ(r.resting.v, 1);
    EXPECT_EQ(b->order_count(), kOrders - 199);
    // An order that fills completely needs no slot either.
    for (OrderId id = kOrders + 3; b->order_count() < kOrders; ++id) ASSERT_TRUE(b->place(limit(id, Side::Buy, 150, 1), r));
    EXPECT_TRUE(b->place(limit(kOrders + 500, Side::Buy, 203, 3), r));
    EXPECT_EQ(r.filled.v, 3);
    EXPECT_TRUE(b->place(limit(kOrders + 501, Side::Buy, 50, 1), r));
    EXPECT_EQ(b->order_count(), kOrders);

    // Cancel a quarter; exactly that many new orders fit again.
    uint32_t cancelled = 0;
    for (OrderId id = 2; id <= kOrders; id += 4) cancelled += b->cancel(id, r);
    b->commit();
    OrderId next = 1'000'000;  // above every id used so far
    for (uint32_t i = 0; i < cancelled; ++i)
        ASSERT_TRUE(b->place(limit(next++, Side::Sell, 251, 1), r)) << i << ": " << to_string(r.reject);
    EXPECT_EQ(b->order_count(), kOrders);
    EXPECT_FALSE(b->place(limit(next++, Side::Sell, 251, 1), r));
    EXPECT_EQ(r.reject, Reject::OrderCapacity);
    EXPECT_TRUE(b->validate().empty());
}

TEST(Capacity, FillLevelsExactlyThenRejectCleanlyThenReuse) {
    constexpr uint32_t kLevels = 500;
    OwnedBook b(10000, kLevels);
    Result r;
    OrderId id = 1;
    for (uint32_t i = 0; i < kLevels; ++i) {
        const bool buy = i < kLevels / 2;
        ASSERT_TRUE(b->place(limit(id++, buy ? Side::Buy : Side::Sell, buy ? 1000 - i : 2000 + i, 1), r));
    }
    ASSERT_EQ(b->level_count(), kLevels);
    const uint64_t hash = b->state_hash();
    EXPECT_FALSE(b->place(limit(id++, Side::Buy, 1500, 1), r));
    EXPECT_EQ(r.reject, Reject::LevelCapacity);
    EXPECT_EQ(b->state_hash(), hash);
    // Joining an existing level needs no level slot.
    EXPECT_TRUE(b->place(limit(id++, Side::Buy, 1000, 1), r));
    // Sweeping the best ask frees its level for a new price.
    NewOrder sweep = limit(id++, Side::Buy, 2250, 1);  // the best ask, alone on its level
    sweep.tif = Tif::Ioc;
    EXPECT_TRUE(b->place(sweep, r));
    EXPECT_EQ(b->level_count(), kLevels - 1);
    EXPECT_TRUE(b->place(limit(id++, Side::Buy, 1500, 1), r));
    EXPECT_EQ(b->level_count(), kLevels);
    EXPECT_TRUE(b->validate().empty());
}

}  // namespace
}  // namespace pgx::test
