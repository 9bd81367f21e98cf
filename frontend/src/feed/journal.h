// Journal entries (exchange.events rows) turned into the feed's JSON messages.
// Each message is serialised once and shared by every client that receives it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pgx::feed {

using Message = std::shared_ptr<const std::string>;

enum Channel : unsigned { kDeltas = 1u, kTrades = 2u, kOrders = 4u };
constexpr unsigned kAllChannels = kDeltas | kTrades | kOrders;

// One journal entry as read from the database; every column as text.
struct JournalRow {
    int64_t seq = 0;
    std::string kind;     // order_placed, order_rejected, order_cancelled, order_amended, order_triggered
    std::string payload;  // jsonb as text
    // The order's row, for what the payload of a cancel or amend omits. Side
    // and type never change; the rest is final once a cancel has happened.
    // Empty (price_null) for a placed, rejected or triggered (0.13) order,
    // whose payload has all of it, when read through extension 0.8's
    // exchange.journal_entries.
    std::string side, order_type, price, quantity, filled_quantity;
    bool price_null = true;
    int64_t created_us = 0;  // created_at, microseconds since the Unix epoch
};

// The messages one journal entry produces, one list per channel, built the
// first time a client is owed one of them (on whichever thread that is; once):
// an entry of an instrument nobody subscribes to is never turned into JSON.
// Copies share the messages.
class Entry {
public:
    Entry(std::string instrument, JournalRow row);
    int64_t seq() const { return seq_; }
    const Message& delta() const { return built().delta; }
    const std::vector<Message>& trades() const { return built().trades; }
    const Message& order() const { return built().order; }
    // The order's client_id: who may see order() with private orders.
    const std::string& client() const { return built().client; }
    // About the size of its messages (the row's text), for queue accounting before they exist.
    std::size_t estimated_bytes() const { return estimated_bytes_; }

private:
    struct Built {
        Message delta;
        std::vector<Message> trades;
        Message order;
        std::string client;
    };
    struct State;
    const Built& built() const;

    int64_t seq_;
    std::size_t estimated_bytes_;
    std::shared_ptr<State> state_;
};

// Consecutive entries of one instrument, in sequence order without gaps.
struct Batch {
    std::string instrument;
    std::vector<Entry> entries;
    std::size_t bytes = 0;  // the entries' estimated_bytes, for queue accounting
    int64_t last_created_us = 0;
};

// An entry whose messages are built on first use; a payload that is not valid
// JSON still yields the delta (with no changes) so that clients keep a
// gap-free sequence.
Entry make_entry(const std::string& instrument, JournalRow row);

// Adds a row's entry to a batch, keeping its byte count and the row's creation time.
void append(Batch& batch, const std::string& instrument, JournalRow row);

// The snapshot message from exchange.book_snapshot()'s jsonb text.
Message make_snapshot(const std::string& book_snapshot_json);

// {"type":"error","code":...,"message":...}
Message make_error(const std::string& code, const std::string& message);

Message make_text(std::string text);

namespace pg {
class Connection;
}

// Journal entries of one instrument with after < seq <= upto, oldest first,
// at most `limit` of them; throws pg::Error.
std::vector<JournalRow> read_journal(pg::Connection& conn, int instrument_id, int64_t after, int64_t upto,
                                     int limit);

}  // namespace pgx::feed
