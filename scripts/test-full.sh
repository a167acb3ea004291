#!/usr/bin/env bash
# The full test command: install what the tests need (idempotent), bring the Node.js the tests run
# on (Node 24 LTS, the official binaries from the npm registry, cached: scripts/node-runtime.sh;
# the machine's own node may be an unsupported one), install npm dependencies with it, then lint,
# type-check, build and run every test against real services that the test run starts itself
# (test/global-setup.ts); then the unit and core integration tests once more on Node 22, the
# oldest supported major (scripts/test-node22.sh). 50-lowkey-vault.sh fails here when it cannot
# provide the Azure emulator's jar, because this run expects the Lowkey suite (PGROTATE_TEST_SERVICES unset).
set -euo pipefail
cd "$(dirname "$0")/.."
for step in scripts/install/*.sh; do
  echo "== install: $step"
  bash "$step"
done
echo "== node runtime"
node24="$(bash scripts/node-runtime.sh 24)"
export PATH="$node24:$PATH"
echo "== node $(node --version) ($(command -v node)), npm $(npm --version)"
echo "== npm ci"
npm ci --no-audit --no-fund
echo "== npm test (node $(node --version))"
set +e
npm test -- --reporter=default --reporter=json --outputFile=.test-results.json
code=$?
echo "== unit and core integration tests on Node 22 (scripts/test-node22.sh)"
bash scripts/test-node22.sh --reporter=default --reporter=json --outputFile=.test-results-node22.json
code22=$?
set -e
if [ "$code" -eq 0 ]; then code=$code22; fi
summary=0
node scripts/print-test-summary.mjs .test-results.json .test-results-node22.json || summary=$?
if [ "$code" -eq 0 ] && [ "$summary" -ne 0 ]; then code=$summary; fi
exit $code
