#!/usr/bin/env bash
# Helm 3 for the chart tests (test/integration/helm-*.test.ts: helm lint / helm template).
# Built from source through the Go module proxy (no prebuilt binary download), into
# ~/.cache/pgrotate/bin/helm; test/support/helm.ts looks there and on PATH.
# Compiling takes a few minutes on 2 cores; the script is a no-op once the binary answers.
set -euo pipefail
VERSION="${HELM_VERSION:-v3.22.0}"
DEST="${HOME}/.cache/pgrotate/bin"
if [ -x "$DEST/helm" ] && "$DEST/helm" version --short 2>/dev/null | grep -q "^${VERSION}"; then exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    echo "helm: go not found; cannot build helm ${VERSION} (the helm chart tests will fail)" >&2
    exit 1
  fi
fi
mkdir -p "$DEST"
echo "helm: building helm.sh/helm/v3/cmd/helm@${VERSION} (a few minutes)"
GOBIN="$DEST" GOFLAGS="-buildvcs=false -trimpath" CGO_ENABLED=0 \
  go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${VERSION}" "helm.sh/helm/v3/cmd/helm@${VERSION}"
"$DEST/helm" version --short
