// libFuzzer target: the frontend's request parsing and validation.
//
// The first byte chooses the mode by its value modulo 3 ('o', 'j' and 'w'
// are 0, 1 and 2, so seed files start with a readable letter):
//   o  POST /orders: "o" HEADER "\n" CLIENT "\n" BODY, where HEADER is the
//      Idempotency-Key header and CLIENT the authenticated client; a line
//      "=value" gives one, any other line none. parse_order_request must
//      accept exactly the bodies that a reference reading of the same JSON
//      finds valid, refuse the others with a code naming one of their actual
//      problems, and return the fields verbatim; write_place_item's output
//      must read back to the same fields, with no JSON number in it.
//   j  any body: JsonBody::parse, allow_only and every accessor on every
//      field against the reference reading; is_decimal_text against a regex.
//   w  WebSocket: lines, each a client message for Subscriptions::on_message
//      or, starting with '#', a step of a simulated journal and loader
//      ("#a" append entries, "#d" deliver batches, "#l" / "#L" / "#e" answer
//      the oldest load, all loads, the oldest with an error) or a session
//      setting ("#p" private order updates, "#cNAME" the API key's client).
//      Every message sent must be one JSON object; a client message gets
//      exactly one reply that matches it; an instrument's deltas follow its
//      snapshot without a gap or a repeat; with private order updates only
//      the client's own orders are sent.
// Any exception other than ApiError, or an ApiError outside kCodes, aborts.
//
// scripts/fuzz.sh builds it, with feed_fake_pg.cpp in place of the feed's
// libpq code, and runs it on tests/fuzz/http_corpus.
#include <rapidjson/document.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <initializer_list>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "feed_fake_pg.h"
#include "instruments.h"
#include "journal.h"
#include "json_body.h"
#include "loader.h"
#include "order_json.h"
#include "pg.h"
#include "reply.h"
#include "subscriptions.h"

namespace {

using pgx::ApiError;
using pgx::JsonBody;
using Kind = pgx::JsonScalar::Kind;
namespace feed = pgx::feed;

[[noreturn]] void Fail(const std::string& what) {
    std::fprintf(stderr, "http_fuzz: %s\n", what.c_str());
    std::abort();
}

// The message is only built when the check fails.
#define CHECK(cond, what)         \
    do {                          \
        if (!(cond)) Fail(what);  \
    } while (0)

// Printable form of arbitrary bytes for failure messages.
std::string Quote(std::string_view s) {
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size() && i < 300; ++i) {
        const unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out + (s.size() > 300 ? "\"..." : "\"");
}

std::string Join(const std::set<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out.empty() ? "none" : out;
}

// Every ApiError the parsing code may throw, with its status. 413 and 415 are
// answered by http_server.cpp before a body is parsed. A code missing here is
// a finding: review it, then add it.
const std::map<std::string, int, std::less<>> kCodes = {
    {"malformed_json", 400},    {"duplicate_field", 400},
    {"unknown_field", 400},     {"missing_field", 400},
    {"invalid_field", 400},     {"invalid_quantity", 400},
    {"invalid_price", 400},     {"conflicting_idempotency_key", 400},
    {"client_mismatch", 403},   {"invalid_display", 400},
    {"invalid_stop_price", 400}};

// Runs f; returns the ApiError it threw (checked against kCodes) or nothing.
template <class F>
std::optional<ApiError> Attempt(const std::string& call, F&& f) {
    try {
        f();
        return std::nullopt;
    } catch (const ApiError& e) {
        auto it = kCodes.find(e.code());
        CHECK(it != kCodes.end(), call + ": ApiError with an unknown code " + Quote(e.code()));
        CHECK(e.status() == it->second, call + ": " + e.code() + " with status " + std::to_string(e.status()));
        CHECK(*e.what() != '\0', call + ": " + e.code() + " without a message");
        return e;
    } catch (const std::exception& e) {
        Fail(call + " threw something other than ApiError: " + e.what());
    } catch (...) {
        Fail(call + " threw a non-exception");
    }
}

// An outcome against the expected one: an ApiError code, or a value.
template <class T>
void ExpectOutcome(const std::string& call, const std::optional<ApiError>& err, const std::optional<T>& got,
                   const char* want_code, const std::optional<T>& want) {
    if (want_code) {
        CHECK(err && err->code() == want_code,
              call + ": expected " + want_code + ", got " + (err ? err->code() : std::string("a value")));
        return;
    }
    CHECK(!err, call + ": unexpected " + (err ? err->code() : ""));
    CHECK(got == want, call + ": wrong value");
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF):
// what Beast lets through in a text frame.
bool IsUtf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char c = s[i];
        std::size_t n = 0;
        uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (s.size() - i <= n) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            const unsigned char cc = s[i + k];
            if ((cc & 0xc0) != 0x80) return false;
            cp = cp << 6 | (cc & 0x3f);
        }
        static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n + 1;
    }
    return true;
}

