#!/usr/bin/env bash
# OCI image tools for the image test (test/integration/container-image.test.ts): buildah builds
# the Dockerfile and runs the chart's commands in it (chroot isolation: no daemon, no crun);
# mmdebstrap makes the Debian base image locally (no registry for base images is reachable);
# podman is not used to run containers here (crun cannot setrlimit) but is handy to inspect images.
set -euo pipefail
if command -v buildah >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1 && command -v podman >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq buildah podman mmdebstrap >/dev/null
