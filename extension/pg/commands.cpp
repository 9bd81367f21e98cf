// exchange.place_order, place_orders, cancel_order, cancel_orders and
// amend_order in C: validation, decimal conversion, matching and every row
// the command writes (the orders, the makers' fills, the trades, the journal
// entries). Lookups use saved SPI plans; the rows go through row_writer.h,
// or SQL statements where it cannot.
//
// A call validates every order first (a rejected batch item needs no
// subtransaction: it is answered as a 'rejected' row and writes nothing),
// then matches each one in the book (Stage) and finally writes the rows of
// all of them together, table by table (Flush). Orders of one call that
// trade with each other or repeat an idempotency key end exactly as if placed
// one by one (regress/sql/batch.sql compares both). Cancels, and amends that
// change no order but their own, are written the same way, a call's together
// (FlushCancels, FlushAmends; regress/sql/cancel_amend.sql compares them with
// the one-by-one functions). Errors past validation (a broken table, out of
// memory) abort the caller's transaction as usual.
//
// Memory and errors: everything lives in SPI's procedure context until
// SPI_finish (the journal's jsonb is built in a scratch context reset per
// order). ereport() longjmps, so no C++ object with a destructor may be alive
// on the stack when PostgreSQL can raise an error: the C++ containers here are
// static, reset at each call's start (all but committed_clients and
// committed_instruments, which keep client numbers and instruments across
// transactions), and every call that may allocate in
// them runs inside RunCore(), which turns std::bad_alloc into an ERROR.
#include "book.h"

#include <cctype>
#include <cstdarg>
#include <cstring>
#include <initializer_list>
#include <new>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "books.h"
#include "row_writer.h"
#include "run_core.h"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_trigger.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "tcop/utility.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(exchange_place_order);
PG_FUNCTION_INFO_V1(exchange_place_orders);
PG_FUNCTION_INFO_V1(exchange_cancel_order);
PG_FUNCTION_INFO_V1(exchange_amend_order);
PG_FUNCTION_INFO_V1(exchange_cancel_orders);
PG_FUNCTION_INFO_V1(exchange_cancel_orders_each);
PG_FUNCTION_INFO_V1(exchange_amend_orders);
}

namespace {

using namespace pgx;
using pg::ExchangeRelid;
using pg::RunCore;

core::Result cmd;  // the core's answer to the current command (static: see the file comment)

// Whether exchange.orders has 0.12's iceberg columns, looked up once per call (-1: not yet).
int icebergs_schema = -1;
bool IcebergsSchema() {
    if (icebergs_schema < 0) icebergs_schema = pg::OrdersHaveIcebergs() ? 1 : 0;
    return icebergs_schema == 1;
}
// The same for 0.13's stop order columns.
int stops_schema = -1;
bool StopsSchema() {
    if (stops_schema < 0) stops_schema = pg::OrdersHaveStops() ? 1 : 0;
    return stops_schema == 1;
}

// Lookups repeated within one call (one transaction), reset at each call's
// start: instruments (kept in call_cxt) and client numbers.
MemoryContext call_cxt = nullptr;
std::unordered_map<std::string, int64> client_cache;
std::unordered_set<int32> key_share_locked;  // instruments this call locked FOR KEY SHARE
std::unordered_set<uint64> cancelled_in_call;  // order_no of the cancels staged by this call
std::unordered_set<uint64> amends_staged;      // OrderKey of the order_id of each amend staged by this call
// A cancel_orders or amend_orders call's orders, read in one statement once
// all their instruments are locked (LockInstrumentsOf): LockRestingOrder
// takes an order's row from here instead of reading it. An order's row
// leaves when the call changes it, and all leave when a command may have
// changed other orders (an amend that traded).
SPITupleTable* orders_read = nullptr;
std::unordered_map<uint64, uint64> orders_read_at;  // OrderKey(order_id) -> its row in orders_read

// Client numbers read from exchange.clients rows that a committed transaction
// inserted, kept across calls and transactions: such a row never changes (the
// table refuses UPDATE, DELETE and TRUNCATE since 0.6; client numbers are
// what self-trade prevention compares, so they must not change anyway). A
// row this transaction inserted stays in client_cache only, as it may yet
// roll back. Emptied when the table's relcache entry is invalidated (DROP,
// among them the extension's, ALTER TABLE, a cache reset); bounded by
// kMaxCommittedClients.
std::unordered_map<std::string, int64> committed_clients;
Oid committed_clients_rel = InvalidOid;  // the exchange.clients they were read from; invalid: none yet
constexpr size_t kMaxCommittedClients = 65536;

void ForgetCommittedClients(Datum, Oid relid) {
    if (relid != InvalidOid && relid != committed_clients_rel) return;
    committed_clients.clear();
    committed_clients_rel = InvalidOid;
}

void ForgetCommittedInstruments(Datum, Oid relid);
MemoryContext committed_instruments_cxt = nullptr;

// Registers, once per backend, the relcache callbacks that empty what is
// kept across transactions (committed_clients, committed_instruments).
void EnsureForgetCallbacks() {
    static bool registered = false;
    if (registered) return;
    CacheRegisterRelcacheCallback(ForgetCommittedClients, (Datum)0);
    CacheRegisterRelcacheCallback(ForgetCommittedInstruments, (Datum)0);
    committed_instruments_cxt =
        AllocSetContextCreate(TopMemoryContext, "exchange instruments", ALLOCSET_SMALL_SIZES);
    registered = true;
}

// ------------------------------------------------------------- saved plans

constexpr int kMaxColumns = 27;  // of a table the trading functions write (orders)

struct Plan {
    const char* sql;
    int nargs;
    Oid types[kMaxColumns];
    SPIPlanPtr plan;
};

Plan p_instrument{"SELECT instrument_id, symbol, tick_size, lot_size, min_quantity, status, xmin "
                  "FROM exchange.instruments WHERE symbol = $1",
                  1, {TEXTOID}, nullptr};
Plan p_instrument_by_id{"SELECT instrument_id, symbol, tick_size, lot_size, min_quantity, status, xmin "
                        "FROM exchange.instruments WHERE instrument_id = $1",
                        1, {INT4OID}, nullptr};
Plan p_client{"SELECT client_no, xmin FROM exchange.clients WHERE client_id = $1", 1, {TEXTOID}, nullptr};
Plan p_instruments_of{"SELECT DISTINCT instrument_id FROM exchange.orders WHERE order_id = ANY($1) ORDER BY 1", 1,
                      {UUIDARRAYOID}, nullptr};
Plan p_client_insert{"INSERT INTO exchange.clients (client_id) VALUES ($1) ON CONFLICT (client_id) DO NOTHING "
                     "RETURNING client_no",
                     1, {TEXTOID}, nullptr};
Plan p_idempotent{"SELECT order_id, instrument_id FROM exchange.orders WHERE client_id = $1 AND idempotency_key = $2",
                  2, {TEXTOID, TEXTOID}, nullptr};
Plan p_replay{"SELECT * FROM exchange.get_order($1)", 1, {UUIDOID}, nullptr};
// The staged rows of a flush go into each table through InsertRows
// (row_writer.h); a table it cannot write (a BEFORE trigger added to it, say)
// gets one INSERT ... SELECT FROM unnest(arrays) statement instead, built
// from the same column list.
struct InsertTarget {
    const char* table;
    int ncols;
    const char* names[kMaxColumns];
    Oid types[kMaxColumns];  // the columns' types
    Plan fallback;           // prepared on first use
};
// The orders' columns; a database before 0.13 has all but the last two,
// one before 0.12 all but the last five (t_orders_icebergs, t_orders,
// below), each target with its own fallback statement.
InsertTarget t_orders_stops{
    "orders",
    27,
    {"order_id",
     "order_no",
     "client_id",
     "client_no",
     "instrument",
     "instrument_id",
     "side",
     "type",
     "time_in_force",
     "post_only",
     "stp",
     "price",
     "quantity",
     "filled_quantity",
     "price_ticks",
     "quantity_lots",
     "remaining_lots",
     "status",
     "reject_reason",
     "cancel_reason",
     "idempotency_key",
     "priority",
     "display_quantity",
     "display_lots",
     "visible_lots",
     "stop_price",
     "stop_ticks"},
    {UUIDOID, INT8OID, TEXTOID,    INT8OID,    TEXTOID,    INT4OID, TEXTOID, TEXTOID,    TEXTOID,
     BOOLOID, TEXTOID, NUMERICOID, NUMERICOID, NUMERICOID, INT8OID, INT8OID, INT8OID,    TEXTOID,
     TEXTOID, TEXTOID, TEXTOID,    INT8OID,    NUMERICOID, INT8OID, INT8OID, NUMERICOID, INT8OID},
    {}};
constexpr int kOrderColumnsBefore012 = 22, kOrderColumnsBefore013 = 25;
InsertTarget Truncated(int ncols) {
    InsertTarget t = t_orders_stops;
    t.ncols = ncols;
    return t;
}
InsertTarget t_orders_icebergs = Truncated(kOrderColumnsBefore013);
InsertTarget t_orders = Truncated(kOrderColumnsBefore012);
InsertTarget t_trades{"trades",
                      11,
                      {"trade_id", "instrument", "instrument_id", "seq", "price", "quantity", "buy_order_id",
                       "sell_order_id", "buy_client_id", "sell_client_id", "maker_side"},
                      {UUIDOID, TEXTOID, INT4OID, INT8OID, NUMERICOID, NUMERICOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID,
                       TEXTOID},
                      {}};
InsertTarget t_events{"events",
                      5,
                      {"instrument_id", "seq", "kind", "order_id", "payload"},
                      {INT4OID, INT8OID, TEXTOID, UUIDOID, JSONBOID},
                      {}};
// Makers that rested before this flush, when UpdateRows does not update them
// (see UpdateOldMakersBySql).
constexpr int kMakersJoinFrom = 16;
Plan p_maker_update{"UPDATE exchange.orders SET filled_quantity = filled_quantity + $2, remaining_lots = $3, "
                    "status = $4, cancel_reason = coalesce($5, cancel_reason), updated_at = now() "
                    "WHERE order_no = $1",
                    5, {INT8OID, NUMERICOID, INT8OID, TEXTOID, TEXTOID}, nullptr};
// An iceberg's shown part and the time priority (NULL: kept) of an iceberg
// or a triggered stop order, where UpdateRows does not write them (an
// amend; makers updated by the statements above).
Plan p_requeue_update{
    "UPDATE exchange.orders SET visible_lots = $2, priority = coalesce($3, priority) "
    "WHERE order_no = $1",
    3,
    {INT8OID, INT8OID, INT8OID},
    nullptr};
constexpr const char* kMakersUpdate =
    "UPDATE exchange.orders o SET filled_quantity = o.filled_quantity + u.added, remaining_lots = u.remaining, "
    "status = u.status, cancel_reason = coalesce(u.cancel_reason, o.cancel_reason), updated_at = now() "
    "FROM unnest($1::int8[], $2::numeric[], $3::int8[], $4::text[], $5::text[]) AS u(order_no, added, remaining, "
    "status, cancel_reason) WHERE o.order_no = u.order_no";

// Runs a saved plan (preparing it on first use); returns SPI's result code.
int Exec(Plan& p, Datum* values, const char* nulls, long max_rows) {
    if (p.plan == nullptr) {
        SPIPlanPtr plan = SPI_prepare(p.sql, p.nargs, p.types);
        if (plan == nullptr) elog(ERROR, "SPI_prepare failed for \"%s\": %s", p.sql, SPI_result_code_string(SPI_result));
        SPI_keepplan(plan);
        p.plan = plan;
    }
    const int rc = SPI_execute_plan(p.plan, values, nulls, false, max_rows);
    if (rc < 0) elog(ERROR, "SPI_execute_plan failed for \"%s\": %s", p.sql, SPI_result_code_string(rc));
    return rc;
}

Datum Column(int col, bool* isnull) { return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull); }

// Whether the single row in SPI_tuptable, whose column `col` is its xmin,
// was written by a transaction other than this one (which has committed, as
// this one sees the row): only such rows are kept across transactions.
bool WrittenByOther(int col) {
    bool isnull;
    const TransactionId xmin = DatumGetTransactionId(Column(col, &isnull));
    return !isnull && !TransactionIdIsCurrentTransactionId(xmin);
}

// ---------------------------------------------------------------- numbers

Numeric Num(int64 v) { return int64_to_numeric(v); }
Numeric Mul(Numeric a, Numeric b) {
    return DatumGetNumeric(DirectFunctionCall2(numeric_mul, NumericGetDatum(a), NumericGetDatum(b)));
}
Numeric Add(Numeric a, Numeric b) {
    return DatumGetNumeric(DirectFunctionCall2(numeric_add, NumericGetDatum(a), NumericGetDatum(b)));
}
int Cmp(Numeric a, Numeric b) {
    return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a), NumericGetDatum(b)));
}
const char* Out(Numeric n) { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n))); }

// A rejected command: the stable reason code, a message and the SQLSTATE the
// single-order API raises it with.
struct Problem {
    const char* reason = nullptr;
    char* message = nullptr;
    int sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
};

bool Fail(Problem& p, const char* reason, int sqlstate, const char* fmt, ...) pg_attribute_printf(4, 5);
bool Fail(Problem& p, const char* reason, int sqlstate, const char* fmt, ...) {
    StringInfoData buf;
    initStringInfo(&buf);
    for (;;) {
        va_list args;
        va_start(args, fmt);
        const int needed = appendStringInfoVA(&buf, fmt, args);
        va_end(args);
        if (needed == 0) break;
        enlargeStringInfo(&buf, needed);
    }
    p.reason = reason;
    p.message = buf.data;
    p.sqlstate = sqlstate;
    return false;
}

// A value as an integer number of units (ticks, lots): positive, a multiple
// of the unit, at most 10^18 units.
bool ToUnits(Numeric value, Numeric unit, const char* what, const char* reason, int64& out, Problem& p) {
    if (value == nullptr) return Fail(p, reason, ERRCODE_INVALID_PARAMETER_VALUE, "%s is required", what);
    if (numeric_is_nan(value) || numeric_is_inf(value))
        return Fail(p, reason, ERRCODE_INVALID_PARAMETER_VALUE, "%s %s is not a number", what, Out(value));
    if (Cmp(value, Num(0)) <= 0)
        return Fail(p, reason, ERRCODE_INVALID_PARAMETER_VALUE, "%s %s must be positive", what, Out(value));
    const Numeric rest =
        DatumGetNumeric(DirectFunctionCall2(numeric_mod, NumericGetDatum(value), NumericGetDatum(unit)));
    if (Cmp(rest, Num(0)) != 0)
        return Fail(p, reason, ERRCODE_INVALID_PARAMETER_VALUE, "%s %s is not a multiple of %s", what, Out(value),
                    Out(unit));
    const Numeric units =
        DatumGetNumeric(DirectFunctionCall2(numeric_div_trunc, NumericGetDatum(value), NumericGetDatum(unit)));
    if (Cmp(units, Num(INT64CONST(1000000000000000000))) > 0)
        return Fail(p, reason, ERRCODE_INVALID_PARAMETER_VALUE, "%s %s is too large", what, Out(value));
    out = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(units)));
    return true;
}

// A decimal given as JSON text (digits, optional point and exponent), or a
// problem (reason invalid_<what> unless given).
bool DecimalFromText(const char* s, const char* what, Numeric& out, Problem& p,
                     const char* reason = nullptr) {
    const char* c = s;
    while (isspace(static_cast<unsigned char>(*c))) ++c;
    if (*c == '+' || *c == '-') ++c;
    int digits = 0;
    while (isdigit(static_cast<unsigned char>(*c))) ++c, ++digits;
    if (*c == '.') {
        ++c;
        while (isdigit(static_cast<unsigned char>(*c))) ++c, ++digits;
    }
    bool ok = digits > 0;
    if (ok && (*c == 'e' || *c == 'E')) {
        ++c;
        if (*c == '+' || *c == '-') ++c;
        int exp_digits = 0;
        while (isdigit(static_cast<unsigned char>(*c))) ++c, ++exp_digits;
        ok = exp_digits >= 1 && exp_digits <= 3;  // numeric accepts exponents up to 1000
    }
    while (isspace(static_cast<unsigned char>(*c))) ++c;
    if (!ok || *c != '\0')
        return Fail(p, reason != nullptr ? reason : psprintf("invalid_%s", what),
                    ERRCODE_INVALID_PARAMETER_VALUE, "%s %s is not a decimal number", what,
                    quote_literal_cstr(s));
    out = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
                                              Int32GetDatum(-1)));
    return true;
}

// -------------------------------------------------------------- the command

// One place_order call's arguments, as given (NULL pointers for SQL NULLs).
struct Args {
    const char* client_id = nullptr;
    const char* instrument = nullptr;
    const char* side = nullptr;
    const char* type = nullptr;
    Numeric quantity = nullptr;
    Numeric price = nullptr;
    const char* time_in_force = nullptr;
    const char* idempotency_key = nullptr;
    bool post_only = false;
    const char* stp = nullptr;
    Numeric display_quantity = nullptr;  // an iceberg's
    Numeric stop_price = nullptr;        // a stop order's
};

struct Instrument {
    int32 id;
    char* symbol;
    Numeric tick, lot, min_quantity;
    char* status;
};

// A validated order, ready to match.
struct Order {
    Instrument inst;
    const char* side;  // lower case, as stored
    const char* type;
    const char* tif;
    const char* stp;
    int64 lots = 0;
    int64 ticks = 0;         // 0 for market orders
    int64 display_lots = 0;  // 0 unless an iceberg
    Numeric display_quantity =
        nullptr;           // then display_lots lots (the scale of the lot size, as amend and cancel answer)
    int64 stop_ticks = 0;  // 0 unless a stop order
    Numeric stop_price = nullptr;  // then stop_ticks ticks (the scale of the tick size)
};

const char* Lower(const char* s) {
    if (s == nullptr) return nullptr;
    char* out = pstrdup(s);
    for (char* c = out; *c; ++c) *c = static_cast<char>(tolower(static_cast<unsigned char>(*c)));
    return out;
}