// Text PostgreSQL can store: strict UTF-8 without U+0000.
bool IsText(std::string_view s) { return IsUtf8(s) && s.find('\0') == std::string_view::npos; }

// The reference for is_decimal_text.
bool ReferenceDecimal(std::string_view s) {
    static const std::regex kDecimal(R"([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)");
    return s.size() <= 100 && std::regex_match(s.data(), s.data() + s.size(), kDecimal);
}

// One member of the root object as read by the reference (duplicates kept).
struct Member {
    std::string key;
    Kind kind = Kind::Null;
    std::string text;  // string value or number text
    bool boolean = false;
};

// The reference reading of a body: rapidjson's own grammar, every member kept.
struct Reading {
    bool valid = false;  // well-formed, valid UTF-8 (also after unescaping, no U+0000), root an object
    bool duplicates = false;
    std::vector<Member> members;

    // The first member called `key` unless it is null.
    const Member* present(std::string_view key) const {
        for (const Member& m : members)
            if (m.key == key) return m.kind == Kind::Null ? nullptr : &m;
        return nullptr;
    }
    std::optional<std::string> text(std::string_view key) const {
        const Member* m = present(key);
        return m ? std::optional<std::string>(m->text) : std::nullopt;
    }
};

// SAX handler that records the root object's members.
struct ReadingBuilder : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ReadingBuilder> {
    Reading& reading;
    int depth = 0;
    bool root_object = false;
    std::string key;
    explicit ReadingBuilder(Reading& r) : reading(r) {}

    bool member(Kind kind, std::string text = {}, bool b = false) {
        if (depth == 1) reading.members.push_back({key, kind, std::move(text), b});
        return true;
    }
    bool Null() { return member(Kind::Null); }
    bool Bool(bool b) { return member(Kind::Bool, {}, b); }
    bool RawNumber(const char* s, rapidjson::SizeType n, bool) { return member(Kind::Number, {s, n}); }
    // A decoded string that PostgreSQL cannot hold (\u0000, an unpaired surrogate) makes the body invalid.
    bool String(const char* s, rapidjson::SizeType n, bool) {
        if (!IsText({s, n})) return false;
        return member(Kind::String, {s, n});
    }
    bool Key(const char* s, rapidjson::SizeType n, bool) {
        if (!IsText({s, n})) return false;
        if (depth == 1) key.assign(s, n);
        return true;
    }
    bool StartObject() {
        root_object = root_object || depth == 0;
        return open();
    }
    bool StartArray() { return open(); }
    bool open() {
        member(Kind::Composite);
        return ++depth, true;
    }
    bool EndObject(rapidjson::SizeType) { return --depth, true; }
    bool EndArray(rapidjson::SizeType) { return --depth, true; }
};

Reading Read(std::string_view body) {
    Reading r;
    ReadingBuilder h(r);
    rapidjson::Reader reader;
    rapidjson::MemoryStream in(body.data(), body.size());
    const bool ok =
        !reader.Parse<rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseValidateEncodingFlag>(in, h)
             .IsError();
    r.valid = ok && h.root_object;
    std::set<std::string> keys;
    for (const Member& m : r.members) r.duplicates = !keys.insert(m.key).second || r.duplicates;
    return r;
}

// ---- POST /orders ----

constexpr std::string_view kOrderFields[] = {
    "client_id",     "instrument",      "side",      "type", "quantity",         "price",
    "time_in_force", "idempotency_key", "post_only", "stp",  "display_quantity", "stop_price"};
constexpr std::string_view kOrderTextFields[] = {"client_id",     "instrument",      "side", "type",
                                                 "time_in_force", "idempotency_key", "stp"};

template <std::size_t N>
bool Contains(const std::string_view (&list)[N], std::string_view s) {
    for (auto item : list)
        if (item == s) return true;
    return false;
}

struct OrderInput {
    std::optional<std::string> header;  // Idempotency-Key
    std::optional<std::string> client;  // authenticated client
    std::string_view body;
};

// "HEADER\nCLIENT\nBODY"; a line "=value" gives the value, any other line none.
OrderInput SplitOrderInput(std::string_view in) {
    OrderInput out;
    auto line = [&](std::optional<std::string>& value) {
        const std::size_t end = in.find('\n');
        const std::string_view l = in.substr(0, end);
        in = end == std::string_view::npos ? std::string_view() : in.substr(end + 1);
        if (!l.empty() && l[0] == '=') value = std::string(l.substr(1));
    };
    line(out.header);
    line(out.client);
    // An authenticated client is an api_keys row's client_id: always text PostgreSQL stored.
    if (out.client && !IsText(*out.client)) out.client.reset();
    out.body = in;
    return out;
}

