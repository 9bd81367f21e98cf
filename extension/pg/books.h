// Shared-memory order books and their transactional use by one backend.
#pragma once

#include "pg_prelude.h"

namespace pgx::core {
class Book;
}

namespace pgx::pg {

// Settings (exchange.*), fixed at server start.
extern int max_instruments;
extern int max_orders_per_instrument;
extern int max_levels_per_instrument;
extern bool notify;

void DefineSettings();

// The oid of exchange.<name> (a table, index or sequence); ERROR 42P01 if
// there is none.
Oid ExchangeRelid(const char* name);
// Whether exchange.orders has 0.12's iceberg columns (display_quantity,
// display_lots, visible_lots): a database not yet updated has no icebergs.
bool OrdersHaveIcebergs();
bool OrdersHaveStops();  // 0.13
// The price in ticks of the instrument's last trade, from the journal (0: none), through its own SPI
// connection. fresh: read with a new snapshot (READ COMMITTED), not the statement's.
int64 LastTradeTicks(int32 instrument_id, bool fresh = false);
void InstallShmemHooks();
void RegisterTransactionCallbacks();

// Locks the instrument (ExclusiveLock, held to transaction end), loads its
// book on first use, records an undo mark for the current subtransaction and
// returns the book, ready to change. *locked_before (when given): whether
// this transaction held the lock already (a statement run since then has seen
// every committed change of the instrument's orders, and nobody else can make
// one until this transaction ends).
pgx::core::Book& EnsureBookForWrite(int32 instrument_id, bool* locked_before = nullptr);

// Waits for writers of the instrument to finish, loads its book on first use,
// and returns it for reading; call ReleaseBookForRead when done.
pgx::core::Book& EnsureBookForRead(int32 instrument_id);
void ReleaseBookForRead(int32 instrument_id);

// Before placing a stop order (the only command that compares a stop price
// with the last trade price on a book that may not know it: a book holds
// pending stops only if it read the price at its load, or placed them after
// this or a trade): a book of this transaction (EnsureBookForWrite) loaded
// without it and with no trade since reads it from the journal now (a walk
// back to its last trade).
void LearnLastTradePrice(pgx::core::Book& book);
// The last trade price a book acts on, in ticks (0: none). *known: whether
// the book has it (read from the journal, or a trade since it was loaded);
// if not, the journal's when from_journal (not stored: a reader), else 0.
int64 BookLastTradeTicks(int32 instrument_id, bool from_journal, bool* known);
// Flushes the WAL up to the last commit that changed the instrument's book,
// which early lock release (books.cpp) may not have flushed yet: before
// answering with what such a commit wrote.
void FlushLastCommit(int32 instrument_id);

// Throws the book away and loads it again from the tables; returns the
// number of resting orders loaded.
uint32 RebuildBook(int32 instrument_id);

// Per-instrument facts for exchange.stats(): false when the slot is unused.
struct SlotInfo {
    Oid dbid;
    int32 instrument_id;
    bool loaded;
    uint32 orders, levels, max_orders, max_levels;
    uint32 stops, stop_levels;  // pending stop orders and their stop prices (they share the slots)
    uint64 seq;
    uint64 bytes;
    uint64 published_seq;  // announced on exchange_events (publisher.h)
};
int SlotCount();
bool SlotInfoAt(int i, SlotInfo& out);

// For the NOTIFY publisher (publisher.h): the journal ranges of database db
// committed but not yet published, at most max of them; and a range sent.
struct PendingRange {
    int slot;
    int32 instrument_id;
    uint64 first, last;
    uint64 lsn;  // where the WAL must be flushed to before the range is announced
};
int PendingRanges(Oid db, PendingRange* out, int max);
void MarkPublished(int slot, uint64 last);

}  // namespace pgx::pg
