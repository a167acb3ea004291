#!/usr/bin/env bash
# Lowkey Vault (Azure Key Vault emulator) for the Azure provider's emulator suite (npm run test:lowkey).
# Installs ~/.cache/pgrotate/lowkey-vault/lowkey-vault-app.jar. Sources, first that works:
#   1. LOWKEY_VAULT_JAR=/path/to/lowkey-vault-app-<version>.jar (a jar obtained by hand);
#   2. Maven Central through mvn (com.github.nagyesta.lowkey-vault:lowkey-vault-app).
# The upstream project publishes the app jar to GitHub Packages and Docker Hub only (Maven Central
# has lowkey-vault-client and lowkey-vault-testcontainers, not the app), so step 2 fails today;
# this script then says so and exits 0, because the default test run does not need the emulator.
# Releases 3.x+ need Java 21+; 7.x is built for Java 25 (/usr/lib/jvm/temurin-25-jdk-amd64).
set -euo pipefail
VERSION="${LOWKEY_VAULT_VERSION:-7.1.13}"
DEST="${HOME}/.cache/pgrotate/lowkey-vault"
JAR="${DEST}/lowkey-vault-app.jar"
if [ -s "$JAR" ]; then exit 0; fi
mkdir -p "$DEST"
if [ -n "${LOWKEY_VAULT_JAR:-}" ] && [ -s "${LOWKEY_VAULT_JAR}" ]; then
  cp "$LOWKEY_VAULT_JAR" "$JAR.tmp" && mv "$JAR.tmp" "$JAR"
  echo "lowkey-vault: installed $LOWKEY_VAULT_JAR"
  exit 0
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "lowkey-vault: mvn not found; not installed (the Azure emulator suite will not run)" >&2
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if mvn -q -B dependency:copy -Dartifact="com.github.nagyesta.lowkey-vault:lowkey-vault-app:${VERSION}:jar" -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1; then
  mv "$tmp"/lowkey-vault-app-*.jar "$JAR"
  echo "lowkey-vault: installed ${VERSION}"
else
  echo "lowkey-vault: com.github.nagyesta.lowkey-vault:lowkey-vault-app:${VERSION} is not served by Maven Central; not installed (set LOWKEY_VAULT_JAR to a downloaded release jar to run npm run test:lowkey)" >&2
  grep -m1 -E "ERROR.*(Could not|Failed)" "$tmp/mvn.log" >&2 || true
fi
exit 0
