// The id hash's probe runs stay short for the ids callers really use.
// A cancel's cost depends on how many hash entries its deletion shifts back,
// an add's on how many entries its insertion moves on; both show in the undo
// log: every word the book writes is one record, with its offset in the
// region. Emptying an entry writes one word, each entry moved two. These
// tests build books whose ids follow the patterns of real callers (a
// sequence, as PostgreSQL's order numbers; power-of-two strides) and bound
// the words every single add and cancel writes into the id hash, so that a
// hash whose runs grow with the book (clustered homes, or deletion that scans
// a whole run) fails here rather than only in the benchmark. Only the hash's
// words are counted: those written elsewhere (the order, its level, its FIFO
// neighbours) do not depend on the hash, and a change there must neither
// trip these bounds nor hide a longer run behind fewer words of its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "test_support.h"

namespace pgx::test {
namespace {

constexpr uint32_t kOrders = 60'000;
constexpr int64_t kLevels = 100;  // buys at 1,000 - 0 .. 99: nothing ever crosses
// Most words one add or one cancel may write into the id hash. An add writes
// 2 when its id's home is free, a cancel 1 when no entry after it is
// displaced; each entry moved adds 2. A run of ids from a sequence sits at
// home and a cancel shifts nothing back (measured here: 2 words per add, at
// most 3 per cancel); other patterns spread like random keys, whose longest
// runs grow slowly with the table (measured here: costliest add 26-32 words,
// costliest cancel 31-51). Linear probing over 32-id blocks, this book's
// hash until 2026-12, wrote up to 522 words for one cancel of the plain
// sequence and 142-410 for the strides, nearly all of them in the hash.
struct Bounds {
    size_t add, cancel;
};
constexpr Bounds kSequence{4, 8}, kSpread{64, 96};

// Words one command (committed right after) writes into the id hash, which
// is the region's last array.
template <class F>
size_t hash_writes_of(Book& b, uint64_t off_hash, F&& command) {
    const size_t before = b.undo_log().size();
    command();
    size_t n = 0;
    for (size_t i = before; i < b.undo_log().size(); ++i) n += b.undo_log().offset(i) >= off_hash;
    b.commit();
    return n;
}

// Places resting buys with the given ids and checks each add's writes.
void place_all(Book& b, uint64_t off_hash, const std::vector<OrderId>& ids, size_t max_writes,
               const std::string& what) {
    Result r;
    size_t worst = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
        const NewOrder o = limit_order(ids[k], 1 + k % 7, Side::Buy,
                                       Price{1000 - static_cast<int64_t>(k % kLevels)}, Qty{1});
        const size_t w =
            hash_writes_of(b, off_hash, [&] { ASSERT_TRUE(b.place(o, r)) << what << ": add of " << ids[k]; });
        worst = std::max(worst, w);
    }
    EXPECT_LE(worst, max_writes) << what << ": the costliest add";
    const auto problems = b.validate();
    ASSERT_TRUE(problems.empty()) << what << ": " << problems.front();
}

// Cancels the ids in the given order, checking each cancel's writes and that
// every order not yet cancelled is still found.
void cancel_all(Book& b, uint64_t off_hash, const std::vector<OrderId>& ids, size_t max_writes,
                const std::string& what) {
    Result r;
    size_t worst = 0, total = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
        const size_t w = hash_writes_of(
            b, off_hash, [&] { ASSERT_TRUE(b.cancel(ids[k], r)) << what << ": cancel of " << ids[k]; });
        worst = std::max(worst, w);
        total += w;
        if (k % 4999 == 0) {
            RestingOrder o;
            for (size_t j = k + 1; j < ids.size(); j += 97)
                ASSERT_TRUE(b.find(ids[j], o)) << what << ": " << ids[j];
            const auto problems = b.validate();
            ASSERT_TRUE(problems.empty()) << what << " after " << k + 1 << " cancels: " << problems.front();
        }
    }
    EXPECT_LE(worst, max_writes) << what << ": the costliest cancel (mean " << total / ids.size() << ")";
    EXPECT_EQ(b.order_count(), 0u) << what;
}

std::vector<OrderId> sequence(OrderId first, uint64_t step) {
    std::vector<OrderId> ids(kOrders);
    for (uint32_t k = 0; k < kOrders; ++k) ids[k] = first + k * step;
    return ids;
}

// Runs one id pattern: place all, then cancel oldest first, newest first and
// in a seeded random order (each on a fresh book).
void check_pattern(const std::vector<OrderId>& ids, Bounds most, const std::string& name) {
    std::vector<OrderId> newest_first(ids.rbegin(), ids.rend()), shuffled = ids;
    uint64_t s = 0x5eed;
    for (size_t i = shuffled.size() - 1; i > 0; --i) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        std::swap(shuffled[i], shuffled[(s >> 33) % (i + 1)]);
    }
    const std::pair<const char*, const std::vector<OrderId>*> orders[] = {
        {"oldest first", &ids}, {"newest first", &newest_first}, {"random order", &shuffled}};
    for (const auto& [how, order] : orders) {
        OwnedBook b(kOrders, 2 * kLevels);
        const uint64_t off_hash = reinterpret_cast<const detail::Header*>(b.mem.data())->off_hash;
        place_all(*b, off_hash, ids, most.add, name);
        cancel_all(*b, off_hash, *order, most.cancel, name + ", cancelled " + how);
    }
}

TEST(HashProbe, ASequenceOfIdsStaysAtHome) {
    // PostgreSQL hands a book its order numbers from one sequence; a long run
    // of them, all resting, is one long run of hash entries at their homes.
    check_pattern(sequence(1, 1), kSequence, "ids 1, 2, 3, ...");
    check_pattern(sequence((uint64_t{7} << 32) + 5, 1), kSequence, "ids above 2^32");
}

TEST(HashProbe, SparseSequencesSpreadOut) {
    // One instrument among several sees every n-th number of the sequence.
    check_pattern(sequence(3, 8), kSequence, "every 8th id");
    check_pattern(sequence(11, 1000), kSpread, "every 1000th id");
}

TEST(HashProbe, PowerOfTwoStridesSpreadOut) {
    // Strides that are multiples of the table size land every id at the same
    // offset of its window: the windows' own offsets must tell them apart.
    // (This book's table has 2^17 entries: the next power of two >= 2 x 60,000.)
    check_pattern(sequence(1 << 18, 1 << 18), kSpread, "ids k * 2^18");
    check_pattern(sequence(1 << 20, 1 << 20), kSpread, "ids k * 2^20");
    check_pattern(sequence(uint64_t{1} << 32, uint64_t{1} << 32), kSpread, "ids k * 2^32");
}

}  // namespace
}  // namespace pgx::test
