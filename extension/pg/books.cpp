// Shared memory, locks and undo for the order books.
//
// Memory. At server start (shmem_request_hook) we reserve one region holding
// a directory of exchange.max_instruments slots followed by as many book
// regions, each sized for exchange.max_orders_per_instrument orders and
// exchange.max_levels_per_instrument levels (see pgx::core::Book). A slot is
// keyed by (database, exchange.instruments table oid, instrument id), so two
// databases, or a re-created extension, never share a book. The directory is
// guarded by one LWLock (tranche "exchange"); a book's contents are guarded
// by the instrument's heavyweight lock.
//
// Locking. A writer takes ExclusiveLock on the object (instruments table oid,
// instrument id) through LockDatabaseObject and keeps it to transaction end,
// so nobody reads or builds on uncommitted book state, and PostgreSQL's
// deadlock detector sees transactions that touch several instruments. With
// another transaction waiting, "transaction end" comes before the commit's
// WAL flush (early lock release, at OnXact). Readers take ShareLock for the
// duration of one read.
//
// Undo. Each backend keeps, per book it touched, a stack of (subtransaction
// id, undo mark). The first change in a subtransaction pushes a mark;
// subtransaction abort rolls the book back to the oldest mark at or above it;
// subtransaction commit hands its mark to the parent; top-level abort rolls
// back everything and top-level commit forgets the undo log. The callbacks
// run before the lock is released, so the book is restored before anybody can
// see it. A backend that dies mid-transaction takes the postmaster through
// crash recovery, which re-creates shared memory: books reload from the
// tables on first use.
//
// Loading. On first use after start (or after rebuild) the book is formatted
// and filled from exchange.orders in priority order, with the sequence
// restored from exchange.events. Loading is not transactional: it reflects
// committed rows, read under the exclusive lock.
// The pure core first: its guard refuses to follow PostgreSQL headers.
#include "book.h"

#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "books.h"
#include "publisher.h"
#include "wal_prealloc.h"
#include "writeback.h"

extern "C" {
#include "access/xlog.h"
#include "replication/syncrep.h"
#include "utils/inval.h"
#include "utils/resowner.h"
}

namespace pgx::pg {

int max_instruments = 8;
int max_orders_per_instrument = 1000000;
int max_levels_per_instrument = 100000;
bool notify = true;
bool early_lock_release = true;

namespace {

using core::Book;

constexpr uint32 kSlotFree = 0;
constexpr uint32 kSlotAssigned = 1;  // claimed, not (completely) loaded
constexpr uint32 kSlotReady = 2;

struct Slot {
    Oid dbid;
    Oid relid;
    int32 instrument_id;
    uint32 state;
    // The journal's last committed sequence, written at each commit under the
    // instrument lock, and the last one the NOTIFY publisher announced.
    pg_atomic_uint64 committed_seq;
    pg_atomic_uint64 published_seq;
    // The end of the last writer's commit record, written before
    // committed_seq: with early lock release (OnXact) it may not be flushed
    // yet, and whoever shows the book (a reader, the publisher) flushes the
    // WAL up to it first.
    pg_atomic_uint64 commit_lsn;
    // Whether the book holds the journal's last trade price. A book is loaded
    // without it unless it has pending stop orders (reading it walks the
    // journal back to its last trade); the first stop placed before the
    // book's own first trade reads it (LearnLastTradePrice). Written and
    // read under the instrument's exclusive lock.
    bool last_price_read;
};

struct Shared {
    LWLock* lock;
    int32 slots_count;
    uint64 book_bytes;
    uint64 books_offset;
    Slot slots[FLEXIBLE_ARRAY_MEMBER];
};

Shared* shared = nullptr;
shmem_request_hook_type prev_shmem_request = nullptr;
shmem_startup_hook_type prev_shmem_startup = nullptr;

// What this backend holds for one slot.
struct Local {
    std::unique_ptr<Book> book;
    std::vector<std::pair<SubTransactionId, size_t>> marks;  // undo marks, innermost last
    int32 instrument_id = 0;
    uint64 seq_at_start = 0;  // the book's sequence when this transaction first touched it
    bool touched = false;     // listed in `touched` for this transaction
    bool changed() const { return book->seq() != seq_at_start; }  // its journal, in this transaction
};
std::vector<Local> locals;
std::vector<int> touched;  // slots with marks in the current transaction
bool publisher_claimed = false;  // this transaction's ranges go out through the publisher
bool notified_inline = false;    // this transaction sent its own notifications

core::BookConfig Config() {
    return core::BookConfig{static_cast<uint32>(max_orders_per_instrument),
                            static_cast<uint32>(max_levels_per_instrument)};
}

Size BookBytes() { return Book::required_bytes(Config()); }

Size HeaderBytes() {
    return TYPEALIGN(64, offsetof(Shared, slots) + sizeof(Slot) * static_cast<Size>(max_instruments));
}

Size TotalBytes() { return add_size(HeaderBytes(), mul_size(BookBytes(), max_instruments)); }

void RequestShmem() {
    if (prev_shmem_request) prev_shmem_request();
    RequestAddinShmemSpace(TotalBytes());
    RequestAddinShmemSpace(PublisherShmemBytes());
    RequestNamedLWLockTranche("exchange", 1);
    RequestNamedLWLockTranche("exchange publisher", 1);
}

void StartupShmem() {
    if (prev_shmem_startup) prev_shmem_startup();
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared = static_cast<Shared*>(ShmemInitStruct("exchange", TotalBytes(), &found));
    if (!found) {
        std::memset(shared, 0, HeaderBytes());
        shared->lock = &(GetNamedLWLockTranche("exchange"))->lock;
        shared->slots_count = max_instruments;
        shared->book_bytes = BookBytes();
        shared->books_offset = HeaderBytes();
    }
    PublisherShmemStartup();
    LWLockRelease(AddinShmemInitLock);
}

// Errors out unless the library was preloaded and shared memory is there.
void EnsureAttached() {
    if (shared == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("exchange shared memory is not attached"),
                        errhint("Add exchange to shared_preload_libraries and restart the server.")));
    if (locals.size() != static_cast<size_t>(shared->slots_count)) locals.resize(shared->slots_count);
}

// The trading functions need a fresh snapshot after taking the instrument lock.
void EnsureReadCommitted() {
    if (IsolationUsesXactSnapshot())
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("exchange trading functions require READ COMMITTED isolation"),
                        errdetail("A transaction snapshot taken before the instrument lock would miss "
                                  "orders committed while waiting for it.")));
}

