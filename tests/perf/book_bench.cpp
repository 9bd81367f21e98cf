// Benchmark of the matching core (pgx::core::Book) at 10k, 100k and 1M resting
// orders: passive adds, cancels, aggressive IOCs and a realistic mixed command
// stream, each command followed by commit(). After the Google Benchmark output
// a summary table gives ops/s per depth, the 1M/10k cost ratio and the targets.
//
// Book shape: 1,000 price levels per side around kMid, orders spread uniformly
// over them (deeper books have longer queues), every order kLot lots. Each
// depth's book is built once and copied (the region is position-independent)
// into a working region at the start of every benchmark call.
//
// Pages. Every case runs twice: on a working region of 4 KiB pages (mmap +
// MADV_NOHUGEPAGE; what std::vector gives with THP in "madvise" mode) and, as
// "<case>_thp", on a 2 MiB aligned region with MADV_HUGEPAGE (transparent huge
// pages; in PostgreSQL the region is shared memory, which gets huge pages with
// huge_pages = on/try and vm.nr_hugepages). The share of the region actually
// backed by huge pages (AnonHugePages in /proc/self/smaps) is reported as the
// counter huge_pct and in the summary.
//
// Diagnostics (printed after the targets, not targets themselves):
// "mixed_local" is the mixed stream with every cancel among recent orders
// (none of the uniformly random ones), which shows what those cost; and the
// latency of one dependent load from a 128 MiB region on each page size, the
// unit such a cancel pays several times over.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "book.h"

namespace {

using namespace pgx::core;

constexpr int64_t kMid = 1'000'000;          // mid price (ticks)
constexpr int64_t kLevelsPerSide = 1000;     // levels per side in the initial book
constexpr int64_t kLot = 100;                // every initial order's quantity
constexpr size_t kBatch = 1024;              // commands between untimed clean-ups
constexpr uint64_t kOwners = 1000;           // resting orders' owners are 1..kOwners
constexpr uint64_t kTakerOwner = 1'000'001;  // owner of the takers in "aggressive"
constexpr size_t kMixedOps = size_t{1} << 21;  // length of the mixed command stream
constexpr size_t kRecent = 4096;             // mixed: cancels/amends pick among the last kRecent adds
const uint32_t kDepths[] = {10'000, 100'000, 1'000'000};

// splitmix64: a small seeded generator giving the same stream on every platform.
struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n) for n < 2^32.
    uint64_t below(uint64_t n) { return ((next() >> 32) * n) >> 32; }
    // True with probability pct/100.
    bool chance(unsigned pct) { return below(100) < pct; }
    // Buy or Sell with equal probability.
    Side side() { return (next() & 1) ? Side::Sell : Side::Buy; }
};

// Order ids carry their side in bit 0, so a benchmark can re-add on the right side.
OrderId make_id(uint64_t n, Side s) { return (n << 1) | static_cast<uint64_t>(s); }
// The side encoded in an id made by make_id.
Side side_of(OrderId id) { return static_cast<Side>(id & 1); }

// Price of the initial book's level `i` (0 = nearest the mid) on side `s`.
int64_t level_price(Side s, int64_t i) { return s == Side::Buy ? kMid - 1 - i : kMid + 1 + i; }

// A GTC limit order that rests (the prices used never cross).
NewOrder passive(OrderId id, Side s, int64_t price, int64_t qty, OwnerId owner) {
    return limit_order(id, owner, s, Price{price}, Qty{qty});
}

// A built book of one depth: its region image and the ids of its resting orders.
struct Snapshot {
    BookConfig cfg;
    std::vector<uint64_t> mem;
    std::vector<OrderId> ids;
    uint64_t next_n = 1;  // next id counter
};