Datum EmptyJsonbArray() { return DirectFunctionCall1(jsonb_in, CStringGetDatum("[]")); }

const char* Literal(const char* s) { return s == nullptr ? "NULL" : quote_literal_cstr(s); }

bool OneOf(const char* s, std::initializer_list<const char*> options) {
    if (s == nullptr) return false;
    for (const char* o : options)
        if (strcmp(s, o) == 0) return true;
    return false;
}

constexpr int kCachedInstruments = 16;
Instrument instrument_cache[kCachedInstruments];
int instruments_cached = 0;
// The sequences' oids, looked up once per call (the extension may be re-created between calls).
Oid order_no_seq = InvalidOid, priority_seq = InvalidOid;

void ResetStaging();

void LookupSequences() {
    if (OidIsValid(order_no_seq)) return;
    order_no_seq = ExchangeRelid("order_no_seq");
    priority_seq = ExchangeRelid("priority_seq");
}

// Instruments read from exchange.instruments rows that a committed
// transaction wrote, kept across calls and transactions (a call copies the
// one it uses into call_cxt). An instrument's row may change (its status, by
// hand): since 0.7 the table's trigger instruments_changed (ENABLE ALWAYS)
// invalidates its relcache entry on every UPDATE, DELETE and TRUNCATE, for
// the other backends when that transaction commits and for its own at the
// statement's end (and again if it aborts), and this cache is emptied then.
// Each call first takes in the invalidations other backends have sent, so
// it sees every change committed before it started, as a new snapshot
// would (the trading functions run only under READ COMMITTED). Used only
// where the trigger is in place: not with an older version's schema, nor
// while it is dropped or disabled (which invalidates the entry too).
std::vector<Instrument> committed_instruments;
Oid committed_instruments_rel = InvalidOid;  // the exchange.instruments they were read from; invalid: none yet
bool instruments_trigger = false;  // committed_instruments_rel has the trigger
constexpr size_t kMaxCommittedInstruments = 1024;

void ForgetCommittedInstruments(Datum, Oid relid) {
    if (relid != InvalidOid && relid != committed_instruments_rel) return;
    committed_instruments.clear();
    if (committed_instruments_cxt != nullptr) MemoryContextReset(committed_instruments_cxt);
    committed_instruments_rel = InvalidOid;
}

// Whether exchange.instruments has the trigger that invalidates its relcache
// entry on every change, enabled in every session_replication_role.
bool HasChangeTrigger(Oid relid) {
    Relation rel = table_open(relid, AccessShareLock);
    bool found = false;
    for (int i = 0; rel->trigdesc != nullptr && i < rel->trigdesc->numtriggers && !found; ++i) {
        const Trigger& t = rel->trigdesc->triggers[i];
        found = strcmp(t.tgname, "instruments_changed") == 0 && t.tgenabled == TRIGGER_FIRES_ALWAYS &&
                TRIGGER_FOR_UPDATE(t.tgtype) && TRIGGER_FOR_DELETE(t.tgtype) && TRIGGER_FOR_TRUNCATE(t.tgtype);
    }
    table_close(rel, AccessShareLock);
    return found;
}

bool UseCommittedInstruments() {
    if (!OidIsValid(committed_instruments_rel)) {  // first use, or forgotten since
        EnsureForgetCallbacks();
        const Oid relid = ExchangeRelid("instruments");
        instruments_trigger = HasChangeTrigger(relid);
        committed_instruments_rel = relid;
    }
    return instruments_trigger;
}

Instrument CopyInstrument(const Instrument& from, MemoryContext cxt) {
    MemoryContext old = MemoryContextSwitchTo(cxt);
    Instrument to = from;
    to.symbol = pstrdup(from.symbol);
    to.status = pstrdup(from.status);
    to.tick = DatumGetNumericCopy(NumericGetDatum(from.tick));
    to.lot = DatumGetNumericCopy(NumericGetDatum(from.lot));
    to.min_quantity = DatumGetNumericCopy(NumericGetDatum(from.min_quantity));
    MemoryContextSwitchTo(old);
    return to;
}

void RememberForCall(const Instrument& inst) {
    if (instruments_cached < kCachedInstruments) instrument_cache[instruments_cached++] = inst;
}

// The instrument with this symbol (or, symbol null, this id) if this call
// has read it or it is kept across transactions (then copied to call_cxt
// and remembered for the call); false if neither.
bool KnownInstrument(const char* symbol, int32 id, Instrument& inst) {
    auto matches = [&](const Instrument& c) {
        return symbol != nullptr ? strcmp(c.symbol, symbol) == 0 : c.id == id;
    };
    for (int i = 0; i < instruments_cached; ++i)
        if (matches(instrument_cache[i])) {
            inst = instrument_cache[i];
            return true;
        }
    if (committed_instruments.empty() || !UseCommittedInstruments()) return false;
    for (const Instrument& c : committed_instruments)
        if (matches(c)) {
            inst = CopyInstrument(c, call_cxt);
            RememberForCall(inst);
            return true;
        }
    return false;
}

void ResetCaches() {
    // Changes of exchange.instruments committed by others since this
    // backend last looked (committed_instruments).
    if (!committed_instruments.empty()) AcceptInvalidationMessages();
    call_cxt = CurrentMemoryContext;
    ResetStaging();
    instruments_cached = 0;
    icebergs_schema = -1;
    stops_schema = -1;
    order_no_seq = priority_seq = InvalidOid;
    client_cache.clear();
    key_share_locked.clear();
    cancelled_in_call.clear();
    amends_staged.clear();
    orders_read = nullptr;
    orders_read_at.clear();
}

// The instrument of the single row SPI_tuptable holds (the columns of
// p_instrument), copied to call_cxt and cached for the call, and kept across
// transactions if a committed transaction wrote the row.
void InstrumentFromRow(Instrument& inst) {
    MemoryContext item = MemoryContextSwitchTo(call_cxt);
    bool isnull;
    inst.id = DatumGetInt32(Column(1, &isnull));
    inst.symbol = TextDatumGetCString(Column(2, &isnull));
    inst.tick = DatumGetNumericCopy(Column(3, &isnull));
    inst.lot = DatumGetNumericCopy(Column(4, &isnull));
    inst.min_quantity = DatumGetNumericCopy(Column(5, &isnull));
    inst.status = TextDatumGetCString(Column(6, &isnull));
    MemoryContextSwitchTo(item);
    RememberForCall(inst);
    if (WrittenByOther(7) && UseCommittedInstruments()) {
        if (committed_instruments.size() >= kMaxCommittedInstruments) {
            ForgetCommittedInstruments(0, InvalidOid);  // kept again from the next call on
        } else {
            const Instrument kept = CopyInstrument(inst, committed_instruments_cxt);
            RunCore([&] { committed_instruments.push_back(kept); });
        }
    }
}

bool LookupInstrument(const char* symbol, Instrument& inst, Problem& p) {
    if (symbol != nullptr && KnownInstrument(symbol, 0, inst)) return true;
    if (symbol != nullptr) {
        Datum v[1] = {CStringGetTextDatum(symbol)};
        Exec(p_instrument, v, nullptr, 1);
        const bool found = SPI_processed == 1;
        if (found) InstrumentFromRow(inst);
        SPI_freetuptable(SPI_tuptable);
        if (found) return true;
    }
    return Fail(p, "unknown_instrument", ERRCODE_UNDEFINED_OBJECT, "instrument %s does not exist", Literal(symbol));
}

// Every check of the order, in the order the API documents; writes nothing.
bool Validate(const Args& a, Order& o, Problem& p) {
    if (!LookupInstrument(a.instrument, o.inst, p)) return false;
    o.side = Lower(a.side);
    o.type = Lower(a.type);
    o.tif = Lower(a.time_in_force != nullptr ? a.time_in_force : "gtc");
    o.stp = Lower(a.stp != nullptr ? a.stp : "cancel_newest");
    const int bad = ERRCODE_INVALID_PARAMETER_VALUE;
    if (!OneOf(o.side, {"buy", "sell"}))
        return Fail(p, "invalid_side", bad, "side %s is not buy or sell", Literal(a.side));
    if (!OneOf(o.type, {"limit", "market"}))
        return Fail(p, "invalid_type", bad, "type %s is not limit or market", Literal(a.type));
    if (!OneOf(o.tif, {"gtc", "ioc", "fok"}))
        return Fail(p, "invalid_time_in_force", bad, "time_in_force %s is not gtc, ioc or fok",
                    Literal(a.time_in_force));
    if (!OneOf(o.stp, {"none", "cancel_newest", "cancel_oldest", "cancel_both"}))
        return Fail(p, "invalid_stp", bad, "stp %s is not none, cancel_newest, cancel_oldest or cancel_both",
                    Literal(a.stp));
    if (!ToUnits(a.quantity, o.inst.lot, "quantity", "invalid_quantity", o.lots, p)) return false;
    if (Cmp(a.quantity, o.inst.min_quantity) < 0)
        return Fail(p, "quantity_below_minimum", bad, "quantity %s is below the minimum %s", Out(a.quantity),
                    Out(o.inst.min_quantity));
    const bool limit = strcmp(o.type, "limit") == 0;
    if (limit) {
        if (!ToUnits(a.price, o.inst.tick, "price", "invalid_price", o.ticks, p)) return false;
    } else if (a.price != nullptr) {
        return Fail(p, "invalid_price", bad, "a market order takes no price");
    }
    if (a.post_only && (!limit || strcmp(o.tif, "gtc") != 0))
        return Fail(p, "invalid_combination", bad, "post_only needs a gtc limit order");
    if (a.display_quantity != nullptr) {
        if (!ToUnits(a.display_quantity, o.inst.lot, "display_quantity", "invalid_display", o.display_lots,
                     p))
            return false;
        if (o.display_lots > o.lots)
            return Fail(p, "invalid_display", bad, "display_quantity %s exceeds the quantity %s",
                        Out(a.display_quantity), Out(a.quantity));
        if (!core::iceberg_parts_ok(o.lots, o.display_lots))
            return Fail(p, "invalid_display", bad, "quantity %s is more than %d times display_quantity %s",
                        Out(a.quantity), static_cast<int>(core::kMaxIcebergParts), Out(a.display_quantity));
        if (!limit || strcmp(o.tif, "gtc") != 0)
            return Fail(p, "invalid_combination", bad, "display_quantity needs a gtc limit order");
        if (!IcebergsSchema())
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("extension_outdated: iceberg orders need the exchange extension 0.12"),
                            errhint("ALTER EXTENSION exchange UPDATE")));
        o.display_quantity = Mul(Num(o.display_lots), o.inst.lot);
    }
    if (a.stop_price != nullptr) {
        if (!ToUnits(a.stop_price, o.inst.tick, "stop_price", "invalid_stop_price", o.stop_ticks, p))
            return false;
        if (a.post_only) return Fail(p, "invalid_combination", bad, "a stop order cannot be post_only");
        if (!StopsSchema())
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("extension_outdated: stop orders need the exchange extension 0.13"),
                            errhint("ALTER EXTENSION exchange UPDATE")));
        o.stop_price = Mul(Num(o.stop_ticks), o.inst.tick);
    }
    if (a.idempotency_key != nullptr) {
        const int chars = pg_mbstrlen(a.idempotency_key);
        if (chars < 1 || chars > 255)
            return Fail(p, "invalid_idempotency_key", bad, "idempotency_key must be 1 to 255 characters");
    }
    bool printable = a.client_id != nullptr;
    if (printable) {
        const int chars = pg_mbstrlen(a.client_id);
        printable = chars >= 1 && chars <= 128;
        for (const unsigned char* c = reinterpret_cast<const unsigned char*>(a.client_id); printable && *c; ++c)
            printable = !(*c < 0x20 || *c == 0x7f);
    }
    if (!printable)
        return Fail(p, "invalid_client_id", bad, "client_id must be 1 to 128 printable characters");
    if (strcmp(o.inst.status, "active") != 0)
        return Fail(p, "instrument_halted", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "instrument %s is %s",
                    o.inst.symbol, o.inst.status);
    return true;
}

// The engine number of a client, created on first use.
int64 ClientNo(const char* client_id) {
    if (auto it = client_cache.find(client_id); it != client_cache.end()) return it->second;
    if (!OidIsValid(committed_clients_rel)) {  // first use, or forgotten since
        EnsureForgetCallbacks();
        committed_clients_rel = ExchangeRelid("clients");
    }
    if (auto it = committed_clients.find(client_id); it != committed_clients.end()) return it->second;
    Datum v[1] = {CStringGetTextDatum(client_id)};
    bool isnull = true;
    bool committed = false;  // read from a row another, committed, transaction inserted
    int64 n = 0;
    // The number of the row p_client found, and whether that row is committed.
    auto read_row = [&] {
        if (SPI_processed != 1) return;
        n = DatumGetInt64(Column(1, &isnull));
        committed = !isnull && WrittenByOther(2);
    };
    for (int attempt = 0; attempt < 2 && isnull; ++attempt) {
        Exec(attempt == 0 ? p_client : p_client_insert, v, nullptr, 1);
        if (attempt == 0)
            read_row();
        else if (SPI_processed == 1)
            n = DatumGetInt64(Column(1, &isnull));
        SPI_freetuptable(SPI_tuptable);
    }
    if (isnull) {  // inserted concurrently by another transaction that has committed since
        Exec(p_client, v, nullptr, 1);
        read_row();
        SPI_freetuptable(SPI_tuptable);
    }
    if (isnull) elog(ERROR, "could not create client %s", client_id);
    RunCore([&] {
        client_cache.emplace(client_id, n);
        if (!committed || !OidIsValid(committed_clients_rel)) return;
        if (committed_clients.size() >= kMaxCommittedClients) committed_clients.clear();
        committed_clients.emplace(client_id, n);
    });
    return n;
}

// A version 7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, 12 bits
// that count up within a millisecond (from a random start, so one backend's
// ids stay ordered), 62 random bits. Time-ordered ids land at the right edge
// of the orders' and trades' uuid indexes, where PostgreSQL inserts without a
// descent (the rightmost-leaf fast path) and few pages change between
// checkpoints; random version 4 ids hit a random leaf each.
// The random bits come from pg_strong_random in blocks of 1 kB: one call per
// id cost ~5% of a batch.
pg_uuid_t* NewUuid() {
    static uint64 last_ms = 0;
    static uint32 counter = 0;
    static uint8 pool[1024];
    static size_t pool_used = sizeof(pool);
    if (pool_used == sizeof(pool)) {
        if (!pg_strong_random(pool, sizeof(pool))) elog(ERROR, "could not generate a random uuid");
        pool_used = 0;
    }
    auto* u = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
    memcpy(u->data, pool + pool_used, UUID_LEN);
    pool_used += UUID_LEN;
    const TimestampTz now = GetCurrentTimestamp();  // microseconds since 2000-01-01
    const uint64 ms = static_cast<uint64>(now / 1000 + (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * INT64CONST(86400000));
    if (ms > last_ms) {
        last_ms = ms;
        counter = ((u->data[6] << 8) | u->data[7]) & 0x7ff;  // leaves room to count up
    } else if (++counter > 0xfff) {
        ++last_ms;  // more than 2,048 ids in a millisecond: borrow the next one
        counter = 0;
    }
    for (int i = 0; i < 6; ++i) u->data[i] = static_cast<uint8>(last_ms >> (40 - 8 * i));
    u->data[6] = static_cast<uint8>(0x70 | (counter >> 8));  // version 7
    u->data[7] = static_cast<uint8>(counter);
    u->data[8] = (u->data[8] & 0x3f) | 0x80;  // RFC 9562 variant
    return u;
}

const char* UuidText(pg_uuid_t* u) { return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(u))); }


// Builds jsonb values directly (no text round trip: parsing the journal's
// JSON text was most of a batch's time).
struct JsonBuilder {
    JsonbParseState* state = nullptr;
    JsonbValue* done = nullptr;
    bool in_array = false;

    void Push(JsonbIteratorToken token, JsonbValue* v) {
        JsonbValue* r = pushJsonbValue(&state, token, v);
        if (token == WJB_END_OBJECT || token == WJB_END_ARRAY) done = r;
    }
    void Key(const char* k) {
        JsonbValue v;
        v.type = jbvString;
        v.val.string.val = const_cast<char*>(k);
        v.val.string.len = static_cast<int>(strlen(k));
        Push(WJB_KEY, &v);
    }
    void Scalar(JsonbValue* v) { Push(in_array ? WJB_ELEM : WJB_VALUE, v); }
    void Text(const char* s) {
        JsonbValue v;
        if (s == nullptr) {
            v.type = jbvNull;
        } else {
            v.type = jbvString;
            v.val.string.val = const_cast<char*>(s);
            v.val.string.len = static_cast<int>(strlen(s));
        }
        Scalar(&v);
    }
    void Number(Numeric n) {
        JsonbValue v;
        if (n == nullptr) {
            v.type = jbvNull;
        } else {
            v.type = jbvNumeric;
            v.val.numeric = n;
        }
        Scalar(&v);
    }
    void Bool(bool b) {
        JsonbValue v;
        v.type = jbvBool;
        v.val.boolean = b;
        Scalar(&v);
    }
    void BeginObject() { Push(WJB_BEGIN_OBJECT, nullptr), in_array = false; }
    void EndObject(bool parent_is_array) { Push(WJB_END_OBJECT, nullptr), in_array = parent_is_array; }
    void BeginArray() { Push(WJB_BEGIN_ARRAY, nullptr), in_array = true; }
    void EndArray() { Push(WJB_END_ARRAY, nullptr), in_array = false; }
    Datum Result() const { return JsonbPGetDatum(JsonbValueToJsonb(done)); }
};

// One trade of a command, as the result row and the journal show it.
struct TradeView {
    const char* trade_id;
    const char* maker_order_id;
    Numeric price, quantity;
};

