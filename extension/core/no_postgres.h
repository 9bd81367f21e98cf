// Guard: the matching core is pure C++17 and must never see a PostgreSQL header.
//
// Every core header includes this file first. If a PostgreSQL header was
// included earlier in the same translation unit, its include guard macro is
// defined and compilation stops here. The core is also compiled without any
// PostgreSQL include path (CMakeLists.txt) and scanned by
// scripts/check-core-purity.sh, so an include added later fails the build too.
// Consequence for the glue (extension/pg): include core headers before any
// PostgreSQL header.
#pragma once

#if defined(POSTGRES_H) || defined(C_H) || defined(PG_CONFIG_H) || defined(FMGR_H) || \
    defined(PG_VERSION_NUM)
#error "extension/core must not include PostgreSQL headers: keep the matching core pure C++"
#endif
