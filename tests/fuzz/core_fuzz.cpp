// libFuzzer target: the matching core against the reference book.
//
// The input bytes choose the capacities, then a sequence of commands (place,
// cancel, amend, load_resting, set_last_price, savepoint, rollback, commit)
// with ids from a small range (duplicates and unknown ids are common), prices
// in a narrow band or at the extremes, quantities small or near kMaxQty, and
// some stop orders (stop prices in the band or invalid; placed and loaded;
// amends move their stop price, see AmendStop).
// Both books run every command; results (with the stop orders each command
// triggered) and whole books (pending stops and last price included) must
// agree after each one, the real book's invariants must hold, and a rollback
// must restore the state saved at its savepoint. Any difference aborts with a
// description.
//
// make fuzz runs it for minutes on tests/fuzz/corpus; make test runs it
// briefly (scripts/fuzz.sh).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "reference_book.h"
#include "test_support.h"

namespace {

using namespace pgx::test;
namespace ref = pgx::ref;

[[noreturn]] void Fail(const std::string& what) {
    std::fprintf(stderr, "core_fuzz: %s\n", what.c_str());
    std::abort();
}

int64_t FuzzPrice(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 15)) {
        case 0: return 0;
        case 1: return -in.ConsumeIntegralInRange<int64_t>(1, 3);
        case 2: return kMaxPrice;
        case 3: return kMaxPrice + 1;
        default: return in.ConsumeIntegralInRange<int64_t>(95, 105);
    }
}

// An iceberg's display for an order of `qty` lots: mostly none, sometimes out of range.
int64_t FuzzDisplay(FuzzedDataProvider& in, int64_t qty) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
        case 0:
            return -1;
        case 1:
            return qty + 1;
        case 2:
            return qty > 0 ? qty / in.ConsumeIntegralInRange<int64_t>(1, 120) : 1;
        case 3:
            return in.ConsumeIntegralInRange<int64_t>(1, 4);
        default:
            return 0;
    }
}

// A stop price: mostly none, else in the band, sometimes out of range.
int64_t FuzzStop(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 15)) {
        case 0:
            return -1;
        case 1:
            return kMaxPrice + 1;
        case 2:
            return kMaxPrice;
        case 3:
        case 4:
        case 5:
        case 6:
        case 7:
            return in.ConsumeIntegralInRange<int64_t>(95, 105);
        default:
            return 0;
    }
}

// The new stop price of an amend of `id`, from the part of the command's
// byte that the command's kind (byte % 17) leaves unread, so that inputs
// written before amend took a stop price decode to the same commands: half
// of the amends keep their stop price (0); the rest name the order's own
// stop price, one out of range, kMaxPrice, or one around the last trade price
// on the order's side (one tick reached, at it, one or two ticks beyond it;
// before any trade, in the band).
int64_t AmendStop(uint8_t byte, const ref::ReferenceBook& model, OrderId id) {
    const int hi = byte / 17;  // 0..15
    RestingOrder o;
    const bool found = model.find(id, o);
    if (hi < 8) return 0;
    if (hi == 8) return found && o.stop.v != 0 ? o.stop.v : 100;
    if (hi == 9) return -1;
    if (hi == 10) return kMaxPrice + 1;
    if (hi == 11) return kMaxPrice;
    const int64_t last = model.last_price().v;
    if (last == 0) return 95 + (hi - 12) * 3;
    const int64_t d = hi - 13;  // -1..2
    return std::max<int64_t>(1, found && o.side == Side::Sell ? last - d : last + d);
}

// Empty if both books agree on what find(id) reports.
std::string DiffFind(const Book& real, const ref::ReferenceBook& model, OrderId id) {
    RestingOrder a, b;
    const bool fa = real.find(id, a), fb = model.find(id, b);
    if (fa != fb)
        return std::string("find ") + (fa ? "found" : "not found") + " vs " + (fb ? "found" : "not found");
    return fa ? diff_orders({a}, {b}) : std::string();
}

