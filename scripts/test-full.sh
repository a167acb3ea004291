#!/usr/bin/env bash
# The full test command: install what the tests need (idempotent), install npm dependencies,
# then lint, type-check, build and run every test against real services that the test run
# starts itself (test/global-setup.ts). 50-lowkey-vault.sh fails here when it cannot provide the
# Azure emulator's jar, because this run expects the Lowkey suite (PGROTATE_TEST_SERVICES unset).
set -euo pipefail
cd "$(dirname "$0")/.."
for step in scripts/install/*.sh; do
  echo "== install: $step"
  bash "$step"
done
echo "== npm ci"
npm ci --no-audit --no-fund
echo "== npm test"
set +e
npm test -- --reporter=default --reporter=json --outputFile=.test-results.json
code=$?
set -e
summary=0
node scripts/print-test-summary.mjs .test-results.json || summary=$?
if [ "$code" -eq 0 ] && [ "$summary" -ne 0 ]; then code=$summary; fi
exit $code
