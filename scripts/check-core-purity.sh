#!/usr/bin/env bash
# Fails if any file under the matching core includes a PostgreSQL header.
set -euo pipefail
dir=${1:?usage: check-core-purity.sh DIR}
pattern='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]((postgres|postgres_ext|pg_config|c|fmgr|funcapi|miscadmin|libpq-fe)\.h|(access|catalog|commands|executor|lib|libpq|nodes|parser|port|postmaster|replication|storage|tcop|utils)/)'
if grep -nE "$pattern" "$dir"/* ; then
  echo "error: extension/core must not include PostgreSQL headers (see extension/core/no_postgres.h)" >&2
  exit 1
fi