// [{"price", "quantity", "trade_id", "maker_order_id"}, ...] inside the current object or as the top value.
void AddTrades(JsonBuilder& j, const TradeView* trades, int n) {
    j.BeginArray();
    for (int i = 0; i < n; ++i) {
        j.BeginObject();
        j.Key("price"), j.Number(trades[i].price);  // jsonb's key order, as in the journal entry
        j.Key("quantity"), j.Number(trades[i].quantity);
        j.Key("trade_id"), j.Text(trades[i].trade_id);
        j.Key("maker_order_id"), j.Text(trades[i].maker_order_id);
        j.EndObject(true);
    }
    j.EndArray();
}

// The journal's level changes of one command.
void AddLevels(JsonBuilder& j, const Instrument& inst, const core::LevelChange* levels, int n_levels) {
    j.Key("levels");
    j.BeginArray();
    for (int i = 0; i < n_levels; ++i) {
        const auto& l = levels[i];
        j.BeginObject();
        j.Key("side"), j.Text(l.side == core::Side::Buy ? "buy" : "sell");
        j.Key("price"), j.Number(Mul(Num(l.price.v), inst.tick));
        j.Key("quantity"), j.Number(Mul(Num(l.qty.v), inst.lot));
        j.Key("order_count"), j.Number(Num(l.count));
        j.EndObject(true);
    }
    j.EndArray();
}

// The journal's self-trade-prevention cancels of one command.
void AddStpCancelled(JsonBuilder& j, const core::Cancelled* stp, int n_stp) {
    j.Key("stp_cancelled");
    j.BeginArray();
    for (int i = 0; i < n_stp; ++i) j.Number(Num(static_cast<int64>(stp[i].id)));
    j.EndArray();
}

// The columns of exchange.order_result: 19 since 0.13 (stop_price), 18
// since 0.12 (display_quantity), 17 before, when a row's last values are
// left out.
constexpr int kResultColumns = 19;
struct Row {
    Datum v[kResultColumns];
    bool null[kResultColumns];
};

// The stored original of an idempotent repeat, with its trades (seq NULL).
// The row points into SPI's result, which lives until SPI_finish.
void Replay(Datum order_id, Row& row) {
    Datum v[1] = {order_id};
    Exec(p_replay, v, nullptr, 1);
    const int natts = SPI_processed == 1 ? SPI_tuptable->tupdesc->natts : 0;
    if (natts < kResultColumns - 2 || natts > kResultColumns)
        elog(ERROR, "exchange.get_order returned no order_result");
    row.null[kResultColumns - 2] = row.null[kResultColumns - 1] = true;
    heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, row.v, row.null);
}

// The core's answer to one command, copied out (Stage) or read in place
// (an amend): the entries of the command's own order come first in each
// array, then those of each stop order its trades triggered, in the order
// they ran (core::Triggered), with the time priorities of what it queued.
struct Outcome {
    core::Fill* fills = nullptr;
    int n_fills = 0;
    core::LevelChange* levels = nullptr;
    int n_levels = 0;
    core::Cancelled* stp = nullptr;
    int n_stp = 0;
    core::Triggered* triggered = nullptr;
    int n_triggered = 0;
    int64* refill_priority =
        nullptr;  // per fill: the maker's new time priority if it was an iceberg refilled
    int64* triggered_priority = nullptr;  // per triggered order: its time priority if it rests

    // The end of the entries of the command's own order (k = -1) or of triggered order k.
    int FillsEnd(int k) const {
        return k + 1 < n_triggered ? static_cast<int>(triggered[k + 1].first_fill) : n_fills;
    }
    int LevelsEnd(int k) const {
        return k + 1 < n_triggered ? static_cast<int>(triggered[k + 1].first_level) : n_levels;
    }
    int StpEnd(int k) const {
        return k + 1 < n_triggered ? static_cast<int>(triggered[k + 1].first_stp) : n_stp;
    }
    int64 Refill(int i) const { return fills[i].maker_requeued ? refill_priority[i] : 0; }
};

// An order matched but not yet written: the core's answer, copied out, and
// the state of its row, which later orders of the same flush may fill or
// cancel. Lives in call_cxt until the flush.
struct Staged {
    const Args* a;
    const Order* o;
    Row* row;  // the caller's result row, filled by the flush
    int64 order_no, client_no, priority, seq;
    pg_uuid_t* order_id;
    bool accepted;
    const char* status;
    const char* reject;
    const char* cancel_reason;
    int64 filled, resting;  // lots, as placed (resting: what remains, also of a pending stop order)
    Outcome out;
    // The order row as it will be written.
    int64 row_filled, row_remaining, row_visible, row_priority;
    const char* row_status;
    const char* row_cancel_reason;
};

// What an order that has just rested (placed, or a stop order triggered)
// shows of `resting`: all of it, or an iceberg's tip, its display at most.
int64 RestingTip(int64 resting, int64 display_lots) {
    return display_lots > 0 ? Min(display_lots, resting) : resting;
}

// Makers that rested before the flush began, and stop orders that were
// pending then and triggered in it: their ids, and what the flush does to them.
struct OldMaker {
    pg_uuid_t* order_id;
    char* client_id;
    ItemPointerData tid;    // the row version read
    Numeric old_filled;     // its filled_quantity
    Datum old_cancel_reason;  // and cancel_reason (0 if null)
    bool iceberg = false;     // display_lots is set
    int64 display_lots = 0;   // then its value
    bool requeued = false;    // a triggered stop order: its priority is written
    int64 priority = 0;       // its priority, new if an iceberg refilled or a stop order triggered and rests
    // What a triggered stop order's journal entry shows (read when the flush has one).
    const char* side = nullptr;
    const char* type = nullptr;
    Numeric price = nullptr;  // nullptr: a stop-market order
    Numeric quantity = nullptr;
    Numeric stop_price = nullptr;
    Numeric display_quantity = nullptr;  // a stop-limit iceberg's
    Numeric lot;
    int64 added = 0;  // lots filled in this flush
    int64 remaining = 0;
    int64 visible = 0;  // an iceberg's shown part
    const char* status = nullptr;
    const char* cancel_reason = nullptr;

    // f traded with it; refill_priority is its new priority if f refilled it.
    void Filled(const core::Fill& f, Numeric lot_size, int64 refill_priority) {
        lot = lot_size;
        added += f.qty.v;
        remaining = f.maker_remaining.v;
        visible = f.maker_visible.v;
        if (f.maker_requeued) priority = refill_priority;
        status = f.maker_remaining.v == 0 ? "filled" : "partially_filled";
    }
    void SelfTradeCancelled(Numeric lot_size) {
        lot = lot_size;
        status = "cancelled";
        cancel_reason = "self_trade";
        remaining = visible = 0;
    }
    // The pending stop order ran as t (rests with new_priority if it rests).
    void Triggered(const core::Triggered& t, Numeric lot_size, int64 new_priority) {
        lot = lot_size;
        added += t.filled.v;
        remaining = t.resting.v;
        visible = RestingTip(t.resting.v, display_lots);
        requeued = true;
        if (t.resting.v > 0) priority = new_priority;
        status = TriggeredStatus(t);
        cancel_reason = TriggeredCancelReason(t);
    }
    // A triggered stop order's status and cancel reason after its run t.
    static const char* TriggeredStatus(const core::Triggered& t) {
        return t.resting.v > 0     ? (t.filled.v > 0 ? "partially_filled" : "open")
               : t.cancelled.v > 0 ? "cancelled"
                                   : "filled";
    }
    // (A run the core refused, FOK unfillable or no capacity, cancels all of it, with that reason.)
    static const char* TriggeredCancelReason(const core::Triggered& t) {
        return t.cancelled.v == 0               ? nullptr
               : t.reject != core::Reject::None ? core::to_string(t.reject).data()
                                                : core::to_string(t.cancel_reason).data();
    }
};

Staged* staged = nullptr;
int n_staged = 0, staged_capacity = 0;
std::unordered_map<uint64, int> staged_by_order_no;  // order_no -> index in staged
std::unordered_set<std::string> staged_keys;         // client_id '\x1f' idempotency_key
std::unordered_map<uint64, int> old_by_order_no;     // order_no -> index in old_makers
OldMaker* old_makers = nullptr;
int n_old = 0;

template <class T>
T* CopyOut(const std::vector<T>& v) {
    if (v.empty()) return nullptr;
    T* out = static_cast<T*>(MemoryContextAlloc(call_cxt, sizeof(T) * v.size()));
    memcpy(out, v.data(), sizeof(T) * v.size());
    return out;
}

// The staged_keys entry of an idempotency key, in a static buffer (see the file comment).
std::string key_buffer;
const std::string& KeyOf(const char* client_id, const char* key) {
    RunCore([&] { key_buffer.assign(client_id).append(1, '\x1f').append(key); });
    return key_buffer;
}

std::vector<Datum> wanted;    // order_nos of the makers a flush looks up (static: see the file comment)
bool wanted_details = false;  // FetchOldMakers also reads what a triggered stop order's journal entry shows

// Column arrays for one INSERT ... SELECT FROM unnest(...).
struct Columns {
    int n = 0;
    int count = 0;
    Datum* v[kMaxColumns];
    bool* null[kMaxColumns];
    void Init(int columns, int rows) {
        n = columns;
        count = 0;
        for (int c = 0; c < columns; ++c) {
            v[c] = static_cast<Datum*>(palloc(sizeof(Datum) * Max(rows, 1)));
            null[c] = static_cast<bool*>(palloc0(sizeof(bool) * Max(rows, 1)));
        }
    }
    void Set(int c, Datum d) { v[c][count] = d; }
    void SetNull(int c) { null[c][count] = true; }
    void Next() { ++count; }
    Datum Array(int c, Oid type) const {
        int16 len;
        bool byval;
        char align;
        get_typlenbyvalalign(type, &len, &byval, &align);
        int dims[1] = {count};
        int lbs[1] = {1};
        return PointerGetDatum(construct_md_array(v[c], null[c], 1, dims, lbs, type, len, byval, align));
    }
    // Inserts the rows into the target's table.
    void Insert(InsertTarget& t, pg::RowBatch::LockedRef locked_ref = {}) const {
        Assert(n == t.ncols);
        if (count == 0) return;
        if (pg::InsertRows(pg::RowBatch{t.table, t.ncols, t.names, t.types, v, null, count, locked_ref})) return;
        Plan& p = t.fallback;
        if (p.sql == nullptr) {
            StringInfoData sql;
            initStringInfo(&sql);
            appendStringInfo(&sql, "INSERT INTO exchange.%s (", t.table);
            for (int c = 0; c < t.ncols; ++c) appendStringInfo(&sql, "%s%s", c ? ", " : "", quote_identifier(t.names[c]));
            appendStringInfoString(&sql, ") SELECT * FROM unnest(");
            for (int c = 0; c < t.ncols; ++c) {
                appendStringInfo(&sql, "%s$%d::%s[]", c ? ", " : "", c + 1, format_type_be(t.types[c]));
                p.types[c] = get_array_type(t.types[c]);
            }
            appendStringInfoString(&sql, ")");
            p.nargs = t.ncols;
            p.sql = MemoryContextStrdup(TopMemoryContext, sql.data);
        }
        Datum args[kMaxColumns];
        for (int c = 0; c < n; ++c) args[c] = Array(c, t.types[c]);
        Exec(p, args, nullptr, 0);
    }
};

// Appends one row of exchange.events (t_events' columns) to events: a
// journal entry of instrument_id at sequence seq.
void AddEvent(Columns& events, int32 instrument_id, uint64 seq, const char* kind, Datum order_id,
              Datum payload) {
    events.Set(0, Int32GetDatum(instrument_id));
    events.Set(1, Int64GetDatum(static_cast<int64>(seq)));
    events.Set(2, CStringGetTextDatum(kind));
    events.Set(3, order_id);
    events.Set(4, payload);
    events.Next();
}

Datum TextOrNull(const char* s, bool& isnull) {
    isnull = s == nullptr;
    return isnull ? (Datum)0 : CStringGetTextDatum(s);
}

// old_makers[i]: the order_id and client_id of the maker wanted[i], which
// rested before this call, read through the unique index on order_no. Not a
// saved SQL plan: the plan cache keeps the generic plan of `order_no = ANY
// ($1)` made while the table was small, a sequential scan, however large the
// table grows. The snapshot is taken after the instrument lock (as each SPI
// statement's is), so the previous holder's committed makers are visible.
void FetchOldMakers() {
    const Oid relid = ExchangeRelid("orders");
    Relation rel = table_open(relid, AccessShareLock);
    Relation index = index_open(ExchangeRelid("orders_order_no_key"), AccessShareLock);
    const AttrNumber order_id_col = get_attnum(relid, "order_id"),
                     client_id_col = get_attnum(relid, "client_id"),
                     filled_col = get_attnum(relid, "filled_quantity"),
                     cancel_reason_col = get_attnum(relid, "cancel_reason"),
                     priority_col = get_attnum(relid, "priority"),
                     display_col = IcebergsSchema() ? get_attnum(relid, "display_lots") : InvalidAttrNumber;
    const AttrNumber side_col = get_attnum(relid, "side"), type_col = get_attnum(relid, "type"),
                     price_col = get_attnum(relid, "price"), quantity_col = get_attnum(relid, "quantity"),
                     stop_col = wanted_details ? get_attnum(relid, "stop_price") : InvalidAttrNumber,
                     display_quantity_col =
                         wanted_details ? get_attnum(relid, "display_quantity") : InvalidAttrNumber;
    CommandCounterIncrement();
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    IndexScanDesc scan = index_beginscan(rel, index, snapshot, 1, 0);
    old_makers = static_cast<OldMaker*>(palloc(sizeof(OldMaker) * wanted.size()));
    for (Datum order_no : wanted) {
        ScanKeyData key;
        ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, order_no);
        index_rescan(scan, &key, 1, nullptr, 0);
        if (!index_getnext_slot(scan, ForwardScanDirection, slot))
            elog(ERROR, "order_no " INT64_FORMAT " matched in the book is not in exchange.orders",
                 DatumGetInt64(order_no));
        bool isnull;
        OldMaker& m = *new (&old_makers[n_old]) OldMaker();
        m.order_id = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
        memcpy(m.order_id, DatumGetUUIDP(slot_getattr(slot, order_id_col, &isnull)), sizeof(pg_uuid_t));
        m.client_id = TextDatumGetCString(slot_getattr(slot, client_id_col, &isnull));
        m.tid = slot->tts_tid;
        m.old_filled = DatumGetNumericCopy(slot_getattr(slot, filled_col, &isnull));
        const Datum reason = slot_getattr(slot, cancel_reason_col, &isnull);
        m.old_cancel_reason = isnull ? (Datum)0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(reason));
        m.priority = DatumGetInt64(slot_getattr(slot, priority_col, &isnull));
        if (display_col != InvalidAttrNumber) {
            const Datum display = slot_getattr(slot, display_col, &isnull);
            m.iceberg = !isnull;
            m.display_lots = isnull ? 0 : DatumGetInt64(display);
        }
        if (stop_col != InvalidAttrNumber) {
            m.side = TextDatumGetCString(slot_getattr(slot, side_col, &isnull));
            m.type = TextDatumGetCString(slot_getattr(slot, type_col, &isnull));
            const Datum price = slot_getattr(slot, price_col, &isnull);
            m.price = isnull ? nullptr : DatumGetNumericCopy(price);
            m.quantity = DatumGetNumericCopy(slot_getattr(slot, quantity_col, &isnull));
            const Datum stop = slot_getattr(slot, stop_col, &isnull);
            m.stop_price = isnull ? nullptr : DatumGetNumericCopy(stop);
            const Datum display = slot_getattr(slot, display_quantity_col, &isnull);
            m.display_quantity = isnull ? nullptr : DatumGetNumericCopy(display);
        }
        old_by_order_no.find(static_cast<uint64>(DatumGetInt64(order_no)))->second = n_old++;
    }
    index_endscan(scan);
    ExecDropSingleTupleTableSlot(slot);
    UnregisterSnapshot(snapshot);
    index_close(index, NoLock);
    table_close(rel, NoLock);
}

// The makers that rested before this flush get their new state through
// UpdateRows (row_writer.h): the row versions FetchOldMakers read, no index
// scan. Returns how many it updated, in old_by_order_no's order (see
// UpdateRows for why it can stop early).
int UpdateOldMakers() {
    // With 0.12's columns also an iceberg's shown part and every maker's
    // priority (new where an iceberg was refilled).
    static const char* const names[7] = {"filled_quantity", "remaining_lots", "status",  "cancel_reason",
                                         "updated_at",      "visible_lots",   "priority"};
    static const Oid types[7] = {NUMERICOID, INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID, INT8OID};
    const int ncols = IcebergsSchema() ? 7 : 5;
    Columns makers;
    makers.Init(ncols, n_old);
    ItemPointerData* tids = static_cast<ItemPointerData*>(palloc(sizeof(ItemPointerData) * n_old));
    const Datum now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    for (const auto& [id, index] : old_by_order_no) {
        const OldMaker& m = old_makers[index];
        tids[makers.count] = m.tid;
        makers.Set(0, NumericGetDatum(Add(m.old_filled, Mul(Num(m.added), m.lot))));
        makers.Set(1, Int64GetDatum(m.remaining));
        makers.Set(2, CStringGetTextDatum(m.status));
        if (m.cancel_reason != nullptr)
            makers.Set(3, CStringGetTextDatum(m.cancel_reason));
        else if (m.old_cancel_reason != (Datum)0)
            makers.Set(3, m.old_cancel_reason);
        else
            makers.SetNull(3);
        makers.Set(4, now);
        if (ncols == 7) {
            if (m.iceberg)
                makers.Set(5, Int64GetDatum(m.visible));
            else
                makers.SetNull(5);
            makers.Set(6, Int64GetDatum(m.priority));
        }
        makers.Next();
    }
    return pg::UpdateRows(pg::RowBatch{"orders", ncols, names, types, makers.v, makers.null, makers.count},
                          tids);
}

