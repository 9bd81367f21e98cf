// The WAL segment preallocator (see wal_prealloc.h).
#include "wal_prealloc.h"

#include "workers.h"

extern "C" {
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/wait_event.h"
}

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace pgx::pg {

int wal_prealloc_segments = 4;

namespace {

constexpr long kPollMs = 100;        // between checks
constexpr int kRestartSeconds = 10;  // after an error (a full disk, say)

// A zeroed segment, written 1 MB at a time, each megabyte sent to disk and
// waited for before the next is written: PostgreSQL's own creation
// (XLogFileInit) writes all 16 MB and then fsyncs them, and a commit's WAL
// flush that comes meanwhile waits behind the whole lot. Measured on the
// benchmark VM (tests/perf/segment_write_probe.py: an 8 kB write +
// fdatasync in a loop beside segment creations, 12 each), the worst flush
// during a creation: 12.5-21.1 ms PostgreSQL's way, 2.3-5.3 ms in megabytes,
// 0.4-2.7 ms with no creation (README, Benchmark). Then moved into place the way PostgreSQL
// installs a segment (xlog.c, InstallXLogFileSegment): under
// ControlFileLock, unless the segment exists by then (a commit or the
// checkpointer made it meanwhile), with a durable rename. The temporary
// file has PostgreSQL's name for one, which crash recovery removes.
void CreateSegment(const char* path) {
    constexpr size_t kChunk = 1 << 20;
    alignas(4096) static const char zeros[kChunk] = {};
    char tmppath[MAXPGPATH];
    snprintf(tmppath, MAXPGPATH, XLOGDIR "/xlogtemp.%d", static_cast<int>(getpid()));
    unlink(tmppath);
    const int fd = BasicOpenFile(tmppath, O_RDWR | O_CREAT | O_EXCL | PG_BINARY);
    if (fd < 0)
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not create file \"%s\": %m", tmppath)));
    auto fail = [&](const char* what) {
        const int save_errno = errno != 0 ? errno : ENOSPC;  // a short write without errno: no space
        close(fd);
        unlink(tmppath);
        errno = save_errno;
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not %s file \"%s\": %m", what, tmppath)));
    };
    for (off_t at = 0; at < wal_segment_size; at += kChunk) {
        const size_t n = std::min<size_t>(kChunk, wal_segment_size - at);
        errno = 0;
        if (pwrite(fd, zeros, n, at) != static_cast<ssize_t>(n)) fail("write to");
        if (sync_file_range(
                fd, at, n,
                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0)
            fail("write back");
    }
    if (pg_fsync(fd) != 0) fail("fsync");
    if (close(fd) != 0) {
        unlink(tmppath);
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not close file \"%s\": %m", tmppath)));
    }
    LWLockAcquire(ControlFileLock, LW_EXCLUSIVE);
    struct stat st;
    const bool taken = stat(path, &st) == 0;
    const bool installed = !taken && durable_rename(tmppath, path, LOG) == 0;
    LWLockRelease(ControlFileLock);
    if (!installed) unlink(tmppath);
}

// Creates the missing ones of the next `ahead` segments after the one being
// inserted into; returns how many it created. With wal_init_zero off a
// segment is only a file of the right length, which XLogFileInit makes.
int PreallocateAhead(int ahead) {
    XLogSegNo current;
    XLByteToSeg(GetXLogInsertRecPtr(), current, wal_segment_size);
    const TimeLineID tli = GetWALInsertionTimeLine();
    int created = 0;
    for (int i = 1; i <= ahead; ++i) {
        char path[MAXPGPATH];
        XLogFilePath(path, tli, current + i, wal_segment_size);
        struct stat st;
        if (stat(path, &st) == 0) continue;
        if (wal_init_zero)
            CreateSegment(path);
        else
            close(XLogFileInit(current + i, tli));
        ++created;
        CHECK_FOR_INTERRUPTS();
    }
    return created;
}

}  // namespace

void RegisterWalPreallocWorker() {
    RegisterClusterWorker("exchange_wal_prealloc_main", "exchange WAL preallocator", BgWorkerStart_RecoveryFinished,
                          kRestartSeconds);
}

}  // namespace pgx::pg

void exchange_wal_prealloc_main(Datum) {
    using namespace pgx::pg;
    WorkerStarted();
    for (;;) {
        WorkerRound();
        // A standby that was promoted inserts from then on; before that,
        // the startup process owns pg_wal.
        if (wal_prealloc_segments > 0 && !RecoveryInProgress()) {
            const int created = PreallocateAhead(wal_prealloc_segments);
            if (created > 0) elog(DEBUG1, "exchange WAL preallocator: created %d segment(s)", created);
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kPollMs, PG_WAIT_EXTENSION);
    }
}