// Builds (once per depth) a book of `depth` orders, sides alternating, levels random.
const Snapshot& snapshot(uint32_t depth) {
    static std::map<uint32_t, std::unique_ptr<Snapshot>> cache;
    std::unique_ptr<Snapshot>& slot = cache[depth];
    if (slot) return *slot;
    auto s = std::make_unique<Snapshot>();
    s->cfg = BookConfig{depth + depth / 4 + 8192, 1u << 16};
    s->mem.assign((Book::required_bytes(s->cfg) + 7) / 8, 0);
    Book::format(s->mem.data(), s->mem.size() * 8, s->cfg);
    Book book(s->mem.data(), s->mem.size() * 8);
    Rng rng{0xB00C + depth};
    Result res;
    s->ids.reserve(depth);
    for (uint32_t i = 0; i < depth; ++i) {
        const Side side = (i & 1) ? Side::Sell : Side::Buy;
        const OrderId id = make_id(s->next_n++, side);
        const int64_t price = level_price(side, static_cast<int64_t>(rng.below(kLevelsPerSide)));
        if (!book.place(passive(id, side, price, kLot, 1 + rng.below(kOwners)), res)) std::abort();
        book.commit();
        s->ids.push_back(id);
    }
    slot = std::move(s);
    return *slot;
}

constexpr size_t kHugePage = size_t{2} << 20;

// An anonymous mapping for a working region: 4 KiB pages, or 2 MiB aligned
// with MADV_HUGEPAGE so the kernel can back it with transparent huge pages.
class Region {
public:
    Region() = default;
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;
    ~Region() { release(); }

    // Maps `bytes` (not yet touched); aborts if the kernel refuses.
    void allocate(size_t bytes, bool huge) {
        release();
        bytes_ = bytes;
        huge_ = huge;
        map_bytes_ = (bytes + kHugePage - 1) / kHugePage * kHugePage + kHugePage;  // slack to align
        void* m = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) std::abort();
        map_ = static_cast<char*>(m);
        const uintptr_t a = (reinterpret_cast<uintptr_t>(map_) + kHugePage - 1) & ~uintptr_t{kHugePage - 1};
        data_ = reinterpret_cast<char*>(a);
        const size_t span = (bytes + kHugePage - 1) / kHugePage * kHugePage;
        // Failure here only means fewer huge pages; huge_pct reports what we got.
        madvise(data_, span, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    }
    void release() {
        if (map_ != nullptr) munmap(map_, map_bytes_);
        map_ = data_ = nullptr;
        bytes_ = map_bytes_ = 0;
    }
    char* data() const { return data_; }
    size_t size() const { return bytes_; }
    bool huge() const { return huge_; }

    // Share (0-100) of the region backed by huge pages, from /proc/self/smaps
    // (AnonHugePages of the mappings overlapping it); -1 if smaps is unreadable.
    double huge_pct() const {
        FILE* f = std::fopen("/proc/self/smaps", "r");
        if (f == nullptr) return -1;
        const uintptr_t lo = reinterpret_cast<uintptr_t>(data_), hi = lo + bytes_;
        char line[512];
        bool inside = false;
        unsigned long long kb_total = 0;
        while (std::fgets(line, sizeof line, f)) {
            unsigned long long a, b, kb;
            if (std::sscanf(line, "%llx-%llx ", &a, &b) == 2 && std::strchr(line, '-') < std::strchr(line, ' ')) {
                inside = a < hi && b > lo;
            } else if (inside && std::sscanf(line, "AnonHugePages: %llu kB", &kb) == 1) {
                kb_total += kb;
            }
        }
        std::fclose(f);
        return bytes_ ? std::min(100.0, 100.0 * static_cast<double>(kb_total) * 1024.0 / static_cast<double>(bytes_))
                      : 0;
    }

private:
    char* map_ = nullptr;
    char* data_ = nullptr;
    size_t bytes_ = 0, map_bytes_ = 0;
    bool huge_ = false;
};

// The book a benchmark call works on: a fresh copy of a snapshot.
struct Work {
    Region mem;
    std::unique_ptr<Book> book;
    std::vector<OrderId> ids;  // resting order ids (maintained by "cancel" only)
    uint64_t next_n = 1;
    Result res;
    // A new id on side s, never used before in this book.
    OrderId new_id(Side s) { return make_id(next_n++, s); }
};

// Resets the shared working book to a copy of the depth's snapshot, in a
// region of 4 KiB pages or (huge) of transparent huge pages.
Work& fresh(uint32_t depth, bool huge = false) {
    static Work w;
    const Snapshot& s = snapshot(depth);
    w.book.reset();
    w.mem.allocate(s.mem.size() * 8, huge);
    std::memcpy(w.mem.data(), s.mem.data(), s.mem.size() * 8);
    w.ids = s.ids;
    w.next_n = s.next_n;
    w.book = std::make_unique<Book>(w.mem.data(), w.mem.size());
    return w;
}