Oid InstrumentsRelid() { return ExchangeRelid("instruments"); }

// A standby replays the tables, not the books: they live in the primary
// server's memory (a book loaded here would never see the primary's changes).
void RefuseDuringRecovery() {
    if (RecoveryInProgress())
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("book_unavailable: order books are not kept on a standby"),
                 errdetail("A standby replays the tables; the books live in the primary server's memory."),
                 errhint("On a standby read exchange.orderbook_at(), the journal and the tables, or ask the "
                         "primary.")));
}

char* Region(int slot) { return reinterpret_cast<char*>(shared) + shared->books_offset + shared->book_bytes * slot; }

// Index of the slot for this instrument, or -1. Caller holds the directory lock.
int FindSlotLocked(Oid relid, int32 instrument_id) {
    for (int i = 0; i < shared->slots_count; ++i) {
        const Slot& s = shared->slots[i];
        if (s.state != kSlotFree && s.dbid == MyDatabaseId && s.relid == relid && s.instrument_id == instrument_id)
            return i;
    }
    return -1;
}

// The slot's state, or kSlotFree if the instrument has none.
uint32 SlotState(Oid relid, int32 instrument_id, int& slot) {
    LWLockAcquire(shared->lock, LW_SHARED);
    slot = FindSlotLocked(relid, instrument_id);
    const uint32 state = slot < 0 ? kSlotFree : shared->slots[slot].state;
    LWLockRelease(shared->lock);
    return state;
}

void SetSlotState(int slot, uint32 state) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    shared->slots[slot].state = state;
    LWLockRelease(shared->lock);
}

