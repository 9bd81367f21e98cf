// The id hash keys entries by a 32-bit tag of the id (Book::hash_tag: the low
// half xor a mix of the high half) and confirms a match against the order's
// id. Ids from one sequence below 2^32 never share a tag, so the other tests
// never reach that path: here the random stream runs with ids remapped so
// that many ids share a tag (and a home slot), against the reference book.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "random_stream.h"
#include "reference_book.h"
#include "test_support.h"

namespace pgx::test {
namespace {

// The id with high half `high` whose tag is `tag`.
OrderId with_tag(uint64_t high, uint32_t tag) { return (high << 32) | (tag ^ Book::hash_tag(high << 32)); }

// A bijection on nonzero ids under which ids fall into few tag classes.
OrderId collide(OrderId id, int mode) {
    if (id == 0) return 0;
    const OrderId c = with_tag(id, mode == 0 ? 0 : static_cast<uint32_t>(id % 3));  // tag 0, or tags 0, 1, 2
    if (Book::hash_tag(c) != (mode == 0 ? 0 : id % 3)) std::abort();
    return c;
}

void run(int mode, uint32_t max_orders, uint32_t max_levels, uint64_t seed, long ops) {
    OwnedBook real(max_orders, max_levels);
    ref::ReferenceBook model(max_orders, max_levels);
    RandomStream stream(seed, 95, 105, 4);
    Result got, want;
    std::vector<OrderId> live;  // in the stream's own (small) ids
    std::vector<RestingOrder> side;
    for (long step = 0; step < ops; ++step) {
        live.clear();
        for (Side s : {Side::Buy, Side::Sell}) {
            real->orders(s, side);
            for (const auto& o : side) live.push_back(o.id >> 32);
        }
        Command c = stream.next(live);
        c.order.id = collide(c.order.id, mode);
        c.resting.id = collide(c.resting.id, mode);
        c.id = collide(c.id, mode);
        if (c.kind == Command::Amend && c.price.v == 0) {
            RestingOrder cur;
            c.price = Price{real->find(c.id, cur) ? cur.price.v : 95};
        }
        apply_command(*real, c, got);
        apply_command(model, c, want);
        const std::string where = "mode " + std::to_string(mode) + " step " + std::to_string(step) + ": " +
                                  c.describe() + ": ";
        const std::string d = diff_results(got, want);
        ASSERT_TRUE(d.empty()) << where << d;
        const std::string s = diff_snapshots(Snapshot::of(*real), Snapshot::of(model));
        ASSERT_TRUE(s.empty()) << where << s;
        if (step % 16 == 0) {
            const auto problems = real->validate();
            ASSERT_TRUE(problems.empty()) << where << problems.front();
            real->commit();
        }
        if (step % 64 == 0)  // every resting order is found by its id, and an id sharing its tag is not
            for (Side s : {Side::Buy, Side::Sell}) {
                real->orders(s, side);
                for (const auto& r : side) {
                    RestingOrder o;
                    ASSERT_TRUE(real->find(r.id, o) && o.id == r.id) << where << r.id;
                    const OrderId twin = with_tag((r.id >> 32) ^ (uint64_t{1} << 28), Book::hash_tag(r.id));
                    ASSERT_EQ(Book::hash_tag(twin), Book::hash_tag(r.id));  // same tag, never used
                    ASSERT_FALSE(real->find(twin, o)) << where << r.id;
                }
            }
    }
}

TEST(HashTag, IdsSharingATagAgreeWithReference) {
    const long ops = env_long("PGX_DIFF_OPS", 1'000'000) >= 100'000 ? 30'000 : 5'000;
    run(0, 256, 32, 0x7a61, ops);
    run(1, 256, 32, 0x7a62, ops);
    run(1, 8, 4, 0x7a63, ops / 2);  // at capacity
}

}  // namespace
}  // namespace pgx::test
