// The writeback worker (see writeback.h).
#include "writeback.h"

#include "workers.h"

extern "C" {
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
}

#include <fcntl.h>
#include <unistd.h>

namespace pgx::pg {

int writeback_ms = 50;

namespace {

constexpr int kRestartSeconds = 10;  // after an error

}  // namespace

void RegisterWritebackWorker() {
    RegisterClusterWorker("exchange_writeback_main", "exchange writeback", BgWorkerStart_PostmasterStart,
                          kRestartSeconds);
}

}  // namespace pgx::pg

void exchange_writeback_main(Datum) {
    using namespace pgx::pg;
    WorkerStarted();
    // The worker's working directory is the data directory.
    const int fd = open(".", O_RDONLY | O_DIRECTORY);
    if (fd < 0) ereport(ERROR, (errcode_for_file_access(), errmsg("could not open the data directory: %m")));
    bool failing = false;  // the last syncfs failed: said once, until one succeeds
    for (;;) {
        WorkerRound();
        if (writeback_ms > 0) {
            // Writes what is dirty on the file system and waits for it; a commit's
            // WAL flush meanwhile waits behind at most about writeback_ms's worth.
            if (syncfs(fd) != 0) {
                if (!failing)
                    ereport(LOG,
                            (errcode_for_file_access(), errmsg("exchange writeback: syncfs failed: %m")));
                failing = true;
            } else {
                failing = false;
            }
        }
        // With 0 it sleeps until woken: a reload's SIGHUP sets the latch.
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (writeback_ms > 0 ? WL_TIMEOUT : 0),
                        writeback_ms, PG_WAIT_EXTENSION);
    }
}
