#!/usr/bin/env bash
# A real kube-apiserver + etcd (+ kubectl) for the Kubernetes tests (test/services/kube-service.ts):
# the chart installed with helm, the `kubernetes` secret provider, rollout restarts and OpenBao's
# kubernetes auth against a real TokenReview. Built from Go modules only by the team's shared tool
# ../shared/tools/kube-apiserver/build.sh (next to the project root; PGROTATE_SHARED_DIR overrides),
# into its cache ~/.cache/kube-apiserver-<version>: about 9 minutes cold on 2 cores, 0.1 s after.
# The shared folder may be read-only: the tool writes only to its cache.
# Fails only when the kube tests are requested (PGROTATE_TEST_SERVICES unset or naming `kube`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
shared="${PGROTATE_SHARED_DIR:-$root/../shared}/tools/kube-apiserver"
wanted=1
if [ -n "${PGROTATE_TEST_SERVICES:-}" ] && ! [[ ",${PGROTATE_TEST_SERVICES}," == *",kube,"* ]]; then wanted=0; fi
if [ ! -f "$shared/build.sh" ]; then
  echo "kube-apiserver: no $shared/build.sh (set PGROTATE_SHARED_DIR to the folder holding tools/kube-apiserver)" >&2
  [ "$wanted" = 1 ] && exit 1 || exit 0
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
command -v openssl >/dev/null 2>&1 || { apt-get install -y -q openssl >/dev/null; }
command -v curl >/dev/null 2>&1 || { apt-get install -y -q curl >/dev/null; }
echo "kube-apiserver: building with $shared/build.sh (about 9 min cold, cached after)"
if bin="$(bash "$shared/build.sh" | tail -n 1)" && [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ]; then
  echo "kube-apiserver: binaries in $bin"
  exit 0
fi
echo "kube-apiserver: the build failed (its output is above)" >&2
[ "$wanted" = 1 ] && exit 1 || exit 0
