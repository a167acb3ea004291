#!/usr/bin/env bash
# PgBouncer from Debian, for the tests that keep its auth_file in step (test/support/pgbouncer-server.ts
# starts one process per test file with its own config).
set -euo pipefail
if [ -x /usr/sbin/pgbouncer ]; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
# The package's own service is not used: the tests start their own processes.
service pgbouncer stop >/dev/null 2>&1 || true
