#!/usr/bin/env bash
# Redis server from Debian, for the BullMQ Redis backend tests (the test run starts its own).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package may start a system instance; the tests start their own servers instead.
service redis-server stop >/dev/null 2>&1 || true