// Every code the body deserves; empty when the order is valid.
std::set<std::string> OrderProblems(const Reading& r, const OrderInput& in) {
    if (!r.valid) return {"malformed_json"};
    std::set<std::string> p;
    if (r.duplicates) p.insert("duplicate_field");
    for (const Member& m : r.members) {
        if (!Contains(kOrderFields, m.key)) p.insert("unknown_field");
        if (m.kind == Kind::Null) continue;
        if (Contains(kOrderTextFields, m.key) && m.kind != Kind::String) p.insert("invalid_field");
        if (m.key == "quantity" || m.key == "price" || m.key == "display_quantity" || m.key == "stop_price") {
            if (m.kind != Kind::String && m.kind != Kind::Number)
                p.insert("invalid_field");
            else if (!ReferenceDecimal(m.text))
                p.insert(m.key == "quantity"           ? "invalid_quantity"
                         : m.key == "price"            ? "invalid_price"
                         : m.key == "display_quantity" ? "invalid_display"
                                                       : "invalid_stop_price");
        }
        if (m.key == "post_only" && m.kind != Kind::Bool) p.insert("invalid_field");
        if (m.key == "client_id" && in.client && m.kind == Kind::String && m.text != *in.client)
            p.insert("client_mismatch");
        if (m.key == "idempotency_key" && in.header && m.kind == Kind::String && m.text != *in.header)
            p.insert("conflicting_idempotency_key");
    }
    for (const char* required : {"instrument", "side", "type", "quantity"})
        if (!r.present(required)) p.insert("missing_field");
    if (!in.client && !r.present("client_id")) p.insert("missing_field");
    if (in.header && !IsText(*in.header)) p.insert("invalid_field");
    return p;
}

// write_place_item's object must read back to exactly the order's fields, numbers as strings.
void CheckPlaceItem(const pgx::OrderRequest& o) {
    rapidjson::StringBuffer buffer;
    pgx::JsonWriter w(buffer);
    pgx::write_place_item(w, o);
    const std::string json(buffer.GetString(), buffer.GetSize());
    CHECK(w.IsComplete(), "write_place_item left its object open: " + Quote(json));
    std::map<std::string, std::string> want = {{"client_id", o.client_id},
                                               {"instrument", o.instrument},
                                               {"side", o.side},
                                               {"type", o.type},
                                               {"quantity", o.quantity}};
    if (o.price) want["price"] = *o.price;
    if (o.time_in_force) want["time_in_force"] = *o.time_in_force;
    if (o.idempotency_key) want["idempotency_key"] = *o.idempotency_key;
    if (o.stp) want["stp"] = *o.stp;
    if (o.display_quantity) want["display_quantity"] = *o.display_quantity;
    if (o.stop_price) want["stop_price"] = *o.stop_price;
    CHECK(json.find('\0') == std::string::npos, "write_place_item wrote a raw NUL: " + Quote(json));
    // exchange.place_orders takes jsonb: valid UTF-8 and no U+0000.
    CHECK(IsUtf8(json), "an accepted order is not valid UTF-8 JSON: " + Quote(json));
    for (const auto& [key, value] : want)
        CHECK(value.find('\0') == std::string::npos, "an accepted order has a U+0000 in " + key);
    rapidjson::Document d;
    if (IsUtf8(json))
        d.Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
    else
        d.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
    CHECK(!d.HasParseError() && d.IsObject(), "write_place_item wrote invalid JSON: " + Quote(json));
    std::set<std::string> seen;
    for (const auto& m : d.GetObject()) {
        const std::string key(m.name.GetString(), m.name.GetStringLength());
        CHECK(seen.insert(key).second, "write_place_item wrote " + key + " twice: " + Quote(json));
        CHECK(!m.value.IsNumber(), "write_place_item wrote a JSON number: " + Quote(json));
        if (key == "post_only") {
            CHECK(o.post_only && m.value.IsBool() && m.value.GetBool() == *o.post_only,
                  "write_place_item: wrong post_only in " + Quote(json));
            continue;
        }
        auto it = want.find(key);
        CHECK(it != want.end(), "write_place_item wrote an unexpected " + Quote(key) + ": " + Quote(json));
        CHECK(m.value.IsString() && std::string(m.value.GetString(), m.value.GetStringLength()) == it->second,
              "write_place_item: " + key + " does not read back: " + Quote(json));
    }
    CHECK(seen.size() == want.size() + (o.post_only ? 1 : 0), "write_place_item left a field out: " + Quote(json));
}