// Claims a slot for the instrument (caller holds its exclusive lock).
int AssignSlot(Oid relid, int32 instrument_id) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    int slot = FindSlotLocked(relid, instrument_id);
    // A free slot, else a stale one: of this database but an instruments
    // table that is gone (the extension was dropped and created again), or of
    // a database that no longer exists.
    for (int pass = 0; pass < 2 && slot < 0; ++pass)
        for (int i = 0; slot < 0 && i < shared->slots_count; ++i) {
            const Slot& s = shared->slots[i];
            const bool usable =
                pass == 0 ? s.state == kSlotFree
                          : (s.dbid == MyDatabaseId && s.relid != relid) ||
                                !SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(s.dbid));
            if (usable) {
                Slot& n = shared->slots[i];
                n.dbid = MyDatabaseId;
                n.relid = relid;
                n.instrument_id = instrument_id;
                n.state = kSlotAssigned;
                pg_atomic_init_u64(&n.committed_seq, 0);
                pg_atomic_init_u64(&n.published_seq, 0);
                pg_atomic_init_u64(&n.commit_lsn, 0);
                slot = i;
            }
        }
    LWLockRelease(shared->lock);
    if (slot < 0)
        ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                        errmsg("no free order book slot for instrument %d", instrument_id),
                        errdetail("All %d slots (exchange.max_instruments) are in use.", shared->slots_count),
                        errhint("Raise exchange.max_instruments and restart the server.")));
    return slot;
}

// This backend's handle on a slot's region (formatted or not).
Book& Handle(int slot) {
    Local& l = locals[slot];
    if (!l.book) {
        bool ok = true;
        try {
            l.book = std::make_unique<Book>(Region(slot), shared->book_bytes);
        } catch (...) {
            ok = false;
        }
        if (!ok) ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("order book slot %d is not a book", slot)));
    }
    return *l.book;
}

// The orders a book loads: %s the iceberg columns, %s the stop columns, %s which rows.
constexpr const char* kLoadSql =
    "SELECT order_no, client_no, side = 'sell', coalesce(price_ticks, 0), remaining_lots, post_only, "
    "  CASE stp WHEN 'none' THEN 0 WHEN 'cancel_newest' THEN 1 WHEN 'cancel_oldest' THEN 2 ELSE 3 END, %s, "
    "%s "
    "  FROM exchange.orders "
    " WHERE instrument_id = $1 AND %s "
    " ORDER BY priority";

// The rows of exchange.orders that `sql` (kLoadSql filled in) selects, loaded into the book in that order.
void LoadOrders(Book& book, int32 instrument_id, const char* sql) {
    Oid argtypes[1] = {INT4OID};
    Datum args[1] = {Int32GetDatum(instrument_id)};
    Portal portal = SPI_cursor_open_with_args(nullptr, sql, 1, argtypes, args, nullptr, true, 0);
    for (;;) {
        SPI_cursor_fetch(portal, true, 10000);
        if (SPI_processed == 0) break;
        TupleDesc desc = SPI_tuptable->tupdesc;
        for (uint64 i = 0; i < SPI_processed; ++i) {
            HeapTuple t = SPI_tuptable->vals[i];
            bool isnull;
            core::RestingOrder o;
            o.id = static_cast<uint64>(DatumGetInt64(SPI_getbinval(t, desc, 1, &isnull)));
            o.owner = static_cast<uint64>(DatumGetInt64(SPI_getbinval(t, desc, 2, &isnull)));
            o.side = DatumGetBool(SPI_getbinval(t, desc, 3, &isnull)) ? core::Side::Sell : core::Side::Buy;
            o.price = core::Price{DatumGetInt64(SPI_getbinval(t, desc, 4, &isnull))};
            o.qty = core::Qty{DatumGetInt64(SPI_getbinval(t, desc, 5, &isnull))};
            o.post_only = DatumGetBool(SPI_getbinval(t, desc, 6, &isnull));
            o.stp = static_cast<core::Stp>(DatumGetInt32(SPI_getbinval(t, desc, 7, &isnull)));
            o.display = core::Qty{DatumGetInt64(SPI_getbinval(t, desc, 8, &isnull))};
            o.visible = core::Qty{DatumGetInt64(SPI_getbinval(t, desc, 9, &isnull))};
            o.stop = core::Price{DatumGetInt64(SPI_getbinval(t, desc, 10, &isnull))};
            o.type = DatumGetBool(SPI_getbinval(t, desc, 11, &isnull)) ? core::OrderType::Market
                                                                       : core::OrderType::Limit;
            o.tif = static_cast<core::Tif>(DatumGetInt32(SPI_getbinval(t, desc, 12, &isnull)));
            core::Reject r = core::Reject::None;
            try {
                r = book.load_resting(o);
            } catch (const std::bad_alloc&) {
                r = core::Reject::OrderCapacity;
            }
            if (r != core::Reject::None)
                ereport(ERROR, (errcode(r == core::Reject::OrderCapacity || r == core::Reject::LevelCapacity
                                            ? ERRCODE_CONFIGURATION_LIMIT_EXCEEDED
                                            : ERRCODE_DATA_CORRUPTED),
                                errmsg("cannot load order %lld of instrument %d: %s",
                                       static_cast<long long>(o.id), instrument_id,
                                       core::to_string(r).data()),  // literals: NUL-terminated
                                errhint("Check exchange.orders, or raise exchange.max_orders_per_instrument / "
                                        "exchange.max_levels_per_instrument.")));
        }
        SPI_freetuptable(SPI_tuptable);
    }
    SPI_cursor_close(portal);
}

