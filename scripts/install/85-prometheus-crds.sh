#!/usr/bin/env bash
# The prometheus-operator CRDs (PrometheusRule, ServiceMonitor) for the chart-install test
# (test/integration/helm-install.test.ts applies them to the test API server). No GitHub here: the
# CRD YAML ships in the Go module zip of github.com/prometheus-operator/prometheus-operator, fetched
# through the Go module proxy and copied to ~/.cache/pgrotate/prometheus-operator-crds-<version>.
# A no-op once the files are there.
set -euo pipefail
VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
DEST="${HOME}/.cache/pgrotate/prometheus-operator-crds-${VERSION}"
FILES=(monitoring.coreos.com_prometheusrules.yaml monitoring.coreos.com_servicemonitors.yaml)
have=1
for f in "${FILES[@]}"; do [ -s "$DEST/$f" ] || have=0; done
if [ "$have" = 1 ]; then exit 0; fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
command -v go >/dev/null 2>&1 || { echo "prometheus-crds: go not found (the chart-install test will fail)" >&2; exit 1; }
echo "prometheus-crds: go mod download github.com/prometheus-operator/prometheus-operator@${VERSION}"
dir="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@${VERSION}" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
src="$dir/example/prometheus-operator-crd"
mkdir -p "$DEST"
for f in "${FILES[@]}"; do
  [ -s "$src/$f" ] || { echo "prometheus-crds: $src/$f missing" >&2; exit 1; }
  install -m 0644 "$src/$f" "$DEST/$f"
done
echo "prometheus-crds: CRDs in $DEST"
