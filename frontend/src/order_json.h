// Orders in and out: the POST /orders body, the place_orders batch item and
// the order JSON built from an exchange.order_result row.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <pqxx/row>
#include <string>
#include <string_view>

namespace pgx {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

struct OrderRequest {
    std::string client_id;
    std::string instrument;
    std::string side;
    std::string type;
    std::string quantity;
    std::optional<std::string> price;
    std::optional<std::string> time_in_force;
    std::optional<std::string> idempotency_key;
    std::optional<bool> post_only;
    std::optional<std::string> stp;
    std::optional<std::string> display_quantity;  // an iceberg's shown part (extension 0.12)
    std::optional<std::string> stop_price;        // a stop order's trigger price (extension 0.13)
};

// Parses and type-checks a POST /orders body; `header_key` is the
// Idempotency-Key header. With an `authenticated_client` (the API key's
// client) the body's client_id may be omitted and must match when given.
// Throws ApiError 400 on any problem, 403 client_mismatch for another client.
OrderRequest parse_order_request(std::string_view body, const std::optional<std::string>& header_key,
                                 const std::optional<std::string>& authenticated_client);

// Appends the order as one item of exchange.place_orders' JSON array.
void write_place_item(JsonWriter& w, const OrderRequest& o);

// The select list that every order_result query uses, in the order order_json() reads. Before
// extension 0.12 order_result has no display_quantity, before 0.13 no stop_price: without
// `display_quantity` (`stop_price`) the list reads NULL in its place.
std::string order_columns(bool display_quantity, bool stop_price);

// Field positions in order_columns() that callers inspect.
enum OrderColumn {
    kOrderId = 0,
    kClientId,
    kInstrument,
    kSide,
    kType,
    kStatus = 10,
    kRejectReason,
    kTrades = 13,
    kCreatedAt,
    kSeq,
    kRejectMessage,
    kDisplayQuantity,
    kStopPrice,
    kOrderColumnCount  // a statement's own columns come after the list
};

// Both return (or store) the number of trades in the row.
std::size_t write_order(JsonWriter& w, const pqxx::row& row);
std::string order_json(const pqxx::row& row, std::size_t* trades = nullptr);

// Writes a text column as a JSON string, or null when SQL NULL.
void write_text(JsonWriter& w, const pqxx::field& f);
void write_string(JsonWriter& w, std::string_view s);

// Writes a JSON document (from jsonb) with every number turned into an exact
// decimal string; returns its length when it is an array.
std::size_t write_json_numbers_as_strings(JsonWriter& w, std::string_view json);

}  // namespace pgx