// Depth from the benchmark's argument.
uint32_t depth_arg(const benchmark::State& st) { return static_cast<uint32_t>(st.range(0)); }
// Page mode from the benchmark's second argument (1 = huge pages).
bool huge_arg(const benchmark::State& st) { return st.range(1) != 0; }

// Reports the share of the working region on huge pages (counter huge_pct).
void report_pages(benchmark::State& st, const Work& w) { st.counters["huge_pct"] = w.mem.huge_pct(); }

// 1. Passive limit orders at random existing levels; cancelled untimed per batch.
void BM_add(benchmark::State& st) {
    Work& w = fresh(depth_arg(st), huge_arg(st));
    Book& book = *w.book;
    Rng rng{0xADD};
    std::vector<NewOrder> batch(kBatch);
    auto prepare = [&] {
        for (NewOrder& o : batch) {
            const Side s = rng.side();
            o = passive(w.new_id(s), s, level_price(s, rng.below(kLevelsPerSide)), kLot, 1 + rng.below(kOwners));
        }
    };
    prepare();
    size_t i = 0, rejected = 0;
    for (auto _ : st) {
        if (i == kBatch) {
            st.PauseTiming();
            for (const NewOrder& o : batch) {
                book.cancel(o.id, w.res);
                book.commit();
            }
            prepare();
            i = 0;
            st.ResumeTiming();
        }
        rejected += !book.place(batch[i++], w.res);
        book.commit();
    }
    st.SetItemsProcessed(st.iterations());
    report_pages(st, w);
    st.counters["rejected"] = static_cast<double>(rejected);
}

// Look-ahead of the "_pf" cases, in commands: command i + kAheadHash gets
// prefetch_hash, i + kAheadOrder prefetch_order, i + kAheadNeighbours
// prefetch_neighbours, before command i runs.
constexpr size_t kAheadHash = 12, kAheadOrder = 6, kAheadNeighbours = 3;

// 2. Cancels of random resting orders anywhere in the book; replaced untimed
// per batch. With `prefetch`, the same cancels announced ahead by the Book's
// prefetch hints (case "cancel_pf").
void cancel_case(benchmark::State& st, bool prefetch) {
    Work& w = fresh(depth_arg(st), huge_arg(st));
    Book& book = *w.book;
    Rng rng{0xCA7};
    std::vector<OrderId> batch(kBatch);
    auto prepare = [&] {
        for (OrderId& id : batch) {
            const size_t k = rng.below(w.ids.size());
            id = w.ids[k];
            w.ids[k] = w.ids.back();
            w.ids.pop_back();
        }
    };
    auto replace = [&] {
        for (OrderId old : batch) {
            const Side s = side_of(old);
            const OrderId id = w.new_id(s);
            book.place(passive(id, s, level_price(s, rng.below(kLevelsPerSide)), kLot, 1 + rng.below(kOwners)),
                       w.res);
            book.commit();
            w.ids.push_back(id);
        }
    };
    prepare();
    size_t i = 0, rejected = 0;
    for (auto _ : st) {
        if (i == kBatch) {
            st.PauseTiming();
            replace();
            prepare();
            i = 0;
            st.ResumeTiming();
        }
        if (prefetch) {
            if (i + kAheadHash < kBatch) book.prefetch_hash(batch[i + kAheadHash]);
            if (i + kAheadOrder < kBatch) book.prefetch_order(batch[i + kAheadOrder]);
            if (i + kAheadNeighbours < kBatch) book.prefetch_neighbours(batch[i + kAheadNeighbours]);
        }
        rejected += !book.cancel(batch[i++], w.res);
        book.commit();
    }
    st.SetItemsProcessed(st.iterations());
    report_pages(st, w);
    st.counters["rejected"] = static_cast<double>(rejected);
}

void BM_cancel(benchmark::State& st) { cancel_case(st, false); }
void BM_cancel_pf(benchmark::State& st) { cancel_case(st, true); }