int64_t FuzzQuantity(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 15)) {
        case 0: return 0;
        case 1: return -1;
        case 2: return kMaxQty - in.ConsumeIntegralInRange<int64_t>(0, 3);
        case 3: return kMaxQty + 1;
        default: return in.ConsumeIntegralInRange<int64_t>(1, 12);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    const uint32_t max_orders = in.ConsumeIntegralInRange<uint32_t>(1, 48);
    const uint32_t max_levels = in.ConsumeIntegralInRange<uint32_t>(1, 12);
    OwnedBook real(max_orders, max_levels);
    ref::ReferenceBook model(max_orders, max_levels);
    // Open savepoints: the real book's mark and the reference book as it was.
    std::vector<std::pair<Book::Savepoint, ref::ReferenceBook>> savepoints;
    Result got, want;
    int step = 0;
    while (in.remaining_bytes() > 0 && step < 2000) {
        ++step;
        const uint8_t byte = in.ConsumeIntegral<uint8_t>();
        const int kind = byte % 17;  // as ConsumeIntegralInRange<int>(0, 16) reads it
        std::string what;
        OrderId subject = 0;
        if (kind <= 6) {
            NewOrder o;
            o.id = in.ConsumeIntegralInRange<OrderId>(0, 40);
            o.owner = in.ConsumeIntegralInRange<OwnerId>(1, 3);
            o.side = static_cast<Side>(in.ConsumeIntegralInRange<int>(0, 2));
            o.type = static_cast<OrderType>(in.ConsumeIntegralInRange<int>(0, 2));
            o.tif = static_cast<Tif>(in.ConsumeIntegralInRange<int>(0, 3));
            o.price = pgx::core::Price{o.type == OrderType::Market && in.ConsumeBool() ? 0 : FuzzPrice(in)};
            o.qty = Qty{FuzzQuantity(in)};
            o.post_only = in.ConsumeIntegralInRange<int>(0, 5) == 0;
            o.stp = static_cast<Stp>(in.ConsumeIntegralInRange<int>(0, 4));
            o.display = Qty{FuzzDisplay(in, o.qty.v)};
            o.stop = pgx::core::Price{FuzzStop(in)};
            real->place(o, got);
            model.place(o, want);
            what = describe(o);
            subject = o.id;
        } else if (kind <= 8) {
            const OrderId id = in.ConsumeIntegralInRange<OrderId>(0, 40);
            real->cancel(id, got);
            model.cancel(id, want);
            what = "cancel id " + std::to_string(id);
            subject = id;
        } else if (kind <= 10) {
            const OrderId id = in.ConsumeIntegralInRange<OrderId>(0, 40);
            const pgx::core::Price price{FuzzPrice(in)};
            const Qty qty{FuzzQuantity(in)};
            const pgx::core::Price stop{AmendStop(byte, model, id)};
            real->amend(id, price, qty, got, stop);
            model.amend(id, price, qty, want, stop);
            what = "amend id " + std::to_string(id) + " price " + std::to_string(price.v) + " qty " +
                   std::to_string(qty.v) + " stop " + std::to_string(stop.v);
            subject = id;
        } else if (kind == 11) {
            RestingOrder o;
            o.id = in.ConsumeIntegralInRange<OrderId>(0, 40);
            o.owner = in.ConsumeIntegralInRange<OwnerId>(1, 3);
            o.side = static_cast<Side>(in.ConsumeIntegralInRange<int>(0, 1));
            o.price = pgx::core::Price{FuzzPrice(in)};
            o.qty = Qty{FuzzQuantity(in)};
            o.stp = static_cast<Stp>(in.ConsumeIntegralInRange<int>(0, 3));
            o.display = Qty{FuzzDisplay(in, o.qty.v)};
            o.visible = Qty{in.ConsumeIntegralInRange<int64_t>(0, 5)};
            o.post_only = in.ConsumeIntegralInRange<int>(0, 7) == 0;
            if (in.ConsumeIntegralInRange<int>(0, 2) == 0) {  // a pending stop order (type and tif read)
                o.stop = pgx::core::Price{FuzzStop(in)};
                o.type = static_cast<OrderType>(in.ConsumeIntegralInRange<int>(0, 2));
                o.tif = static_cast<Tif>(in.ConsumeIntegralInRange<int>(0, 3));
                if (o.type == OrderType::Market && in.ConsumeBool()) o.price = pgx::core::Price{0};
                if (in.ConsumeBool()) o.display = Qty{0};
            }
            const Reject a = real->load_resting(o);
            const Reject b = model.load_resting(o);
            if (a != b)
                Fail("step " + std::to_string(step) + " load_resting: " + std::string(to_string(a)) + " vs " +
                     std::string(to_string(b)));
            got.clear();
            want.clear();
            what = "load id " + std::to_string(o.id) + " stop " + std::to_string(o.stop.v);
            subject = o.id;
        } else if (kind <= 13) {
            savepoints.emplace_back(real->savepoint(), model);
            continue;
        } else if (kind == 14) {
            if (savepoints.empty()) continue;
            // Back to one of the open savepoints; the ones after it end with it.
            for (size_t back = in.ConsumeIntegralInRange<size_t>(1, savepoints.size()); back > 1; --back)
                savepoints.pop_back();
            real->rollback_to(savepoints.back().first);
            model = savepoints.back().second;
            savepoints.pop_back();
            got.clear();
            want.clear();
            what = "rollback";
        } else if (kind == 15) {
            real->commit();
            savepoints.clear();
            continue;
        } else {
            // A rebuild's last trade price: only while no stop is pending (a
            // pending stop it reached would trigger on the next command, which
            // the rules leave to the caller to avoid).
            if (model.stop_count() != 0) continue;
            const pgx::core::Price p{in.ConsumeIntegralInRange<int64_t>(0, 106)};
            real->set_last_price(p);
            model.set_last_price(p);
            got.clear();
            want.clear();
            what = "set_last_price " + std::to_string(p.v);
        }
        std::string d = diff_results(got, want);
        if (d.empty() && got.accepted() && real->seq() != got.seq + got.triggered.size() && kind <= 10)
            d = "seq() is not the result's seq plus the triggered stops";
        if (d.empty()) d = DiffFind(*real, model, subject);
        for (size_t i = 0; d.empty() && i < want.triggered.size(); ++i)
            d = DiffFind(*real, model, want.triggered[i].id);
        if (!d.empty()) Fail("step " + std::to_string(step) + " " + what + ": result differs: " + d);
        const std::string s = diff_snapshots(Snapshot::of(*real), Snapshot::of(model));
        if (!s.empty()) Fail("step " + std::to_string(step) + " " + what + ": book differs: " + s);
        const auto problems = real->validate();
        if (!problems.empty()) Fail("step " + std::to_string(step) + " " + what + ": " + problems.front());
    }
    return 0;
}
