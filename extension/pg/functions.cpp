// SQL-callable C functions: the internal exchange._* API used by the SQL
// layer (sql/exchange.sql), which owns the tables and decimal conversion.
//
// Every call into the matching core goes through RunCore(): it catches any
// C++ exception, lets the C++ stack unwind, and only then raises ERROR, so
// ereport's longjmp never crosses a live C++ object. Core results live in
// static buffers, never on the stack across PostgreSQL calls.
#include <cstring>
#include <vector>

#include "book.h"
#include "books.h"
#include "publisher.h"
#include "run_core.h"
#include "wal_prealloc.h"
#include "writeback.h"

extern "C" {
#include "commands/trigger.h"
#include "utils/inval.h"
PG_MODULE_MAGIC;
void _PG_init(void);
PG_FUNCTION_INFO_V1(exchange_cancel);
PG_FUNCTION_INFO_V1(exchange_amend);
PG_FUNCTION_INFO_V1(exchange_lock);
PG_FUNCTION_INFO_V1(exchange_read_lock);
PG_FUNCTION_INFO_V1(exchange_levels);
PG_FUNCTION_INFO_V1(exchange_book_orders);
PG_FUNCTION_INFO_V1(exchange_book_stops);
PG_FUNCTION_INFO_V1(exchange_book_last_price);
PG_FUNCTION_INFO_V1(exchange_book_last_price_read);
PG_FUNCTION_INFO_V1(exchange_last_trade_ticks);
PG_FUNCTION_INFO_V1(exchange_validate);
PG_FUNCTION_INFO_V1(exchange_rebuild);
PG_FUNCTION_INFO_V1(exchange_stats_raw);
PG_FUNCTION_INFO_V1(exchange_instruments_changed);
}

namespace {

using namespace pgx;
using pg::RunCore;

core::Result result;  // reused by every command

Datum Int8Array(const std::vector<Datum>& v) {
    return PointerGetDatum(construct_array(const_cast<Datum*>(v.data()), static_cast<int>(v.size()), INT8OID, 8,
                                           FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum Int4Array(const std::vector<Datum>& v) {
    return PointerGetDatum(
        construct_array(const_cast<Datum*>(v.data()), static_cast<int>(v.size()), INT4OID, 4, true, TYPALIGN_INT));
}

// Column buffers for the arrays of a result (static: see the file comment).
struct Columns {
    std::vector<Datum> fill_maker, fill_price, fill_qty, fill_rem, lvl_side, lvl_price, lvl_qty, lvl_count, stp_id,
        stp_qty;
};
Columns cols;

// Fills the column buffers from `result` (no PostgreSQL call may fail here).
void Flatten() {
    for (auto* v : {&cols.fill_maker, &cols.fill_price, &cols.fill_qty, &cols.fill_rem, &cols.lvl_side,
                    &cols.lvl_price, &cols.lvl_qty, &cols.lvl_count, &cols.stp_id, &cols.stp_qty})
        v->clear();
    for (const auto& f : result.fills) {
        cols.fill_maker.push_back(Int64GetDatum(static_cast<int64>(f.maker)));
        cols.fill_price.push_back(Int64GetDatum(f.price.v));
        cols.fill_qty.push_back(Int64GetDatum(f.qty.v));
        cols.fill_rem.push_back(Int64GetDatum(f.maker_remaining.v));
    }
    for (const auto& l : result.levels) {
        cols.lvl_side.push_back(Int32GetDatum(static_cast<int32>(l.side)));
        cols.lvl_price.push_back(Int64GetDatum(l.price.v));
        cols.lvl_qty.push_back(Int64GetDatum(l.qty.v));
        cols.lvl_count.push_back(Int32GetDatum(static_cast<int32>(l.count)));
    }
    for (const auto& c : result.stp_cancelled) {
        cols.stp_id.push_back(Int64GetDatum(static_cast<int64>(c.id)));
        cols.stp_qty.push_back(Int64GetDatum(c.qty.v));
    }
}

// The exchange._match_result row for `result`.
Datum ResultTuple(FunctionCallInfo fcinfo) {
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("function must return a composite")));
    RunCore(Flatten);
    Datum v[18];
    bool nulls[18] = {false};
    v[0] = BoolGetDatum(result.accepted());
    v[1] = CStringGetTextDatum(core::to_string(result.reject).data());
    v[2] = Int64GetDatum(static_cast<int64>(result.seq));
    v[3] = Int64GetDatum(result.filled.v);
    v[4] = Int64GetDatum(result.resting.v);
    v[5] = Int64GetDatum(result.cancelled.v);
    v[6] = CStringGetTextDatum(core::to_string(result.cancel_reason).data());
    v[7] = BoolGetDatum(result.priority_kept);
    v[8] = Int8Array(cols.fill_maker);
    v[9] = Int8Array(cols.fill_price);
    v[10] = Int8Array(cols.fill_qty);
    v[11] = Int8Array(cols.fill_rem);
    v[12] = Int4Array(cols.lvl_side);
    v[13] = Int8Array(cols.lvl_price);
    v[14] = Int8Array(cols.lvl_qty);
    v[15] = Int4Array(cols.lvl_count);
    v[16] = Int8Array(cols.stp_id);
    v[17] = Int8Array(cols.stp_qty);
    desc = BlessTupleDesc(desc);
    return HeapTupleGetDatum(heap_form_tuple(desc, v, nulls));
}

}  // namespace

void _PG_init(void) {
    if (!process_shared_preload_libraries_in_progress)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("exchange must be loaded via shared_preload_libraries"),
                        errhint("Add exchange to shared_preload_libraries in postgresql.conf and restart.")));
    pg::DefineSettings();
    pg::InstallShmemHooks();
    pg::RegisterTransactionCallbacks();
    pg::InstallPublisherHooks();
    pg::RegisterWalPreallocWorker();
    pg::RegisterWritebackWorker();
}