// Formats the slot's region and fills it from the tables.
void LoadBook(int slot, int32 instrument_id) {
    if (!Book::format(Region(slot), shared->book_bytes, Config()))
        ereport(ERROR,
                (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not format order book slot %d", slot)));
    locals[slot].book.reset();
    Book& book = Handle(slot);
    book.commit();

    SPI_connect();
    Oid argtypes[1] = {INT4OID};
    Datum args[1] = {Int32GetDatum(instrument_id)};
    // The resting orders in time priority; an iceberg rests with the tip it
    // had (visible_lots; a database before 0.12 has none). Then, if there are
    // pending stop orders (0.13), the last trade price from the journal, and
    // the stops in the order they queued, each checked against it. Without
    // them the price is read when a stop first needs it, also for a book
    // loaded before 0.13 and kept through ALTER EXTENSION UPDATE.
    const bool stops = OrdersHaveStops();
    LoadOrders(book, instrument_id,
               psprintf(kLoadSql,
                        OrdersHaveIcebergs() ? "coalesce(display_lots, 0), coalesce(visible_lots, 0)"
                                             : "0::int8, 0::int8",
                        "0::int8, false, 0", "status IN ('open', 'partially_filled')"));
    bool pending = false;
    if (stops) {
        SPI_execute_with_args(
            "SELECT EXISTS (SELECT FROM exchange.orders WHERE instrument_id = $1 AND status = 'pending')",
            1, argtypes, args, nullptr, true, 1);
        bool isnull;
        pending = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    shared->slots[slot].last_price_read = pending;
    if (pending) {
        book.set_last_price(core::Price{LastTradeTicks(instrument_id)});
        LoadOrders(book, instrument_id,
                   psprintf(kLoadSql, "coalesce(display_lots, 0), 0::int8",
                            "stop_ticks, type = 'market', CASE time_in_force WHEN 'gtc' THEN 0 WHEN 'ioc' "
                            "THEN 1 ELSE 2 END",
                            "status = 'pending'"));
    }
    // The newest entry by a backward scan of the key, written out: the
    // planner's max() may instead read all of an instrument's entries when
    // its statistics say it has few (stops.sql saw it after autoanalyze).
    SPI_execute_with_args(
        "SELECT coalesce((SELECT seq FROM exchange.events WHERE instrument_id = $1 "
        "ORDER BY seq DESC LIMIT 1), 0)",
        1, argtypes, args, nullptr, true, 1);
    bool isnull;
    const int64 seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    SPI_finish();
    book.set_seq(static_cast<uint64>(seq));
    book.commit();  // loading is not undone by this transaction's abort
}

// Loads the instrument's book if needed; caller holds its exclusive lock.
int EnsureLoaded(Oid relid, int32 instrument_id) {
    int slot;
    if (SlotState(relid, instrument_id, slot) == kSlotReady) return slot;
    slot = AssignSlot(relid, instrument_id);
    LoadBook(slot, instrument_id);
    // What the journal holds was published before (or its notifications
    // were lost with the server that crashed): nothing to announce.
    const uint64 seq = locals[slot].book->seq();
    pg_atomic_write_u64(&shared->slots[slot].committed_seq, seq);
    pg_atomic_write_u64(&shared->slots[slot].published_seq, seq);
    SetSlotState(slot, kSlotReady);
    return slot;
}

// Remembers where the current subtransaction's changes to this book begin.
void MarkForUndo(int slot) {
    Local& l = locals[slot];
    const SubTransactionId sub = GetCurrentSubTransactionId();
    if (!l.touched) {
        touched.push_back(slot);
        l.touched = true;
        l.seq_at_start = l.book->seq();
    }
    if (l.marks.empty() || l.marks.back().first != sub) l.marks.emplace_back(sub, l.book->savepoint());
}

// Whether this transaction changed any book's journal.
bool JournalChanged() {
    for (int slot : touched)
        if (locals[slot].changed()) return true;
    return false;
}

// Whether the publisher has yet to send a committed range of one of the
// books this transaction changed.
bool PublisherBehind() {
    for (int slot : touched) {
        Slot& s = shared->slots[slot];
        if (locals[slot].changed() && pg_atomic_read_u64(&s.published_seq) != pg_atomic_read_u64(&s.committed_seq))
            return true;
    }
    return false;
}

// Whether another transaction waits for the lock of a book this one changed.
bool LockWaited() {
    for (int slot : touched) {
        if (!locals[slot].changed()) continue;
        LOCKTAG tag;
        SET_LOCKTAG_OBJECT(tag, MyDatabaseId, shared->slots[slot].relid, locals[slot].instrument_id, 0);
        if (LockHasWaiters(&tag, ExclusiveLock, false)) return true;
    }
    return false;
}

// Early lock release (exchange.early_lock_release). A writer holds its
// instruments' locks until its transaction ends, and PostgreSQL ends a
// durable commit by waiting for the WAL flush, so the writers of one
// instrument used to take turns including each one's fsync. When another
// transaction waits for one of those locks at pre-commit, this one commits
// asynchronously instead (synchronous_commit off for the commit record
// only): the record is written, the transaction becomes visible and the locks
// go, and then, before the commit returns to its client, it waits for the
// flush (and for synchronous standbys, as the setting asks) here, after the
// locks. Everything acknowledged is still on disk. The next writer builds on
// a state that is committed but maybe not yet flushed; its own commit record
// comes later in the WAL, so its flush covers both, and a crash in between
// loses both, neither acknowledged. What others are shown waits for the
// flush instead: the publisher and the book's readers flush the WAL up to
// the book's last commit first (Slot::commit_lsn), and an idempotent repeat
// flushes before it answers. Plain queries of the tables can see such a
// commit up to a flush early, as with synchronous_commit off in any other
// session. Not used when this transaction sends its notifications itself
// (listeners could read them before the flush), nor with synchronous_commit
// off.
bool elr_pending = false;
int elr_saved_commit = 0;

void AfterLocks(ResourceReleasePhase phase, bool is_commit, bool is_toplevel, void*) {
    if (phase != RESOURCE_RELEASE_AFTER_LOCKS || !is_toplevel || !elr_pending) return;
    elr_pending = false;
    if (!is_commit) return;
    XLogFlush(XactLastCommitEnd);
    SyncRepWaitForLSN(XactLastCommitEnd, true);
}

void OnXact(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            if (!JournalChanged()) break;
            // One notification per instrument: the journal range committed.
            // Through the publisher (publisher.h) if it takes them, else
            // sent by this transaction, queued before PreCommit_Notify so
            // that it goes out if and only if the transaction commits.
            if (notify) {
                if (PublisherClaim(PublisherBehind())) {
                    publisher_claimed = true;
                } else {
                    for (int slot : touched) {
                        const Local& l = locals[slot];
                        if (l.changed()) NotifyRange(l.instrument_id, l.seq_at_start + 1, l.book->seq());
                    }
                    notified_inline = true;
                }
            }
            if (early_lock_release && !notified_inline && synchronous_commit > SYNCHRONOUS_COMMIT_OFF &&
                LockWaited()) {
                elr_saved_commit = synchronous_commit;
                synchronous_commit = SYNCHRONOUS_COMMIT_OFF;
                elr_pending = true;
            }
            break;
        case XACT_EVENT_PRE_PREPARE:
            if (!touched.empty())
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("cannot PREPARE a transaction that changed an order book")));
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT: {
            const bool abort = event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT;
            if (elr_pending) synchronous_commit = elr_saved_commit;  // the commit record is written
            if (abort) elr_pending = false;
            for (int slot : touched) {
                Local& l = locals[slot];
                if (abort) l.book->rollback_to(0);
                if (!abort && l.changed()) {
                    // Visible to others now, and still under the instrument
                    // lock: the next writer records after this one.
                    Slot& s = shared->slots[slot];
                    pg_atomic_write_u64(&s.commit_lsn, XactLastCommitEnd);
                    pg_write_barrier();
                    pg_atomic_write_u64(&s.committed_seq, l.book->seq());
                    // Announced already, unless the publisher has older
                    // ranges to send (then it sends this one again).
                    uint64 expected = l.seq_at_start;
                    if (notified_inline) pg_atomic_compare_exchange_u64(&s.published_seq, &expected, l.book->seq());
                }
                l.book->commit();
                l.book->undo_log().shrink(1 << 16);
                l.marks.clear();
                l.touched = false;
            }
            touched.clear();
            if (publisher_claimed) PublisherRelease(!abort);
            publisher_claimed = notified_inline = false;
            break;
        }
        default:
            break;
    }
}