// 3. IOC orders priced 2 ticks through the best opposite level, 1-3 lots of
// kLot each (so 1-3 makers); consumed makers are re-added untimed per batch.
void BM_aggressive(benchmark::State& st) {
    Work& w = fresh(depth_arg(st), huge_arg(st));
    Book& book = *w.book;
    Rng rng{0xA66};
    struct Taker {
        Side side;
        int64_t qty;
    };
    struct Consumed {
        Side side;
        int64_t price;
    };
    std::vector<Taker> batch(kBatch);
    std::vector<Consumed> consumed;
    consumed.reserve(4 * kBatch);
    auto prepare = [&] {
        for (Taker& t : batch) t = Taker{rng.side(), kLot * static_cast<int64_t>(1 + rng.below(3))};
    };
    auto replenish = [&] {
        for (const Consumed& c : consumed) {
            book.place(passive(w.new_id(c.side), c.side, c.price, kLot, 1 + rng.below(kOwners)), w.res);
            book.commit();
        }
        consumed.clear();
    };
    prepare();
    size_t i = 0, rejected = 0, fills = 0;
    NewOrder o;
    o.owner = kTakerOwner;
    o.tif = Tif::Ioc;
    for (auto _ : st) {
        if (i == kBatch) {
            st.PauseTiming();
            replenish();
            prepare();
            i = 0;
            st.ResumeTiming();
        }
        const Taker& t = batch[i++];
        const Side maker = opposite(t.side);
        LevelView best;
        book.best(maker, best);
        o.id = w.new_id(t.side);
        o.side = t.side;
        o.price = Price{best.price.v + (t.side == Side::Buy ? 2 : -2)};
        o.qty = Qty{t.qty};
        rejected += !book.place(o, w.res);
        book.commit();
        fills += w.res.fills.size();
        for (const Fill& f : w.res.fills)
            if (f.maker_remaining.v == 0) consumed.push_back(Consumed{maker, f.price.v});
    }
    st.SetItemsProcessed(st.iterations());
    report_pages(st, w);
    st.counters["rejected"] = static_cast<double>(rejected);
    st.counters["fills_per_op"] = st.iterations() ? static_cast<double>(fills) / st.iterations() : 0;
}

// One command of the mixed stream (32 bytes).
struct Cmd {
    enum Kind : uint8_t { Add, Cancel, Take, Amend };
    OrderId id;
    int64_t price;
    int64_t qty;
    uint32_t owner;
    Kind kind;
    Side side;
    OrderType type;
};

// Applies one mixed-stream command to the book; returns whether it was accepted.
bool apply(Book& book, const Cmd& c, Result& res) {
    switch (c.kind) {
        case Cmd::Add:
            return book.place(passive(c.id, c.side, c.price, c.qty, c.owner), res);
        case Cmd::Cancel:
            return book.cancel(c.id, res);
        case Cmd::Take: {
            NewOrder o;
            o.id = c.id;
            o.owner = c.owner;
            o.side = c.side;
            o.type = c.type;
            o.tif = Tif::Ioc;
            o.price = Price{c.price};
            o.qty = Qty{c.qty};
            return book.place(o, res);
        }
        case Cmd::Amend:
            return book.amend(c.id, Price{c.price}, Qty{c.qty}, res);
    }
    return false;
}

// The resting orders of a simulated book, for uniform sampling.
class LivePool {
public:
    // Starts from the initial book's orders.
    explicit LivePool(const std::vector<OrderId>& ids) : ids_(ids) {
        for (uint32_t i = 0; i < ids_.size(); ++i) pos_[ids_[i]] = i;
    }
    // Records an order that now rests.
    void add(OrderId id) {
        pos_[id] = static_cast<uint32_t>(ids_.size());
        ids_.push_back(id);
    }
    // Records an order that left the book.
    void remove(OrderId id) {
        const auto it = pos_.find(id);
        if (it == pos_.end()) return;
        ids_[it->second] = ids_.back();
        pos_[ids_.back()] = it->second;
        ids_.pop_back();
        pos_.erase(id);
    }
    // A uniformly chosen resting order (0 if none).
    OrderId any(Rng& rng) const { return ids_.empty() ? 0 : ids_[rng.below(ids_.size())]; }

private:
    std::vector<OrderId> ids_;
    std::unordered_map<OrderId, uint32_t> pos_;
};