// _cancel(instrument_id, order_no)
Datum exchange_cancel(PG_FUNCTION_ARGS) {
    core::Book& book = pg::EnsureBookForWrite(PG_GETARG_INT32(0));
    const uint64 id = static_cast<uint64>(PG_GETARG_INT64(1));
    RunCore([&] { book.cancel(id, result); });
    return ResultTuple(fcinfo);
}

// _amend(instrument_id, order_no, price, qty)
Datum exchange_amend(PG_FUNCTION_ARGS) {
    core::Book& book = pg::EnsureBookForWrite(PG_GETARG_INT32(0));
    const uint64 id = static_cast<uint64>(PG_GETARG_INT64(1));
    const core::Price price{PG_GETARG_INT64(2)};
    const core::Qty qty{PG_GETARG_INT64(3)};
    RunCore([&] { book.amend(id, price, qty, result); });
    return ResultTuple(fcinfo);
}

// _lock(instrument_id): take the instrument for writing; returns its sequence.
Datum exchange_lock(PG_FUNCTION_ARGS) {
    const core::Book& book = pg::EnsureBookForWrite(PG_GETARG_INT32(0));
    PG_RETURN_INT64(static_cast<int64>(book.seq()));
}

// _read_lock(instrument_id): wait for the instrument's writers and keep them
// out until this transaction ends; returns the sequence the committed book
// reflects, so later reads in the transaction are consistent with it.
Datum exchange_read_lock(PG_FUNCTION_ARGS) {
    const core::Book& book = pg::EnsureBookForRead(PG_GETARG_INT32(0));
    PG_RETURN_INT64(static_cast<int64>(book.seq()));
}

namespace {
std::vector<core::LevelView> level_buf;
std::vector<core::RestingOrder> order_buf;
std::vector<std::string> problem_buf;
}  // namespace

// _levels(instrument_id, depth) -> (side int2, price int8, qty int8, order_count int4), best first per side.
Datum exchange_levels(PG_FUNCTION_ARGS) {
    const int32 iid = PG_GETARG_INT32(0);
    const int32 depth = PG_GETARG_INT32(1);
    if (depth < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("depth must not be negative")));
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const core::Book& book = pg::EnsureBookForRead(iid);
    for (int s = 0; s < 2; ++s) {
        RunCore([&] { book.levels(static_cast<core::Side>(s), static_cast<size_t>(depth), level_buf); });
        for (const auto& l : level_buf) {
            Datum v[4] = {Int16GetDatum(s), Int64GetDatum(l.price.v), Int64GetDatum(l.qty.v),
                          Int32GetDatum(static_cast<int32>(l.count))};
            bool nulls[4] = {false, false, false, false};
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
        }
    }
    pg::ReleaseBookForRead(iid);
    return (Datum)0;
}

// The rows of _book_orders or _book_stops: for each side, the orders `list`
// gives (in their order) as row(order, side, rank).
template <class List, class RowOf>
void PutOrders(FunctionCallInfo fcinfo, List list, RowOf row_of) {
    const int32 iid = PG_GETARG_INT32(0);
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const core::Book& book = pg::EnsureBookForRead(iid);
    for (int s = 0; s < 2; ++s) {
        RunCore([&] { list(book, static_cast<core::Side>(s), order_buf); });
        int64 rank = 0;
        for (const auto& o : order_buf) {
            // (A function declared with fewer columns, of an older version, reads the first ones.)
            Datum v[7] = {};
            row_of(o, s, ++rank, v);
            bool nulls[7] = {false, false, false, false, false, false, false};
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
        }
    }
    pg::ReleaseBookForRead(iid);
}

// _book_orders(instrument_id) -> (order_no int8, side int2, price int8, qty int8, rank int8[, visible int8])
// in priority order; qty is all that remains of an order, visible the part
// shown (0.12 added the column).
Datum exchange_book_orders(PG_FUNCTION_ARGS) {
    PutOrders(
        fcinfo, [](const core::Book& b, core::Side s, auto& out) { b.orders(s, out); },
        [](const core::RestingOrder& o, int s, int64 rank, Datum* v) {
            v[0] = Int64GetDatum(static_cast<int64>(o.id)), v[1] = Int16GetDatum(s),
            v[2] = Int64GetDatum(o.price.v);
            v[3] = Int64GetDatum(o.qty.v), v[4] = Int64GetDatum(rank), v[5] = Int64GetDatum(o.visible.v);
        });
    return (Datum)0;
}