void OnSubXact(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void*) {
    for (int slot : touched) {
        Local& l = locals[slot];
        if (event == SUBXACT_EVENT_ABORT_SUB) {
            size_t mark = SIZE_MAX;
            while (!l.marks.empty() && l.marks.back().first >= sub) {
                mark = l.marks.back().second;
                l.marks.pop_back();
            }
            if (mark != SIZE_MAX) l.book->rollback_to(mark);
        } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
            if (l.marks.empty() || l.marks.back().first != sub) continue;
            if (l.marks.size() >= 2 && l.marks[l.marks.size() - 2].first == parent)
                l.marks.pop_back();  // the parent's mark is older and covers it
            else
                l.marks.back().first = parent;
        }
    }
}

}  // namespace

Oid ExchangeRelid(const char* name) {
    const Oid relid = get_relname_relid(name, get_namespace_oid("exchange", false));
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation exchange.%s does not exist", name)));
    return relid;
}

bool OrdersHaveIcebergs() {
    return get_attnum(ExchangeRelid("orders"), "visible_lots") != InvalidAttrNumber;
}

bool OrdersHaveStops() {
    return get_attnum(ExchangeRelid("orders"), "stop_ticks") != InvalidAttrNumber;
}

int64 LastTradeTicks(int32 instrument_id, bool fresh) {
    Oid argtypes[1] = {INT4OID};
    Datum args[1] = {Int32GetDatum(instrument_id)};
    SPI_connect();  // (nested in a caller's connection, as LoadBook's)
    SPI_execute_with_args(
        "SELECT ((e.payload->'trades'->-1->>'price')::numeric / i.tick_size)::int8 "
        "  FROM exchange.events e JOIN exchange.instruments i ON i.instrument_id = e.instrument_id "
        " WHERE e.instrument_id = $1 AND e.payload->'trades'->-1 IS NOT NULL "
        " ORDER BY e.seq DESC LIMIT 1",
        1, argtypes, args, nullptr, !fresh, 1);
    bool isnull = true;
    const Datum ticks = SPI_processed == 1
                            ? SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)
                            : (Datum)0;
    const int64 result = isnull ? 0 : DatumGetInt64(ticks);  // (int8 is by value: read before SPI_finish)
    SPI_finish();
    return result;
}

