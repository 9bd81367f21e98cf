// Calls into the matching core from SQL-callable functions.
#pragma once

#include <exception>

#include "pg_prelude.h"

namespace pgx::pg {

// Runs a core call; a C++ exception becomes an ERROR only after the C++
// stack has unwound, so ereport's longjmp never crosses a live C++ object.
template <class F>
void RunCore(F&& f) {
    char message[256] = {0};
    try {
        f();
    } catch (const std::exception& e) {
        strlcpy(message, e.what(), sizeof message);
    } catch (...) {
        strlcpy(message, "unknown exception", sizeof message);
    }
    if (message[0] != '\0')
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("matching core failed: %s", message)));
}

}  // namespace pgx::pg