void FuzzOrder(std::string_view input) {
    const OrderInput in = SplitOrderInput(input);
    const Reading r = Read(in.body);
    const std::set<std::string> problems = OrderProblems(r, in);
    pgx::OrderRequest o;
    auto err = Attempt("parse_order_request",
                       [&] { o = pgx::parse_order_request(in.body, in.header, in.client); });
    if (err) {
        CHECK(problems.count(err->code()),
              "parse_order_request: " + err->code() + " for a body whose problems are: " + Join(problems));
        return;
    }
    CHECK(problems.empty(), "parse_order_request accepted an order with problems: " + Join(problems));
    CHECK(o.client_id == (in.client ? *in.client : *r.text("client_id")),
          "client_id " + Quote(o.client_id) + " is neither the authenticated client nor the body's");
    CHECK(o.instrument == *r.text("instrument"), "instrument differs from the body's");
    CHECK(o.side == *r.text("side"), "side differs from the body's");
    CHECK(o.type == *r.text("type"), "type differs from the body's");
    CHECK(o.quantity == *r.text("quantity"), "quantity differs from the body's");
    CHECK(o.price == r.text("price"), "price differs from the body's");
    CHECK(pgx::is_decimal_text(o.quantity), "quantity " + Quote(o.quantity) + " is not decimal text");
    CHECK(!o.price || pgx::is_decimal_text(*o.price), "price " + Quote(*o.price) + " is not decimal text");
    CHECK(o.time_in_force == r.text("time_in_force"), "time_in_force differs from the body's");
    CHECK(o.stp == r.text("stp"), "stp differs from the body's");
    CHECK(o.display_quantity == r.text("display_quantity"), "display_quantity differs from the body's");
    CHECK(!o.display_quantity || pgx::is_decimal_text(*o.display_quantity),
          "display_quantity " + Quote(*o.display_quantity) + " is not decimal text");
    CHECK(o.stop_price == r.text("stop_price"), "stop_price differs from the body's");
    CHECK(!o.stop_price || pgx::is_decimal_text(*o.stop_price),
          "stop_price " + Quote(*o.stop_price) + " is not decimal text");
    CHECK(o.idempotency_key == (in.header ? in.header : r.text("idempotency_key")),
          "idempotency_key is neither the header nor the body's");
    const Member* post_only = r.present("post_only");
    CHECK(o.post_only == (post_only ? std::optional<bool>(post_only->boolean) : std::nullopt),
          "post_only differs from the body's");
    CheckPlaceItem(o);
}

// ---- any body ----

void CheckAllowOnly(const JsonBody& b, const Reading& r, std::initializer_list<std::string_view> allowed) {
    bool all_known = true;
    for (const Member& m : r.members) {
        bool known = false;
        for (auto a : allowed) known = known || a == m.key;
        all_known = all_known && known;
    }
    auto err = Attempt("allow_only", [&] { b.allow_only(allowed); });
    CHECK(all_known ? !err : err && err->code() == "unknown_field",
          std::string("allow_only: ") + (all_known ? "refused a body of allowed fields" : "let an unknown field pass"));
}

void CheckAccessors(const JsonBody& b, const Reading& r, const std::string& name) {
    const Member* m = r.present(name);
    const std::string q = Quote(name);
    CHECK(b.has(name) == (m != nullptr), "has(" + q + ") is wrong");
    for (const bool required : {false, true}) {
        const char* absent = required ? "missing_field" : nullptr;
        std::optional<std::string> got;
        auto err = Attempt("text(" + q + ")", [&] { got = b.text(name, required); });
        if (!m)
            ExpectOutcome<std::string>("text(" + q + ")", err, got, absent, std::nullopt);
        else if (m->kind == Kind::String)
            ExpectOutcome<std::string>("text(" + q + ")", err, got, nullptr, m->text);
        else
            ExpectOutcome<std::string>("text(" + q + ")", err, got, "invalid_field", std::nullopt);

        got.reset();
        err = Attempt("decimal(" + q + ")", [&] { got = b.decimal(name, "invalid_price", required); });
        CHECK(!got || pgx::is_decimal_text(*got), "decimal(" + q + ") returned " + Quote(*got));
        if (!m)
            ExpectOutcome<std::string>("decimal(" + q + ")", err, got, absent, std::nullopt);
        else if (m->kind != Kind::String && m->kind != Kind::Number)
            ExpectOutcome<std::string>("decimal(" + q + ")", err, got, "invalid_field", std::nullopt);
        else if (!ReferenceDecimal(m->text))
            ExpectOutcome<std::string>("decimal(" + q + ")", err, got, "invalid_price", std::nullopt);
        else
            ExpectOutcome<std::string>("decimal(" + q + ")", err, got, nullptr, m->text);
    }
    std::optional<bool> flag;
    auto err = Attempt("boolean(" + q + ")", [&] { flag = b.boolean(name); });
    if (!m)
        ExpectOutcome<bool>("boolean(" + q + ")", err, flag, nullptr, std::nullopt);
    else if (m->kind == Kind::Bool)
        ExpectOutcome<bool>("boolean(" + q + ")", err, flag, nullptr, m->boolean);
    else
        ExpectOutcome<bool>("boolean(" + q + ")", err, flag, "invalid_field", std::nullopt);
}

