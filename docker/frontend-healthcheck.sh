#!/usr/bin/env bash
# Health check of the pgx-frontend container: GET /readyz on the REST port
# answers 200 (a database worker reaches the extension). Bash's /dev/tcp
# only, so the image needs no curl.
set -euo pipefail
exec 3<>"/dev/tcp/127.0.0.1/${PGX_HTTP_PORT:-8000}"
printf 'GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
read -r -t 5 _ status _ <&3
[ "$status" = 200 ]
