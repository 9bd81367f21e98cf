// The NOTIFY publisher: one background worker per database, started on
// demand (see publisher.h).
//
// Shared state: one entry per database that has a publisher or is getting
// one, under one LWLock (tranche "exchange publisher"). `claims` counts the
// transactions between pre-commit and commit that rely on the publisher; it
// exits only when there are none and nothing is left to publish, checked
// under the lock that a claim takes, so no committed range is left behind.
// A publisher asked for but never started (the postmaster could not fork)
// is given up after kStartTimeout and asked for again. After an error or a
// SIGTERM the postmaster starts it again (kRestartSeconds), so that what was
// left unsent goes out without waiting for the next commit; one that finds
// nothing to do, or whose database is gone (kMaxFailedStarts), exits for
// good.
#include "publisher.h"

#include "books.h"
#include "workers.h"

extern "C" {
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include <cstdio>

namespace pgx::pg {

int notify_publisher = kPublisherAlways;
int publisher_poll_ms = 1;
const struct config_enum_entry notify_publisher_options[] = {{"auto", kPublisherAuto, false},
                                                             {"always", kPublisherAlways, false},
                                                             {"off", kPublisherOff, false},
                                                             {nullptr, 0, false}};

namespace {

constexpr int kEntries = 64;             // databases with a publisher at once
constexpr int kIdleExitMs = 2000;        // below DROP DATABASE's 5 s wait
constexpr int kWaitMs = 500;             // the worker's sleep between checks
constexpr long kStartTimeoutMs = 10000;  // a requested worker that never came up
constexpr int kRangesPerRound = 256;
constexpr int kRestartSeconds = 1;   // after an error or SIGTERM, if work is left
constexpr int kMaxFailedStarts = 3;  // exits before connecting (its database is gone)

enum State : uint32 { kStopped = 0, kStarting = 1, kRunning = 2 };

struct Entry {
    Oid dbid;  // InvalidOid: free
    uint32 state;
    int32 claims;
    int32 failed_starts;  // workers in a row that exited before they ran
    bool leave;           // a command needs the database without sessions
    bool polling;         // the worker looks again within exchange.publisher_poll_ms: commits do not wake it
    TimestampTz since;    // when kStarting was set
    Latch* latch;         // the running worker's (PGPROC's latches live in shared memory)
};

struct PublisherShared {
    LWLock* lock;
    Entry entries[kEntries];
};

PublisherShared* pub = nullptr;
int claimed_entry = -1;  // this backend's claim, between pre-commit and commit or abort

// The entry of db, or a free one set up for it (an entry without a worker
// and without claims holds nothing: it may go to another database); -1 when
// all are in use. Caller holds the lock exclusively.
int EntryFor(Oid db) {
    int free_entry = -1;
    for (int i = 0; i < kEntries; ++i) {
        const Entry& e = pub->entries[i];
        if (e.dbid == db) return i;
        if (free_entry < 0 && (e.dbid == InvalidOid || (e.state == kStopped && e.claims == 0)))
            free_entry = i;
    }
    if (free_entry >= 0) pub->entries[free_entry] = Entry{db, kStopped, 0, 0, false, false, 0, nullptr};
    return free_entry;
}

bool StartWorker(Oid db) {
    BackgroundWorker w;
    memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_RecoveryFinished;
    // The postmaster starts it again after an error or a SIGTERM (exit code
    // 1), so that ranges committed but not yet sent are not left waiting for
    // the next commit; a worker with nothing to do exits with 0 and is gone.
    w.bgw_restart_time = kRestartSeconds;
    snprintf(w.bgw_library_name, BGW_MAXLEN, "exchange");
    snprintf(w.bgw_function_name, BGW_MAXLEN, "exchange_publisher_main");
    snprintf(w.bgw_name, BGW_MAXLEN, "exchange notify publisher for database %u", db);
    snprintf(w.bgw_type, BGW_MAXLEN, "exchange notify publisher");
    w.bgw_main_arg = ObjectIdGetDatum(db);
    return RegisterDynamicBackgroundWorker(&w, nullptr);
}

int my_entry = -1;  // in the worker
bool became_running = false;

// Any exit of the worker (idle, an error, SIGTERM): its database may get a
// new one. A worker that fails before it runs (its database was dropped)
// gives up the request, so that the next commit asks again.
void OnWorkerExit(int, Datum) {
    if (my_entry < 0) return;
    LWLockAcquire(pub->lock, LW_EXCLUSIVE);
    Entry& e = pub->entries[my_entry];
    if (e.latch == MyLatch) {
        e.state = kStopped;
        e.latch = nullptr;
    } else if (!became_running && e.state == kStarting) {
        e.state = kStopped;
    }
    if (!became_running) e.failed_starts++;
    LWLockRelease(pub->lock);
}

// Whether database db has no committed range left to publish.
bool NothingPending(Oid db) {
    PendingRange one[1];
    return PendingRanges(db, one, 1) == 0;
}

// Sends one notification per instrument with unpublished ranges, in one
// transaction; returns how many.
int PublishRound(Oid db) {
    PendingRange ranges[kRangesPerRound];
    const int n = PendingRanges(db, ranges, kRangesPerRound);
    if (n == 0) return 0;
    // Nothing is announced before it is on disk (early lock release, books.cpp).
    uint64 lsn = 0;
    for (int i = 0; i < n; ++i) lsn = Max(lsn, ranges[i].lsn);
    if (lsn != 0) XLogFlush(lsn);
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    for (int i = 0; i < n; ++i) NotifyRange(ranges[i].instrument_id, ranges[i].first, ranges[i].last);
    CommitTransactionCommand();
    for (int i = 0; i < n; ++i) MarkPublished(ranges[i].slot, ranges[i].last);
    pgstat_report_stat(false);
    return n;
}

// Takes the lock PostgreSQL's PreCommit_Notify takes (commands/async.c: a
// heavyweight lock on "database 0", cluster-wide) if nobody holds it, without
// waiting. Held to transaction end, as PreCommit_Notify would hold it.
bool TryNotifyLock() {
    LOCKTAG tag;
    SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, InvalidOid, 0);
    return LockAcquire(&tag, AccessExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

// Commands that refuse a database with other sessions (DROP DATABASE, a
// rename, a template copy, a move to another tablespace) would wait for an
// idle publisher's exit: it leaves at once instead.
ProcessUtility_hook_type prev_utility = nullptr;

const char* DatabaseNeededAlone(Node* n) {
    if (IsA(n, DropdbStmt)) return castNode(DropdbStmt, n)->dbname;
    if (IsA(n, RenameStmt) && castNode(RenameStmt, n)->renameType == OBJECT_DATABASE)
        return castNode(RenameStmt, n)->subname;
    ListCell* lc;
    if (IsA(n, CreatedbStmt)) {
        foreach (lc, castNode(CreatedbStmt, n)->options) {
            DefElem* d = lfirst_node(DefElem, lc);
            if (strcmp(d->defname, "template") == 0 && d->arg != nullptr) return defGetString(d);
        }
    }
    if (IsA(n, AlterDatabaseStmt)) {
        foreach (lc, castNode(AlterDatabaseStmt, n)->options) {
            if (strcmp(lfirst_node(DefElem, lc)->defname, "tablespace") == 0)
                return castNode(AlterDatabaseStmt, n)->dbname;
        }
    }
    return nullptr;
}

void Utility(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
             ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
    if (const char* name = DatabaseNeededAlone(pstmt->utilityStmt); name != nullptr && pub != nullptr) {
        const Oid db = get_database_oid(name, true);
        Latch* latch = nullptr;
        LWLockAcquire(pub->lock, LW_EXCLUSIVE);
        for (Entry& e : pub->entries)
            if (OidIsValid(db) && e.dbid == db && e.state != kStopped) {
                e.leave = true;
                latch = e.latch;
            }
        LWLockRelease(pub->lock);
        if (latch != nullptr) SetLatch(latch);
    }
    if (prev_utility != nullptr)
        prev_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
}

}  // namespace

void InstallPublisherHooks() {
    prev_utility = ProcessUtility_hook;
    ProcessUtility_hook = Utility;
}

Size PublisherShmemBytes() {
    return MAXALIGN(sizeof(PublisherShared));
}

void PublisherShmemStartup() {
    bool found;
    pub = static_cast<PublisherShared*>(ShmemInitStruct("exchange publisher", PublisherShmemBytes(), &found));
    if (!found) {
        memset(pub, 0, sizeof *pub);
        pub->lock = &(GetNamedLWLockTranche("exchange publisher"))->lock;
    }
}

bool PublisherClaim(bool pending) {
    if (notify_publisher == kPublisherOff || pub == nullptr || !IsUnderPostmaster) return false;
    if (notify_publisher == kPublisherAuto && !pending && TryNotifyLock()) return false;
    bool start = false;
    LWLockAcquire(pub->lock, LW_EXCLUSIVE);
    const int i = EntryFor(MyDatabaseId);
    if (i < 0) {
        LWLockRelease(pub->lock);
        return false;
    }
    Entry& e = pub->entries[i];
    // (The clock only when the worker is not running: this runs at every
    // commit, under the lock.)
    if (e.state == kStarting && TimestampDifferenceExceeds(e.since, GetCurrentTimestamp(), kStartTimeoutMs))
        e.state = kStopped;
    if (e.state == kStopped) {
        e.state = kStarting;
        e.since = GetCurrentTimestamp();
        start = true;
    }
    e.claims++;
    LWLockRelease(pub->lock);
    claimed_entry = i;
    if (start && !StartWorker(MyDatabaseId)) {
        // No worker slot: this transaction notifies by itself.
        LWLockAcquire(pub->lock, LW_EXCLUSIVE);
        e.state = kStopped;
        e.claims--;
        LWLockRelease(pub->lock);
        claimed_entry = -1;
        return false;
    }
    return true;
}

void NotifyRange(int32 instrument_id, uint64 first, uint64 last) {
    char payload[64];
    snprintf(payload, sizeof payload, "%d:%llu:%llu", instrument_id, static_cast<unsigned long long>(first),
             static_cast<unsigned long long>(last));
    Async_Notify("exchange_events", payload);
}

void PublisherRelease(bool committed) {
    if (claimed_entry < 0) return;
    LWLockAcquire(pub->lock, LW_EXCLUSIVE);
    Entry& e = pub->entries[claimed_entry];
    e.claims--;
    // Read under the lock the worker clears it under: a commit that sees it
    // set recorded its sequence before the worker's next look (PendingRanges
    // after the lock), so skipping the wake (a signal) loses nothing.
    Latch* latch = e.polling ? nullptr : e.latch;
    LWLockRelease(pub->lock);
    claimed_entry = -1;
    if (committed && latch != nullptr) SetLatch(latch);
}

}  // namespace pgx::pg

void exchange_publisher_main(Datum arg) {
    using namespace pgx::pg;
    const Oid db = DatumGetObjectId(arg);
    WorkerStarted();

    // Nothing to do (the transaction that asked for it aborted, or this is a
    // restart after everything was sent), or too many failed starts: exit
    // for good.
    bool done = false;
    LWLockAcquire(pub->lock, LW_EXCLUSIVE);
    my_entry = EntryFor(db);
    if (my_entry >= 0) {
        Entry& e = pub->entries[my_entry];
        if ((e.claims == 0 && NothingPending(db)) || e.failed_starts >= kMaxFailedStarts) {
            done = true;
            e.failed_starts = 0;
            if (e.state == kStarting) e.state = kStopped;
        }
    }
    LWLockRelease(pub->lock);
    if (my_entry < 0 || done) {
        my_entry = -1;
        proc_exit(0);
    }
    before_shmem_exit(OnWorkerExit, (Datum)0);

    BackgroundWorkerInitializeConnectionByOid(db, InvalidOid, 0);
    // A notification is not durable: waiting for this transaction's commit
    // record to reach disk would only hold the NOTIFY lock longer.
    SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
    pgstat_report_appname("exchange notify publisher");

    LWLockAcquire(pub->lock, LW_EXCLUSIVE);
    Entry& e = pub->entries[my_entry];
    if (e.state == kRunning && e.latch != nullptr) {  // another one came first
        LWLockRelease(pub->lock);
        my_entry = -1;
        proc_exit(0);
    }
    e.state = kRunning;
    e.latch = MyLatch;
    e.leave = false;
    e.polling = false;
    e.failed_starts = 0;
    became_running = true;
    LWLockRelease(pub->lock);

    // After a round that sent something the worker polls (exchange.
    // publisher_poll_ms): commits meanwhile do not wake it, and its next
    // round covers all of them. The first round that finds nothing ends
    // that, under the lock commits read it under, and looks once more
    // before the worker sleeps until woken.
    const auto set_polling = [&e](bool on) {
        LWLockAcquire(pub->lock, LW_EXCLUSIVE);
        e.polling = on;
        LWLockRelease(pub->lock);
    };
    bool polling = false;
    TimestampTz idle_since = GetCurrentTimestamp();
    for (;;) {
        WorkerRound();
        if (PublishRound(db) > 0) {
            idle_since = GetCurrentTimestamp();
            if (publisher_poll_ms > 0) {
                if (!polling) set_polling(polling = true);
                (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, publisher_poll_ms,
                                PG_WAIT_EXTENSION);
            } else if (polling) {
                set_polling(polling = false);
            }
            continue;
        }
        if (polling) {
            set_polling(polling = false);
            continue;
        }
        if (e.leave || TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(), kIdleExitMs)) {
            LWLockAcquire(pub->lock, LW_EXCLUSIVE);
            if (e.claims == 0 && (e.leave || NothingPending(db))) {
                e.state = kStopped;
                e.latch = nullptr;
                LWLockRelease(pub->lock);
                proc_exit(0);
            }
            LWLockRelease(pub->lock);
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kWaitMs, PG_WAIT_EXTENSION);
    }
}