// Generates the mixed stream by simulating it on a copy of the depth's book, so
// that prices follow the touch as it moves:
//   ~50% passive adds: 90% 0-4 ticks behind the own best (10% of those one
//        tick inside it), 10% deep (5-999 ticks behind) to keep the book's shape;
//   ~35% cancels: 80% of one of the last kRecent adds (some already filled or
//        cancelled: OrderNotFound), 20% of any resting order;
//   ~10% takers of 1-3 lots: 70% IOC limit one tick through the best, 30% market;
//    ~5% quantity reductions of recent orders (priority kept).
// While the book is deeper than at the start, recent-order cancels retry up to
// 4 times for a live order; this keeps the depth roughly constant.
// `local`: the 20% of cancels that pick any resting order pick a recent one too.
const std::vector<Cmd>& mixed_stream(uint32_t depth, bool local) {
    static std::map<std::pair<uint32_t, bool>, std::vector<Cmd>> streams;  // 64 MiB each
    std::vector<Cmd>& stream = streams[{depth, local}];
    if (!stream.empty()) return stream;
    Work& w = fresh(depth);
    Book& book = *w.book;
    LivePool live(snapshot(depth).ids);
    const uint32_t target = book.order_count();
    Rng rng{0x31CED + depth};
    std::vector<OrderId> recent(kRecent, 0);
    size_t recent_n = 0;
    stream.clear();
    stream.reserve(kMixedOps);
    // Picks one of the last kRecent adds, retrying up to `tries` times for a live one.
    auto pick_recent = [&](unsigned tries, RestingOrder& ro) {
        OrderId id = 0;
        for (unsigned t = 0; t < tries; ++t) {
            id = recent[rng.below(std::min(recent_n, kRecent))];
            if (book.find(id, ro)) return id;
        }
        return id;
    };
    for (size_t n = 0; n < kMixedOps; ++n) {
        Cmd c{};
        const uint64_t r = rng.below(100);
        c.side = rng.side();
        c.owner = static_cast<uint32_t>(1 + rng.below(kOwners));
        LevelView own, opp;
        const bool has_own = book.best(c.side, own), has_opp = book.best(opposite(c.side), opp);
        const int64_t dir = c.side == Side::Buy ? 1 : -1;  // +1 = more aggressive for this side
        RestingOrder ro;
        if (r < 50 || recent_n == 0) {
            c.kind = Cmd::Add;
            c.id = w.new_id(c.side);
            const int64_t touch = has_own ? own.price.v : kMid - dir;
            if (rng.chance(10))
                c.price = touch - dir * static_cast<int64_t>(5 + rng.below(kLevelsPerSide - 5));
            else
                c.price = rng.chance(10) ? touch + dir : touch - dir * static_cast<int64_t>(rng.below(5));
            if (has_opp && (c.side == Side::Buy ? c.price >= opp.price.v : c.price <= opp.price.v))
                c.price = opp.price.v - dir;  // stay passive
            c.qty = kLot;
            recent[recent_n++ % kRecent] = c.id;
        } else if (r < 85) {
            c.kind = Cmd::Cancel;
            const bool recent = rng.chance(80) || local;
            c.id = recent ? pick_recent(book.order_count() > target ? 16 : 1, ro) : live.any(rng);
        } else if (r < 95) {
            c.kind = Cmd::Take;
            c.id = w.new_id(c.side);
            if (rng.chance(70) && has_opp) {
                c.type = OrderType::Limit;
                c.price = opp.price.v + dir;
                c.qty = kLot * static_cast<int64_t>(1 + rng.below(3));
            } else {
                c.type = OrderType::Market;
                c.price = 0;
                c.qty = kLot * static_cast<int64_t>(1 + rng.below(2));
            }
        } else {
            c.kind = Cmd::Amend;
            c.id = pick_recent(2, ro);
            if (ro.id == c.id && c.id != 0) {
                c.price = ro.price.v;
                c.qty = ro.qty.v > 1 ? ro.qty.v - 1 - static_cast<int64_t>(rng.below(ro.qty.v / 2)) : 1;
            } else {
                c.price = kMid;
                c.qty = 1;
            }
        }
        if (apply(book, c, w.res)) {
            if (c.kind == Cmd::Add) live.add(c.id);
            if (c.kind == Cmd::Cancel) live.remove(c.id);
            for (const Fill& f : w.res.fills)
                if (f.maker_remaining.v == 0) live.remove(f.maker);
            for (const Cancelled& x : w.res.stp_cancelled) live.remove(x.id);
        }
        book.commit();
        stream.push_back(c);
    }
    return stream;
}

