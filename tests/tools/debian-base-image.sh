#!/usr/bin/env bash
# Makes the Dockerfile's base images (debian:12, debian:12-slim) from a Debian mirror with
# debootstrap, where no container registry is reachable (this project's CI machines reach
# only Debian's mirrors). The "slim" one is the same minbase tree: larger than the real
# debian:12-slim (about 250 MB against 75 MB), the same packages for what the image needs.
#   tests/tools/debian-base-image.sh [MIRROR]     (root; podman and debootstrap installed)
set -euo pipefail
mirror=${1:-http://deb.debian.org/debian}
if podman image exists docker.io/library/debian:12 && podman image exists docker.io/library/debian:12-slim; then
  exit 0
fi
root=$(mktemp -d /tmp/outq-debian12.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
tar -C "$root" -c . | podman import --quiet - docker.io/library/debian:12 >/dev/null
podman tag docker.io/library/debian:12 docker.io/library/debian:12-slim
