#include "order_json.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <pqxx/field>

#include "json_body.h"
#include "reply.h"

namespace pgx {

std::string order_columns(bool display_quantity, bool stop_price) {
    return std::string(
               "order_id, client_id, instrument, side, type, time_in_force, price::text, quantity::text, "
               "filled_quantity::text, remaining_quantity::text, status, reject_reason, cancel_reason, "
               "trades::text, to_json(created_at) #>> '{}', seq, reject_message, ") +
           (display_quantity ? "display_quantity::text, " : "NULL::text, ") +
           (stop_price ? "stop_price::text" : "NULL::text");
}

OrderRequest parse_order_request(std::string_view body, const std::optional<std::string>& header_key,
                                 const std::optional<std::string>& authenticated_client) {
    JsonBody b = JsonBody::parse(body);
    b.allow_only({"client_id", "instrument", "side", "type", "quantity", "price", "time_in_force",
                  "idempotency_key", "post_only", "stp", "display_quantity", "stop_price"});
    OrderRequest o;
    std::optional<std::string> client = b.text("client_id", !authenticated_client);
    if (authenticated_client) {
        if (client && *client != *authenticated_client)
            throw ApiError(403, "client_mismatch", "client_id is not the client of this API key");
        client = authenticated_client;
    }
    o.client_id = std::move(*client);
    o.instrument = *b.text("instrument", true);
    o.side = *b.text("side", true);
    o.type = *b.text("type", true);
    o.quantity = *b.decimal("quantity", "invalid_quantity", true);
    o.price = b.decimal("price", "invalid_price");
    o.time_in_force = b.text("time_in_force");
    o.idempotency_key = b.text("idempotency_key");
    o.post_only = b.boolean("post_only");
    o.stp = b.text("stp");
    o.display_quantity = b.decimal("display_quantity", "invalid_display");
    o.stop_price = b.decimal("stop_price", "invalid_stop_price");
    if (header_key) {
        if (!is_valid_text(*header_key))
            throw ApiError(400, "invalid_field", "the Idempotency-Key header must be UTF-8 text without NUL");
        if (o.idempotency_key && *o.idempotency_key != *header_key)
            throw ApiError(400, "conflicting_idempotency_key",
                           "the Idempotency-Key header and the idempotency_key field differ");
        o.idempotency_key = header_key;
    }
    return o;
}

void write_string(JsonWriter& w, std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

static void write_opt(JsonWriter& w, const char* key, const std::optional<std::string>& v) {
    if (!v) return;
    w.Key(key);
    write_string(w, *v);
}

void write_place_item(JsonWriter& w, const OrderRequest& o) {
    w.StartObject();
    w.Key("client_id");
    write_string(w, o.client_id);
    w.Key("instrument");
    write_string(w, o.instrument);
    w.Key("side");
    write_string(w, o.side);
    w.Key("type");
    write_string(w, o.type);
    w.Key("quantity");
    write_string(w, o.quantity);
    write_opt(w, "price", o.price);
    write_opt(w, "time_in_force", o.time_in_force);
    write_opt(w, "idempotency_key", o.idempotency_key);
    if (o.post_only) {
        w.Key("post_only");
        w.Bool(*o.post_only);
    }
    write_opt(w, "stp", o.stp);
    write_opt(w, "display_quantity", o.display_quantity);
    write_opt(w, "stop_price", o.stop_price);
    w.EndObject();
}

void write_text(JsonWriter& w, const pqxx::field& f) {
    if (f.is_null())
        w.Null();
    else
        w.String(f.c_str(), static_cast<rapidjson::SizeType>(f.size()));
}

namespace {

// Hands a parsed document's events straight to the writer, every number as
// its text (kParseNumbersAsStringsFlag gives them as RawNumber), and counts
// the elements of an outermost array. No document is built: a Document's
// first allocation is a 64 KiB pool, per order answered.
struct NumbersAsStrings {
    JsonWriter& w;
    int depth = 0;
    bool top_array = false;
    std::size_t items = 0;

    void item() {
        if (depth == 1 && top_array) ++items;
    }
    bool Null() {
        item();
        return w.Null();
    }
    bool Bool(bool b) {
        item();
        return w.Bool(b);
    }
    // Numbers come as RawNumber with the flag; these are never called.
    bool Int(int) { return false; }
    bool Uint(unsigned) { return false; }
    bool Int64(int64_t) { return false; }
    bool Uint64(uint64_t) { return false; }
    bool Double(double) { return false; }
    bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
        item();
        return w.String(s, n);
    }
    bool String(const char* s, rapidjson::SizeType n, bool) {
        item();
        return w.String(s, n);
    }
    bool StartObject() {
        item();
        ++depth;
        return w.StartObject();
    }
    bool Key(const char* s, rapidjson::SizeType n, bool) { return w.Key(s, n); }
    bool EndObject(rapidjson::SizeType n) {
        --depth;
        return w.EndObject(n);
    }
    bool StartArray() {
        if (depth == 0) top_array = true;
        item();
        ++depth;
        return w.StartArray();
    }
    bool EndArray(rapidjson::SizeType n) {
        --depth;
        return w.EndArray(n);
    }
};

}  // namespace

std::size_t write_json_numbers_as_strings(JsonWriter& w, std::string_view json) {
    rapidjson::MemoryStream bytes(json.data(), json.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(bytes);
    NumbersAsStrings forward{w};
    rapidjson::Reader reader;
    // A malformed document stops the events where it breaks; the caller's half-written answer is
    // dropped with the exception.
    if (reader.Parse<rapidjson::kParseNumbersAsStringsFlag>(in, forward).IsError())
        throw std::runtime_error("the database returned malformed JSON");
    return forward.items;
}

std::size_t write_order(JsonWriter& w, const pqxx::row& row) {
    static const char* const names[] = {"order_id",
                                        "client_id",
                                        "instrument",
                                        "side",
                                        "type",
                                        "time_in_force",
                                        "price",
                                        "quantity",
                                        "filled_quantity",
                                        "remaining_quantity",
                                        "status",
                                        "reject_reason",
                                        "cancel_reason"};
    w.StartObject();
    for (int i = 0; i < kTrades; ++i) {
        w.Key(names[i]);
        write_text(w, row[i]);
    }
    w.Key("display_quantity");
    write_text(w, row[kDisplayQuantity]);
    w.Key("stop_price");
    write_text(w, row[kStopPrice]);
    w.Key("trades");
    std::size_t trades = 0;
    if (row[kTrades].is_null()) {
        w.StartArray();
        w.EndArray(0);
    } else {
        trades =
            write_json_numbers_as_strings(w, std::string_view(row[kTrades].c_str(), row[kTrades].size()));
    }
    w.Key("created_at");
    write_text(w, row[kCreatedAt]);
    w.Key("seq");
    if (row[kSeq].is_null())
        w.Null();
    else
        w.Int64(row[kSeq].as<int64_t>());
    w.EndObject();
    return trades;
}

std::string order_json(const pqxx::row& row, std::size_t* trades) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    std::size_t n = write_order(w, row);
    if (trades) *trades = n;
    return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace pgx