void FuzzBody(std::string_view body) {
    CHECK(pgx::is_decimal_text(body) == ReferenceDecimal(body), "is_decimal_text is wrong for " + Quote(body));
    CHECK(pgx::is_valid_text(body) == IsText(body), "is_valid_text is wrong for " + Quote(body));
    const Reading r = Read(body);
    std::optional<JsonBody> b;
    auto err = Attempt("JsonBody::parse", [&] { b = JsonBody::parse(body); });
    const char* want = !r.valid ? "malformed_json" : r.duplicates ? "duplicate_field" : nullptr;
    if (want) {
        CHECK(err && err->code() == want, std::string("JsonBody::parse: expected ") + want + ", got " +
                                              (err ? err->code() : std::string("a body")));
        return;
    }
    CHECK(!err, "JsonBody::parse refused a valid object: " + (err ? err->code() : ""));
    CheckAllowOnly(*b, r, {});
    CheckAllowOnly(*b, r, {"client_id"});
    CheckAllowOnly(*b, r, {"instrument"});
    CheckAllowOnly(*b, r, {"client_id", "instrument"});                       // DELETE /orders
    CheckAllowOnly(*b, r, {"client_id", "quantity", "price", "stop_price"});  // PATCH /orders/{id}
    CheckAllowOnly(*b, r,
                   {"client_id", "instrument", "side", "type", "quantity", "price", "time_in_force",
                    "idempotency_key", "post_only", "stp", "display_quantity", "stop_price"});
    std::set<std::string> names = {"", "quantity", "price", "client_id", "post_only", "absent"};
    for (const Member& m : r.members)
        if (names.size() < 40) names.insert(m.key);
    for (const auto& name : names) CheckAccessors(*b, r, name);
}

// ---- WebSocket ----

std::string Str(const rapidjson::Value& v) {
    return v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : std::string();
}

// The first member called `name` (which may hold a NUL), or nullptr.
const rapidjson::Value* Find(const rapidjson::Value& object, std::string_view name) {
    if (!object.IsObject()) return nullptr;
    for (const auto& m : object.GetObject())
        if (std::string_view(m.name.GetString(), m.name.GetStringLength()) == name) return &m.value;
    return nullptr;
}

// A string member's value; empty when absent or not a string.
std::string StrOf(const rapidjson::Value& object, std::string_view name) {
    const rapidjson::Value* v = Find(object, name);
    return v ? Str(*v) : std::string();
}

constexpr const char* kJournalSymbols[] = {"BTC-USD", "ETH-USD", "X", "NEW"};  // NEW: not in the table
constexpr const char* kChannels[] = {"orderbook_deltas", "trades", "orders"};
constexpr int64_t kMaxReplay = 6;
constexpr std::size_t kMaxHeldBytes = 8 << 10;

bool Known(const std::string& symbol) {
    for (const char* s : feed::pg::kFakeInstruments)
        if (symbol == s) return true;
    return false;
}

bool InJournal(const std::string& symbol) {
    for (const char* s : kJournalSymbols)
        if (symbol == s) return true;
    return false;
}

// Journal entry `seq` of an instrument, in one of the shapes the extension writes.
feed::JournalRow JournalEntry(int64_t seq) {
    feed::JournalRow row;
    row.seq = seq;
    row.created_us = seq;
    row.side = "buy";
    row.order_type = "limit";
    row.price = "100.5";
    row.price_null = false;
    row.quantity = "2";
    row.filled_quantity = "0.5";
    // Orders of two clients: alice's are the even sequences.
    const std::string id = "\"order_id\": \"00000000-0000-0000-0000-" + std::to_string(100000000000 + seq) +
                           "\", \"client_id\": \"" + (seq % 2 ? "bob" : "alice") + "\"";
    switch (seq % 4) {
        case 0:
            row.kind = "order_placed";
            row.payload = "{" + id +
                          ", \"levels\": [{\"side\": \"buy\", \"price\": 100.5, \"quantity\": 1.5, "
                          "\"order_count\": 2}, {\"side\": \"sell\", \"price\": 101, \"quantity\": 0.000, "
                          "\"order_count\": 0}], \"status\": \"partially_filled\", \"trades\": [{\"price\": 101, "
                          "\"quantity\": 0.5, \"trade_id\": 7, \"maker_order_id\": \"m\"}, {\"price\": 101, "
                          "\"quantity\": 1e-3, \"trade_id\": 8, \"maker_order_id\": \"n\"}], "
                          "\"filled_quantity\": 0.5, \"remaining_quantity\": 1.5}";
            break;
        case 1:
            row.kind = "order_cancelled";
            row.payload = "{" + id +
                          ", \"levels\": [{\"side\": \"buy\", \"price\": 100.5, \"quantity\": 0, "
                          "\"order_count\": 0}], \"status\": \"cancelled\", \"cancel_reason\": \"user\", "
                          "\"cancelled_quantity\": 1.5}";
            break;
        case 2:
            // A stop order's run (extension 0.13): side, type and price in the payload, none in the row.
            row.kind = "order_triggered";
            row.side = row.order_type = row.price = row.quantity = row.filled_quantity = "";
            row.price_null = true;
            row.payload = "{\"side\": \"sell\", \"type\": \"market\", \"price\": null, " + id +
                          ", \"levels\": [{\"side\": \"buy\", \"price\": 99, \"quantity\": 0.000, "
                          "\"order_count\": 0}], \"status\": \"filled\", \"trades\": [{\"price\": 99, "
                          "\"quantity\": 1.0, \"trade_id\": \"t\", \"maker_order_id\": \"m\"}], "
                          "\"quantity\": 1, \"stop_price\": 99.50, \"cancel_reason\": null, "
                          "\"reject_reason\": null, \"stp_cancelled\": [], \"filled_quantity\": 1.0, "
                          "\"remaining_quantity\": 0.0}";
            break;
        default:
            row.kind = "order_rejected";
            row.payload = "{" + id + ", \"levels\": [], \"status\": \"rejected\", \"reject_reason\": \"post_only\"}";
            break;
    }
    return row;
}