// The shown part and priority of the iceberg makers and triggered stop
// orders UpdateOldMakers did not update (all but the first `done` in
// old_by_order_no's order).
void UpdateRequeuedBySql(int done) {
    int k = 0;
    for (const auto& [id, index] : old_by_order_no) {
        if (k++ < done) continue;
        const OldMaker& m = old_makers[index];
        if (!m.iceberg && !m.requeued) continue;
        Datum v[3] = {Int64GetDatum(static_cast<int64>(id)), Int64GetDatum(m.visible),
                      Int64GetDatum(m.priority)};
        const char nulls[3] = {' ', m.iceberg ? ' ' : 'n', ' '};
        Exec(p_requeue_update, v, nulls, 0);
        if (SPI_processed != 1) elog(ERROR, "maker order_no " UINT64_FORMAT " is not in exchange.orders", id);
    }
}

// The makers UpdateOldMakers did not update, all but the first `done` in
// old_by_order_no's order, by statements: one per maker when there are few
// (planning the join costs more than a few executions), else one join
// planned for the call (the arrays' sizes inform the plan: a nested loop
// over the order_no index). They apply to each row's newest version.
void UpdateOldMakersBySql(int done) {
    const int rest = n_old - done;
    UpdateRequeuedBySql(done);
    if (rest < kMakersJoinFrom) {
        int k = 0;
        for (const auto& [id, index] : old_by_order_no) {
            if (k++ < done) continue;
            const OldMaker& m = old_makers[index];
            Datum v[5] = {Int64GetDatum(static_cast<int64>(id)), NumericGetDatum(Mul(Num(m.added), m.lot)),
                          Int64GetDatum(m.remaining), CStringGetTextDatum(m.status),
                          m.cancel_reason != nullptr ? CStringGetTextDatum(m.cancel_reason) : (Datum)0};
            const char nulls[5] = {' ', ' ', ' ', ' ', m.cancel_reason != nullptr ? ' ' : 'n'};
            Exec(p_maker_update, v, nulls, 0);
            if (SPI_processed != 1) elog(ERROR, "maker order_no " UINT64_FORMAT " is not in exchange.orders", id);
        }
        return;
    }
    Columns makers;
    makers.Init(5, rest);
    int k = 0;
    for (const auto& [id, index] : old_by_order_no) {
        if (k++ < done) continue;
        const OldMaker& m = old_makers[index];
        bool isnull;
        makers.Set(0, Int64GetDatum(static_cast<int64>(id)));
        makers.Set(1, NumericGetDatum(Mul(Num(m.added), m.lot)));
        makers.Set(2, Int64GetDatum(m.remaining));
        makers.Set(3, CStringGetTextDatum(m.status));
        makers.Set(4, TextOrNull(m.cancel_reason, isnull));
        if (isnull) makers.SetNull(4);
        makers.Next();
    }
    Oid types[5] = {INT8ARRAYOID, NUMERICARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
    Datum args[5] = {makers.Array(0, INT8OID), makers.Array(1, NUMERICOID), makers.Array(2, INT8OID),
                     makers.Array(3, TEXTOID), makers.Array(4, TEXTOID)};
    const int rc = SPI_execute_with_args(kMakersUpdate, 5, types, args, nullptr, false, 0);
    if (rc != SPI_OK_UPDATE || SPI_processed != static_cast<uint64>(rest))
        elog(ERROR, "updating %d makers failed: %s, %lu rows", rest, SPI_result_code_string(rc),
             static_cast<unsigned long>(SPI_processed));
}

// Marks a maker that rested before this call for FetchOldMakers.
void WantOldMaker(uint64 id) {
    if (old_by_order_no.count(id) != 0) return;
    RunCore([&] {
        old_by_order_no.emplace(id, -1);
        wanted.push_back(Int64GetDatum(static_cast<int64>(id)));
    });
}

// Writes the new state of the makers FetchOldMakers read.
void WriteOldMakers() {
    if (n_old == 0) return;
    const int done = UpdateOldMakers();
    if (done < n_old) UpdateOldMakersBySql(done);
}

// Adds fill f's row to `trades` (the taker buys when `buy`); returns the
// trade as the result and the journal show it.
TradeView AddTrade(Columns& trades, const Instrument& inst, int64 seq, bool buy, Datum taker_id, Datum taker_client,
                   pg_uuid_t* maker_id, const char* maker_client, const core::Fill& f) {
    const Numeric price = Mul(Num(f.price.v), inst.tick);
    const Numeric qty = Mul(Num(f.qty.v), inst.lot);
    pg_uuid_t* trade_id = NewUuid();
    const Datum maker_client_text = CStringGetTextDatum(maker_client);
    trades.Set(0, UUIDPGetDatum(trade_id));
    trades.Set(1, CStringGetTextDatum(inst.symbol));
    trades.Set(2, Int32GetDatum(inst.id));
    trades.Set(3, Int64GetDatum(seq));
    trades.Set(4, NumericGetDatum(price));
    trades.Set(5, NumericGetDatum(qty));
    trades.Set(6, buy ? taker_id : UUIDPGetDatum(maker_id));
    trades.Set(7, buy ? UUIDPGetDatum(maker_id) : taker_id);
    trades.Set(8, buy ? taker_client : maker_client_text);
    trades.Set(9, buy ? maker_client_text : taker_client);
    trades.Set(10, CStringGetTextDatum(buy ? "sell" : "buy"));
    trades.Next();
    return TradeView{UuidText(trade_id), UuidText(maker_id), price, qty};
}

// Self-trade prevention removed the resting order `id` (staged in this flush or rested before).
void StpCancelled(uint64 id, const Instrument& inst) {
    if (auto it = staged_by_order_no.find(id); it != staged_by_order_no.end()) {
        Staged& m = staged[it->second];
        m.row_status = "cancelled";
        m.row_cancel_reason = "self_trade";
        m.row_remaining = m.row_visible = 0;
    } else {
        old_makers[old_by_order_no.find(id)->second].SelfTradeCancelled(inst.lot);
    }
}

// Fill f's maker (staged in this flush or rested before) gets its new state
// (refill_priority: its new priority if f refilled it); adds f's trade row,
// the taker buying when `buy`, and returns the trade.
TradeView Traded(Columns& trades, const Instrument& inst, int64 seq, bool buy, Datum taker_id,
                 Datum taker_client, const core::Fill& f, int64 refill_priority) {
    if (auto it = staged_by_order_no.find(f.maker); it != staged_by_order_no.end()) {
        Staged& m = staged[it->second];
        m.row_filled += f.qty.v;
        m.row_remaining = f.maker_remaining.v;
        m.row_visible = f.maker_visible.v;
        if (f.maker_requeued) m.row_priority = refill_priority;
        m.row_status = f.maker_remaining.v == 0 ? "filled" : "partially_filled";
        return AddTrade(trades, inst, seq, buy, taker_id, taker_client, m.order_id, m.a->client_id, f);
    }
    OldMaker& m = old_makers[old_by_order_no.find(f.maker)->second];
    m.Filled(f, inst.lot, refill_priority);
    return AddTrade(trades, inst, seq, buy, taker_id, taker_client, m.order_id, m.client_id, f);
}

// A triggered stop order as its journal entry shows it, after its run.
struct TriggeredView {
    pg_uuid_t* order_id;
    const char* client_id;
    const char* side;
    const char* type;
    Numeric price, quantity, stop_price, filled;
    Numeric display_quantity;  // nullptr: not an iceberg
    const char* status;
    const char* cancel_reason;
};

// Stop order k of `out` ran: the new state of its row, staged in this flush
// (a stop placed earlier in the same call) or pending before it; returns
// how it looks now.
TriggeredView RunTriggered(const Instrument& inst, const Outcome& out, int k) {
    const core::Triggered& t = out.triggered[k];
    if (auto it = staged_by_order_no.find(t.id); it != staged_by_order_no.end()) {
        Staged& m = staged[it->second];
        m.row_filled += t.filled.v;
        m.row_remaining = t.resting.v;
        m.row_visible = RestingTip(t.resting.v, m.o->display_lots);
        if (t.resting.v > 0) m.row_priority = out.triggered_priority[k];
        m.row_status = OldMaker::TriggeredStatus(t);
        m.row_cancel_reason = OldMaker::TriggeredCancelReason(t);
        return TriggeredView{m.order_id,
                             m.a->client_id,
                             m.o->side,
                             m.o->type,
                             m.a->price,
                             m.a->quantity,
                             m.o->stop_price,
                             Mul(Num(m.row_filled), inst.lot),
                             m.o->display_quantity,
                             m.row_status,
                             m.row_cancel_reason};
    }
    OldMaker& m = old_makers[old_by_order_no.find(t.id)->second];
    m.Triggered(t, inst.lot, out.triggered_priority[k]);
    return TriggeredView{m.order_id,
                         m.client_id,
                         m.side,
                         m.type,
                         m.price,
                         m.quantity,
                         m.stop_price,
                         Add(m.old_filled, Mul(Num(m.added), inst.lot)),
                         m.display_quantity,
                         m.status,
                         m.cancel_reason};
}

// The stop orders a command triggered (out's entries past its own order's):
// each one's row's new state, the new state of what it traded with or
// cancelled, its trades (views from its first fill on) and its journal entry
// 'order_triggered' in `events`.
void WriteTriggered(const Instrument& inst, const Outcome& out, Columns& trades, Columns& events,
                    TradeView* views) {
    for (int k = 0; k < out.n_triggered; ++k) {
        const core::Triggered& t = out.triggered[k];
        const TriggeredView m = RunTriggered(inst, out, k);
        for (int i = static_cast<int>(t.first_stp); i < out.StpEnd(k); ++i) StpCancelled(out.stp[i].id, inst);
        const Datum taker_id = UUIDPGetDatum(m.order_id), taker_client = CStringGetTextDatum(m.client_id);
        const int f0 = static_cast<int>(t.first_fill), f1 = out.FillsEnd(k);
        for (int i = f0; i < f1; ++i)
            views[i] = Traded(trades, inst, static_cast<int64>(t.seq), t.side == core::Side::Buy, taker_id,
                              taker_client, out.fills[i], out.Refill(i));
        JsonBuilder j;  // (keys in jsonb's order, as in Flush)
        j.BeginObject();
        j.Key("side"), j.Text(m.side);
        j.Key("type"), j.Text(m.type);
        j.Key("price"), j.Number(m.price);
        AddLevels(j, inst, out.levels + t.first_level, out.LevelsEnd(k) - static_cast<int>(t.first_level));
        j.Key("status"), j.Text(m.status);
        j.Key("trades"), AddTrades(j, views + f0, f1 - f0);
        j.Key("order_id"), j.Text(UuidText(m.order_id));
        j.Key("quantity"), j.Number(m.quantity);
        j.Key("client_id"), j.Text(m.client_id);
        j.Key("stop_price"), j.Number(m.stop_price);
        j.Key("cancel_reason"), j.Text(m.cancel_reason);
        j.Key("reject_reason"), j.Text(nullptr);
        AddStpCancelled(j, out.stp + t.first_stp, out.StpEnd(k) - static_cast<int>(t.first_stp));
        j.Key("filled_quantity"), j.Number(m.filled);
        if (m.display_quantity != nullptr) j.Key("display_quantity"), j.Number(m.display_quantity);
        j.Key("remaining_quantity"), j.Number(Mul(Num(t.resting.v), inst.lot));
        j.EndObject(false);
        AddEvent(events, inst.id, t.seq, "order_triggered", UUIDPGetDatum(m.order_id), j.Result());
    }
}

// Marks for FetchOldMakers the resting orders a command traded with or
// cancelled and the stop orders it triggered, where they are not staged in
// this flush.
void WantOldMakers(const Outcome& out) {
    for (int k = 0; k < out.n_fills + out.n_stp; ++k) {
        const uint64 id = k < out.n_fills ? out.fills[k].maker : out.stp[k - out.n_fills].id;
        if (staged_by_order_no.count(id) == 0) WantOldMaker(id);
    }
    for (int k = 0; k < out.n_triggered; ++k) {
        if (staged_by_order_no.count(out.triggered[k].id) != 0) continue;
        WantOldMaker(out.triggered[k].id);
        wanted_details = true;
    }
}

// Time priorities, from priority_seq, for the iceberg makers that fills
// [from, to) of `out` refilled, in the order the book queued them.
void TakeRefillPriorities(Outcome& out, int from, int to) {
    for (int k = from; k < to; ++k) {
        if (!out.fills[k].maker_requeued) continue;
        if (out.refill_priority == nullptr)
            out.refill_priority = static_cast<int64*>(palloc(sizeof(int64) * out.n_fills));
        out.refill_priority[k] = nextval_internal(priority_seq, false);
    }
}

// The same for each triggered stop order of `out` in turn: its refills,
// then its own priority (used if it rests).
void TakeTriggeredPriorities(Outcome& out) {
    if (out.n_triggered == 0) return;
    out.triggered_priority = static_cast<int64*>(palloc(sizeof(int64) * out.n_triggered));
    for (int k = 0; k < out.n_triggered; ++k) {
        TakeRefillPriorities(out, static_cast<int>(out.triggered[k].first_fill), out.FillsEnd(k));
        out.triggered_priority[k] = nextval_internal(priority_seq, false);
    }
}

// Writes every staged order: the orders, the makers' new state, the trades
// and the journal entries, table by table; fills the callers' rows.
void Flush() {
    if (n_staged == 0) return;

    // Ids of the makers that rested before this flush, and of the stop orders triggered in it.
    wanted.clear();
    wanted_details = false;
    for (int i = 0; i < n_staged; ++i) WantOldMakers(staged[i].out);
    n_old = 0;
    if (!wanted.empty()) FetchOldMakers();

    int n_trades = 0, n_events = n_staged;
    for (int i = 0; i < n_staged; ++i)
        n_trades += staged[i].out.n_fills, n_events += staged[i].out.n_triggered;
    Columns trades, events;
    trades.Init(11, n_trades);
    events.Init(5, n_events);
    // JSON is built in a scratch context reset per order; the finished jsonb
    // values are copied out to the call's context.
    MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "exchange journal json", ALLOCSET_DEFAULT_SIZES);
    TradeView* views = nullptr;
    int views_capacity = 0;

    for (int i = 0; i < n_staged; ++i) {
        Staged& s = staged[i];
        const Instrument& inst = s.o->inst;
        const Outcome& out = s.out;
        // The order's own entries: self-trade prevention removed these makers from the book.
        for (int k = 0; k < out.StpEnd(-1); ++k) StpCancelled(out.stp[k].id, inst);
        // Fills: the makers' new state and one trade each.
        if (out.n_fills > views_capacity) {
            views_capacity = Max(out.n_fills, 2 * views_capacity);
            views = static_cast<TradeView*>(views == nullptr ? palloc(sizeof(TradeView) * views_capacity)
                                                             : repalloc(views, sizeof(TradeView) * views_capacity));
        }
        const bool buy = strcmp(s.o->side, "buy") == 0;
        const Datum taker_id = UUIDPGetDatum(s.order_id);
        const Datum taker_client = CStringGetTextDatum(s.a->client_id);
        const int n_fills = out.FillsEnd(-1);
        for (int k = 0; k < n_fills; ++k)
            views[k] = Traded(trades, inst, s.seq, buy, taker_id, taker_client, out.fills[k], out.Refill(k));

        const Numeric filled = Mul(Num(s.filled), inst.lot);
        const Numeric remaining = Mul(Num(s.resting), inst.lot);
        MemoryContext outer = MemoryContextSwitchTo(scratch);
        JsonBuilder t;
        AddTrades(t, views, n_fills);
        const Datum trades_scratch = t.Result();
        // The keys in jsonb's own order (shorter first, then bytewise), which
        // its sort of an object's keys then finds in place.
        JsonBuilder j;
        j.BeginObject();
        j.Key("side"), j.Text(s.o->side);
        j.Key("type"), j.Text(s.o->type);
        j.Key("price"), j.Number(s.a->price);
        AddLevels(j, inst, out.levels, out.LevelsEnd(-1));
        j.Key("status"), j.Text(s.status);
        j.Key("trades"), AddTrades(j, views, n_fills);
        j.Key("order_id"), j.Text(UuidText(s.order_id));
        j.Key("quantity"), j.Number(s.a->quantity);
        j.Key("client_id"), j.Text(s.a->client_id);
        if (s.o->stop_price != nullptr) j.Key("stop_price"), j.Number(s.o->stop_price);
        j.Key("cancel_reason"), j.Text(s.cancel_reason);
        j.Key("reject_reason"), j.Text(s.reject);
        AddStpCancelled(j, out.stp, out.StpEnd(-1));
        j.Key("filled_quantity"), j.Number(filled);
        if (s.o->display_quantity != nullptr) j.Key("display_quantity"), j.Number(s.o->display_quantity);
        j.Key("remaining_quantity"), j.Number(remaining);
        j.EndObject(false);
        const Datum payload_scratch = j.Result();
        MemoryContextSwitchTo(outer);
        const Datum trades_jsonb = datumCopy(trades_scratch, false, -1);
        const Datum payload = datumCopy(payload_scratch, false, -1);
        MemoryContextReset(scratch);
        AddEvent(events, inst.id, s.seq, s.accepted ? "order_placed" : "order_rejected",
                 UUIDPGetDatum(s.order_id), payload);
        WriteTriggered(inst, out, trades, events, views);

        Datum* v = s.row->v;
        bool* nl = s.row->null;
        memset(nl, 0, sizeof s.row->null);
        v[0] = UUIDPGetDatum(s.order_id);
        v[1] = CStringGetTextDatum(s.a->client_id);
        v[2] = CStringGetTextDatum(inst.symbol);
        v[3] = CStringGetTextDatum(s.o->side);
        v[4] = CStringGetTextDatum(s.o->type);
        v[5] = CStringGetTextDatum(s.o->tif);
        v[6] = s.a->price != nullptr ? NumericGetDatum(s.a->price) : (nl[6] = true, (Datum)0);
        v[7] = NumericGetDatum(s.a->quantity);
        v[8] = NumericGetDatum(filled);
        v[9] = NumericGetDatum(remaining);
        v[10] = CStringGetTextDatum(s.status);
        v[11] = TextOrNull(s.reject, nl[11]);
        v[12] = TextOrNull(s.cancel_reason, nl[12]);
        v[13] = trades_jsonb;
        v[14] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
        v[15] = Int64GetDatum(s.seq);
        nl[16] = true;  // reject_message: only for items refused before matching
        v[17] = s.o->display_quantity != nullptr ? NumericGetDatum(s.o->display_quantity)
                                                 : (nl[17] = true, (Datum)0);
        v[18] = s.o->stop_price != nullptr ? NumericGetDatum(s.o->stop_price) : (nl[18] = true, (Datum)0);
    }

    InsertTarget& target = StopsSchema() ? t_orders_stops : IcebergsSchema() ? t_orders_icebergs : t_orders;
    Columns orders;
    orders.Init(target.ncols, n_staged);
    for (int i = 0; i < n_staged; ++i) {
        const Staged& s = staged[i];
        const Instrument& inst = s.o->inst;
        bool isnull;
        orders.Set(0, UUIDPGetDatum(s.order_id));
        orders.Set(1, Int64GetDatum(s.order_no));
        orders.Set(2, CStringGetTextDatum(s.a->client_id));
        orders.Set(3, Int64GetDatum(s.client_no));
        orders.Set(4, CStringGetTextDatum(inst.symbol));
        orders.Set(5, Int32GetDatum(inst.id));
        orders.Set(6, CStringGetTextDatum(s.o->side));
        orders.Set(7, CStringGetTextDatum(s.o->type));
        orders.Set(8, CStringGetTextDatum(s.o->tif));
        orders.Set(9, BoolGetDatum(s.a->post_only));
        orders.Set(10, CStringGetTextDatum(s.o->stp));
        if (s.a->price != nullptr)
            orders.Set(11, NumericGetDatum(s.a->price));
        else
            orders.SetNull(11);
        orders.Set(12, NumericGetDatum(s.a->quantity));
        orders.Set(13, NumericGetDatum(Mul(Num(s.row_filled), inst.lot)));
        if (s.o->ticks != 0)
            orders.Set(14, Int64GetDatum(s.o->ticks));
        else
            orders.SetNull(14);
        orders.Set(15, Int64GetDatum(s.o->lots));
        orders.Set(16, Int64GetDatum(s.row_remaining));
        orders.Set(17, CStringGetTextDatum(s.row_status));
        orders.Set(18, TextOrNull(s.reject, isnull));
        if (isnull) orders.SetNull(18);
        orders.Set(19, TextOrNull(s.row_cancel_reason, isnull));
        if (isnull) orders.SetNull(19);
        orders.Set(20, TextOrNull(s.a->idempotency_key, isnull));
        if (isnull) orders.SetNull(20);
        orders.Set(21, Int64GetDatum(s.row_priority));
        if (target.ncols > kOrderColumnsBefore012) {
            if (s.o->display_lots > 0) {
                orders.Set(22, NumericGetDatum(s.o->display_quantity));
                orders.Set(23, Int64GetDatum(s.o->display_lots));
                orders.Set(24, Int64GetDatum(s.row_visible));
            } else {
                orders.SetNull(22);
                orders.SetNull(23);
                orders.SetNull(24);
            }
        }
        if (target.ncols > kOrderColumnsBefore013) {
            if (s.o->stop_ticks > 0) {
                orders.Set(25, NumericGetDatum(s.o->stop_price));
                orders.Set(26, Int64GetDatum(s.o->stop_ticks));
            } else {
                orders.SetNull(25);
                orders.SetNull(26);
            }
        }
        orders.Next();
    }
    // Every order row's instrument is locked as its foreign key's check
    // would lock it (the book's writers all are), so InsertRows need not check
    // it row by row.
    bool all_locked = true;
    for (int i = 0; i < n_staged && all_locked; ++i) all_locked = key_share_locked.count(staged[i].o->inst.id) != 0;
    orders.Insert(target, all_locked
                              ? pg::RowBatch::LockedRef{"instrument_id", "instruments", "instrument_id"}
                              : pg::RowBatch::LockedRef{});

    WriteOldMakers();
    trades.Insert(t_trades);
    events.Insert(t_events);

    n_staged = 0;
    staged_by_order_no.clear();
    staged_keys.clear();
    old_by_order_no.clear();
    n_old = 0;
}