// The order id a mixed-stream command will look up (cancels and amends), 0 if none.
OrderId lookup_id(const Cmd& c) { return c.kind == Cmd::Cancel || c.kind == Cmd::Amend ? c.id : 0; }

// 4. The realistic mix: the pre-generated stream replayed once, no pauses.
// With `prefetch`, the same stream with the ids of coming cancels and amends
// announced ahead by the Book's prefetch hints (case "mixed_pf"); still one
// command and one commit() at a time.
void mixed_case(benchmark::State& st, bool prefetch, bool local = false) {
    const std::vector<Cmd>& stream = mixed_stream(depth_arg(st), local);
    Work& w = fresh(depth_arg(st), huge_arg(st));
    Book& book = *w.book;
    const uint32_t depth_start = book.order_count();
    size_t i = 0, rejected = 0, fills = 0;
    const size_t n_cmds = stream.size();
    for (auto _ : st) {
        if (prefetch) {
            auto ahead = [&](size_t k) -> const Cmd& { return stream[i + k < n_cmds ? i + k : i + k - n_cmds]; };
            book.prefetch_hash(lookup_id(ahead(kAheadHash)));
            book.prefetch_order(lookup_id(ahead(kAheadOrder)));
            book.prefetch_neighbours(lookup_id(ahead(kAheadNeighbours)));
        }
        rejected += !apply(book, stream[i], w.res);
        if (++i == stream.size()) i = 0;  // defensive: iterations == stream length
        book.commit();
        fills += w.res.fills.size();
    }
    st.SetItemsProcessed(st.iterations());
    report_pages(st, w);
    const double n = st.iterations() ? static_cast<double>(st.iterations()) : 1.0;
    st.counters["depth_start"] = depth_start;
    st.counters["depth_end"] = book.order_count();
    st.counters["levels_end"] = book.level_count();
    st.counters["rejected_pct"] = 100.0 * static_cast<double>(rejected) / n;
    st.counters["fills_per_op"] = static_cast<double>(fills) / n;
}

void BM_mixed(benchmark::State& st) { mixed_case(st, false); }
void BM_mixed_pf(benchmark::State& st) { mixed_case(st, true); }
void BM_mixed_local(benchmark::State& st) { mixed_case(st, false, true); }

// Nanoseconds per load of a pointer chase through `mib` MiB (one random
// cache line after another, each address read from the line before).
double dependent_load_ns(size_t mib, bool huge) {
    Region r;
    const size_t bytes = mib << 20, lines = bytes / 64;
    r.allocate(bytes, huge);
    std::vector<uint32_t> order(lines);
    for (uint32_t i = 0; i < lines; ++i) order[i] = i;
    Rng rng{0xC4A5E};
    for (size_t i = lines - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    char* base = r.data();
    for (size_t i = 0; i < lines; ++i)
        *reinterpret_cast<uint64_t*>(base + size_t{order[i]} * 64) = uint64_t{order[(i + 1) % lines]} * 64;
    constexpr int kLoads = 4'000'000;
    uint64_t off = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kLoads; ++i) off = *reinterpret_cast<const uint64_t*>(base + off);
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(off);
    return ns / kLoads;
}

// Console options: tabular counters; colour on a terminal unless --benchmark_color says otherwise.
benchmark::ConsoleReporter::OutputOptions console_options(int argc, char** argv) {
    bool color = isatty(STDOUT_FILENO) != 0;
    const std::string flag = "--benchmark_color=";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a.compare(0, flag.size(), flag) != 0) continue;
        const std::string v = a.substr(flag.size());
        color = v == "auto" ? color : (v == "true" || v == "yes" || v == "1");
    }
    return color ? benchmark::ConsoleReporter::OO_ColorTabular : benchmark::ConsoleReporter::OO_Tabular;
}

