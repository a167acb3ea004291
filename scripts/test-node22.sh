#!/usr/bin/env bash
# The unit tests and the core integration tests on Node 22 (the oldest supported major; the full
# suite runs on Node 24): the rotation protocol through the CLI and the library on PostgreSQL 15,
# OpenBao and moto: rotations with the file, Vault and AWS providers, crashes at every step,
# concurrency, bad input (on every PostgreSQL major, 13 to 18), secrecy, the Postgres-backed queue, and no runtime warning.
# Expects the dependencies installed (npm ci) and the services installed (scripts/install/*.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(bash scripts/node-runtime.sh 22)"
export PATH="$bin:$PATH"
echo "== node $(node --version) ($(command -v node))"
npm run build
CORE=(
  test/unit
  test/integration/bad-input.test.ts
  test/integration/cli-contract.test.ts
  test/integration/concurrent-rotation.test.ts
  test/integration/crash-recovery.test.ts
  test/integration/file-provider.test.ts
  test/integration/jobs-schedule.test.ts
  test/integration/jobs-offboard-run-due.test.ts
  test/integration/lazy-loading.test.ts
  test/integration/login-proof.test.ts
  test/integration/runtime-warnings.test.ts
  test/integration/secrecy.test.ts
  test/integration/vault-provider.test.ts
  test/integration/vault-rotation.test.ts
  test/integration/vault-secrecy.test.ts
  test/integration/aws-rotation.test.ts
)
PGROTATE_TEST_SERVICES="${PGROTATE_TEST_SERVICES:-pg13,pg14,pg15,pg16,pg17,pg18,bao,moto}" npx vitest run "${CORE[@]}" "$@"