void ResetStaging() {
    staged = nullptr;
    n_staged = staged_capacity = 0;
    staged_by_order_no.clear();
    staged_keys.clear();
    old_by_order_no.clear();
    n_old = 0;
}

// The advisory lock that serialises the requests with an order's
// idempotency key (held to transaction end).
Datum IdempotencyLockKey(const Args& a) {
    char* lock_key = psprintf("exchange.idempotency:%s:%s", a.client_id, a.idempotency_key);
    return DirectFunctionCall2Coll(hashtextextended, DEFAULT_COLLATION_OID, CStringGetTextDatum(lock_key),
                                   Int64GetDatum(0));
}

int CompareInt32(const void* x, const void* y) {
    const int32 a = *static_cast<const int32*>(x), b = *static_cast<const int32*>(y);
    return (a > b) - (a < b);
}
int CompareInt64(const void* x, const void* y) {
    const int64 a = *static_cast<const int64*>(x), b = *static_cast<const int64*>(y);
    return (a > b) - (a < b);
}
int CompareCString(const void* x, const void* y) {
    return strcmp(*static_cast<const char* const*>(x), *static_cast<const char* const*>(y));
}

// A batch takes everything its orders may wait for before it stages the
// first one, each kind in one order that every call follows: the
// instruments' locks by instrument id, then the rows of clients new to the
// exchange (inserted into exchange.clients, which makes a second inserter of
// the same client wait for this transaction) by client_id, then the
// idempotency keys' advisory locks by their hash; Stage takes them again
// (already held, a lookup each) in the same order for its one order;
// cancel_orders and amend_orders take their instruments the same way
// (LockInstrumentsOf). So two trading calls, each its own transaction, never
// wait for each other in a cycle: two batches that met two new clients the
// other way round, or one holding an instrument and wanting what the other
// took before waiting for it, were deadlocks (lock_order.spec,
// tests/pg/concurrency_test.py). A transaction of several calls can still
// meet another in a cycle (README, Transactions and recovery).
void TakeLocksInOrder(const Args* args, const Order* orders, const bool* valid, uint32 count) {
    int32* instruments = static_cast<int32*>(palloc(sizeof(int32) * Max(count, 1u)));
    const char** clients = static_cast<const char**>(palloc(sizeof(char*) * Max(count, 1u)));
    int64* keys = static_cast<int64*>(palloc(sizeof(int64) * Max(count, 1u)));
    uint32 n_instruments = 0, n_clients = 0, n_keys = 0;
    for (uint32 i = 0; i < count; ++i) {
        if (!valid[i]) continue;
        instruments[n_instruments++] = orders[i].inst.id;
        clients[n_clients++] = args[i].client_id;
        if (args[i].idempotency_key != nullptr) keys[n_keys++] = DatumGetInt64(IdempotencyLockKey(args[i]));
    }
    qsort(instruments, n_instruments, sizeof(int32), CompareInt32);
    qsort(clients, n_clients, sizeof(char*), CompareCString);
    qsort(keys, n_keys, sizeof(int64), CompareInt64);
    for (uint32 i = 0; i < n_instruments; ++i)
        if (i == 0 || instruments[i] != instruments[i - 1]) pg::EnsureBookForWrite(instruments[i]);
    for (uint32 i = 0; i < n_clients; ++i)
        if (i == 0 || strcmp(clients[i], clients[i - 1]) != 0) ClientNo(clients[i]);
    for (uint32 i = 0; i < n_keys; ++i)
        if (i == 0 || keys[i] != keys[i - 1])
            DirectFunctionCall1(pg_advisory_xact_lock_int8, Int64GetDatum(keys[i]));
    pfree(instruments);
    pfree(clients);
    pfree(keys);
}

// The lock the foreign key from orders to instruments takes per row, taken
// once per call and instrument instead (see pg::RowBatch::locked_ref): what
// "SELECT 1 FROM ONLY exchange.instruments WHERE instrument_id = $1 FOR KEY
// SHARE" does (the executor's ExecLockRows, with its snapshot, command id,
// flags and answers to each outcome), without planning and starting a query
// for it, which was 6.7% of a one-order place_order's backend samples. True
// when the row is locked and still has this id; false when it is gone (or
// was changed by this transaction's current command), as when the query
// returns no row.
bool KeyShareInstrument(int32 id) {
    Relation rel = table_open(ExchangeRelid("instruments"), RowShareLock);
    const TupleDesc desc = RelationGetDescr(rel);
    constexpr AttrNumber kIdColumn = 1;
    if (desc->natts < kIdColumn ||
        strcmp(NameStr(TupleDescAttr(desc, kIdColumn - 1)->attname), "instrument_id") != 0 ||
        TupleDescAttr(desc, kIdColumn - 1)->atttypid != INT4OID)
        elog(ERROR, "exchange.instruments does not start with the column instrument_id int4");
    PreventCommandIfReadOnly("SELECT FOR KEY SHARE");  // the executor's check, with its message
    CommandCounterIncrement();                         // as SPI does before a statement that may write
    const Snapshot snapshot = RegisterSnapshot(GetTransactionSnapshot());
    ScanKeyData key;
    ScanKeyInit(&key, kIdColumn, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(id));
    const Oid pkey = RelationGetPrimaryKeyIndex(rel);
    SysScanDesc scan = systable_beginscan(rel, pkey, OidIsValid(pkey), snapshot, 1, &key);
    const HeapTuple visible = systable_getnext(scan);
    ItemPointerData tid;
    if (visible != nullptr) tid = visible->t_self;
    systable_endscan(scan);
    bool locked = false;
    if (visible != nullptr) {
        TupleTableSlot* slot = table_slot_create(rel, nullptr);
        TM_FailureData tmfd;
        // The executor's flags under READ COMMITTED (the trading functions
        // refuse the other levels): a row updated since the snapshot is
        // locked in its latest version.
        const TM_Result r = table_tuple_lock(
            rel, &tid, snapshot, slot, GetCurrentCommandId(true), LockTupleKeyShare, LockWaitBlock,
            TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS | TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
        switch (r) {
            case TM_Ok: {
                // A later version: the query would check its WHERE again.
                bool isnull;
                locked = !tmfd.traversed ||
                         (DatumGetInt32(slot_getattr(slot, kIdColumn, &isnull)) == id && !isnull);
                break;
            }
            case TM_SelfModified:
                break;
            case TM_Deleted:  // deleted meanwhile
                break;
            case TM_Invisible:
                elog(ERROR, "attempted to lock invisible tuple");
                break;
            default:
                elog(ERROR, "unexpected table_tuple_lock status: %u", r);
        }
        ExecDropSingleTupleTableSlot(slot);
    }
    UnregisterSnapshot(snapshot);
    table_close(rel, NoLock);
    return locked;
}

// Idempotency and matching for a validated order; its rows are written by
// the next Flush(), which also fills `row` (a repeat's row is filled now).
void Stage(const Args& a, const Order& o, Row& row) {
    // What an order may wait for, in the order every call takes it (see
    // TakeLocksInOrder): the instrument's lock, the client's row, the
    // idempotency key's lock.
    core::Book& book = pg::EnsureBookForWrite(o.inst.id);
    const int64 client_no = ClientNo(a.client_id);
    if (a.idempotency_key != nullptr) {
        // Serialise requests with this key (any instrument), then answer a repeat with the original order.
        DirectFunctionCall1(pg_advisory_xact_lock_int8, IdempotencyLockKey(a));
        if (staged_keys.count(KeyOf(a.client_id, a.idempotency_key)) != 0)
            Flush();  // the original is staged: write it first
        Datum v[2] = {CStringGetTextDatum(a.client_id), CStringGetTextDatum(a.idempotency_key)};
        Exec(p_idempotent, v, nullptr, 1);
        const bool repeat = SPI_processed == 1;
        bool isnull;
        const Datum id = repeat ? datumCopy(Column(1, &isnull), false, UUID_LEN) : (Datum)0;
        const int32 original_instrument = repeat ? DatumGetInt32(Column(2, &isnull)) : 0;
        SPI_freetuptable(SPI_tuptable);
        if (repeat) {
            // The original may have committed with early lock release
            // (books.cpp) and not be on disk yet: answer for it once it is.
            pg::FlushLastCommit(original_instrument);
            Replay(id, row);
            return;
        }
        RunCore([&] { staged_keys.insert(KeyOf(a.client_id, a.idempotency_key)); });
    }
    // Not locked when the instrument was deleted meanwhile: its orders' rows
    // then meet the foreign key's own check, which reports it.
    if (key_share_locked.count(o.inst.id) == 0 && KeyShareInstrument(o.inst.id))
        RunCore([&] { key_share_locked.insert(o.inst.id); });
    LookupSequences();
    const int64 order_no = nextval_internal(order_no_seq, false);
    core::NewOrder n;
    n.id = static_cast<uint64>(order_no);
    n.owner = static_cast<uint64>(client_no);
    n.side = strcmp(o.side, "buy") == 0 ? core::Side::Buy : core::Side::Sell;
    n.type = strcmp(o.type, "limit") == 0 ? core::OrderType::Limit : core::OrderType::Market;
    n.tif = strcmp(o.tif, "gtc") == 0 ? core::Tif::Gtc : strcmp(o.tif, "ioc") == 0 ? core::Tif::Ioc : core::Tif::Fok;
    n.price = core::Price{o.ticks};
    n.qty = core::Qty{o.lots};
    n.post_only = a.post_only;
    n.display = core::Qty{o.display_lots};
    n.stp = strcmp(o.stp, "none") == 0            ? core::Stp::None
            : strcmp(o.stp, "cancel_newest") == 0 ? core::Stp::CancelNewest
            : strcmp(o.stp, "cancel_oldest") == 0 ? core::Stp::CancelOldest
                                                  : core::Stp::CancelBoth;
    n.stop = core::Price{o.stop_ticks};
    if (n.stop.v > 0) pg::LearnLastTradePrice(book);
    RunCore([&] { book.place(n, cmd); });
    const bool accepted = cmd.accepted();
    if (!accepted) RunCore([&] { book.set_seq(book.seq() + 1); });  // the rejection is journaled too

    if (n_staged == staged_capacity) {
        staged_capacity = Max(16, staged_capacity * 2);
        staged = static_cast<Staged*>(staged == nullptr
                                          ? MemoryContextAlloc(call_cxt, sizeof(Staged) * staged_capacity)
                                          : repalloc(staged, sizeof(Staged) * staged_capacity));
    }
    Staged& s = staged[n_staged];
    s.a = &a;
    s.o = &o;
    s.row = &row;
    s.order_no = order_no;
    s.client_no = client_no;
    s.out = Outcome();
    s.out.fills = CopyOut(cmd.fills);
    s.out.n_fills = static_cast<int>(cmd.fills.size());
    s.out.levels = CopyOut(cmd.levels);
    s.out.n_levels = static_cast<int>(cmd.levels.size());
    s.out.stp = CopyOut(cmd.stp_cancelled);
    s.out.n_stp = static_cast<int>(cmd.stp_cancelled.size());
    s.out.triggered = CopyOut(cmd.triggered);
    s.out.n_triggered = static_cast<int>(cmd.triggered.size());
    // Icebergs this order refilled went to the back of their levels, and so
    // did the stop orders it triggered that rest (and what they refilled):
    // new priorities, taken in the order the book queued them.
    MemoryContext outer = MemoryContextSwitchTo(call_cxt);
    TakeRefillPriorities(s.out, 0, s.out.FillsEnd(-1));
    s.priority = nextval_internal(priority_seq, false);
    TakeTriggeredPriorities(s.out);
    MemoryContextSwitchTo(outer);
    s.seq = static_cast<int64>(accepted ? cmd.seq : book.seq());
    s.order_id = NewUuid();
    s.accepted = accepted;
    s.status = !accepted                               ? "rejected"
               : cmd.pending.v > 0                     ? "pending"
               : cmd.resting.v > 0 && cmd.filled.v > 0 ? "partially_filled"
               : cmd.resting.v > 0                     ? "open"
               : cmd.filled.v == o.lots                ? "filled"
                                                       : "cancelled";
    s.reject = accepted ? nullptr : MemoryContextStrdup(call_cxt, core::to_string(cmd.reject).data());
    s.cancel_reason =
        accepted && cmd.cancelled.v > 0 ? MemoryContextStrdup(call_cxt, core::to_string(cmd.cancel_reason).data())
                                        : nullptr;
    s.filled = cmd.filled.v;
    s.resting = cmd.resting.v + cmd.pending.v;
    s.row_filled = s.filled;
    s.row_remaining = s.resting;
    // A pending stop order shows nothing (an iceberg one gets its tip when it triggers and rests).
    s.row_visible = cmd.pending.v > 0 ? 0 : RestingTip(s.resting, o.display_lots);
    s.row_priority = s.priority;
    s.row_status = s.status;
    s.row_cancel_reason = s.cancel_reason;
    RunCore([&] { staged_by_order_no.emplace(static_cast<uint64>(order_no), n_staged); });
    ++n_staged;
}

// The answer to a batch item that failed validation: nothing was written.
void RejectedRow(const Args& a, const Problem& p, Row& row) {
    Datum* v = row.v;
    bool* nl = row.null;
    for (int i = 0; i < kResultColumns; ++i) nl[i] = true;
    const char* texts[5] = {a.client_id, a.instrument, a.side, a.type, a.time_in_force};
    for (int i = 0; i < 5; ++i)
        if (texts[i] != nullptr) v[1 + i] = CStringGetTextDatum(texts[i]), nl[1 + i] = false;
    v[8] = NumericGetDatum(Num(0)), nl[8] = false;
    v[9] = NumericGetDatum(Num(0)), nl[9] = false;
    v[10] = CStringGetTextDatum("rejected"), nl[10] = false;
    v[11] = CStringGetTextDatum(p.reason), nl[11] = false;
    v[13] = EmptyJsonbArray(), nl[13] = false;
    v[14] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), nl[14] = false;
    if (p.message != nullptr) v[16] = CStringGetTextDatum(p.message), nl[16] = false;
}