// A Subscriptions object between a simulated journal and loader, with the
// rules its output must follow.
class FeedSession {
public:
    FeedSession() : subscriptions_(instruments_, kMaxHeldBytes) {
        feed::pg::Connection conn("", "http_fuzz");
        instruments_.reload(conn);
    }

    // Runs one input line; false once the client would be disconnected.
    bool step(std::string_view line) {
        if (line.empty() || line[0] != '#') return message(std::string(line));
        const std::string_view args = line.size() > 2 ? line.substr(2) : std::string_view();
        switch (line.size() > 1 ? line[1] : 0) {
            case 'a': return append(args);
            case 'd': return deliver(args);
            case 'l': return answer(false);
            case 'L':
                while (!loads_.empty()) answer(false);
                return true;
            case 'e': return answer(true);
            case 'p':
                private_orders_ = true;
                subscriptions_.private_orders(true);
                return true;
            case 'c':
                client_ = std::string(args);
                subscriptions_.set_client(*client_);
                return true;
            default: return true;
        }
    }

private:
    // Where an instrument's delta stream stands for the client.
    struct Stream {
        enum State { kNone, kAny, kNext } state = kNone;  // none allowed, any next, `next` next
        int64_t next = 0;
        int64_t last_order = 0;  // order messages: strictly increasing
    };

    bool message(const std::string& text) {
        utf8_ = utf8_ && IsUtf8(text);
        const int errors = subscriptions_.errors();
        feed::Subscriptions::Effects fx;
        try {
            subscriptions_.on_message(text, fx);
        } catch (const std::exception& e) {
            Fail("on_message threw " + std::string(e.what()) + " for " + Quote(text));
        } catch (...) {
            Fail("on_message threw a non-exception for " + Quote(text));
        }
        CHECK(fx.send.size() == 1,
              "on_message answered " + std::to_string(fx.send.size()) + " messages to " + Quote(text));
        rapidjson::Document reply;
        Parse(fx.send[0], reply);
        const std::string type = StrOf(reply, "type");
        rapidjson::Document req;
        req.Parse<rapidjson::kParseNumbersAsStringsFlag>(text.c_str(), text.size());
        const rapidjson::Value* req_type = req.HasParseError() ? nullptr : Find(req, "type");
        const std::string kind = req_type ? Str(*req_type) : "";
        const std::string expected_error = req.HasParseError()              ? "invalid_json"
                                           : !req_type || !req_type->IsString() ? "invalid_message"
                                           : kind == "ping" || kind == "subscribe" || kind == "unsubscribe"
                                               ? ""
                                               : "unknown_type";
        CHECK(subscriptions_.errors() == errors + (type == "error"), "errors() does not count error replies");
        if (type == "error") {
            const std::string code = StrOf(reply, "code");
            CHECK(fx.loads.empty(), "an error reply came with loads");
            if (!expected_error.empty()) {
                CHECK(code == expected_error, "on_message: " + code + " instead of " + expected_error + " for " +
                                                  Quote(text));
            } else {
                CHECK(kind != "ping" && (code == "invalid_channels" || code == "invalid_instruments" ||
                                         code == "invalid_from_seq" || code == "unauthorized"),
                      "on_message: error " + Quote(code) + " for " + Quote(text));
                CHECK(code != "unauthorized" || (private_orders_ && !client_),
                      "unauthorized although the session may see orders: " + Quote(text));
            }
            return true;
        }
        CHECK(expected_error.empty(), "on_message: " + type + " instead of " + expected_error + " for " + Quote(text));
        if (type == "pong") {
            CHECK(kind == "ping" && fx.loads.empty(), "a pong for " + Quote(text));
            return true;
        }
        CHECK(type == kind + "d", "reply " + Quote(type) + " to " + Quote(text));
        acknowledged(req, reply, kind == "subscribe");
        CHECK(kind == "subscribe" || fx.loads.empty(), "unsubscribe asked for loads");
        // A replay exactly for the instruments that from_seq names.
        const rapidjson::Value* from = Find(req, "from_seq");
        for (const auto& load : fx.loads)
            CHECK((load.kind == feed::LoadKind::kReplay) == (from && Find(*from, load.instrument) != nullptr),
                  "from_seq and the loads disagree for " + Quote(text));
        return follow(fx, 1);
    }

