#!/usr/bin/env bash
# PostgreSQL 15 server binaries from Debian (13 and 18 come from npm packages).
set -euo pipefail
if [ -x /usr/lib/postgresql/15/bin/postgres ] && [ -f /usr/lib/postgresql/15/lib/pg_stat_statements.so ]; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
# The package starts a cluster of its own; the tests start their own servers instead.
service postgresql stop >/dev/null 2>&1 || true
