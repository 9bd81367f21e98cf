// What the extension's background workers share (see workers.h).
#include "workers.h"

extern "C" {
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
}

namespace pgx::pg {

void RegisterClusterWorker(const char* function, const char* name, BgWorkerStartTime start, int restart_seconds) {
    BackgroundWorker w;
    memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS;
    w.bgw_start_time = start;
    w.bgw_restart_time = restart_seconds;
    snprintf(w.bgw_library_name, BGW_MAXLEN, "exchange");
    snprintf(w.bgw_function_name, BGW_MAXLEN, "%s", function);
    snprintf(w.bgw_name, BGW_MAXLEN, "%s", name);
    snprintf(w.bgw_type, BGW_MAXLEN, "%s", name);
    RegisterBackgroundWorker(&w);
}

void WorkerStarted() {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
}

void WorkerRound() {
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
        ConfigReloadPending = false;
        ProcessConfigFile(PGC_SIGHUP);
    }
}

}  // namespace pgx::pg