    // Checks an acknowledgement against its request and follows the client's delta subscriptions.
    void acknowledged(const rapidjson::Document& req, const rapidjson::Document& ack, bool subscribing) {
        std::set<std::string> want, got;
        const rapidjson::Value* channels = Find(req, "channels");
        if (channels && channels->IsArray()) {
            for (const auto& c : channels->GetArray()) want.insert(Str(c));
        } else {
            CHECK(!channels && !subscribing, "acknowledged a request without a channel list");
            want = {kChannels[0], kChannels[1], kChannels[2]};
        }
        const rapidjson::Value* ack_channels = Find(ack, "channels");
        CHECK(ack_channels && ack_channels->IsArray(), "acknowledgement without channels");
        for (const auto& c : ack_channels->GetArray()) got.insert(Str(c));
        CHECK(got == want, "acknowledged channels " + Join(got) + " for " + Join(want));
        const rapidjson::Value* instruments = Find(req, "instruments");
        const rapidjson::Value* ack_instruments = Find(ack, "instruments");
        CHECK(ack_instruments, "acknowledgement without instruments");
        std::vector<std::string> symbols;
        if (!instruments || instruments->IsNull()) {
            CHECK(ack_instruments->IsNull(), "acknowledged instruments for a request for all");
        } else {
            CHECK(ack_instruments->IsArray() && ack_instruments->Size() == instruments->Size(),
                  "acknowledged another instrument list");
            for (rapidjson::SizeType i = 0; i < instruments->Size(); ++i) {
                symbols.push_back(Str((*instruments)[i]));
                CHECK(Str((*ack_instruments)[i]) == symbols.back(),
                      "acknowledged " + Quote(Str((*ack_instruments)[i])) + " for " + Quote(symbols.back()));
            }
        }
        CHECK(!got.count("orders") || !subscribing || !private_orders_ || client_,
              "subscribed to private order updates without an API key");
        if (!got.count(kChannels[0])) return;
        const bool all = !instruments || instruments->IsNull();
        if (subscribing) {
            delta_wildcard_ = delta_wildcard_ || all;
            delta_subscribed_.insert(symbols.begin(), symbols.end());
            return;
        }
        if (all) {
            delta_wildcard_ = false;
            delta_subscribed_.clear();
            for (auto& [symbol, stream] : streams_) stream.state = Stream::kNone;
        }
        for (const auto& s : symbols) {
            delta_subscribed_.erase(s);
            streams_[s].state = Stream::kNone;
        }
    }

    // "#a" [instrument] [count]: the journal grows.
    bool append(std::string_view args) {
        const char* symbol = kJournalSymbols[args.empty() ? 0 : static_cast<unsigned char>(args[0]) % 4];
        newest_[symbol] += args.size() > 1 ? 1 + static_cast<unsigned char>(args[1]) % 4 : 1;
        return true;
    }

    // "#d" [instrument]: the LISTEN thread hands over what the journal has gained.
    bool deliver(std::string_view args) {
        for (std::size_t i = 0; i < 4; ++i) {
            if (!args.empty() && static_cast<std::size_t>(static_cast<unsigned char>(args[0]) % 4) != i) continue;
            const std::string symbol = kJournalSymbols[i];
            if (delivered_[symbol] == newest_[symbol]) continue;
            auto batch = std::make_shared<feed::Batch>();
            batch->instrument = symbol;
            while (delivered_[symbol] < newest_[symbol]) {
                const int64_t seq = ++delivered_[symbol];
                feed::append(*batch, symbol, JournalEntry(seq));
            }
            feed::Subscriptions::Effects fx;
            subscriptions_.on_batch(batch, fx);
            if (!follow(fx)) return false;
        }
        return true;
    }