// Console output plus a record of each run's ops/s for the summary table.
class SummaryReporter : public benchmark::ConsoleReporter {
public:
    explicit SummaryReporter(OutputOptions opts) : ConsoleReporter(opts) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& r : runs) {
            if (r.error_occurred) continue;
            const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
            if (r.run_type != Run::RT_Iteration && !median) continue;
            const auto it = r.counters.find("items_per_second");
            if (it == r.counters.end()) continue;
            const std::string& a = r.run_name.args;
            const uint32_t depth = static_cast<uint32_t>(std::stoul(a.substr(a.find(':') + 1)));
            (median ? medians_ : rates_)[r.run_name.function_name][depth].push_back(it->second.value);
            const auto hp = r.counters.find("huge_pct");
            if (hp != r.counters.end()) huge_[r.run_name.function_name][depth].push_back(hp->second.value);
        }
        ConsoleReporter::ReportRuns(runs);
    }

    // Prints one row per case and page size, the share of the region that
    // huge pages backed, then the targets and whether each is met.
    void PrintSummary(const std::vector<std::string>& cases) const {
        std::printf("\nSummary (ops/s; median of repetitions; ratio = cost(1M)/cost(10k) = ops/s(10k)/ops/s(1M))\n");
        std::printf("%-12s %-6s %14s %14s %14s %8s\n", "case", "pages", "10k", "100k", "1M", "ratio");
        for (const char* mode : kModes)
            for (const std::string& base : cases) {
                const std::string c = base + mode;
                if (!ran(c)) continue;
                std::printf("%-12s %-6s", base.c_str(), page_name(mode));
                for (uint32_t d : kDepths) {
                    const double v = rate(c, d);
                    if (v > 0)
                        std::printf(" %14s", group(v).c_str());
                    else
                        std::printf(" %14s", "-");
                }
                const double ratio = this->ratio(c);
                if (ratio > 0)
                    std::printf(" %8.2f\n", ratio);
                else
                    std::printf(" %8s\n", "-");
            }
        std::printf("\nShare of the working region on huge pages (AnonHugePages, lowest over runs):\n");
        for (const char* mode : kModes) {
            double lo[3] = {-1, -1, -1};
            for (const std::string& base : cases) {
                const auto ci = huge_.find(base + mode);
                if (ci == huge_.end()) continue;
                for (int k = 0; k < 3; ++k) {
                    const auto di = ci->second.find(kDepths[k]);
                    if (di == ci->second.end()) continue;
                    for (double v : di->second) lo[k] = lo[k] < 0 ? v : std::min(lo[k], v);
                }
            }
            std::printf("  %-6s", page_name(mode));
            for (int k = 0; k < 3; ++k)
                if (lo[k] < 0)
                    std::printf("  %s: -", kDepthNames[k]);
                else
                    std::printf("  %s: %5.1f%%", kDepthNames[k], lo[k]);
            std::printf("\n");
        }
        std::printf("\nTargets:\n");
        for (const char* mode : kModes) {
            const std::string m = std::string("mixed") + mode;
            if (!ran(m)) continue;
            bool all = true, any = false;
            double worst = 0;
            for (uint32_t d : kDepths) {
                const double v = rate(m, d);
                if (v <= 0) {
                    all = false;
                    continue;
                }
                worst = any ? std::min(worst, v) : v;
                any = true;
                all = all && v >= 5e6;
            }
            std::printf("  [%s] mixed >= 5,000,000 ops/s at every depth: %s (lowest %s ops/s)\n", page_name(mode),
                        !any ? "NOT MEASURED" : all ? "MET" : "NOT MET", any ? group(worst).c_str() : "-");
        }
        for (const char* mode : kModes)
            for (const std::string& base : cases) {
                const std::string c = base + mode;
                if (!ran(c) || base == "mixed_local") continue;  // a diagnostic, below
                const double ratio = this->ratio(c);
                if (ratio > 0)
                    std::printf("  [%s] depth ratio 1M/10k < 1.5, %-10s: %.3f %s\n", page_name(mode), base.c_str(),
                                ratio, ratio < 1.5 ? "MET" : "NOT MET");
                else
                    std::printf("  [%s] depth ratio 1M/10k < 1.5, %-10s: NOT MEASURED\n", page_name(mode),
                                base.c_str());
            }
        std::printf("\nDiagnostics (not targets):\n");
        for (const char* mode : kModes) {
            const std::string m = std::string("mixed") + mode, l = std::string("mixed_local") + mode;
            if (!ran(m) || !ran(l) || rate(m, kDepths[2]) <= 0 || rate(l, kDepths[2]) <= 0) continue;
            // Of the mixed stream's commands ~35% are cancels and 20% of those pick any resting order.
            const double extra_ns = 1e9 / rate(m, kDepths[2]) - 1e9 / rate(l, kDepths[2]);
            std::printf("  [%s] mixed_local ratio %.2f (mixed %.2f): at 1M the uniformly random cancels (7%% of "
                        "commands) add %.0f ns per command, ~%.0f ns each\n",
                        page_name(mode), ratio(l), ratio(m), extra_ns, extra_ns / 0.07);
        }
        for (const char* mode : kModes)
            std::printf("  [%s] one dependent load from 128 MiB: %.0f ns (from 1 MiB: %.1f ns)\n", page_name(mode),
                        dependent_load_ns(128, *mode != 0), dependent_load_ns(1, *mode != 0));
    }

    // Name suffixes of the page modes: 4 KiB pages, transparent huge pages.
    static constexpr const char* kModes[] = {"", "_thp"};