[[noreturn]] void Raise(const Problem& p) {
    ereport(ERROR, (errcode(p.sqlstate), errmsg("%s: %s", p.reason, p.message)));
    pg_unreachable();
}

const char* ArgText(FunctionCallInfo fcinfo, int i) {
    return PG_ARGISNULL(i) ? nullptr : TextDatumGetCString(PG_GETARG_DATUM(i));
}

// ------------------------------------------------------------ batch items

// The text of a JSON object's field as ->> gives it (NULL when absent or null).
const char* FieldText(JsonbContainer* obj, const char* key) {
    JsonbValue* v = getKeyJsonValueFromContainer(obj, key, static_cast<int>(strlen(key)), nullptr);
    if (v == nullptr) return nullptr;
    switch (v->type) {
        case jbvNull: return nullptr;
        case jbvString: return pnstrdup(v->val.string.val, v->val.string.len);
        case jbvNumeric: return Out(v->val.numeric);
        case jbvBool: return v->val.boolean ? "true" : "false";
        case jbvBinary: return JsonbToCString(nullptr, v->val.binary.data, v->val.binary.len);
        default: return nullptr;
    }
}

// A decimal field: a JSON number, or a string holding one.
bool FieldDecimal(JsonbContainer* obj, const char* key, Numeric& out, Problem& p,
                  const char* reason = nullptr) {
    out = nullptr;
    JsonbValue* v = getKeyJsonValueFromContainer(obj, key, static_cast<int>(strlen(key)), nullptr);
    if (v == nullptr || v->type == jbvNull) return true;
    if (v->type == jbvNumeric) {
        out = v->val.numeric;
        return true;
    }
    return DecimalFromText(FieldText(obj, key), key, out, p, reason);
}

// A batch item's arguments, or a problem (reason codes as for place_order).
bool ItemArgs(JsonbValue* item, Args& a, Problem& p) {
    if (item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data))
        return Fail(p, "invalid_order", ERRCODE_INVALID_PARAMETER_VALUE, "each order must be a JSON object");
    JsonbContainer* obj = item->val.binary.data;
    a.client_id = FieldText(obj, "client_id");
    a.instrument = FieldText(obj, "instrument");
    a.side = FieldText(obj, "side");
    a.type = FieldText(obj, "type");
    a.time_in_force = FieldText(obj, "time_in_force");
    a.idempotency_key = FieldText(obj, "idempotency_key");
    a.stp = FieldText(obj, "stp");
    if (!FieldDecimal(obj, "quantity", a.quantity, p) || !FieldDecimal(obj, "price", a.price, p) ||
        !FieldDecimal(obj, "display_quantity", a.display_quantity, p, "invalid_display") ||
        !FieldDecimal(obj, "stop_price", a.stop_price, p, "invalid_stop_price"))
        return false;
    const char* post_only = FieldText(obj, "post_only");
    if (post_only != nullptr && !parse_bool(post_only, &a.post_only))
        return Fail(p, "invalid_post_only", ERRCODE_INVALID_PARAMETER_VALUE, "post_only %s is not a boolean",
                    quote_literal_cstr(post_only));
    return true;
}

// A UUID in any form uuid_in reads (hyphens after any group of four digits,
// optional braces), or nullptr where uuid_in would raise.
pg_uuid_t* ParseUuid(const char* src) {
    auto* u = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
    const bool braces = *src == '{';
    if (braces) ++src;
    for (int i = 0; i < UUID_LEN; ++i) {
        if (!isxdigit(static_cast<unsigned char>(src[0])) || !isxdigit(static_cast<unsigned char>(src[1])))
            return nullptr;
        const char pair[3] = {src[0], src[1], '\0'};
        u->data[i] = static_cast<unsigned char>(strtoul(pair, nullptr, 16));
        src += 2;
        if (src[0] == '-' && (i % 2) == 1 && i < UUID_LEN - 1) ++src;
    }
    if (braces && *src++ != '}') return nullptr;
    return *src == '\0' ? u : nullptr;
}

// -------------------------------------------------------- cancel and amend

// The columns of an order row a cancel or amend reads (SPI column numbers)
// and answers with. Read again under the instrument lock: each statement
// takes a new snapshot, so the previous lock holder's committed fills are seen.
enum OrderColumn {
    kCtid = 1, kOrderNo, kInstrumentId, kInstrumentSymbol, kStatus, kClientId, kSide, kType, kTif, kPrice,
    kQuantity, kFilled, kRejectReason, kCreatedAt, kQuantityLots, kRemainingLots, kPriceTicks, kPriority,
    kCancelReason, kStopPrice, kOrderColumns = kStopPrice  // kStopPrice: 0.13's, NULL before
};
#define PGX_ORDER_COLUMNS                                                                                 \
    "ctid, order_no, instrument_id, instrument, status, client_id, side, type, time_in_force, price, " \
    "quantity, filled_quantity, reject_reason, created_at, quantity_lots, remaining_lots, price_ticks, priority, " \
    "cancel_reason"
#define PGX_ORDER_COLUMNS_013 PGX_ORDER_COLUMNS ", stop_price"
#define PGX_CANCEL_SET \
    "UPDATE exchange.orders SET status = 'cancelled', cancel_reason = 'user', remaining_lots = 0, "
#define PGX_CANCEL_WHERE "updated_at = now() WHERE order_id = $1 RETURNING "
#define PGX_AMEND_SET                                                                           \
    "quantity = $2, price = $3, price_ticks = $4, quantity_lots = $5, remaining_lots = $6, "    \
    "filled_quantity = filled_quantity + $7, status = $8, cancel_reason = $9, priority = $10, " \
    "updated_at = now() WHERE order_id = $1 RETURNING "
#define PGX_AMEND_TYPES \
    UUIDOID, NUMERICOID, NUMERICOID, INT8OID, INT8OID, INT8OID, NUMERICOID, TEXTOID, TEXTOID, INT8OID
// Each statement in two forms: [0] for a table before 0.13, [1] also reading
// its stop_price (ReadOrder picks by StopsSchema()).
Plan p_order_now[2] = {
    {"SELECT " PGX_ORDER_COLUMNS " FROM exchange.orders WHERE order_id = $1", 1, {UUIDOID}, nullptr},
    {"SELECT " PGX_ORDER_COLUMNS_013 " FROM exchange.orders WHERE order_id = $1", 1, {UUIDOID}, nullptr}};
// The rows of the orders of an array of ids, each with its order_id after
// the columns above (stop_price NULL before 0.13).
Plan p_orders_now[2] = {
    {"SELECT " PGX_ORDER_COLUMNS ", NULL::numeric, order_id FROM exchange.orders WHERE order_id = ANY($1)",
     1,
     {UUIDARRAYOID},
     nullptr},
    {"SELECT " PGX_ORDER_COLUMNS_013 ", order_id FROM exchange.orders WHERE order_id = ANY($1)",
     1,
     {UUIDARRAYOID},
     nullptr}};
// When UpdateRows cannot write the row (see row_writer.h): the UPDATE the
// PL/pgSQL version ran, answering with the row as updated.
// (0.13's table has 0.12's iceberg columns: a cancelled iceberg shows nothing any more.)
Plan p_cancel_by_sql[2] = {
    {PGX_CANCEL_SET PGX_CANCEL_WHERE PGX_ORDER_COLUMNS, 1, {UUIDOID}, nullptr},
    {PGX_CANCEL_SET
     "visible_lots = CASE WHEN display_lots IS NOT NULL THEN 0 END, " PGX_CANCEL_WHERE PGX_ORDER_COLUMNS_013,
     1,
     {UUIDOID},
     nullptr}};
// (The second also moves a pending stop's stop price: $11 and $12, NULL to keep it.)
Plan p_amend_by_sql[2] = {
    {"UPDATE exchange.orders SET " PGX_AMEND_SET PGX_ORDER_COLUMNS, 10, {PGX_AMEND_TYPES}, nullptr},
    {"UPDATE exchange.orders SET stop_price = COALESCE($11, stop_price), stop_ticks = COALESCE($12, "
     "stop_ticks), " PGX_AMEND_SET PGX_ORDER_COLUMNS_013,
     12,
     {PGX_AMEND_TYPES, NUMERICOID, INT8OID},
     nullptr}};
#undef PGX_ORDER_COLUMNS
#undef PGX_ORDER_COLUMNS_013
#undef PGX_CANCEL_SET
#undef PGX_CANCEL_WHERE
#undef PGX_AMEND_SET
#undef PGX_AMEND_TYPES

struct OrderNow {
    Datum v[kOrderColumns];
    bool null[kOrderColumns];
    Datum operator[](OrderColumn c) const { return v[c - 1]; }
    bool Null(OrderColumn c) const { return null[c - 1]; }
    void Set(OrderColumn c, Datum d) { v[c - 1] = d, null[c - 1] = false; }
    void SetText(OrderColumn c, const char* s) {
        null[c - 1] = s == nullptr;
        v[c - 1] = s == nullptr ? (Datum)0 : CStringGetTextDatum(s);
    }
    const char* Text(OrderColumn c) const { return null[c - 1] ? nullptr : TextDatumGetCString(v[c - 1]); }
};

// The single row in SPI_tuptable into o (stop_price NULL if it has none).
void DeformOrder(OrderNow& o) {
    o.null[kStopPrice - 1] = true;
    heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, o.v, o.null);
}

// Runs p[StopsSchema()] (one row by order_id) into o; false when there is no
// such row. The values point into SPI's result, which lives until SPI_finish.
bool ReadOrder(Plan (&p)[2], Datum order_id, OrderNow& o) {
    Datum v[1] = {order_id};
    Exec(p[StopsSchema()], v, nullptr, 1);
    if (SPI_processed != 1) return false;
    DeformOrder(o);
    return true;
}

// A hash of an order id (equal ids, equal keys).
uint64 OrderKey(Datum order_id) {
    uint64 half[2];
    memcpy(half, DatumGetUUIDP(order_id)->data, sizeof half);
    return half[0] ^ half[1];
}

// Reads the rows of the orders of the uuid array ids into orders_read.
void ReadOrdersOf(ArrayType* ids) {
    Datum v[1] = {PointerGetDatum(ids)};
    Exec(p_orders_now[StopsSchema()], v, nullptr, 0);
    orders_read = SPI_tuptable;
    for (uint64 i = 0; i < SPI_processed; ++i) {
        bool isnull;
        const Datum id =
            SPI_getbinval(orders_read->vals[i], orders_read->tupdesc, kOrderColumns + 1, &isnull);
        // Two ids of one key: the later row (TakeOrderRead checks the id).
        RunCore([&] { orders_read_at[OrderKey(id)] = i; });
    }
}

// The row of order_id from orders_read into o; false when it has none.
bool TakeOrderRead(Datum order_id, OrderNow& o) {
    const auto it = orders_read_at.find(OrderKey(order_id));
    if (it == orders_read_at.end()) return false;
    Datum v[kOrderColumns + 1];
    bool null[kOrderColumns + 1];
    heap_deform_tuple(orders_read->vals[it->second], orders_read->tupdesc, v, null);
    if (memcmp(DatumGetUUIDP(v[kOrderColumns])->data, DatumGetUUIDP(order_id)->data, UUID_LEN) != 0)
        return false;
    memcpy(o.v, v, sizeof o.v);
    memcpy(o.null, null, sizeof o.null);
    return true;
}

// The steps _resting_order takes for cancel and amend: the order must exist
// and belong to client_id (when given); then its instrument is locked and
// the row read again, which must still rest. Returns the book (`o` is the
// row as of now, `inst` its instrument), or nullptr with the refusal in p.
// When this transaction held the instrument's lock before the first read (the
// second and later cancels of a batch, every order of a cancel_orders or
// amend_orders call, whose rows LockInstrumentsOf read), that read is
// already the row as of now: nobody else can have changed it since, so it
// is not read again.
core::Book* LockRestingOrder(Datum order_id, const char* client_id, const char* id, OrderNow& o, Instrument& inst,
                             Problem& p) {
    if (!TakeOrderRead(order_id, o) && !ReadOrder(p_order_now, order_id, o))
        return Fail(p, "order_not_found", ERRCODE_NO_DATA_FOUND, "order %s does not exist", id), nullptr;
    if (client_id != nullptr && strcmp(o.Text(kClientId), client_id) != 0)
        return Fail(p, "not_order_owner", ERRCODE_INSUFFICIENT_PRIVILEGE, "order %s belongs to another client", id),
               nullptr;
    const int32 instrument_id = DatumGetInt32(o[kInstrumentId]);
    bool locked_before;
    core::Book& book = pg::EnsureBookForWrite(instrument_id, &locked_before);
    if (!locked_before && !ReadOrder(p_order_now, order_id, o))  // deleted by hand meanwhile
        return Fail(p, "order_not_found", ERRCODE_NO_DATA_FOUND, "order %s does not exist", id), nullptr;
    const char* status = o.Text(kStatus);
    if (!OneOf(status, {"open", "partially_filled", "pending"}))
        return Fail(p, "order_not_open", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "order %s is %s", id,
                    status),
               nullptr;
    if (KnownInstrument(nullptr, instrument_id, inst)) return &book;
    Datum v[1] = {Int32GetDatum(instrument_id)};
    Exec(p_instrument_by_id, v, nullptr, 1);
    if (SPI_processed != 1) elog(ERROR, "instrument %d of order %s is not in exchange.instruments", instrument_id, id);
    InstrumentFromRow(inst);
    return &book;
}

// The number of elements of an array.
int ArrayCount(ArrayType* a) {
    return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
}

// cancel_orders and amend_orders: the locks of the instruments of all the
// call's orders (the uuid array ids; NULL elements match nothing), by
// instrument id, before the first change (the rule of TakeLocksInOrder), so
// that two such batches, or one and a place_orders batch, never wait for
// each other in a cycle. Then reads the orders' rows (ReadOrdersOf), for
// LockRestingOrder. Nothing to do for one order (its instrument is taken
// when it comes).
void LockInstrumentsOf(ArrayType* ids) {
    if (ArrayCount(ids) < 2) return;
    Datum v[1] = {PointerGetDatum(ids)};
    Exec(p_instruments_of, v, nullptr, 0);
    const uint64 k = SPI_processed;
    int32* instruments = static_cast<int32*>(palloc(sizeof(int32) * Max(k, uint64{1})));
    for (uint64 i = 0; i < k; ++i) {
        bool isnull;
        instruments[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
    }
    SPI_freetuptable(SPI_tuptable);
    for (uint64 i = 0; i < k; ++i) pg::EnsureBookForWrite(instruments[i]);
    pfree(instruments);
    ReadOrdersOf(ids);
}

// The journal entry of a cancel or amend (one row of exchange.events).
void InsertEvent(int32 instrument_id, const char* kind, Datum order_id, Datum payload) {
    Columns events;
    events.Init(5, 1);
    AddEvent(events, instrument_id, cmd.seq, kind, order_id, payload);
    events.Insert(t_events);
}

// The API's result for the order row `o` as written, with these trades and
// the command's sequence; display_lots is an iceberg's (else 0).
void ResultOf(Datum order_id, const OrderNow& o, const Instrument& inst, Datum trades, uint64 seq,
              int64 display_lots, Row& row) {
    Datum* v = row.v;
    bool* nl = row.null;
    memset(nl, 0, sizeof row.null);
    v[0] = order_id;
    v[1] = o[kClientId];
    v[2] = o[kInstrumentSymbol];
    v[3] = o[kSide];
    v[4] = o[kType];
    v[5] = o[kTif];
    v[6] = o[kPrice], nl[6] = o.Null(kPrice);
    v[7] = o[kQuantity];
    v[8] = o[kFilled];
    v[9] = NumericGetDatum(Mul(Num(DatumGetInt64(o[kRemainingLots])), inst.lot));
    v[10] = o[kStatus];
    v[11] = o[kRejectReason], nl[11] = o.Null(kRejectReason);
    v[12] = o[kCancelReason], nl[12] = o.Null(kCancelReason);
    v[13] = trades;
    v[14] = o[kCreatedAt];
    v[15] = Int64GetDatum(static_cast<int64>(seq));
    nl[16] = true;  // reject_message: only for batch items refused before matching
    v[17] = display_lots > 0 ? NumericGetDatum(Mul(Num(display_lots), inst.lot)) : (nl[17] = true, (Datum)0);
    v[18] = o[kStopPrice], nl[18] = o.Null(kStopPrice);
}

// A cancel done in the book whose row update and journal entry are not yet
// written (FlushCancels writes those of a call together).
struct StagedCancel {
    Datum order_id;
    OrderNow o;  // the row as read; as it will be after FlushCancels
    Instrument inst;
    ItemPointerData tid;  // the version read
    uint64 seq;
    int64 display_lots;  // an iceberg's (else 0)
    Datum payload;       // the journal entry's
    Row* row;            // the caller's result, filled by FlushCancels
};

// exchange.cancel_order and each item of cancel_orders: the same checks,
// messages, rows and result as the PL/pgSQL exchange._cancel_order they
// replace (kept as the reference that regress/sql/cancel_amend.sql compares
// them with), without a statement per step. Cancels the order in the book
// and appends it to staged[n_staged]; returns false, having changed nothing,
// when the order cannot be cancelled (the reason in p), also when an earlier
// item of the same call cancelled it.
bool StageCancel(Datum order_id, const char* client_id, Row& row, Problem& p, StagedCancel* staged, int& n_staged) {
    const char* id = UuidText(DatumGetUUIDP(order_id));
    StagedCancel& s = staged[n_staged];
    core::Book* locked = LockRestingOrder(order_id, client_id, id, s.o, s.inst, p);
    if (locked == nullptr) return false;
    const uint64 order_no = static_cast<uint64>(DatumGetInt64(s.o[kOrderNo]));
    if (cancelled_in_call.count(order_no) != 0)  // its row still says it rests
        return Fail(p, "order_not_open", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "order %s is cancelled", id);
    core::Book& book = *locked;
    const Instrument& inst = s.inst;

    core::RestingOrder resting;
    s.display_lots = book.find(order_no, resting) ? resting.display.v : 0;
    RunCore([&] { book.cancel(order_no, cmd); });
    if (!cmd.accepted())
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                        errmsg("book_out_of_sync: order %s is open in the table but not in the book: %s", id,
                               core::to_string(cmd.reject).data())));
    s.order_id = order_id;
    s.tid = *reinterpret_cast<ItemPointer>(DatumGetPointer(s.o[kCtid]));
    s.seq = cmd.seq;
    s.row = &row;
    s.o.SetText(kStatus, "cancelled");
    s.o.SetText(kCancelReason, "user");
    s.o.Set(kRemainingLots, Int64GetDatum(0));

    JsonBuilder j;
    j.BeginObject();
    j.Key("status"), j.Text("cancelled");
    AddLevels(j, inst, cmd.levels.data(), static_cast<int>(cmd.levels.size()));
    j.Key("order_id"), j.Text(id);
    j.Key("client_id"), j.Text(s.o.Text(kClientId));
    AddStpCancelled(j, nullptr, 0);
    j.Key("cancelled_quantity"), j.Number(Mul(Num(cmd.cancelled.v), inst.lot));
    j.EndObject(false);
    s.payload = j.Result();
    RunCore([&] { cancelled_in_call.insert(order_no); });
    orders_read_at.erase(OrderKey(order_id));
    ++n_staged;
    return true;
}