    // The loader answers the oldest request as loader.cpp would (or fails it).
    bool answer(bool fail) {
        if (loads_.empty()) return true;
        const feed::LoadRequest q = loads_.front();
        loads_.pop_front();
        feed::LoadResult r;
        r.instrument = q.instrument;
        r.token = q.token;
        r.kind = q.kind;
        const int64_t newest = newest_[q.instrument];
        Stream& stream = streams_[q.instrument];
        if (fail || !Known(q.instrument)) {
            r.error_code = fail ? "load_failed" : "unknown_instrument";
            r.error_message = "cannot load " + q.instrument;
        } else if (q.kind == feed::LoadKind::kReplay && q.from_seq <= newest && newest - q.from_seq <= kMaxReplay) {
            r.seq = newest;
            for (int64_t s = q.from_seq + 1; s <= newest; ++s)
                r.entries.push_back(feed::make_entry(q.instrument, JournalEntry(s)));
            // The client restarts from its own position: any next delta, then no gaps.
            stream.state = Stream::kAny;
            stream.last_order = 0;
        } else if (q.kind != feed::LoadKind::kCheck) {
            r.kind = feed::LoadKind::kSnapshot;
            r.seq = newest;
            r.snapshot = feed::make_snapshot("{\"seq\": " + std::to_string(newest) +
                                             ", \"asks\": [], \"bids\": [{\"price\": \"100.5\", \"quantity\": "
                                             "\"1.5\", \"order_count\": 2}], \"instrument\": \"" +
                                             q.instrument + "\"}");
        }
        feed::Subscriptions::Effects fx;
        subscriptions_.on_loaded(r, fx);
        if (!r.error_code.empty() && !fx.send.empty()) {
            CHECK(fx.send.size() == 1, "one failed load, several messages");
            stream.state = Stream::kNone;  // the subscription is gone
        }
        return follow(fx);
    }

    // Checks the messages of fx from `first` on, queues its loads; false on overflow.
    bool follow(const feed::Subscriptions::Effects& fx, std::size_t first = 0) {
        for (std::size_t i = first; i < fx.send.size(); ++i) {
            const feed::Message& m = fx.send[i];
            rapidjson::Document d;
            Parse(m, d);
            const std::string type = StrOf(d, "type");
            const std::string symbol = StrOf(d, "instrument");
            const rapidjson::Value* seq = Find(d, "seq");
            if (type == "snapshot" || type == "delta" || type == "order" || type == "trade")
                CHECK(seq && seq->IsInt64() && InJournal(symbol), "bad header: " + Quote(*m));
            Stream& stream = streams_[symbol];
            if (type == "snapshot") {
                stream.state = Stream::kNext;
                stream.next = seq->GetInt64() + 1;
            } else if (type == "delta") {
                CHECK(delta_wildcard_ || delta_subscribed_.count(symbol), "a delta without a subscription: " + Quote(*m));
                CHECK(stream.state != Stream::kNone, "a delta before its snapshot: " + Quote(*m));
                CHECK(stream.state == Stream::kAny || seq->GetInt64() == stream.next,
                      "delta " + std::to_string(seq->GetInt64()) + " of " + symbol + " where " +
                          std::to_string(stream.next) + " was due");
                stream.state = Stream::kNext;
                stream.next = seq->GetInt64() + 1;
            } else if (type == "order") {
                CHECK(!private_orders_ || (client_ && StrOf(d, "client_id") == *client_),
                      "another client's order update: " + Quote(*m));
                CHECK(seq->GetInt64() > stream.last_order, "order update " + std::to_string(seq->GetInt64()) +
                                                                " of " + symbol + " repeated or out of order");
                stream.last_order = seq->GetInt64();
            } else if (type == "error") {
                const std::string code = StrOf(d, "code");
                CHECK(code == "unknown_instrument" || code == "load_failed", "error " + Quote(code) + " from a load");
            } else {
                CHECK(type == "trade", "unexpected message " + Quote(*m));
            }
        }
        for (const auto& load : fx.loads) {
            CHECK(load.token > last_token_, "a load token was reused");
            last_token_ = load.token;
            loads_.push_back(load);
        }
        return !fx.overflow;
    }

    // A sent message must be one JSON object with a string type (valid UTF-8
    // as long as everything the client sent was).
    void Parse(const feed::Message& m, rapidjson::Document& d) const {
        CHECK(m, "a null message was sent");
        CHECK(m->find('\0') == std::string::npos, "a message with a raw NUL: " + Quote(*m));
        if (utf8_)
            d.Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseValidateEncodingFlag>(m->data(), m->size());
        else
            d.Parse<rapidjson::kParseFullPrecisionFlag>(m->data(), m->size());
        CHECK(!d.HasParseError() && d.IsObject(), "sent invalid JSON: " + Quote(*m));
        CHECK(Find(d, "type") && Find(d, "type")->IsString(), "sent a message without a type: " + Quote(*m));
    }

    feed::Instruments instruments_;
    feed::Subscriptions subscriptions_;
    std::map<std::string, int64_t> newest_, delivered_;  // the journal and what the session has seen of it
    std::deque<feed::LoadRequest> loads_;
    std::map<std::string, Stream> streams_;
    std::set<std::string> delta_subscribed_;
    bool delta_wildcard_ = false;
    bool private_orders_ = false;
    std::optional<std::string> client_;
    uint64_t last_token_ = 0;
    bool utf8_ = true;
};

void FuzzFeed(std::string_view input) {
    FeedSession session;
    while (!input.empty()) {
        const std::size_t end = input.find('\n');
        if (!session.step(input.substr(0, end))) return;
        input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 3) {
        case 0: FuzzOrder(rest); break;
        case 1: FuzzBody(rest); break;
        default: FuzzFeed(rest); break;
    }
    return 0;
}
