// exchange.place_order and exchange.place_orders in C: validation, decimal
// conversion, matching and every row the command writes (the order, the makers'
// fills, the trades, the journal entry), with saved SPI plans.
//
// The SQL layer did the same in PL/pgSQL at ~200 us per order, almost all of
// it interpreter and per-statement overhead; here one order costs a handful
// of prepared executor calls. The behaviour, messages and rows are the same
// (the pg_regress suites pin them).
//
// Validation runs completely before anything is written, so a rejected batch
// item needs no subtransaction: it is answered as a 'rejected' row and the
// batch goes on. Errors past validation (a broken table, out of memory) abort
// the caller's transaction as usual.
//
// Memory: everything lives in SPI's procedure context or in a per-item
// context reset after each batch item; no C++ object with a destructor is
// alive while PostgreSQL may raise an error (the core result is static).
#include "book.h"

#include <cctype>
#include <cstdarg>
#include <cstring>
#include <initializer_list>
#include <string>
#include <unordered_map>

#include "books.h"
#include "run_core.h"

extern "C" {
#include "catalog/pg_collation.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(exchange_place_order);
PG_FUNCTION_INFO_V1(exchange_place_orders);
}

namespace {

using namespace pgx;
using pg::RunCore;

core::Result cmd;  // the core's answer to the current command (static: see the file comment)

// Lookups repeated within one call (one transaction), reset at each call's
// start: instruments (kept in call_cxt) and client numbers.
MemoryContext call_cxt = nullptr;
std::unordered_map<std::string, int64> client_cache;

// ------------------------------------------------------------- saved plans

struct Plan {
    const char* sql;
    int nargs;
    Oid types[12];
    SPIPlanPtr plan;
};

Plan p_instrument{"SELECT instrument_id, symbol, tick_size, lot_size, min_quantity, status "
                  "FROM exchange.instruments WHERE symbol = $1",
                  1, {TEXTOID}, nullptr};
Plan p_client{"SELECT client_no FROM exchange.clients WHERE client_id = $1", 1, {TEXTOID}, nullptr};
Plan p_client_insert{"INSERT INTO exchange.clients (client_id) VALUES ($1) ON CONFLICT (client_id) DO NOTHING "
                     "RETURNING client_no",
                     1, {TEXTOID}, nullptr};
Plan p_idempotent{"SELECT order_id FROM exchange.orders WHERE client_id = $1 AND idempotency_key = $2",
                  2, {TEXTOID, TEXTOID}, nullptr};
Plan p_replay{"SELECT * FROM exchange.get_order($1)", 1, {UUIDOID}, nullptr};
Plan p_order_insert{
    "INSERT INTO exchange.orders (order_id, order_no, client_id, client_no, instrument, instrument_id, side, type, "
    "time_in_force, post_only, stp, price, quantity, filled_quantity, price_ticks, quantity_lots, remaining_lots, "
    "status, reject_reason, cancel_reason, idempotency_key, priority) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7[1], $7[2], $7[3], $8, $7[4], $9, $10, $11, $12[1], $12[2], $12[3], "
    "$7[5], $7[6], $7[7], $7[8], nextval('exchange.priority_seq'))",
    12,
    {UUIDOID, INT8OID, TEXTOID, INT8OID, TEXTOID, INT4OID, TEXTARRAYOID, BOOLOID, NUMERICOID, NUMERICOID,
     NUMERICOID, INT8ARRAYOID},
    nullptr};
Plan p_stp_cancel{"UPDATE exchange.orders SET status = 'cancelled', cancel_reason = 'self_trade', remaining_lots = 0, "
                  "updated_at = now() WHERE order_no = ANY ($1)",
                  1, {INT8ARRAYOID}, nullptr};
Plan p_maker_fill{"UPDATE exchange.orders SET filled_quantity = filled_quantity + $2, remaining_lots = $3, "
                  "status = CASE WHEN $3 = 0 THEN 'filled' ELSE 'partially_filled' END, updated_at = now() "
                  "WHERE order_no = $1 RETURNING order_id, client_id",
                  3, {INT8OID, NUMERICOID, INT8OID}, nullptr};
Plan p_trade_insert{"INSERT INTO exchange.trades (trade_id, instrument, instrument_id, seq, price, quantity, "
                    "buy_order_id, sell_order_id, buy_client_id, sell_client_id, maker_side) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    11,
                    {UUIDOID, TEXTOID, INT4OID, INT8OID, NUMERICOID, NUMERICOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID,
                     TEXTOID},
                    nullptr};
Plan p_event_insert{"INSERT INTO exchange.events (instrument_id, seq, kind, order_id, payload) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    5, {INT4OID, INT8OID, TEXTOID, UUIDOID, JSONBOID}, nullptr};

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

// ---------------------------------------------------------------- numbers

Numeric Num(int64 v) { return int64_to_numeric(v); }
Numeric Mul(Numeric a, Numeric b) {
    return DatumGetNumeric(DirectFunctionCall2(numeric_mul, NumericGetDatum(a), NumericGetDatum(b)));
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

// A decimal given as JSON text (digits, optional point and exponent), or a problem.
bool DecimalFromText(const char* s, const char* what, Numeric& out, Problem& p) {
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
        return Fail(p, psprintf("invalid_%s", what), ERRCODE_INVALID_PARAMETER_VALUE, "%s %s is not a decimal number",
                    what, quote_literal_cstr(s));
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
    int64 ticks = 0;  // 0 for market orders
};

const char* Lower(const char* s) {
    if (s == nullptr) return nullptr;
    char* out = pstrdup(s);
    for (char* c = out; *c; ++c) *c = static_cast<char>(tolower(static_cast<unsigned char>(*c)));
    return out;
}

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

void ResetCaches() {
    call_cxt = CurrentMemoryContext;
    instruments_cached = 0;
    client_cache.clear();
}

bool LookupInstrument(const char* symbol, Instrument& inst, Problem& p) {
    for (int i = 0; symbol != nullptr && i < instruments_cached; ++i)
        if (strcmp(instrument_cache[i].symbol, symbol) == 0) {
            inst = instrument_cache[i];
            return true;
        }
    if (symbol != nullptr) {
        Datum v[1] = {CStringGetTextDatum(symbol)};
        Exec(p_instrument, v, nullptr, 1);
        if (SPI_processed == 1) {
            MemoryContext item = MemoryContextSwitchTo(call_cxt);
            bool isnull;
            inst.id = DatumGetInt32(Column(1, &isnull));
            inst.symbol = TextDatumGetCString(Column(2, &isnull));
            inst.tick = DatumGetNumericCopy(Column(3, &isnull));
            inst.lot = DatumGetNumericCopy(Column(4, &isnull));
            inst.min_quantity = DatumGetNumericCopy(Column(5, &isnull));
            inst.status = TextDatumGetCString(Column(6, &isnull));
            MemoryContextSwitchTo(item);
            SPI_freetuptable(SPI_tuptable);
            if (instruments_cached < kCachedInstruments) instrument_cache[instruments_cached++] = inst;
            return true;
        }
        SPI_freetuptable(SPI_tuptable);
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
    Datum v[1] = {CStringGetTextDatum(client_id)};
    bool isnull = true;
    int64 n = 0;
    for (int attempt = 0; attempt < 2 && isnull; ++attempt) {
        Exec(attempt == 0 ? p_client : p_client_insert, v, nullptr, 1);
        if (SPI_processed == 1) n = DatumGetInt64(Column(1, &isnull));
        SPI_freetuptable(SPI_tuptable);
    }
    if (isnull) {  // inserted concurrently by another transaction that has committed since
        Exec(p_client, v, nullptr, 1);
        if (SPI_processed == 1) n = DatumGetInt64(Column(1, &isnull));
        SPI_freetuptable(SPI_tuptable);
    }
    if (isnull) elog(ERROR, "could not create client %s", client_id);
    client_cache.emplace(client_id, n);
    return n;
}

pg_uuid_t* NewUuid() {
    auto* u = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
    if (!pg_strong_random(u->data, UUID_LEN)) elog(ERROR, "could not generate a random uuid");
    u->data[6] = (u->data[6] & 0x0f) | 0x40;  // version 4
    u->data[8] = (u->data[8] & 0x3f) | 0x80;  // RFC 4122 variant
    return u;
}

const char* UuidText(pg_uuid_t* u) { return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(u))); }

Oid SequenceOid(const char* name) {
    const Oid oid = get_relname_relid(name, get_namespace_oid("exchange", false));
    if (!OidIsValid(oid)) elog(ERROR, "sequence exchange.%s does not exist", name);
    return oid;
}

void JsonKey(StringInfo b, const char* key) {
    if (b->data[b->len - 1] != '{') appendStringInfoChar(b, ',');
    escape_json(b, key);
    appendStringInfoChar(b, ':');
}
void JsonText(StringInfo b, const char* key, const char* value) {
    JsonKey(b, key);
    if (value == nullptr)
        appendStringInfoString(b, "null");
    else
        escape_json(b, value);
}
void JsonRaw(StringInfo b, const char* key, const char* value) {
    JsonKey(b, key);
    appendStringInfoString(b, value == nullptr ? "null" : value);
}

// The journal's level changes and STP cancels for `cmd`.
void AppendBookChanges(StringInfo b, const Instrument& inst) {
    JsonKey(b, "levels");
    appendStringInfoChar(b, '[');
    for (size_t i = 0; i < cmd.levels.size(); ++i) {
        const auto& l = cmd.levels[i];
        appendStringInfo(b, "%s{\"side\":\"%s\",\"price\":%s,\"quantity\":%s,\"order_count\":%u}", i ? "," : "",
                         l.side == core::Side::Buy ? "buy" : "sell", Out(Mul(Num(l.price.v), inst.tick)),
                         Out(Mul(Num(l.qty.v), inst.lot)), l.count);
    }
    appendStringInfoString(b, "]");
    JsonKey(b, "stp_cancelled");
    appendStringInfoChar(b, '[');
    for (size_t i = 0; i < cmd.stp_cancelled.size(); ++i)
        appendStringInfo(b, "%s" INT64_FORMAT, i ? "," : "", static_cast<int64>(cmd.stp_cancelled[i].id));
    appendStringInfoChar(b, ']');
}

Datum TextArray(const char* const* items, const bool* nulls, int n) {
    Datum d[8];
    for (int i = 0; i < n; ++i) d[i] = nulls[i] ? (Datum)0 : CStringGetTextDatum(items[i]);
    int dims[1] = {n};
    int lbs[1] = {1};
    return PointerGetDatum(construct_md_array(d, const_cast<bool*>(nulls), 1, dims, lbs, TEXTOID, -1, false,
                                              TYPALIGN_INT));
}

Datum Int8Array(const int64* items, const bool* nulls, int n) {
    Datum d[8];
    for (int i = 0; i < n; ++i) d[i] = Int64GetDatum(items[i]);
    int dims[1] = {n};
    int lbs[1] = {1};
    return PointerGetDatum(construct_md_array(d, const_cast<bool*>(nulls), 1, dims, lbs, INT8OID, 8,
                                              FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

// The columns of exchange.order_result.
constexpr int kResultColumns = 16;
struct Row {
    Datum v[kResultColumns];
    bool null[kResultColumns];
};

// The stored original of an idempotent repeat, with its trades (seq NULL).
void Replay(Datum order_id, Row& row) {
    Datum v[1] = {order_id};
    Exec(p_replay, v, nullptr, 1);
    if (SPI_processed != 1 || SPI_tuptable->tupdesc->natts != kResultColumns)
        elog(ERROR, "exchange.get_order returned no order_result");
    heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, row.v, row.null);
}

// Places a validated order: idempotency, matching, and every row it writes.
void Place(const Args& a, const Order& o, Row& row) {
    if (a.idempotency_key != nullptr) {
        // Serialise requests with this key (any instrument), then answer a repeat with the original order.
        char* lock_key = psprintf("exchange.idempotency:%s:%s", a.client_id, a.idempotency_key);
        const Datum hash = DirectFunctionCall2Coll(hashtextextended, DEFAULT_COLLATION_OID,
                                                   CStringGetTextDatum(lock_key), Int64GetDatum(0));
        DirectFunctionCall1(pg_advisory_xact_lock_int8, hash);
        Datum v[2] = {CStringGetTextDatum(a.client_id), CStringGetTextDatum(a.idempotency_key)};
        Exec(p_idempotent, v, nullptr, 1);
        const bool repeat = SPI_processed == 1;
        bool isnull;
        const Datum id = repeat ? datumCopy(Column(1, &isnull), false, UUID_LEN) : (Datum)0;
        SPI_freetuptable(SPI_tuptable);
        if (repeat) {
            Replay(id, row);
            return;
        }
    }
    const int64 client_no = ClientNo(a.client_id);

    core::Book& book = pg::EnsureBookForWrite(o.inst.id);
    const int64 order_no = nextval_internal(SequenceOid("order_no_seq"), false);
    core::NewOrder n;
    n.id = static_cast<uint64>(order_no);
    n.owner = static_cast<uint64>(client_no);
    n.side = strcmp(o.side, "buy") == 0 ? core::Side::Buy : core::Side::Sell;
    n.type = strcmp(o.type, "limit") == 0 ? core::OrderType::Limit : core::OrderType::Market;
    n.tif = strcmp(o.tif, "gtc") == 0 ? core::Tif::Gtc : strcmp(o.tif, "ioc") == 0 ? core::Tif::Ioc : core::Tif::Fok;
    n.price = core::Price{o.ticks};
    n.qty = core::Qty{o.lots};
    n.post_only = a.post_only;
    n.stp = strcmp(o.stp, "none") == 0            ? core::Stp::None
            : strcmp(o.stp, "cancel_newest") == 0 ? core::Stp::CancelNewest
            : strcmp(o.stp, "cancel_oldest") == 0 ? core::Stp::CancelOldest
                                                  : core::Stp::CancelBoth;
    RunCore([&] { book.place(n, cmd); });
    const bool accepted = cmd.accepted();
    if (!accepted) RunCore([&] { book.set_seq(book.seq() + 1); });  // the rejection is journaled too
    const int64 seq = static_cast<int64>(accepted ? cmd.seq : book.seq());

    const char* status = !accepted                                       ? "rejected"
                         : cmd.resting.v > 0 && cmd.filled.v > 0         ? "partially_filled"
                         : cmd.resting.v > 0                             ? "open"
                         : cmd.filled.v == o.lots                        ? "filled"
                                                                         : "cancelled";
    const char* reject = accepted ? nullptr : pstrdup(core::to_string(cmd.reject).data());
    const char* cancel_reason =
        accepted && cmd.cancelled.v > 0 ? pstrdup(core::to_string(cmd.cancel_reason).data()) : nullptr;
    const Numeric filled = Mul(Num(cmd.filled.v), o.inst.lot);
    const Numeric remaining = Mul(Num(cmd.resting.v), o.inst.lot);
    pg_uuid_t* order_id = NewUuid();
    const bool buy = n.side == core::Side::Buy;

    {
        const char* texts[8] = {o.side, o.type, o.tif, o.stp, status, reject, cancel_reason, a.idempotency_key};
        bool text_nulls[8];
        for (int i = 0; i < 8; ++i) text_nulls[i] = texts[i] == nullptr;
        const int64 units[3] = {o.ticks, o.lots, cmd.resting.v};
        const bool unit_nulls[3] = {o.ticks == 0, false, false};
        Datum v[12] = {UUIDPGetDatum(order_id),
                       Int64GetDatum(order_no),
                       CStringGetTextDatum(a.client_id),
                       Int64GetDatum(client_no),
                       CStringGetTextDatum(o.inst.symbol),
                       Int32GetDatum(o.inst.id),
                       TextArray(texts, text_nulls, 8),
                       BoolGetDatum(a.post_only),
                       a.price != nullptr ? NumericGetDatum(a.price) : (Datum)0,
                       NumericGetDatum(a.quantity),
                       NumericGetDatum(filled),
                       Int8Array(units, unit_nulls, 3)};
        char nulls[12];
        memset(nulls, ' ', sizeof nulls);
        if (a.price == nullptr) nulls[8] = 'n';
        Exec(p_order_insert, v, nulls, 0);
    }

    if (!cmd.stp_cancelled.empty()) {
        int64 ids[64];
        const int count = static_cast<int>(cmd.stp_cancelled.size());
        int64* buf = count <= 64 ? ids : static_cast<int64*>(palloc(sizeof(int64) * count));
        Datum* d = static_cast<Datum*>(palloc(sizeof(Datum) * count));
        for (int i = 0; i < count; ++i) d[i] = Int64GetDatum(buf[i] = static_cast<int64>(cmd.stp_cancelled[i].id));
        Datum v[1] = {PointerGetDatum(construct_array(d, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))};
        Exec(p_stp_cancel, v, nullptr, 0);
    }

    StringInfoData trades;
    initStringInfo(&trades);
    appendStringInfoChar(&trades, '[');
    const char* order_id_text = UuidText(order_id);
    for (size_t i = 0; i < cmd.fills.size(); ++i) {
        const auto& f = cmd.fills[i];
        const Numeric price = Mul(Num(f.price.v), o.inst.tick);
        const Numeric qty = Mul(Num(f.qty.v), o.inst.lot);
        Datum upd[3] = {Int64GetDatum(static_cast<int64>(f.maker)), NumericGetDatum(qty),
                        Int64GetDatum(f.maker_remaining.v)};
        Exec(p_maker_fill, upd, nullptr, 0);
        if (SPI_processed != 1) elog(ERROR, "maker order_no " UINT64_FORMAT " is not in exchange.orders", f.maker);
        bool isnull;
        const Datum maker_id = datumCopy(Column(1, &isnull), false, UUID_LEN);
        const Datum maker_client = datumCopy(Column(2, &isnull), false, -1);
        SPI_freetuptable(SPI_tuptable);
        pg_uuid_t* trade_id = NewUuid();
        const Datum taker_id = UUIDPGetDatum(order_id);
        const Datum taker_client = CStringGetTextDatum(a.client_id);
        Datum ins[11] = {UUIDPGetDatum(trade_id),
                         CStringGetTextDatum(o.inst.symbol),
                         Int32GetDatum(o.inst.id),
                         Int64GetDatum(seq),
                         NumericGetDatum(price),
                         NumericGetDatum(qty),
                         buy ? taker_id : maker_id,
                         buy ? maker_id : taker_id,
                         buy ? taker_client : maker_client,
                         buy ? maker_client : taker_client,
                         CStringGetTextDatum(buy ? "sell" : "buy")};
        Exec(p_trade_insert, ins, nullptr, 0);
        appendStringInfo(&trades, "%s{\"trade_id\":\"%s\",\"price\":%s,\"quantity\":%s,\"maker_order_id\":\"%s\"}",
                         i ? "," : "", UuidText(trade_id), Out(price), Out(qty),
                         UuidText(DatumGetUUIDP(maker_id)));
    }
    appendStringInfoChar(&trades, ']');

    StringInfoData payload;
    initStringInfo(&payload);
    appendStringInfoChar(&payload, '{');
    JsonText(&payload, "order_id", order_id_text);
    JsonText(&payload, "client_id", a.client_id);
    JsonText(&payload, "side", o.side);
    JsonText(&payload, "type", o.type);
    JsonRaw(&payload, "price", a.price != nullptr ? Out(a.price) : nullptr);
    JsonRaw(&payload, "quantity", Out(a.quantity));
    JsonText(&payload, "status", status);
    JsonRaw(&payload, "filled_quantity", Out(filled));
    JsonRaw(&payload, "remaining_quantity", Out(remaining));
    JsonText(&payload, "reject_reason", reject);
    JsonText(&payload, "cancel_reason", cancel_reason);
    JsonRaw(&payload, "trades", trades.data);
    AppendBookChanges(&payload, o.inst);
    appendStringInfoChar(&payload, '}');
    const Datum trades_jsonb = DirectFunctionCall1(jsonb_in, CStringGetDatum(trades.data));
    {
        Datum v[5] = {Int32GetDatum(o.inst.id), Int64GetDatum(seq),
                      CStringGetTextDatum(accepted ? "order_placed" : "order_rejected"), UUIDPGetDatum(order_id),
                      DirectFunctionCall1(jsonb_in, CStringGetDatum(payload.data))};
        Exec(p_event_insert, v, nullptr, 0);
    }

    Datum* v = row.v;
    bool* nl = row.null;
    memset(nl, 0, sizeof row.null);
    v[0] = UUIDPGetDatum(order_id);
    v[1] = CStringGetTextDatum(a.client_id);
    v[2] = CStringGetTextDatum(o.inst.symbol);
    v[3] = CStringGetTextDatum(o.side);
    v[4] = CStringGetTextDatum(o.type);
    v[5] = CStringGetTextDatum(o.tif);
    v[6] = a.price != nullptr ? NumericGetDatum(a.price) : (nl[6] = true, (Datum)0);
    v[7] = NumericGetDatum(a.quantity);
    v[8] = NumericGetDatum(filled);
    v[9] = NumericGetDatum(remaining);
    v[10] = CStringGetTextDatum(status);
    v[11] = reject != nullptr ? CStringGetTextDatum(reject) : (nl[11] = true, (Datum)0);
    v[12] = cancel_reason != nullptr ? CStringGetTextDatum(cancel_reason) : (nl[12] = true, (Datum)0);
    v[13] = trades_jsonb;
    v[14] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    v[15] = Int64GetDatum(seq);
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
    v[13] = DirectFunctionCall1(jsonb_in, CStringGetDatum("[]")), nl[13] = false;
    v[14] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), nl[14] = false;
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
bool FieldDecimal(JsonbContainer* obj, const char* key, Numeric& out, Problem& p) {
    out = nullptr;
    JsonbValue* v = getKeyJsonValueFromContainer(obj, key, static_cast<int>(strlen(key)), nullptr);
    if (v == nullptr || v->type == jbvNull) return true;
    if (v->type == jbvNumeric) {
        out = v->val.numeric;
        return true;
    }
    return DecimalFromText(FieldText(obj, key), key, out, p);
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
    if (!FieldDecimal(obj, "quantity", a.quantity, p) || !FieldDecimal(obj, "price", a.price, p)) return false;
    const char* post_only = FieldText(obj, "post_only");
    if (post_only != nullptr && !parse_bool(post_only, &a.post_only))
        return Fail(p, "invalid_post_only", ERRCODE_INVALID_PARAMETER_VALUE, "post_only %s is not a boolean",
                    quote_literal_cstr(post_only));
    return true;
}

}  // namespace

// place_order(client_id, instrument, side, type, quantity, price, time_in_force,
//             idempotency_key, post_only, stp) -> exchange.order_result
Datum exchange_place_order(PG_FUNCTION_ARGS) {
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("function must return a composite")));
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

    MemoryContext caller = CurrentMemoryContext;
    SPI_connect();
    ResetCaches();
    Order o;
    Problem p;
    if (!Validate(a, o, p)) Raise(p);
    Row row;
    Place(a, o, row);
    MemoryContext spi = MemoryContextSwitchTo(caller);
    HeapTuple tuple = heap_form_tuple(BlessTupleDesc(desc), row.v, row.null);
    MemoryContextSwitchTo(spi);
    SPI_finish();
    return HeapTupleGetDatum(tuple);
}

// place_orders(orders jsonb) -> SETOF exchange.order_result, one per item, in order.
Datum exchange_place_orders(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid_batch: orders must be a JSON array")));
    Jsonb* batch = PG_GETARG_JSONB_P(0);
    if (!JB_ROOT_IS_ARRAY(batch) || JB_ROOT_IS_SCALAR(batch))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid_batch: orders must be a JSON array")));
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const uint32 count = JB_ROOT_COUNT(batch);

    SPI_connect();
    ResetCaches();
    // A large keeper block survives each reset: freeing and re-faulting fresh
    // pages per item cost more than the item's own work.
    MemoryContext item_cxt = AllocSetContextCreate(CurrentMemoryContext, "exchange batch item", 1 << 20, 1 << 20,
                                                   ALLOCSET_DEFAULT_MAXSIZE);
    for (uint32 i = 0; i < count; ++i) {
        MemoryContext outer = MemoryContextSwitchTo(item_cxt);
        JsonbValue* item = getIthJsonbValueFromContainer(&batch->root, i);
        Args a;
        Order o;
        Problem p;
        Row row;
        if (ItemArgs(item, a, p) && Validate(a, o, p))
            Place(a, o, row);
        else
            RejectedRow(a, p, row);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row.v, row.null);
        if (SPI_tuptable != nullptr) SPI_freetuptable(SPI_tuptable);
        MemoryContextSwitchTo(outer);
        MemoryContextReset(item_cxt);
    }
    SPI_finish();
    return (Datum)0;
}
