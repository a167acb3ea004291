#!/usr/bin/env bash
# Lowkey Vault (Azure Key Vault emulator) for the Azure provider's suite (test/lowkey/), which runs
# in `npm test` / `npm run test:full`. Makes a server jar available, first source that works:
#   1. $LOWKEY_VAULT_JAR, when that file exists (a jar obtained by hand);
#   2. the cached jar ~/.cache/pgrotate/lowkey-vault/lowkey-vault-app.jar;
#   3. a build from ../shared/tools/lowkey-vault/build.sh (next to the project root; Maven Central
#      only, needs mvn and a JDK 25). That folder may be read-only: build.sh builds in a temp copy
#      and writes only the jar (to $LOWKEY_VAULT_JAR when set, else to the cache path above);
#   4. otherwise: print how to get a release jar from upstream, and fail only when the Lowkey suite
#      is requested: PGROTATE_TEST_SERVICES unset (the full run starts every service) or naming
#      `lowkey`. A quick run with e.g. PGROTATE_TEST_SERVICES=pg15,bao does not need it.
# The upstream app jar is not on Maven Central (only on GitHub Packages and in the Docker image).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cached="${HOME}/.cache/pgrotate/lowkey-vault/lowkey-vault-app.jar"
shared="${PGROTATE_SHARED_DIR:-$root/../shared}/tools/lowkey-vault"

say() { echo "lowkey-vault: $*"; }

if [ -n "${LOWKEY_VAULT_JAR:-}" ] && [ -s "$LOWKEY_VAULT_JAR" ]; then
  say "using LOWKEY_VAULT_JAR=$LOWKEY_VAULT_JAR"
  exit 0
fi
if [ -z "${LOWKEY_VAULT_JAR:-}" ] && [ -s "$cached" ]; then
  say "using the cached jar $cached"
  exit 0
fi
if [ -f "$shared/build.sh" ]; then
  say "building from $shared (writes ${LOWKEY_VAULT_JAR:-$cached})"
  if jar="$(bash "$shared/build.sh" | tail -n 1)" && [ -s "$jar" ]; then
    say "built $jar"
    exit 0
  fi
  echo "lowkey-vault: the build from $shared failed (its output is above)" >&2
else
  echo "lowkey-vault: no jar at ${LOWKEY_VAULT_JAR:-$cached} and no $shared/build.sh" >&2
fi

cat >&2 <<EOF
lowkey-vault: to run the Azure Key Vault suite, get a Lowkey Vault server jar (7.x needs Java 25)
  from upstream (https://github.com/nagyesta/lowkey-vault, MIT), for example:
    - from its Docker image, which holds the jar at /lowkey-vault.jar:
        docker create --name lowkey nagyesta/lowkey-vault:7.3.74
        docker cp lowkey:/lowkey-vault.jar ./lowkey-vault-app.jar && docker rm lowkey
    - from GitHub Packages (needs a GitHub token): com.github.nagyesta.lowkey-vault:lowkey-vault-app
      at https://maven.pkg.github.com/nagyesta/lowkey-vault
    - from source: git clone https://github.com/nagyesta/lowkey-vault && ./gradlew :lowkey-vault-app:bootJar
  then put it at $cached or set LOWKEY_VAULT_JAR=/path/to/it.
EOF
services=",${PGROTATE_TEST_SERVICES:-},"
services="${services// /}"
if [ -z "${PGROTATE_TEST_SERVICES:-}" ] || [[ "$services" == *",lowkey,"* ]]; then
  echo "lowkey-vault: the test run needs it (PGROTATE_TEST_SERVICES=${PGROTATE_TEST_SERVICES:-<all>}); failing" >&2
  exit 1
fi
say "not installed; not needed for PGROTATE_TEST_SERVICES=$PGROTATE_TEST_SERVICES"
exit 0