void DefineSettings() {
    DefineCustomIntVariable("exchange.max_instruments", "Order books kept in shared memory (one per instrument).",
                            "Each costs the memory of one book; see the README.", &max_instruments, 8, 1, 10000,
                            PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("exchange.max_orders_per_instrument", "Resting orders one order book can hold.",
                            "64 bytes per order plus 32 bytes of id hash.", &max_orders_per_instrument, 1000000, 16,
                            1 << 28, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("exchange.max_levels_per_instrument", "Price levels (both sides) one order book can hold.",
                            "64 bytes per level.", &max_levels_per_instrument, 100000, 4, 1 << 28, PGC_POSTMASTER, 0,
                            nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("exchange.notify", "Publish committed journal ranges on channel exchange_events.",
                             "Off only to measure what NOTIFY costs: listeners then miss changes.", &notify, true,
                             PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("exchange.early_lock_release",
                             "A writer another transaction waits for releases its instrument locks before its "
                             "commit record is flushed, and waits for the flush before its commit returns.",
                             "Off: the locks are held through the flush (every writer of an instrument, and every "
                             "reader, waits for the one before it to be on disk).",
                             &early_lock_release, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable("exchange.notify_publisher",
                             "Who sends a committed transaction's notifications: always (a background worker per "
                             "database), auto or off (the transaction itself).",
                             "auto: the transaction when PostgreSQL's NOTIFY lock is free, else the worker. off: the "
                             "transaction, queueing on that cluster-wide lock with every other notifying commit.",
                             &notify_publisher, kPublisherAlways, notify_publisher_options, PGC_SUSET, 0, nullptr,
                             nullptr, nullptr);
    DefineCustomIntVariable("exchange.publisher_poll_ms",
                            "While commits keep coming, the notify publisher looks for them this often instead of "
                            "being woken by each.",
                            "0: every commit wakes it (a signal, in the committing backend's time). Otherwise a "
                            "notification can come up to this much later.",
                            &publisher_poll_ms, 1, 0, 100, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("exchange.wal_prealloc_segments",
                            "WAL segments kept created ahead of the one being written, by a background worker, so "
                            "that no commit waits while PostgreSQL creates one.",
                            "0: none (a commit that needs a new segment creates it, as without the extension). "
                            "Each costs one WAL segment of disk (16 MB by default).",
                            &wal_prealloc_segments, 4, 0, 64, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "exchange.writeback_ms",
        "How often a background worker has the kernel write out what is dirty on the data "
        "directory's file system (syncfs), so that a growing table's pages go out a little at a "
        "time instead of in one burst every 30 s that every commit's WAL flush waits behind.",
        "0: never (the kernel writes them when it sees fit).", &writeback_ms, 50, 0, 60000, PGC_SIGHUP,
        GUC_UNIT_MS, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("exchange");
}

void InstallShmemHooks() {
    prev_shmem_request = shmem_request_hook;
    shmem_request_hook = RequestShmem;
    prev_shmem_startup = shmem_startup_hook;
    shmem_startup_hook = StartupShmem;
}

void RegisterTransactionCallbacks() {
    RegisterXactCallback(OnXact, nullptr);
    RegisterResourceReleaseCallback(AfterLocks, nullptr);
    RegisterSubXactCallback(OnSubXact, nullptr);
}

Book& EnsureBookForWrite(int32 instrument_id, bool* locked_before) {
    EnsureAttached();
    RefuseDuringRecovery();
    EnsureReadCommitted();
    const Oid relid = InstrumentsRelid();
    // LockDatabaseObject's steps, keeping LockAcquire's answer.
    LOCKTAG tag;
    SET_LOCKTAG_OBJECT(tag, MyDatabaseId, relid, instrument_id, 0);
    const LockAcquireResult held = LockAcquire(&tag, ExclusiveLock, false, false);
    AcceptInvalidationMessages();
    if (locked_before != nullptr)
        *locked_before = held == LOCKACQUIRE_ALREADY_HELD || held == LOCKACQUIRE_ALREADY_CLEAR;
    const int slot = EnsureLoaded(relid, instrument_id);
    Handle(slot);
    locals[slot].instrument_id = instrument_id;
    MarkForUndo(slot);
    return *locals[slot].book;
}

namespace {
LOCKMODE read_lock_mode = NoLock;

// The book's last commit is on disk (early lock release, OnXact): called
// under the instrument's lock, before the book is shown.
void FlushCommitted(int slot) {
    const XLogRecPtr lsn = pg_atomic_read_u64(&shared->slots[slot].commit_lsn);
    if (lsn != InvalidXLogRecPtr && !RecoveryInProgress()) XLogFlush(lsn);
}
}  // namespace

Book& EnsureBookForRead(int32 instrument_id) {
    EnsureAttached();
    RefuseDuringRecovery();
    const Oid relid = InstrumentsRelid();
    LockDatabaseObject(relid, instrument_id, 0, ShareLock);
    read_lock_mode = ShareLock;
    int slot;
    if (SlotState(relid, instrument_id, slot) != kSlotReady) {
        // Loading needs the exclusive lock; never upgrade in place (two
        // readers upgrading would deadlock).
        UnlockDatabaseObject(relid, instrument_id, 0, ShareLock);
        LockDatabaseObject(relid, instrument_id, 0, ExclusiveLock);
        read_lock_mode = ExclusiveLock;
        slot = EnsureLoaded(relid, instrument_id);
    }
    FlushCommitted(slot);
    return Handle(slot);
}

void LearnLastTradePrice(Book& book) {
    for (const int slot : touched) {
        if (locals[slot].book.get() != &book) continue;
        // A book with a trade since it was loaded (this transaction's too)
        // knows a newer price than the journal had then.
        if (shared->slots[slot].last_price_read || book.last_price().v != 0) return;
        // A new snapshot: one from before the instrument lock could miss a
        // trade committed just before a rebuild that loaded the book again.
        const int64 ticks = LastTradeTicks(locals[slot].instrument_id, true);
        book.learn_last_price(core::Price{ticks});  // writes one field, outside undo
        shared->slots[slot].last_price_read = true;
        return;
    }
    elog(ERROR, "a stop order on a book this transaction has not taken for writing");
}

int64 BookLastTradeTicks(int32 instrument_id, bool from_journal, bool* known) {
    const Book& book = EnsureBookForRead(instrument_id);
    int64 ticks = book.last_price().v;
    int slot;
    *known = ticks != 0 || SlotState(InstrumentsRelid(), instrument_id, slot) != kSlotReady ||
             shared->slots[slot].last_price_read;
    if (!*known && from_journal) ticks = LastTradeTicks(instrument_id);
    ReleaseBookForRead(instrument_id);
    return ticks;
}

void FlushLastCommit(int32 instrument_id) {
    EnsureAttached();
    int slot;
    // A book not in memory has had no commit since the server started.
    if (SlotState(InstrumentsRelid(), instrument_id, slot) == kSlotReady) FlushCommitted(slot);
}

void ReleaseBookForRead(int32 instrument_id) {
    UnlockDatabaseObject(InstrumentsRelid(), instrument_id, 0, read_lock_mode);
    read_lock_mode = NoLock;
}

uint32 RebuildBook(int32 instrument_id) {
    EnsureAttached();
    RefuseDuringRecovery();
    EnsureReadCommitted();
    const Oid relid = InstrumentsRelid();
    LockDatabaseObject(relid, instrument_id, 0, ExclusiveLock);
    int slot;
    SlotState(relid, instrument_id, slot);
    if (slot >= 0 && !locals[slot].marks.empty())
        ereport(ERROR, (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                        errmsg("cannot rebuild the book of instrument %d in a transaction that changed it",
                               instrument_id)));
    if (slot < 0) slot = AssignSlot(relid, instrument_id);
    SetSlotState(slot, kSlotAssigned);
    LoadBook(slot, instrument_id);
    // A range committed but not yet published stays to be published.
    Slot& s = shared->slots[slot];
    const uint64 seq = locals[slot].book->seq();
    if (pg_atomic_read_u64(&s.committed_seq) < seq) pg_atomic_write_u64(&s.committed_seq, seq);
    if (pg_atomic_read_u64(&s.published_seq) > seq) pg_atomic_write_u64(&s.published_seq, seq);
    SetSlotState(slot, kSlotReady);
    return locals[slot].book->order_count();
}

int PendingRanges(Oid db, PendingRange* out, int max) {
    int n = 0;
    LWLockAcquire(shared->lock, LW_SHARED);
    for (int i = 0; i < shared->slots_count && n < max; ++i) {
        Slot& s = shared->slots[i];
        if (s.state != kSlotReady || s.dbid != db) continue;
        const uint64 committed = pg_atomic_read_u64(&s.committed_seq);
        pg_read_barrier();  // the commit's LSN was written before its sequence
        const uint64 lsn = pg_atomic_read_u64(&s.commit_lsn);
        const uint64 published = pg_atomic_read_u64(&s.published_seq);
        if (committed > published) out[n++] = PendingRange{i, s.instrument_id, published + 1, committed, lsn};
    }
    LWLockRelease(shared->lock);
    return n;
}

void MarkPublished(int slot, uint64 last) {
    pg_atomic_uint64* published = &shared->slots[slot].published_seq;
    uint64 old = pg_atomic_read_u64(published);
    while (old < last && !pg_atomic_compare_exchange_u64(published, &old, last)) {
    }
}

int SlotCount() {
    EnsureAttached();
    return shared->slots_count;
}

bool SlotInfoAt(int i, SlotInfo& out) {
    const Oid relid = InstrumentsRelid();
    LWLockAcquire(shared->lock, LW_SHARED);
    const Slot& slot = shared->slots[i];
    const Oid dbid = slot.dbid, slot_relid = slot.relid;
    const int32 instrument_id = slot.instrument_id;
    const uint32 state = slot.state;
    LWLockRelease(shared->lock);
    if (state == kSlotFree || dbid != MyDatabaseId || slot_relid != relid) return false;
    out = SlotInfo{};
    out.dbid = dbid;
    out.instrument_id = instrument_id;
    out.loaded = state == kSlotReady;
    out.bytes = shared->book_bytes;
    out.published_seq = pg_atomic_read_u64(&shared->slots[i].published_seq);
    if (state == kSlotReady) {
        const Book& b = Handle(i);
        out.orders = b.order_count();
        out.levels = b.level_count();
        out.max_orders = b.max_orders();
        out.max_levels = b.max_levels();
        out.stops = b.stop_count();
        out.stop_levels = b.stop_level_count();
        out.seq = b.seq();
    }
    return true;
}

}  // namespace pgx::pg