// Writes the staged cancels: the orders' new state in one update, the journal
// entries in one insert; fills the callers' rows. An iceberg shows nothing
// any more (visible_lots 0, with 0.12's columns), as when it fills.
void FlushCancels(StagedCancel* staged, int n) {
    if (n == 0) return;
    static const char* const names[5] = {"status", "cancel_reason", "remaining_lots", "updated_at",
                                         "visible_lots"};
    static const Oid types[5] = {TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, INT8OID};
    const int ncols = IcebergsSchema() ? 5 : 4;
    Columns update, events;
    update.Init(ncols, n);
    events.Init(5, n);
    ItemPointerData* tids = static_cast<ItemPointerData*>(palloc(sizeof(ItemPointerData) * n));
    // Every row gets the same new values (visible_lots stays NULL for a plain order).
    const Datum values[5] = {CStringGetTextDatum("cancelled"), CStringGetTextDatum("user"), Int64GetDatum(0),
                             TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), Int64GetDatum(0)};
    for (int i = 0; i < n; ++i) {
        for (int c = 0; c < 4; ++c) update.Set(c, values[c]);
        if (ncols == 5) {
            if (staged[i].display_lots > 0)
                update.Set(4, values[4]);
            else
                update.SetNull(4);
        }
        update.Next();
        tids[i] = staged[i].tid;
        AddEvent(events, staged[i].inst.id, staged[i].seq, "order_cancelled", staged[i].order_id,
                 staged[i].payload);
    }
    // The rows the direct update did not take (changed since they were read,
    // or a table it cannot write) go through the UPDATE statement.
    const int direct =
        pg::UpdateRows(pg::RowBatch{"orders", ncols, names, types, update.v, update.null, n}, tids);
    for (int i = direct; i < n; ++i)
        if (!ReadOrder(p_cancel_by_sql, staged[i].order_id, staged[i].o))
            elog(ERROR, "order %s left exchange.orders during its cancel", UuidText(DatumGetUUIDP(staged[i].order_id)));
    events.Insert(t_events);
    for (int i = 0; i < n; ++i)
        ResultOf(staged[i].order_id, staged[i].o, staged[i].inst, EmptyJsonbArray(), staged[i].seq,
                 staged[i].display_lots, *staged[i].row);
}

// The answer to a cancel_orders or amend_orders item refused (nothing
// changed): its order id, status 'rejected', the reason code and the message
// cancel_order or amend_order would raise.
void RefusedItemRow(Datum order_id, bool null_id, const Problem& p, Row& row) {
    for (int i = 0; i < kResultColumns; ++i) row.null[i] = true;
    if (!null_id) row.v[0] = order_id, row.null[0] = false;
    row.v[10] = CStringGetTextDatum("rejected"), row.null[10] = false;
    row.v[11] = CStringGetTextDatum(p.reason), row.null[11] = false;
    row.v[13] = EmptyJsonbArray(), row.null[13] = false;
    row.v[16] = CStringGetTextDatum(p.message), row.null[16] = false;
}

// The columns of exchange.orders an amend writes (the last two, the stop
// price's, only when a pending stop's stop price moves).
constexpr int kAmendColumns = 12;
const char* const kAmendNames[kAmendColumns] = {
    "quantity", "price",         "price_ticks", "quantity_lots", "remaining_lots", "filled_quantity",
    "status",   "cancel_reason", "priority",    "updated_at",    "stop_price",     "stop_ticks"};
const Oid kAmendTypes[kAmendColumns] = {NUMERICOID, NUMERICOID,     INT8OID,    INT8OID,
                                        INT8OID,    NUMERICOID,     TEXTOID,    TEXTOID,
                                        INT8OID,    TIMESTAMPTZOID, NUMERICOID, INT8OID};

// An amend done in the book whose order row, journal entry and answer are
// still to write (WriteAmends, then AmendEntry and ResultOf).
struct AmendWrite {
    Datum order_id;
    const char* id;
    OrderNow o;  // the row as read; after WriteAmends, as written
    Instrument inst;
    ItemPointerData tid;  // the version read
    Datum v[kAmendColumns];
    bool null[kAmendColumns];  // the new values of kAmendNames' columns
    Numeric added;             // what its fills add to filled_quantity
    uint64 seq;
    bool priority_kept;
    const core::LevelChange* levels;  // its own book changes
    int n_levels;
    int64 display_lots;  // an iceberg's (else 0)
    Row* row;            // the caller's result
};

// The amends of a call that changed no order but their own (no trade, no
// self-trade cancel, no stop triggered, not an iceberg, no stop price moved:
// the common case), kept until the table must be current, then written
// together (FlushAmends): one update of their rows, one insert of their
// journal entries. amends_staged has their ids.
struct AmendStage {
    AmendWrite* w;
    int n;
};
AmendStage NewAmendStage(int capacity) {
    return AmendStage{static_cast<AmendWrite*>(palloc(sizeof(AmendWrite) * Max(capacity, 1))), 0};
}
// Writes the rows of the amends w[0..n) (the first n_columns of
// kAmendNames) and sets each w[i].o to the row as written. The rows the
// direct update did not take (changed since they were read, or a table it
// cannot write) go through the UPDATE statement.
void WriteAmends(AmendWrite* w, int n, int n_columns) {
    Columns update;
    update.Init(n_columns, n);
    ItemPointerData* tids = static_cast<ItemPointerData*>(palloc(sizeof(ItemPointerData) * n));
    for (int i = 0; i < n; ++i) {
        for (int c = 0; c < n_columns; ++c)
            if (w[i].null[c])
                update.SetNull(c);
            else
                update.Set(c, w[i].v[c]);
        update.Next();
        tids[i] = w[i].tid;
    }
    const int direct = pg::UpdateRows(
        pg::RowBatch{"orders", n_columns, kAmendNames, kAmendTypes, update.v, update.null, n}, tids);
    for (int i = 0; i < direct; ++i) {
        OrderNow& o = w[i].o;
        const OrderColumn written[9] = {kQuantity, kPrice,  kPriceTicks,   kQuantityLots, kRemainingLots,
                                        kFilled,   kStatus, kCancelReason, kPriority};
        for (int c = 0; c < 9; ++c) o.v[written[c] - 1] = w[i].v[c], o.null[written[c] - 1] = w[i].null[c];
        if (n_columns == kAmendColumns) o.Set(kStopPrice, w[i].v[10]);
    }
    for (int i = direct; i < n; ++i) {
        // The parameters from the update's columns (NULL where it has none).
        Datum v[kAmendColumns];
        char nulls[kAmendColumns];
        auto param = [&](int k, int c) {  // $(k + 1) from column c
            const bool given = c < n_columns && !w[i].null[c];
            v[k] = given ? w[i].v[c] : (Datum)0;
            nulls[k] = given ? ' ' : 'n';
        };
        v[0] = w[i].order_id, nulls[0] = ' ';
        for (int c = 0; c < 9; ++c) param(c + 1, c);  // $2..$10: quantity .. priority
        v[6] = NumericGetDatum(w[i].added);           // $7: what its fills add (column 5 is the sum)
        param(10, 10), param(11, 11);                 // $11, $12: the stop columns, NULL if it stays
        Exec(p_amend_by_sql[StopsSchema()], v, nulls, 1);
        if (SPI_processed != 1) elog(ERROR, "order %s left exchange.orders during its amend", w[i].id);
        DeformOrder(w[i].o);
    }
}

// The journal entry of the amend w, written (WriteAmends), with its trades
// and the makers it cancelled (self-trade prevention).
Datum AmendEntry(const AmendWrite& w, const TradeView* views, int n_fills, const core::Cancelled* stp,
                 int n_stp) {
    const OrderNow& o = w.o;
    JsonBuilder j;
    j.BeginObject();
    j.Key("price"), j.Number(o.Null(kPrice) ? nullptr : DatumGetNumeric(o[kPrice]));
    AddLevels(j, w.inst, w.levels, w.n_levels);
    j.Key("status"), j.Text(o.Text(kStatus));
    j.Key("trades"), AddTrades(j, views, n_fills);
    j.Key("order_id"), j.Text(w.id);
    j.Key("quantity"), j.Number(DatumGetNumeric(o[kQuantity]));
    j.Key("client_id"), j.Text(o.Text(kClientId));
    if (!o.Null(kStopPrice)) j.Key("stop_price"), j.Number(DatumGetNumeric(o[kStopPrice]));
    j.Key("priority_kept"), j.Bool(w.priority_kept);
    AddStpCancelled(j, stp, n_stp);
    j.Key("filled_quantity"), j.Number(DatumGetNumeric(o[kFilled]));
    j.Key("remaining_quantity"), j.Number(Mul(Num(DatumGetInt64(o[kRemainingLots])), w.inst.lot));
    j.EndObject(false);
    return j.Result();
}

// Writes the staged amends: their rows, their journal entries (in the order
// they were made) and their answers.
void FlushAmends(AmendStage& stage) {
    const int n = stage.n;
    if (n == 0) return;
    WriteAmends(stage.w, n, kAmendColumns - 2);
    Columns events;
    events.Init(5, n);
    for (int i = 0; i < n; ++i)
        AddEvent(events, stage.w[i].inst.id, stage.w[i].seq, "order_amended", stage.w[i].order_id,
                 AmendEntry(stage.w[i], nullptr, 0, nullptr, 0));
    events.Insert(t_events);
    const Datum no_trades = EmptyJsonbArray();
    for (int i = 0; i < n; ++i)
        ResultOf(stage.w[i].order_id, stage.w[i].o, stage.w[i].inst, no_trades, stage.w[i].seq, 0,
                 *stage.w[i].row);
    stage.n = 0;
    amends_staged.clear();
}

// exchange.amend_order: the same checks, messages, rows and result as the
// PL/pgSQL exchange._amend_order it replaces (the reference
// regress/sql/cancel_amend.sql compares it with). A lower quantity at the same
// price keeps the order's time priority; anything else re-queues it, and a
// new price may trade: its fills update the makers and write trades as a
// placed order's do.
// A pending stop order's stop price moves with stop_price (0.14): it goes
// behind the stops already waiting at the new one.
// An amend that changed no other order is staged (its row, journal entry
// and answer `row` written by FlushAmends); any other is written at once,
// after the staged ones (it may have traded with them). An amend of an
// order staged before writes them first, so that it reads the row as it is.
// Returns false, having changed nothing, when the order cannot be amended
// (the reason in p, as amend_order raises it).
bool AmendOrder(Datum order_id, Numeric quantity, Numeric price, Numeric stop_price, const char* client_id,
                Row& row, Problem& p, AmendStage& stage) {
    if (amends_staged.count(OrderKey(order_id)) != 0) FlushAmends(stage);
    AmendWrite w;
    w.order_id = order_id;
    w.id = UuidText(DatumGetUUIDP(order_id));
    const char* id = w.id;
    OrderNow& o = w.o;
    const Instrument& inst = w.inst;
    core::Book* locked = LockRestingOrder(order_id, client_id, id, o, w.inst, p);
    if (locked == nullptr) return false;
    core::Book& book = *locked;
    if (quantity == nullptr && price == nullptr && stop_price == nullptr)
        return Fail(p, "no_change", ERRCODE_INVALID_PARAMETER_VALUE,
                    "give a new quantity, a new price or a new stop_price");
    int64 lots = DatumGetInt64(o[kQuantityLots]);
    int64 ticks = o.Null(kPriceTicks) ? 0 : DatumGetInt64(o[kPriceTicks]);
    int64 stop_ticks = 0;  // 0: the stop price stays
    if (quantity != nullptr && !ToUnits(quantity, inst.lot, "quantity", "invalid_quantity", lots, p)) return false;
    if (price != nullptr && !ToUnits(price, inst.tick, "price", "invalid_price", ticks, p)) return false;
    if (stop_price != nullptr &&
        !ToUnits(stop_price, inst.tick, "stop_price", "invalid_stop_price", stop_ticks, p))
        return false;
    const int64 filled_lots = DatumGetInt64(o[kQuantityLots]) - DatumGetInt64(o[kRemainingLots]);
    if (lots <= filled_lots)
        return Fail(p, "invalid_quantity", ERRCODE_INVALID_PARAMETER_VALUE,
                    "quantity %s must exceed the filled quantity %s", quantity != nullptr ? Out(quantity) : "",
                    Out(DatumGetNumeric(o[kFilled])));

    const uint64 order_no = static_cast<uint64>(DatumGetInt64(o[kOrderNo]));
    core::RestingOrder before;
    const bool iceberg = book.find(order_no, before) && before.display.v > 0;
    if (before.stop.v > 0 && before.type == core::OrderType::Market && price != nullptr)
        return Fail(p, "invalid_price", ERRCODE_INVALID_PARAMETER_VALUE,
                    "order %s is a stop-market order: it has no price", id);
    if (stop_ticks > 0 && before.stop.v == 0)
        return Fail(p, "invalid_stop_price", ERRCODE_INVALID_PARAMETER_VALUE,
                    "order %s is not a pending stop order: it has no stop_price to amend", id);
    if (stop_ticks == before.stop.v) stop_ticks = 0;  // its own: no move
    RunCore([&] {
        book.amend(order_no, core::Price{ticks}, core::Qty{lots - filled_lots}, cmd, core::Price{stop_ticks});
    });
    if (!cmd.accepted()) {  // the core's reject changed nothing
        const bool capacity = cmd.reject == core::Reject::OrderCapacity || cmd.reject == core::Reject::LevelCapacity;
        if (cmd.reject == core::Reject::StopWouldTrigger)
            return Fail(
                p, "stop_would_trigger", ERRCODE_INVALID_PARAMETER_VALUE,
                "amend of order %s rejected: the last trade price %s has already reached stop_price %s", id,
                Out(Mul(Num(book.last_price().v), inst.tick)), Out(Mul(Num(stop_ticks), inst.tick)));
        if (cmd.reject == core::Reject::InvalidDisplay)
            return Fail(
                p, "invalid_display", ERRCODE_INVALID_PARAMETER_VALUE,
                "amend of order %s rejected: the remaining quantity %s would be more than %d times its "
                "display_quantity %s",
                id, Out(Mul(Num(lots - filled_lots), inst.lot)), static_cast<int>(core::kMaxIcebergParts),
                Out(Mul(Num(before.display.v), inst.lot)));
        return Fail(p, pstrdup(core::to_string(cmd.reject).data()),
                    capacity ? ERRCODE_INSUFFICIENT_RESOURCES : ERRCODE_INVALID_PARAMETER_VALUE,
                    "amend of order %s rejected", id);
    }

    // The order's row.
    const int64 resting = cmd.resting.v + cmd.pending.v;
    const char* status = cmd.pending.v > 0                               ? "pending"
                         : resting > 0 && filled_lots + cmd.filled.v > 0 ? "partially_filled"
                         : resting > 0                                   ? "open"
                         : cmd.cancelled.v > 0                           ? "cancelled"
                                                                         : "filled";
    const char* cancel_reason = cmd.cancelled.v > 0 ? core::to_string(cmd.cancel_reason).data() : nullptr;
    w.added = Mul(Num(cmd.filled.v), inst.lot);
    LookupSequences();
    const int64 priority =
        cmd.priority_kept ? DatumGetInt64(o[kPriority]) : nextval_internal(priority_seq, false);
    const bool stop_moves = stop_ticks > 0;
    for (bool& n : w.null) n = false;
    w.v[0] = NumericGetDatum(Mul(Num(lots), inst.lot));
    if (ticks > 0)
        w.v[1] = NumericGetDatum(Mul(Num(ticks), inst.tick)), w.v[2] = Int64GetDatum(ticks);
    else  // a stop-market order
        w.null[1] = w.null[2] = true;
    w.v[3] = Int64GetDatum(lots);
    w.v[4] = Int64GetDatum(resting);
    w.v[5] = NumericGetDatum(Add(DatumGetNumeric(o[kFilled]), w.added));
    w.v[6] = CStringGetTextDatum(status);
    w.v[7] = TextOrNull(cancel_reason, w.null[7]);
    w.v[8] = Int64GetDatum(priority);
    w.v[9] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    if (stop_moves) {
        w.v[10] = NumericGetDatum(Mul(Num(stop_ticks), inst.tick));
        w.v[11] = Int64GetDatum(stop_ticks);
    }
    w.tid = *reinterpret_cast<ItemPointer>(DatumGetPointer(o[kCtid]));
    w.seq = cmd.seq;
    w.priority_kept = cmd.priority_kept;
    w.display_lots = iceberg ? before.display.v : 0;
    w.row = &row;
    if (cmd.fills.empty() && cmd.stp_cancelled.empty() && cmd.triggered.empty() && !iceberg && !stop_moves) {
        const int n_levels = static_cast<int>(cmd.levels.size());
        core::LevelChange* levels =
            static_cast<core::LevelChange*>(palloc(sizeof(core::LevelChange) * Max(n_levels, 1)));
        if (n_levels > 0) memcpy(levels, cmd.levels.data(), sizeof(core::LevelChange) * n_levels);
        w.levels = levels, w.n_levels = n_levels;
        RunCore([&] { amends_staged.insert(OrderKey(order_id)); });
        orders_read_at.erase(OrderKey(order_id));
        stage.w[stage.n++] = w;
        return true;
    }

    // It may have traded with a staged order, and its journal entry comes after theirs.
    FlushAmends(stage);
    orders_read_at.clear();  // the orders it changed
    WriteAmends(&w, 1, stop_moves ? kAmendColumns : kAmendColumns - 2);
    if (iceberg) {  // its shown part as the book has it now
        core::RestingOrder after;
        Datum v[3] = {Int64GetDatum(static_cast<int64>(order_no)),
                      Int64GetDatum(book.find(order_no, after) ? after.visible.v : 0), (Datum)0};
        const char nulls[3] = {' ', ' ', 'n'};
        Exec(p_requeue_update, v, nulls, 0);
    }

    // The makers it traded with or cancelled (self-trade prevention), which
    // all rested before, the stop orders its trades triggered (with what
    // they traded with), and the trades.
    Outcome out;
    out.fills = cmd.fills.data(), out.n_fills = static_cast<int>(cmd.fills.size());
    out.levels = cmd.levels.data(), out.n_levels = static_cast<int>(cmd.levels.size());
    out.stp = cmd.stp_cancelled.data(), out.n_stp = static_cast<int>(cmd.stp_cancelled.size());
    out.triggered = cmd.triggered.data(), out.n_triggered = static_cast<int>(cmd.triggered.size());
    w.levels = out.levels, w.n_levels = out.LevelsEnd(-1);
    TakeRefillPriorities(out, 0, out.FillsEnd(-1));
    TakeTriggeredPriorities(out);
    wanted.clear();
    wanted_details = false;
    n_old = 0;
    WantOldMakers(out);
    if (!wanted.empty()) FetchOldMakers();
    for (int k = 0; k < out.StpEnd(-1); ++k) StpCancelled(out.stp[k].id, inst);
    const int n_fills = out.FillsEnd(-1);
    Columns trades, triggered_events;
    trades.Init(11, out.n_fills);
    triggered_events.Init(5, out.n_triggered);
    TradeView* views = static_cast<TradeView*>(palloc(sizeof(TradeView) * Max(out.n_fills, 1)));
    const bool buy = strcmp(o.Text(kSide), "buy") == 0;
    for (int k = 0; k < n_fills; ++k)
        views[k] = Traded(trades, inst, static_cast<int64>(cmd.seq), buy, order_id, o[kClientId],
                          out.fills[k], out.Refill(k));
    WriteTriggered(inst, out, trades, triggered_events, views);
    WriteOldMakers();
    trades.Insert(t_trades);

    JsonBuilder t;
    AddTrades(t, views, n_fills);
    const Datum trades_jsonb = t.Result();
    InsertEvent(inst.id, "order_amended", order_id, AmendEntry(w, views, n_fills, out.stp, out.StpEnd(-1)));
    triggered_events.Insert(t_events);
    ResultOf(order_id, o, inst, trades_jsonb, cmd.seq, w.display_lots, row);
    return true;
}

