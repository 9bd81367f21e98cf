#include "routes.h"

#include <cctype>
#include <charconv>
#include <limits>
#include <pqxx/except>

#include "db_pool.h"
#include "feed.h"
#include "json_body.h"
#include "metrics.h"

namespace pgx {

namespace {

using Pistache::Http::Method;

Reply json_reply(int status, std::string body) {
    Reply r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

template <typename Fn>
Reply write_json(int status, Fn&& fn) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    fn(w);
    return json_reply(status, std::string(buf.GetString(), buf.GetSize()));
}

// The rows of `r` as a JSON array of objects keyed by `names` (the result's columns in order): text
// (JSON strings, exact decimals) except the column named `int64_column`, a number.
template <std::size_t N>
void write_rows(JsonWriter& w, const pqxx::result& r, const char* const (&names)[N],
                std::string_view int64_column = {}) {
    w.StartArray();
    for (const auto& row : r) {
        w.StartObject();
        for (std::size_t i = 0; i < N; ++i) {
            w.Key(names[i]);
            if (names[i] == int64_column)
                w.Int64(row[static_cast<int>(i)].as<int64_t>());
            else
                write_text(w, row[static_cast<int>(i)]);
        }
        w.EndObject();
    }
    w.EndArray();
}

bool is_uuid(const std::string& s) {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return true;
}

std::string order_id_param(const RequestContext& ctx) {
    if (!is_uuid(ctx.params.at(0))) throw ApiError(400, "invalid_order_id", "the order id must be a UUID");
    return ctx.params[0];
}

// An optional query parameter that must be a UUID (a paging cursor).
std::optional<std::string> uuid_query(const RequestContext& ctx, const std::string& name) {
    auto v = ctx.query(name);
    if (v && !is_uuid(*v)) throw ApiError(400, "invalid_parameter", "'" + name + "' must be a UUID");
    return v;
}

std::string required_query(const RequestContext& ctx, const std::string& name) {
    auto v = ctx.query(name);
    if (!v || v->empty())
        throw ApiError(400, "missing_parameter", "query parameter '" + name + "' is required");
    return *v;
}

template <typename Int>
Int int_query(const RequestContext& ctx, const std::string& name, Int fallback, Int lo, Int hi) {
    auto v = ctx.query(name);
    if (!v) return fallback;
    Int n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size() || n < lo || n > hi)
        throw ApiError(
            400, "invalid_parameter",
            "'" + name + "' must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return n;
}

// client_id from the JSON body or the query string (both allowed, they must
// agree); with an API key, the key's client, which a given client_id must name.
std::optional<std::string> client_id_of(const RequestContext& ctx, const std::optional<JsonBody>& body) {
    std::optional<std::string> from_body = body ? body->text("client_id") : std::nullopt;
    std::optional<std::string> from_query = ctx.query("client_id");
    if (from_body && from_query && *from_body != *from_query)
        throw ApiError(400, "conflicting_client_id",
                       "client_id differs between the body and the query string");
    std::optional<std::string> given = from_body ? from_body : from_query;
    if (!ctx.client) return given;
    if (given && *given != *ctx.client)
        throw ApiError(403, "client_mismatch", "client_id is not the client of this API key");
    return ctx.client;
}

const char* opt_c_str(const std::optional<std::string>& s) {
    return s ? s->c_str() : nullptr;
}

Reply single_order(const pqxx::result& r) {
    if (r.size() != 1) throw ApiError(404, "order_not_found", "no such order");
    return json_reply(200, order_json(r[0]));
}

// {"orders": [...]}: the rows in their order, each the order JSON of every order route.
Reply order_list(const pqxx::result& r) {
    return write_json(200, [&](JsonWriter& w) {
        w.StartObject();
        w.Key("orders");
        w.StartArray();
        for (const auto& row : r) write_order(w, row);
        w.EndArray();
        w.EndObject();
    });
}

void place_order(DbPool& pool, Metrics& metrics, const RequestContext& ctx, Respond respond) {
    auto received = Clock::now();
    try {
        OrderRequest order = parse_order_request(ctx.body(), ctx.header("Idempotency-Key"), ctx.client);
        pool.submit(OrderJob{std::move(order), std::move(respond), received});
    } catch (const ApiError& e) {
        metrics.order_refused(e.code());
        throw;
    }
}

void cancel_order(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string id = order_id_param(ctx);
    std::optional<JsonBody> body;
    if (!ctx.body().empty()) {
        body = JsonBody::parse(ctx.body());
        body->allow_only({"client_id"});
    }
    pool.submit(ChangeJob{ChangeJob::Cancel, id, client_id_of(ctx, body), std::nullopt, std::nullopt,
                          std::nullopt, std::move(respond), Clock::now()});
}

void amend_order(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string id = order_id_param(ctx);
    std::optional<JsonBody> body = JsonBody::parse(ctx.body());
    body->allow_only({"client_id", "quantity", "price", "stop_price"});
    auto quantity = body->decimal("quantity", "invalid_quantity");
    auto price = body->decimal("price", "invalid_price");
    // A pending stop order's new stop price (extension 0.14), checked as POST /orders checks one.
    auto stop_price = body->decimal("stop_price", "invalid_stop_price");
    pool.submit(ChangeJob{ChangeJob::Amend, id, client_id_of(ctx, body), quantity, price, stop_price,
                          std::move(respond), Clock::now()});
}

void list_orders(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string client = ctx.client ? *client_id_of(ctx, std::nullopt) : required_query(ctx, "client_id");
    std::optional<std::string> status = ctx.query("status");
    int limit = int_query(ctx, "limit", 100, 1, 1000);
    std::optional<std::string> before = uuid_query(ctx, "before");
    pool.submit(Task{client,
                     [client, status, limit, before](DbSession& db) {
                         pqxx::result r =
                             before
                                 ? db.exec(Stmt::ListOrdersBefore, client, opt_c_str(status), limit, *before)
                                 : db.exec(Stmt::ListOrders, client, opt_c_str(status), limit);
                         return order_list(r);
                     },
                     std::move(respond)});
}

// DELETE /orders: every resting and pending order of the client, or of the client in one instrument
// (`instrument` in the query or the body), cancelled by exchange.cancel_all_orders (extension 0.14; before
// it 42883, 501 extension_outdated). One statement that commits on its own, so a plain task on any
// worker rather than the cancel batches: its orders are found inside the statement, so it cannot join a
// cancel_orders array, and its answer is a list, not one row matched to one request. Its one
// cancel_orders call locks the instruments in the same order as the batches' calls, so it runs beside
// them without deadlocks; a held instrument fails it whole after --lock-timeout-ms (503 instrument_busy).
// Rate limited as one request under the client.
void cancel_all_orders(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::optional<JsonBody> body;
    if (!ctx.body().empty()) {
        body = JsonBody::parse(ctx.body());
        body->allow_only({"client_id", "instrument"});
    }
    std::optional<std::string> client = client_id_of(ctx, body);
    if (!client || client->empty())
        throw ApiError(400, "missing_parameter", "query parameter 'client_id' is required");
    std::optional<std::string> from_body = body ? body->text("instrument") : std::nullopt;
    std::optional<std::string> instrument = ctx.query("instrument");
    if (from_body && instrument && *from_body != *instrument)
        throw ApiError(400, "conflicting_instrument",
                       "instrument differs between the body and the query string");
    if (from_body) instrument = from_body;
    // An empty instrument is a mistake, never "all instruments" (which is leaving it out).
    if (instrument && instrument->empty())
        throw ApiError(400, "invalid_parameter",
                       "'instrument' must not be empty: leave it out to cancel on every instrument");
    pool.submit(Task{*client,
                     [client = *client, instrument](DbSession& db) {
                         return order_list(db.exec(Stmt::CancelAllOrders, client, opt_c_str(instrument)));
                     },
                     std::move(respond)});
}

// The committed book, or with `seq` the book right after that journal entry (read from the journal).
void orderbook(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string instrument = required_query(ctx, "instrument");
    int levels = int_query(ctx, "levels", 20, 1, 10000);
    constexpr int64_t kNoSeq = -1;
    int64_t seq = int_query<int64_t>(ctx, "seq", kNoSeq, 0, std::numeric_limits<int64_t>::max());
    pool.submit(Task{"",
                     [instrument, levels, seq](DbSession& db) {
                         pqxx::result r = seq == kNoSeq ? db.exec(Stmt::Orderbook, instrument, levels)
                                                        : db.exec(Stmt::OrderbookAt, instrument, seq, levels);
                         return json_reply(200, r.at(0).at(0).c_str());
                     },
                     std::move(respond)});
}

void recent_trades(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string instrument = required_query(ctx, "instrument");
    int limit = int_query(ctx, "limit", 100, 1, 1000);
    std::optional<std::string> before = uuid_query(ctx, "before");
    pool.submit(Task{"",
                     [instrument, limit, before](DbSession& db) {
                         static const char* const names[] = {
                             "trade_id",     "instrument",    "price",         "quantity",
                             "buy_order_id", "sell_order_id", "buy_client_id", "sell_client_id",
                             "maker_side",   "seq",           "executed_at"};
                         pqxx::result r = before
                                              ? db.exec(Stmt::RecentTradesBefore, instrument, limit, *before)
                                              : db.exec(Stmt::RecentTrades, instrument, limit);
                         return write_json(200, [&](JsonWriter& w) {
                             w.StartObject();
                             w.Key("instrument");
                             write_string(w, instrument);
                             w.Key("trades");
                             write_rows(w, r, names, "seq");
                             w.EndObject();
                         });
                     },
                     std::move(respond)});
}

void trade_stats(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string instrument = required_query(ctx, "instrument");
    int minutes = int_query(ctx, "minutes", 60, 1, 7 * 24 * 60);
    pool.submit(Task{"",
                     [instrument, minutes](DbSession& db) {
                         static const char* const names[] = {"instrument", "trade_count", "volume",
                                                             "notional",   "vwap",        "open",
                                                             "high",       "low",         "close"};
                         pqxx::result r = db.exec(Stmt::TradeStats, instrument, minutes);
                         return write_json(200, [&](JsonWriter& w) {
                             w.StartObject();
                             w.Key("minutes");
                             w.Int(minutes);
                             const pqxx::row row = r.at(0);  // an aggregate: always one row
                             for (int i = 0; i < 9; ++i) {
                                 w.Key(names[i]);
                                 if (i == 1)
                                     w.Int64(row[i].as<int64_t>());
                                 else
                                     write_text(w, row[i]);
                             }
                             w.EndObject();
                         });
                     },
                     std::move(respond)});
}

// A candle width such as 30s, 1m, 4h, 1d or 1w (a positive integer and one of s, m, h, d, w), in
// seconds: from 1 second to 7 days.
int width_seconds(const std::string& v) {
    static constexpr std::pair<char, long long> units[] = {
        {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
    long long n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    long long seconds = 0;
    if (ec == std::errc() && end + 1 == v.data() + v.size() && n > 0 && n <= 604800)
        for (auto [unit, size] : units)
            if (*end == unit) seconds = n * size;
    if (seconds < 1 || seconds > 604800)
        throw ApiError(400, "invalid_interval",
                       "'interval' must be a number and a unit (s, m, h, d, w) from 1s to 7d, e.g. 1m");
    return static_cast<int>(seconds);
}

// An RFC 3339 timestamp with its offset (2026-01-05T10:00:00Z, 2026-01-05T10:00:00.5+01:00), by its
// shape; PostgreSQL checks the values.
bool is_rfc3339(const std::string& s) {
    auto digits = [&](std::size_t at, std::size_t n) {
        if (at + n > s.size()) return false;
        for (std::size_t i = at; i < at + n; ++i)
            if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
        return true;
    };
    bool ok = s.size() >= 20 && digits(0, 4) && s[4] == '-' && digits(5, 2) && s[7] == '-' && digits(8, 2) &&
              (s[10] == 'T' || s[10] == 't' || s[10] == ' ') && digits(11, 2) && s[13] == ':' &&
              digits(14, 2) && s[16] == ':' && digits(17, 2);
    std::size_t i = 19;
    if (ok && i < s.size() && s[i] == '.') {
        std::size_t j = i + 1;
        while (j < s.size() && j - i <= 6 && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
        ok = j > i + 1;
        i = j;
    }
    if (ok && i < s.size() && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == s.size();
    if (ok && i < s.size() && (s[i] == '+' || s[i] == '-'))
        return i + 6 == s.size() && digits(i + 1, 2) && s[i + 3] == ':' && digits(i + 4, 2);
    return false;
}

// An optional RFC 3339 timestamp with its offset (is_rfc3339).
std::optional<std::string> time_query(const RequestContext& ctx, const std::string& name) {
    auto v = ctx.query(name);
    if (v && !is_rfc3339(*v))
        throw ApiError(
            400, "invalid_time",
            "'" + name + "' must be an RFC 3339 timestamp with its offset, e.g. 2026-01-05T10:00:00Z");
    return v;
}

void candles(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string instrument = required_query(ctx, "instrument");
    std::string interval = ctx.query("interval").value_or("1m");
    int seconds = width_seconds(interval);
    std::optional<std::string> since = time_query(ctx, "since");
    std::optional<std::string> until = time_query(ctx, "until");
    int limit = int_query(ctx, "limit", 500, 1, 1000);
    pool.submit(Task{"",
                     [instrument, interval, seconds, since, until, limit](DbSession& db) {
                         static const char* const names[] = {"start", "open",   "high",     "low",
                                                             "close", "volume", "notional", "trade_count"};
                         pqxx::result r = db.exec(Stmt::Candles, instrument, seconds, opt_c_str(since),
                                                  opt_c_str(until), limit);
                         return write_json(200, [&](JsonWriter& w) {
                             w.StartObject();
                             w.Key("instrument");
                             write_string(w, instrument);
                             w.Key("interval");
                             write_string(w, interval);
                             w.Key("candles");
                             write_rows(w, r, names, "trade_count");
                             w.EndObject();
                         });
                     },
                     std::move(respond)});
}

ApiError invalid_date(const std::string& name) {
    return ApiError(400, "invalid_date", "'" + name + "' must be a date YYYY-MM-DD, e.g. 2026-12-06");
}

// A required calendar date YYYY-MM-DD; the shape is checked here, PostgreSQL checks the values.
std::string date_query(const RequestContext& ctx, const std::string& name) {
    std::string s = required_query(ctx, name);
    bool ok = s.size() == 10 && s[4] == '-' && s[7] == '-';
    for (std::size_t i = 0; ok && i < s.size(); ++i)
        ok = i == 4 || i == 7 || std::isdigit(static_cast<unsigned char>(s[i]));
    if (!ok) throw invalid_date(name);
    return s;
}

// GET /settlements: the client's positions on a settled trade date (a UTC day), from
// exchange.settlement (extension 0.16; before it 42883, 501 extension_outdated). The client as GET
// /orders finds it, and rate limited like it; a date not settled yet is 404 not_settled.
void settlements(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string client = ctx.client ? *client_id_of(ctx, std::nullopt) : required_query(ctx, "client_id");
    std::string date = date_query(ctx, "date");
    std::optional<std::string> instrument = ctx.query("instrument");
    pool.submit(Task{client,
                     [client, date, instrument](DbSession& db) {
                         static const char* const names[] = {
                             "instrument",     "bought_quantity", "bought_notional", "sold_quantity",
                             "sold_notional",  "net_quantity",    "net_notional",    "maker_quantity",
                             "taker_quantity", "trade_count"};
                         pqxx::result r;
                         try {
                             r = db.exec(Stmt::Settlement, date, client, opt_c_str(instrument));
                         } catch (const pqxx::sql_error& e) {
                             // The $1::date of a well-shaped date that is no calendar day (2026-02-30,
                             // 2026-13-01): the route's own invalid_date, not the generic 22xxx
                             // invalid_value (which other routes keep for their timestamps).
                             if (e.sqlstate() == "22008" || e.sqlstate() == "22007")
                                 throw invalid_date("date");
                             throw;
                         }
                         return write_json(200, [&](JsonWriter& w) {
                             w.StartObject();
                             w.Key("trade_date");
                             write_string(w, date);
                             w.Key("client_id");
                             write_string(w, client);
                             w.Key("settlements");
                             write_rows(w, r, names, "trade_count");
                             w.EndObject();
                         });
                     },
                     std::move(respond)});
}

// TWAP orders (extension 0.18; before it every TWAP function is missing: 42883, 501 extension_outdated).
// The routes are plain tasks on any worker, rate limited under their client like GET /orders and
// DELETE /orders; the child orders are placed by the TWAP ticker (twap_ticker.h), not here.

// The columns of a TWAP row (db_session.cpp's kTwapColumns) the routes look at.
constexpr int kTwapClientId = 1;
constexpr int kTwapReplayed = 17;

// The TWAP JSON of every TWAP route: decimals and timestamps as strings (price and last_error null when
// none), slices, slices_done and children as numbers. `replayed` is not shown: it is the status (200).
void write_twap(JsonWriter& w, const pqxx::row& row) {
    static const char* const names[] = {"twap_id",   "client_id",       "instrument",         "side",
                                        "quantity",  "price",           "start_at",           "end_at",
                                        "slices",    "filled_quantity", "remaining_quantity", "slices_done",
                                        "children",  "status",          "last_error",         "created_at",
                                        "updated_at"};
    w.StartObject();
    for (int i = 0; i < kTwapReplayed; ++i) {
        w.Key(names[i]);
        if (i == 8 || i == 11 || i == 12)
            w.Int(row[i].as<int>());
        else
            write_text(w, row[i]);
    }
    w.EndObject();
}

Reply twap_reply(int status, const pqxx::row& row) {
    return write_json(status, [&](JsonWriter& w) { write_twap(w, row); });
}

ApiError twap_not_found(const std::string& id) {
    return ApiError(404, "twap_not_found", "TWAP " + id + " does not exist");
}

// The {id} of a TWAP route. One that is not a UUID names no TWAP: 404 twap_not_found.
std::string twap_id_param(const RequestContext& ctx) {
    if (!is_uuid(ctx.params.at(0))) throw twap_not_found(ctx.params[0]);
    return ctx.params[0];
}

// The TWAP `id`. With an API key (`client`), only one of the key's client: another client's is 404
// twap_not_found, as if it did not exist.
pqxx::row owned_twap(DbSession& db, const std::string& id, const std::optional<std::string>& client) {
    pqxx::result r = db.exec(Stmt::GetTwap, id);
    if (r.size() != 1 || (client && r[0][kTwapClientId].c_str() != *client)) throw twap_not_found(id);
    return r[0];
}

ApiError invalid_start_at() {
    return ApiError(400, "invalid_start_at",
                    "'start_at' must be an RFC 3339 timestamp with its offset, e.g. 2026-01-05T10:00:00Z");
}

// POST /twaps: exchange.place_twap. Fields as POST /orders checks them (unknown ones 400 unknown_field,
// decimals as JSON numbers or strings, the client as POST /orders finds it, the idempotency key in the
// body or the Idempotency-Key header); duration_seconds and slices whole numbers (as numbers or strings).
// 201 a new TWAP, 200 one its idempotency key placed before (as it is now).
void place_twap(DbPool& pool, const RequestContext& ctx, Respond respond) {
    JsonBody b = JsonBody::parse(ctx.body());
    b.allow_only({"client_id", "instrument", "side", "quantity", "duration_seconds", "slices", "price",
                  "start_at", "idempotency_key"});
    std::optional<std::string> client = b.text("client_id", !ctx.client);
    if (ctx.client) {
        if (client && *client != *ctx.client)
            throw ApiError(403, "client_mismatch", "client_id is not the client of this API key");
        client = ctx.client;
    }
    std::string instrument = *b.text("instrument", true);
    std::string side = *b.text("side", true);
    std::string quantity = *b.decimal("quantity", "invalid_quantity", true);
    const int duration =
        static_cast<int>(*b.integer("duration_seconds", "invalid_duration", 1, 604800, true));
    std::optional<std::string> slices;
    if (auto n = b.integer("slices", "invalid_slices", 1, 10000)) slices = std::to_string(*n);
    std::optional<std::string> price = b.decimal("price", "invalid_price");
    std::optional<std::string> start_at = b.text("start_at");
    if (start_at && !is_rfc3339(*start_at)) throw invalid_start_at();
    std::optional<std::string> key = b.text("idempotency_key");
    if (auto header = ctx.header("Idempotency-Key")) {
        if (!is_valid_text(*header))
            throw ApiError(400, "invalid_field", "the Idempotency-Key header must be UTF-8 text without NUL");
        if (key && *key != *header)
            throw ApiError(400, "conflicting_idempotency_key",
                           "the Idempotency-Key header and the idempotency_key field differ");
        key = header;
    }
    pool.submit(Task{*client,
                     [client = *client, instrument, side, quantity, duration, slices, price, start_at,
                      key](DbSession& db) {
                         pqxx::result r;
                         try {
                             r = db.exec(Stmt::PlaceTwap, client, instrument, side, quantity, duration,
                                         opt_c_str(slices), opt_c_str(price), opt_c_str(start_at),
                                         opt_c_str(key));
                         } catch (const pqxx::sql_error& e) {
                             // A well-shaped start_at that is no time (2026-13-01T00:00:00Z, 2026-02-30...).
                             const std::string state = sqlstate_of(e);
                             if (state == "22007" || state == "22008") throw invalid_start_at();
                             throw;
                         }
                         const pqxx::row row = r.at(0);
                         return twap_reply(row[kTwapReplayed].as<bool>() ? 200 : 201, row);
                     },
                     std::move(respond)});
}

void get_twap(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string id = twap_id_param(ctx);
    std::optional<std::string> client = ctx.client;
    pool.submit(Task{client.value_or(""),
                     [id, client](DbSession& db) { return twap_reply(200, owned_twap(db, id, client)); },
                     std::move(respond)});
}

// GET /twaps/{id}/orders: the TWAP's child orders, oldest first, {"orders": [...]} as GET /orders.
void twap_orders(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string id = twap_id_param(ctx);
    std::optional<std::string> client = ctx.client;
    pool.submit(Task{client.value_or(""),
                     [id, client](DbSession& db) {
                         if (client) owned_twap(db, id, client);
                         return order_list(db.exec(Stmt::TwapOrders, id));
                     },
                     std::move(respond)});
}

// DELETE /twaps/{id}, POST /twaps/{id}/cancel: exchange.cancel_twap, with the client as a cancel of an
// order finds it (optional without API keys: 403 not_twap_owner when it is not the TWAP's). With a key,
// another client's TWAP is 404 twap_not_found, as GET /twaps/{id} answers it.
void cancel_twap(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string id = twap_id_param(ctx);
    std::optional<JsonBody> body;
    if (!ctx.body().empty()) {
        body = JsonBody::parse(ctx.body());
        body->allow_only({"client_id"});
    }
    std::optional<std::string> client = client_id_of(ctx, body);
    const bool keyed = ctx.client.has_value();
    pool.submit(Task{client.value_or(""),
                     [id, client, keyed](DbSession& db) {
                         try {
                             return twap_reply(200, db.exec(Stmt::CancelTwap, id, opt_c_str(client)).at(0));
                         } catch (const pqxx::sql_error& e) {
                             if (keyed && api_error_from(e).code() == "not_twap_owner")
                                 throw twap_not_found(id);
                             throw;
                         }
                     },
                     std::move(respond)});
}

// GET /twaps?client_id=&status=&limit=: the client's TWAPs, newest first, {"twaps": [...]}.
void list_twaps(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::string client = ctx.client ? *client_id_of(ctx, std::nullopt) : required_query(ctx, "client_id");
    std::optional<std::string> status = ctx.query("status");
    int limit = int_query(ctx, "limit", 100, 1, 1000);
    pool.submit(Task{client,
                     [client, status, limit](DbSession& db) {
                         pqxx::result r = db.exec(Stmt::ListTwaps, client, opt_c_str(status), limit);
                         return write_json(200, [&](JsonWriter& w) {
                             w.StartObject();
                             w.Key("twaps");
                             w.StartArray();
                             for (const auto& row : r) write_twap(w, row);
                             w.EndArray();
                             w.EndObject();
                         });
                     },
                     std::move(respond)});
}

void take_snapshot(DbPool& pool, const RequestContext& ctx, Respond respond) {
    std::optional<JsonBody> body;
    if (!ctx.body().empty()) {
        body = JsonBody::parse(ctx.body());
        body->allow_only({"instrument"});
    }
    std::optional<std::string> instrument = body ? body->text("instrument") : std::nullopt;
    if (!instrument) instrument = ctx.query("instrument");
    if (!instrument || instrument->empty())
        throw ApiError(400, "missing_field", "field 'instrument' is required");
    pool.submit(Task{"",
                     [instrument](DbSession& db) {
                         pqxx::result r = db.exec(Stmt::Snapshot, *instrument);
                         return write_json(201, [&](JsonWriter& w) {
                             w.StartObject();
                             w.Key("snapshot_id");
                             w.Int64(r.at(0).at(0).as<int64_t>());
                             w.Key("instrument");
                             write_string(w, *instrument);
                             w.EndObject();
                         });
                     },
                     std::move(respond)});
}

void list_instruments(DbPool& pool, Respond respond) {
    pool.submit(Task{"",
                     [](DbSession& db) {
                         static const char* const names[] = {"symbol",       "tick_size", "lot_size",
                                                             "min_quantity", "status",    "created_at"};
                         pqxx::result r = db.exec(Stmt::ListInstruments);
                         return write_json(200, [&](JsonWriter& w) {
                             w.StartObject();
                             w.Key("instruments");
                             write_rows(w, r, names);
                             w.EndObject();
                         });
                     },
                     std::move(respond)});
}

void metrics_route(DbPool& pool, Metrics& metrics, const pgx::feed::Server& feed, Respond respond) {
    pool.submit(Task{"",
                     [&pool, &metrics, &feed](DbSession& db) {
                         // The depth gauge is read at scrape time; a failure leaves the last values.
                         try {
                             for (const auto& row : db.exec(Stmt::Depth))
                                 metrics.orderbook_depth(row[0].c_str(), row[1].c_str(), row[2].as<double>());
                         } catch (const std::exception&) {
                         }
                         metrics.db_connections(pool.connected(), pool.size(), pool.queued_orders());
                         Reply r;
                         r.body = metrics.render(feed.stats());
                         r.content_type = "text/plain; version=0.0.4";
                         return r;
                     },
                     std::move(respond)});
}

}  // namespace

std::vector<Route> api_routes(DbPool& pool, Metrics& metrics, const pgx::feed::Server& feed) {
    using B = BodyPolicy;
    constexpr Access Client = Access::Client;
    auto order_by_id = [&pool](const RequestContext& ctx, Respond respond) {
        std::string id = order_id_param(ctx);
        std::optional<std::string> client = ctx.client;
        pool.submit(Task{client.value_or(""),
                         [id, client](DbSession& db) {
                             pqxx::result r = db.exec(Stmt::GetOrder, id);
                             if (client && r.size() == 1 && r[0][kClientId].c_str() != *client)
                                 throw ApiError(403, "not_order_owner", "order " + id + " belongs to another client");
                             return single_order(r);
                         },
                         std::move(respond)});
    };
    auto cancel = [&pool](const RequestContext& ctx, Respond r) { cancel_order(pool, ctx, std::move(r)); };
    auto cancel_twap_route = [&pool](const RequestContext& ctx, Respond r) {
        cancel_twap(pool, ctx, std::move(r));
    };
    return {
        {Method::Post, "/orders", B::Json,
         [&pool, &metrics](const RequestContext& ctx, Respond r) {
             place_order(pool, metrics, ctx, std::move(r));
         },
         Client},
        {Method::Get, "/orders", B::None,
         [&pool](const RequestContext& ctx, Respond r) { list_orders(pool, ctx, std::move(r)); }, Client},
        {Method::Delete, "/orders", B::Optional,
         [&pool](const RequestContext& ctx, Respond r) { cancel_all_orders(pool, ctx, std::move(r)); },
         Client},
        {Method::Get, "/orders/{id}", B::None, order_by_id, Client},
        {Method::Delete, "/orders/{id}", B::Optional, cancel, Client},
        {Method::Patch, "/orders/{id}", B::Json,
         [&pool](const RequestContext& ctx, Respond r) { amend_order(pool, ctx, std::move(r)); }, Client},
        {Method::Post, "/orders/{id}/cancel", B::Optional, cancel, Client},
        {Method::Get, "/orderbook", B::None,
         [&pool](const RequestContext& ctx, Respond r) { orderbook(pool, ctx, std::move(r)); }},
        {Method::Post, "/orderbook/snapshot", B::Optional,
         [&pool](const RequestContext& ctx, Respond r) { take_snapshot(pool, ctx, std::move(r)); }, Client},
        {Method::Get, "/trades", B::None,
         [&pool](const RequestContext& ctx, Respond r) { recent_trades(pool, ctx, std::move(r)); }},
        {Method::Get, "/trades/stats", B::None,
         [&pool](const RequestContext& ctx, Respond r) { trade_stats(pool, ctx, std::move(r)); }},
        {Method::Get, "/candles", B::None,
         [&pool](const RequestContext& ctx, Respond r) { candles(pool, ctx, std::move(r)); }},
        {Method::Get, "/settlements", B::None,
         [&pool](const RequestContext& ctx, Respond r) { settlements(pool, ctx, std::move(r)); }, Client},
        {Method::Post, "/twaps", B::Json,
         [&pool](const RequestContext& ctx, Respond r) { place_twap(pool, ctx, std::move(r)); }, Client},
        {Method::Get, "/twaps", B::None,
         [&pool](const RequestContext& ctx, Respond r) { list_twaps(pool, ctx, std::move(r)); }, Client},
        {Method::Get, "/twaps/{id}", B::None,
         [&pool](const RequestContext& ctx, Respond r) { get_twap(pool, ctx, std::move(r)); }, Client},
        {Method::Delete, "/twaps/{id}", B::Optional, cancel_twap_route, Client},
        {Method::Get, "/twaps/{id}/orders", B::None,
         [&pool](const RequestContext& ctx, Respond r) { twap_orders(pool, ctx, std::move(r)); }, Client},
        {Method::Post, "/twaps/{id}/cancel", B::Optional, cancel_twap_route, Client},
        {Method::Get, "/instruments", B::None,
         [&pool](const RequestContext&, Respond r) { list_instruments(pool, std::move(r)); }},
        {Method::Get, "/healthz", B::None,
         [](const RequestContext&, Respond r) { r(json_reply(200, R"({"status":"ok"})")); }},
        {Method::Get, "/readyz", B::None,
         [&pool](const RequestContext&, Respond r) {
             pool.submit(Task{"",
                              [](DbSession& db) {
                                  db.exec(Stmt::Ready);
                                  return json_reply(200, R"({"status":"ready"})");
                              },
                              std::move(r)});
         }},
        {Method::Get, "/metrics", B::None,
         [&pool, &metrics, &feed](const RequestContext&, Respond r) {
             metrics_route(pool, metrics, feed, std::move(r));
         }},
    };
}

}  // namespace pgx