// _book_stops(instrument_id) -> (order_no int8, side int2, stop int8, price int8, qty int8, rank int8[,
// display int8]): the pending stop orders in trigger order (price 0: a stop-market order; display 0: not an
// iceberg; 0.15 added the column).
Datum exchange_book_stops(PG_FUNCTION_ARGS) {
    PutOrders(
        fcinfo, [](const core::Book& b, core::Side s, auto& out) { b.stops(s, out); },
        [](const core::RestingOrder& o, int s, int64 rank, Datum* v) {
            v[0] = Int64GetDatum(static_cast<int64>(o.id)), v[1] = Int16GetDatum(s),
            v[2] = Int64GetDatum(o.stop.v);
            v[3] = Int64GetDatum(o.price.v), v[4] = Int64GetDatum(o.qty.v), v[5] = Int64GetDatum(rank);
            v[6] = Int64GetDatum(o.display.v);
        });
    return (Datum)0;
}

// _book_last_price(instrument_id) -> int8: the last trade price in ticks the book acts on (0: no trade in
// the journal it was loaded from nor since); for a book that has not read it from the journal yet, the
// journal's.
Datum exchange_book_last_price(PG_FUNCTION_ARGS) {
    bool known;
    PG_RETURN_INT64(pg::BookLastTradeTicks(PG_GETARG_INT32(0), true, &known));
}

// _book_last_price_read(instrument_id) -> int8 (0.15): the book's last trade price in ticks if it has one
// to compare with the journal's (read from it, or a trade since it was loaded), else NULL.
Datum exchange_book_last_price_read(PG_FUNCTION_ARGS) {
    bool known;
    const int64 ticks = pg::BookLastTradeTicks(PG_GETARG_INT32(0), false, &known);
    if (!known) PG_RETURN_NULL();
    PG_RETURN_INT64(ticks);
}

// _last_trade_ticks(instrument_id) -> int8: the journal's last trade price in ticks (0: none), as a book
// loads it.
Datum exchange_last_trade_ticks(PG_FUNCTION_ARGS) {
    PG_RETURN_INT64(pg::LastTradeTicks(PG_GETARG_INT32(0)));
}

// _validate(instrument_id) -> text[] of broken invariants (empty = valid).
Datum exchange_validate(PG_FUNCTION_ARGS) {
    const int32 iid = PG_GETARG_INT32(0);
    const core::Book& book = pg::EnsureBookForRead(iid);
    RunCore([&] { problem_buf = book.validate(); });
    pg::ReleaseBookForRead(iid);
    std::vector<Datum> items;
    items.reserve(problem_buf.size());
    for (const auto& p : problem_buf) items.push_back(CStringGetTextDatum(p.c_str()));
    PG_RETURN_ARRAYTYPE_P(
        construct_array(items.data(), static_cast<int>(items.size()), TEXTOID, -1, false, TYPALIGN_INT));
}

// _rebuild(instrument_id) -> resting orders loaded.
Datum exchange_rebuild(PG_FUNCTION_ARGS) {
    PG_RETURN_INT64(pg::RebuildBook(PG_GETARG_INT32(0)));
}

// _stats() -> one row per book of this database in shared memory; since
// 0.14 also its pending stop orders and their stop levels (the function
// declared before has the first nine columns).
Datum exchange_stats_raw(PG_FUNCTION_ARGS) {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const int n = pg::SlotCount();
    for (int i = 0; i < n; ++i) {
        pg::SlotInfo s;
        if (!pg::SlotInfoAt(i, s)) continue;
        Datum v[11] = {Int32GetDatum(s.instrument_id),
                       BoolGetDatum(s.loaded),
                       Int64GetDatum(s.orders),
                       Int64GetDatum(s.levels),
                       Int64GetDatum(s.max_orders),
                       Int64GetDatum(s.max_levels),
                       Int64GetDatum(static_cast<int64>(s.seq)),
                       Int64GetDatum(static_cast<int64>(s.bytes)),
                       Int64GetDatum(static_cast<int64>(s.published_seq)),
                       Int64GetDatum(s.stops),
                       Int64GetDatum(s.stop_levels)};
        bool nulls[11] = {false};
        Assert(rsinfo->setDesc->natts == 9 || rsinfo->setDesc->natts == 11);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
    }
    return (Datum)0;
}

// Trigger instruments_changed (0.7): after an UPDATE, DELETE or TRUNCATE of
// exchange.instruments, invalidates the table's relcache entry, which empties
// every backend's kept instruments (commands.cpp, committed_instruments).
Datum exchange_instruments_changed(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo)) ereport(ERROR, (errmsg("exchange._instruments_changed() is a trigger")));
    CacheInvalidateRelcache(reinterpret_cast<TriggerData*>(fcinfo->context)->tg_relation);
    return PointerGetDatum(nullptr);
}
