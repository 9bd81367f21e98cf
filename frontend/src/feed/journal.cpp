#include "journal.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <mutex>
#include <utility>

#include "pg.h"

namespace pgx::feed {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using Value = rapidjson::Value;

void string_field(Writer& w, const char* name, const std::string& value) {
    w.Key(name);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

// A payload member as emitted: strings (and numbers, read as their exact
// text) become JSON strings, anything else null.
void text_field(Writer& w, const char* name, const Value& object) {
    w.Key(name);
    auto it = object.FindMember(name);
    if (it == object.MemberEnd() || !it->value.IsString()) {
        w.Null();
        return;
    }
    w.String(it->value.GetString(), it->value.GetStringLength());
}

std::string member_text(const Value& object, const char* name) {
    auto it = object.FindMember(name);
    if (it == object.MemberEnd() || !it->value.IsString()) return {};
    return std::string(it->value.GetString(), it->value.GetStringLength());
}

bool is_zero(const std::string& decimal) {
    if (decimal.empty()) return false;
    for (char c : decimal)
        if (c != '0' && c != '.' && c != '-' && c != '+') return false;
    return true;
}

// Integers from the payload arrive as their text (kParseNumbersAsStringsFlag):
// written back raw, they stay exact and are JSON numbers again.
void integer_field(Writer& w, const char* name, const Value& object) {
    w.Key(name);
    std::string text = member_text(object, name);
    if (text.empty() || text.find_first_not_of("-0123456789") != std::string::npos) {
        w.Null();
        return;
    }
    w.RawValue(text.c_str(), text.size(), rapidjson::kNumberType);
}

void header(Writer& w, const char* type, const std::string& instrument, int64_t seq) {
    w.StartObject();
    string_field(w, "type", type);
    string_field(w, "instrument", instrument);
    w.Key("seq");
    w.Int64(seq);
}

Message finish(rapidjson::StringBuffer& buffer) {
    return std::make_shared<const std::string>(buffer.GetString(), buffer.GetSize());
}

Message delta_message(const std::string& instrument, int64_t seq, const Value& payload) {
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    header(w, "delta", instrument, seq);
    w.Key("changes");
    w.StartArray();
    auto levels = payload.FindMember("levels");
    if (levels != payload.MemberEnd() && levels->value.IsArray()) {
        for (const auto& level : levels->value.GetArray()) {
            if (!level.IsObject()) continue;
            w.StartObject();
            text_field(w, "side", level);
            text_field(w, "price", level);
            std::string quantity = member_text(level, "quantity");
            // A removed level reads "0" whatever the lot size's scale.
            string_field(w, "quantity", is_zero(quantity) ? "0" : quantity);
            integer_field(w, "order_count", level);
            w.EndObject();
        }
    }
    w.EndArray();
    w.EndObject();
    return finish(buffer);
}

std::vector<Message> trade_messages(const std::string& instrument, const JournalRow& row,
                                    const std::string& side, const Value& payload) {
    std::vector<Message> out;
    auto trades = payload.FindMember("trades");
    if (trades == payload.MemberEnd() || !trades->value.IsArray()) return out;
    const std::string taker = member_text(payload, "order_id");
    for (const auto& trade : trades->value.GetArray()) {
        if (!trade.IsObject()) continue;
        rapidjson::StringBuffer buffer;
        Writer w(buffer);
        header(w, "trade", instrument, row.seq);
        text_field(w, "trade_id", trade);
        text_field(w, "price", trade);
        text_field(w, "quantity", trade);
        text_field(w, "maker_order_id", trade);
        string_field(w, "taker_order_id", taker);
        string_field(w, "taker_side", side);
        w.EndObject();
        out.push_back(finish(buffer));
    }
    return out;
}

// The payload's value for `name`, or the order row's when the payload has none.
void order_value(Writer& w, const char* name, const Value& payload, const std::string& fallback,
                 bool fallback_null) {
    w.Key(name);
    auto it = payload.FindMember(name);
    if (it != payload.MemberEnd() && it->value.IsString()) {
        w.String(it->value.GetString(), it->value.GetStringLength());
    } else if (it != payload.MemberEnd() || fallback_null) {
        w.Null();
    } else {
        w.String(fallback.c_str(), static_cast<rapidjson::SizeType>(fallback.size()));
    }
}

Message order_message(const std::string& instrument, const JournalRow& row, const std::string& side,
                      const std::string& type, const Value& payload) {
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    header(w, "order", instrument, row.seq);
    string_field(w, "event", row.kind.rfind("order_", 0) == 0 ? row.kind.substr(6) : row.kind);
    text_field(w, "order_id", payload);
    text_field(w, "client_id", payload);
    string_field(w, "side", side);
    string_field(w, "order_type", type);
    text_field(w, "status", payload);
    order_value(w, "price", payload, row.price, row.price_null);
    // A stop order's (extension 0.13): its placed, rejected, triggered and amended entries carry it (an
    // amend's: the new one after a move, 0.14, else its own); a cancel's payload does not (nor does the
    // order row the journal view joins then), nor does a plain order's.
    if (payload.HasMember("stop_price")) text_field(w, "stop_price", payload);
    // An iceberg's (0.12; a stop-limit one's too): its placed, rejected and triggered entries carry it.
    if (payload.HasMember("display_quantity")) text_field(w, "display_quantity", payload);
    order_value(w, "quantity", payload, row.quantity, false);
    order_value(w, "filled_quantity", payload, row.filled_quantity, false);
    // A cancel leaves nothing resting; its payload says only how much it removed.
    order_value(w, "remaining_quantity", payload, "0", row.kind != "order_cancelled");
    text_field(w, "reject_reason", payload);
    text_field(w, "cancel_reason", payload);
    if (row.kind == "order_cancelled") text_field(w, "cancelled_quantity", payload);
    w.EndObject();
    return finish(buffer);
}

}  // namespace

struct Entry::State {
    std::once_flag once;
    std::string instrument;
    JournalRow row;  // until the messages are built
    Built built;
};

Entry::Entry(std::string instrument, JournalRow row)
    : seq_(row.seq),
      // The messages repeat most of the payload, plus their own headers.
      estimated_bytes_(row.payload.size() + row.side.size() + row.order_type.size() + row.price.size() +
                       row.quantity.size() + row.filled_quantity.size() + 128),
      state_(std::make_shared<State>()) {
    state_->instrument = std::move(instrument);
    state_->row = std::move(row);
}

const Entry::Built& Entry::built() const {
    State& s = *state_;
    std::call_once(s.once, [&s] {
        const JournalRow& row = s.row;
        rapidjson::Document payload;
        payload.Parse<rapidjson::kParseNumbersAsStringsFlag>(row.payload.c_str(), row.payload.size());
        if (payload.HasParseError() || !payload.IsObject()) payload.SetObject();
        // A placed, rejected or triggered order's payload has its side and type (its
        // row is not read then, JournalRow); a cancel's or amend's comes from the row.
        std::string side = member_text(payload, "side");
        if (side.empty()) side = row.side;
        std::string type = member_text(payload, "type");
        if (type.empty()) type = row.order_type;
        s.built.delta = delta_message(s.instrument, row.seq, payload);
        s.built.trades = trade_messages(s.instrument, row, side, payload);
        s.built.order = order_message(s.instrument, row, side, type, payload);
        s.built.client = member_text(payload, "client_id");
        s.row = JournalRow{};  // not needed any more
    });
    return s.built;
}

Entry make_entry(const std::string& instrument, JournalRow row) {
    return Entry(instrument, std::move(row));
}

void append(Batch& batch, const std::string& instrument, JournalRow row) {
    batch.last_created_us = row.created_us;
    Entry entry = make_entry(instrument, std::move(row));
    batch.bytes += entry.estimated_bytes();
    batch.entries.push_back(std::move(entry));
}

Message make_snapshot(const std::string& book_snapshot_json) {
    // jsonb prints an object as {"key": ...}: splice the type in front of its
    // members rather than re-serialising (the decimals are already strings).
    if (book_snapshot_json.size() < 2 || book_snapshot_json.front() != '{') return nullptr;
    return std::make_shared<const std::string>("{\"type\":\"snapshot\", " + book_snapshot_json.substr(1));
}

Message make_error(const std::string& code, const std::string& message) {
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    string_field(w, "type", "error");
    string_field(w, "code", code);
    string_field(w, "message", message);
    w.EndObject();
    return finish(buffer);
}

Message make_text(std::string text) {
    return std::make_shared<const std::string>(std::move(text));
}

std::vector<JournalRow> read_journal(pg::Connection& conn, int instrument_id, int64_t after, int64_t upto,
                                     int limit) {
    // Extension 0.8's view reads an order's row only for the entries whose
    // payload lacks the order (cancels and amends: side and type, and the
    // final state of a cancelled order); before 0.8 exchange.journal() reads
    // it for every entry.
#define PGX_JOURNAL_COLUMNS \
    "SELECT seq, kind, payload::text, side, type, price::text, quantity::text, filled_quantity::text, created_us "
    static const char* const kViewSql = PGX_JOURNAL_COLUMNS
        "FROM exchange.journal_entries WHERE instrument_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4";
    static const char* const kFunctionSql = PGX_JOURNAL_COLUMNS "FROM exchange.journal($1, $2, $3, $4)";
#undef PGX_JOURNAL_COLUMNS
    const bool view = conn.has_relation("exchange.journal_entries");
    pg::Result r = conn.exec_prepared(
        view ? "pgx_read_journal" : "pgx_read_journal_0_7", view ? kViewSql : kFunctionSql,
        {std::to_string(instrument_id), std::to_string(after), std::to_string(upto), std::to_string(limit)});
    std::vector<JournalRow> rows(r.rows());
    for (int i = 0; i < r.rows(); ++i) {
        JournalRow& row = rows[i];
        row.seq = r.int64(i, 0);
        row.kind = r.text(i, 1);
        row.payload = r.text(i, 2);
        row.side = r.text(i, 3);
        row.order_type = r.text(i, 4);
        row.price_null = r.is_null(i, 5);
        row.price = r.text(i, 5);
        row.quantity = r.text(i, 6);
        row.filled_quantity = r.text(i, 7);
        row.created_us = r.int64(i, 8);
    }
    return rows;
}

}  // namespace pgx::feed