private:
    // Median ops/s of a (case, depth) over its repetitions, 0 if it did not run.
    double rate(const std::string& c, uint32_t depth) const {
        for (const auto* m : {&medians_, &rates_}) {
            const auto ci = m->find(c);
            if (ci == m->end()) continue;
            const auto di = ci->second.find(depth);
            if (di == ci->second.end() || di->second.empty()) continue;
            std::vector<double> v = di->second;
            std::sort(v.begin(), v.end());
            return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
        }
        return 0;
    }
    // ops/s(10k) / ops/s(1M), 0 if either is missing.
    double ratio(const std::string& c) const {
        const double small = rate(c, kDepths[0]), large = rate(c, kDepths[2]);
        return small > 0 && large > 0 ? small / large : 0;
    }
    // A number with thousands separators.
    static std::string group(double v) {
        std::string s = std::to_string(static_cast<long long>(v + 0.5));
        for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
        return s;
    }
    using Rates = std::map<std::string, std::map<uint32_t, std::vector<double>>>;
    Rates rates_;    // case -> depth -> ops/s of each repetition
    Rates medians_;  // case -> depth -> ops/s of the "median" aggregate
    Rates huge_;     // case -> depth -> huge_pct of each run

    // Whether a case (with its page suffix) produced any result.
    bool ran(const std::string& c) const { return rates_.count(c) != 0 || medians_.count(c) != 0; }
    static const char* page_name(const char* mode) { return *mode ? "THP" : "4KiB"; }
    static constexpr const char* kDepthNames[] = {"10k", "100k", "1M"};
};

}  // namespace

int main(int argc, char** argv) {
    // Defaults for a noisy 2-core VM: 3 repetitions, aggregates only. Flags
    // given on the command line come later and so take precedence.
    std::vector<char*> args(argv, argv + argc);
    char reps[] = "--benchmark_repetitions=3", aggs[] = "--benchmark_display_aggregates_only=true";
    args.insert(args.begin() + 1, {reps, aggs});
    int n = static_cast<int>(args.size());
    args.push_back(nullptr);

    const std::vector<std::string> cases = {"add",   "cancel",   "cancel_pf",  "aggressive",
                                            "mixed", "mixed_pf", "mixed_local"};
    void (*const fns[])(benchmark::State&) = {BM_add,   BM_cancel,   BM_cancel_pf,  BM_aggressive,
                                              BM_mixed, BM_mixed_pf, BM_mixed_local};
    // Each case on 4 KiB pages ("add") and on transparent huge pages ("add_thp").
    for (size_t c = 0; c < cases.size(); ++c)
        for (int huge = 0; huge < 2; ++huge) {
            const std::string name = cases[c] + (huge ? "_thp" : "");
            benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(name.c_str(), fns[c]);
            b->ArgNames({"depth", "huge"})->Unit(benchmark::kNanosecond);
            for (uint32_t d : kDepths) b->Args({d, huge});
            if (cases[c].rfind("mixed", 0) == 0) b->Iterations(static_cast<benchmark::IterationCount>(kMixedOps));
        }
    const benchmark::ConsoleReporter::OutputOptions opts = console_options(n, args.data());
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
    SummaryReporter reporter(opts);
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.PrintSummary(cases);
    benchmark::Shutdown();
    return 0;
}
