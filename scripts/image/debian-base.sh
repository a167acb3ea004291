#!/usr/bin/env bash
# A local stand-in for debian:SUITE-slim, for building the Dockerfile where no registry of base
# images can be reached (the image test, test/integration/container-image.test.ts).
#   scripts/image/debian-base.sh [SUITE]   -> prints the local image name, e.g.
#   localhost/pgrotate-debian-base:trixie-slim
# mmdebstrap makes the root filesystem from Debian's packages (minbase, with the same dpkg path
# excludes as the official slim images); the tarball is cached under ~/.cache/pgrotate/image/
# keyed by suite and by this recipe, and buildah imports it once into its local storage.
set -euo pipefail
SUITE="${1:-${PGROTATE_IMAGE_SUITE:-trixie}}"
CACHE="${PGROTATE_IMAGE_CACHE:-$HOME/.cache/pgrotate/image}"
# The recipe is this script: any change to it changes the cache key (KEY below).
EXCLUDES=(
  'path-exclude=/usr/share/doc/*'
  'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*'
  'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/groff/*'
  'path-exclude=/usr/share/lintian/*'
  'path-exclude=/usr/share/locale/*'
)
# apt settings of the official images: no downloaded .deb files or package caches left in layers.
APT_CONF='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";'
KEY="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
IMAGE="localhost/pgrotate-debian-base:${SUITE}-slim"
TARBALL="$CACHE/debian-${SUITE}-slim-${KEY}.tar"

# Already in buildah's storage with this recipe?
if [ "$(buildah inspect --type image --format '{{index .ImageAnnotations "org.pgrotate.recipe"}}' "$IMAGE" 2>/dev/null || true)" = "$KEY" ]; then
  echo "$IMAGE"
  exit 0
fi
mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
  echo "debian-base: mmdebstrap $SUITE (about a minute)" >&2
  dpkgopts=()
  for e in "${EXCLUDES[@]}"; do dpkgopts+=("--dpkgopt=$e"); done
  rm -f "$CACHE/debian-${SUITE}-slim-"*.tar   # tarballs of older recipes
  export APT_CONF
  mmdebstrap --quiet --format=tar --variant=minbase "${dpkgopts[@]}" \
    --customize-hook='printf "%s\n" "$APT_CONF" > "$1/etc/apt/apt.conf.d/docker-clean"' \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/*.bin' \
    "$SUITE" "$TARBALL.partial" >&2
  mv "$TARBALL.partial" "$TARBALL"
fi
ctr="$(buildah from scratch)"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$TARBALL" / >&2
buildah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --annotation "org.pgrotate.recipe=$KEY" "$ctr"
buildah commit --quiet --rm "$ctr" "$IMAGE" >&2
trap - EXIT
echo "$IMAGE"