// A trading function writes rows and changes a book: where it cannot (a
// read-only transaction, a standby in recovery) it is refused at once, naming
// itself (25006), rather than by whichever statement would write first.
void RequireWritable(FunctionCallInfo fcinfo) {
    if (!XactReadOnly && !RecoveryInProgress()) return;
    const char* what = psprintf("exchange.%s()", get_func_name(fcinfo->flinfo->fn_oid));
    PreventCommandDuringRecovery(what);
    PreventCommandIfReadOnly(what);
}

// A command with one exchange.order_result: runs command(row) inside SPI
// and returns the row it filled, made in the caller's memory context.
template <class Command>
Datum OrderResult(FunctionCallInfo fcinfo, Command command) {
    RequireWritable(fcinfo);
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("function must return a composite")));
    MemoryContext caller = CurrentMemoryContext;
    SPI_connect();
    ResetCaches();
    Row row;
    command(row);
    MemoryContext spi = MemoryContextSwitchTo(caller);
    HeapTuple tuple = heap_form_tuple(BlessTupleDesc(desc), row.v, row.null);
    MemoryContextSwitchTo(spi);
    SPI_finish();
    return HeapTupleGetDatum(tuple);
}

// The JSON array argument of place_orders and amend_orders (ERROR 22023
// invalid_batch otherwise), the call set up to return rows, SPI connected.
struct Batch {
    Jsonb* json;
    uint32 count;
    ReturnSetInfo* rsinfo;
};
Batch StartBatch(FunctionCallInfo fcinfo, const char* name) {
    RequireWritable(fcinfo);
    Jsonb* json = PG_ARGISNULL(0) ? nullptr : PG_GETARG_JSONB_P(0);
    if (json == nullptr || !JB_ROOT_IS_ARRAY(json) || JB_ROOT_IS_SCALAR(json))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid_batch: %s must be a JSON array", name)));
    InitMaterializedSRF(fcinfo, 0);
    SPI_connect();
    ResetCaches();
    return Batch{json, JB_ROOT_COUNT(json), reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo)};
}

// The order_id argument of cancel_order and amend_order (NULL: not found).
Datum OrderIdArg(FunctionCallInfo fcinfo) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND), errmsg("order_not_found: order NULL does not exist")));
    return PG_GETARG_DATUM(0);
}

// A one-dimensional array argument (ERROR invalid_batch when it is NULL or
// has more dimensions).
ArrayType* ArrayArg(FunctionCallInfo fcinfo, int i, const char* name) {
    if (PG_ARGISNULL(i))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid_batch: %s must be an array", name)));
    ArrayType* a = PG_GETARG_ARRAYTYPE_P(i);
    if (ARR_NDIM(a) > 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid_batch: %s must be a one-dimensional array", name)));
    return a;
}

// Cancels the orders of the uuid array order_ids in one transaction, the
// i-th for client clients[i] (nullptr: no ownership check), one result row
// each, in order. Every instrument is locked first, by id
// (LockInstrumentsOf), so that two batches never wait for each other in a
// cycle.
Datum CancelOrders(FunctionCallInfo fcinfo, ArrayType* order_ids, const char* const* clients) {
    RequireWritable(fcinfo);
    Datum* ids;
    bool* nulls;
    int count;
    deconstruct_array(order_ids, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR, &ids, &nulls, &count);
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    SPI_connect();
    ResetCaches();
    // The rows point into SPI's results until SPI_finish: stored after the flush.
    Row* rows = static_cast<Row*>(palloc(sizeof(Row) * Max(count, 1)));
    StagedCancel* staged = static_cast<StagedCancel*>(palloc(sizeof(StagedCancel) * Max(count, 1)));
    int n_staged = 0;
    LockInstrumentsOf(order_ids);
    for (int i = 0; i < count; ++i) {
        Problem p;
        if (nulls[i])
            Fail(p, "order_not_found", ERRCODE_NO_DATA_FOUND, "order NULL does not exist"),
                RefusedItemRow(0, true, p, rows[i]);
        else if (!StageCancel(ids[i], clients[i], rows[i], p, staged, n_staged))
            RefusedItemRow(ids[i], false, p, rows[i]);
    }
    FlushCancels(staged, n_staged);
    for (int i = 0; i < count; ++i) tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, rows[i].v, rows[i].null);
    SPI_finish();
    return (Datum)0;
}

}  // namespace

// place_order(client_id, instrument, side, type, quantity, price, time_in_force,
//             idempotency_key, post_only, stp) -> exchange.order_result
Datum exchange_place_order(PG_FUNCTION_ARGS) {
    Args a;
    a.client_id = ArgText(fcinfo, 0);
    a.instrument = ArgText(fcinfo, 1);
    a.side = ArgText(fcinfo, 2);
    a.type = ArgText(fcinfo, 3);
    a.quantity = PG_ARGISNULL(4) ? nullptr : PG_GETARG_NUMERIC(4);
    a.price = PG_ARGISNULL(5) ? nullptr : PG_GETARG_NUMERIC(5);
    a.time_in_force = ArgText(fcinfo, 6);
    a.idempotency_key = ArgText(fcinfo, 7);
    a.post_only = !PG_ARGISNULL(8) && PG_GETARG_BOOL(8);
    a.stp = ArgText(fcinfo, 9);
    // (0.12's and 0.13's arguments; the function has 10 before 0.12 and 11 before 0.13.)
    a.display_quantity = PG_NARGS() > 10 && !PG_ARGISNULL(10) ? PG_GETARG_NUMERIC(10) : nullptr;
    a.stop_price = PG_NARGS() > 11 && !PG_ARGISNULL(11) ? PG_GETARG_NUMERIC(11) : nullptr;
    return OrderResult(fcinfo, [&](Row& row) {
        Order o;
        Problem p;
        if (!Validate(a, o, p)) Raise(p);
        Stage(a, o, row);
        Flush();
    });
}

// place_orders(orders jsonb) -> SETOF exchange.order_result, one per item, in order.
Datum exchange_place_orders(PG_FUNCTION_ARGS) {
    const Batch b = StartBatch(fcinfo, "orders");
    const uint32 count = b.count;
    // Everything of the call lives in call_cxt until SPI_finish: the staged
    // orders point at their arguments and result rows.
    // Every item is validated before the first instrument lock is taken: the
    // lock is held to commit, so work done before it shortens everyone's wait.
    Row* rows = static_cast<Row*>(palloc(sizeof(Row) * Max(count, 1u)));
    Args* args = static_cast<Args*>(palloc(sizeof(Args) * Max(count, 1u)));
    Order* orders = static_cast<Order*>(palloc(sizeof(Order) * Max(count, 1u)));
    bool* valid = static_cast<bool*>(palloc(sizeof(bool) * Max(count, 1u)));
    for (uint32 i = 0; i < count; ++i) {
        JsonbValue* item = getIthJsonbValueFromContainer(&b.json->root, i);
        args[i] = Args();
        orders[i] = Order();
        Problem p;
        valid[i] = ItemArgs(item, args[i], p) && Validate(args[i], orders[i], p);
        if (!valid[i]) RejectedRow(args[i], p, rows[i]);
    }
    TakeLocksInOrder(args, orders, valid, count);
    for (uint32 i = 0; i < count; ++i)
        if (valid[i]) Stage(args[i], orders[i], rows[i]);
    Flush();
    for (uint32 i = 0; i < count; ++i)
        tuplestore_putvalues(b.rsinfo->setResult, b.rsinfo->setDesc, rows[i].v, rows[i].null);
    SPI_finish();
    return (Datum)0;
}

// cancel_order(order_id, client_id) -> exchange.order_result
Datum exchange_cancel_order(PG_FUNCTION_ARGS) {
    const Datum order_id = OrderIdArg(fcinfo);
    const char* client_id = ArgText(fcinfo, 1);
    return OrderResult(fcinfo, [&](Row& row) {
        Problem p;
        StagedCancel staged[1];
        int n = 0;
        if (!StageCancel(order_id, client_id, row, p, staged, n)) Raise(p);
        FlushCancels(staged, n);
    });
}

// amend_order(order_id, quantity, price, client_id, stop_price) -> exchange.order_result
Datum exchange_amend_order(PG_FUNCTION_ARGS) {
    const Datum order_id = OrderIdArg(fcinfo);
    Numeric quantity = PG_ARGISNULL(1) ? nullptr : PG_GETARG_NUMERIC(1);
    Numeric price = PG_ARGISNULL(2) ? nullptr : PG_GETARG_NUMERIC(2);
    const char* client_id = ArgText(fcinfo, 3);
    Numeric stop_price = PG_NARGS() > 4 && !PG_ARGISNULL(4) ? PG_GETARG_NUMERIC(4) : nullptr;  // 0.14
    return OrderResult(fcinfo, [&](Row& row) {
        Problem p;
        AmendStage stage = NewAmendStage(1);
        if (!AmendOrder(order_id, quantity, price, stop_price, client_id, row, p, stage)) Raise(p);
        FlushAmends(stage);
    });
}

// cancel_orders(order_ids uuid[], client_id) -> SETOF exchange.order_result:
// each order cancelled as by cancel_order, in one transaction, one result per
// id in order; an id that cannot be cancelled (unknown, not resting, another
// client's, NULL) gets a 'rejected' row with the reason and message and
// changes nothing.
Datum exchange_cancel_orders(PG_FUNCTION_ARGS) {
    ArrayType* ids = ArrayArg(fcinfo, 0, "order_ids");
    const char* client_id = ArgText(fcinfo, 1);
    const int count = ArrayCount(ids);
    const char** clients = static_cast<const char**>(palloc(sizeof(char*) * Max(count, 1)));
    for (int i = 0; i < count; ++i) clients[i] = client_id;
    return CancelOrders(fcinfo, ids, clients);
}

// cancel_orders(order_ids uuid[], client_ids text[]) (0.9): the same with
// each id's own client, client_ids[i] (NULL: no ownership check), so that
// one call (one lock order) serves the cancels of many clients. Arrays of
// different lengths: ERROR invalid_batch.
Datum exchange_cancel_orders_each(PG_FUNCTION_ARGS) {
    ArrayType* ids = ArrayArg(fcinfo, 0, "order_ids");
    Datum* client_elems;
    bool* client_nulls;
    int n_clients;
    deconstruct_array(ArrayArg(fcinfo, 1, "client_ids"), TEXTOID, -1, false, TYPALIGN_INT, &client_elems,
                      &client_nulls, &n_clients);
    const int count = ArrayCount(ids);
    if (n_clients != count)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid_batch: client_ids must have as many elements as order_ids (%d, not %d)",
                               count, n_clients),
                        errhint("Give one client_id (or NULL) per order_id.")));
    const char** clients = static_cast<const char**>(palloc(sizeof(char*) * Max(count, 1)));
    for (int i = 0; i < count; ++i) clients[i] = client_nulls[i] ? nullptr : TextDatumGetCString(client_elems[i]);
    return CancelOrders(fcinfo, ids, clients);
}

// amend_orders(amends jsonb) -> SETOF exchange.order_result: each item
// {"order_id", "quantity", "price", "client_id", "stop_price"} amended as by amend_order,
// in order, in one transaction, one result per item; an item that cannot be
// amended gets a 'rejected' row with amend_order's reason and message and
// changes nothing (then also: not an object, invalid_order; order_id missing
// or null, order_not_found; not a UUID, invalid_order_id).
Datum exchange_amend_orders(PG_FUNCTION_ARGS) {
    const Batch b = StartBatch(fcinfo, "amends");
    {
        Datum* given = static_cast<Datum*>(palloc(sizeof(Datum) * Max(b.count, 1u)));
        int n_given = 0;
        for (uint32 i = 0; i < b.count; ++i) {
            JsonbValue* item = getIthJsonbValueFromContainer(&b.json->root, i);
            if (item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data)) continue;
            const char* id = FieldText(item->val.binary.data, "order_id");
            if (pg_uuid_t* uuid = id != nullptr ? ParseUuid(id) : nullptr; uuid != nullptr)
                given[n_given++] = UUIDPGetDatum(uuid);
        }
        LockInstrumentsOf(construct_array(given, n_given, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
    }
    // The rows point into SPI's results until SPI_finish: stored after the last flush.
    Row* rows = static_cast<Row*>(palloc(sizeof(Row) * Max(b.count, 1u)));
    AmendStage stage = NewAmendStage(static_cast<int>(b.count));
    for (uint32 i = 0; i < b.count; ++i) {
        JsonbValue* item = getIthJsonbValueFromContainer(&b.json->root, i);
        Row& row = rows[i];
        Problem p;
        Datum order_id = (Datum)0;
        bool have_id = false;
        Numeric quantity = nullptr, price = nullptr, stop_price = nullptr;
        bool ok = false;
        if (item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data)) {
            Fail(p, "invalid_order", ERRCODE_INVALID_PARAMETER_VALUE, "each amend must be a JSON object");
        } else {
            JsonbContainer* obj = item->val.binary.data;
            const char* id = FieldText(obj, "order_id");
            pg_uuid_t* uuid = id != nullptr ? ParseUuid(id) : nullptr;
            if (id == nullptr) {
                Fail(p, "order_not_found", ERRCODE_NO_DATA_FOUND, "order NULL does not exist");
            } else if (uuid == nullptr) {
                Fail(p, "invalid_order_id", ERRCODE_INVALID_PARAMETER_VALUE, "order_id %s is not a UUID",
                     quote_literal_cstr(id));
            } else {
                order_id = UUIDPGetDatum(uuid);
                have_id = true;
                ok = FieldDecimal(obj, "quantity", quantity, p) && FieldDecimal(obj, "price", price, p) &&
                     FieldDecimal(obj, "stop_price", stop_price, p, "invalid_stop_price") &&
                     AmendOrder(order_id, quantity, price, stop_price, FieldText(obj, "client_id"), row, p,
                                stage);
            }
        }
        if (!ok) RefusedItemRow(order_id, !have_id, p, row);
    }
    FlushAmends(stage);
    for (uint32 i = 0; i < b.count; ++i)
        tuplestore_putvalues(b.rsinfo->setResult, b.rsinfo->setDesc, rows[i].v, rows[i].null);
    SPI_finish();
    return (Datum)0;
}
