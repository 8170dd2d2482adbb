#!/usr/bin/env bash
# Build db4's image with podman and no registry: the Debian base image is made once with
# debootstrap and `podman import` (cached in deploy/.cache), the project and its dependencies
# are built into wheels on the host (its pip configuration reaches the package index), and the
# Dockerfile installs those wheels with no network. Usage: deploy/build-image.sh [IMAGE]
# DB4_SRC=DIR builds the project from DIR instead of this work tree (e.g. a `git archive`).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
image=${1:-localhost/db4:dev}
suite=bookworm  # the Dockerfile's base: Debian 12, Python 3.11
base=localhost/debian-min:$suite
cache=$here/.cache
podman=$here/podman.sh
pip=${PIP:-$root/.venv/bin/pip}
mkdir -p "$cache"

if ! "$podman" image exists "$base"; then
  tarball=$cache/debian-min-$suite.tar
  if [ ! -s "$tarball" ]; then
    echo "deploy: debootstrap --variant=minbase $suite (once; cached in $tarball)"
    rootfs=$cache/rootfs-$suite
    rm -rf "$rootfs"
    debootstrap --variant=minbase "$suite" "$rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$rootfs"
  fi
  echo "deploy: podman import $base"
  "$podman" import --quiet - "$base" < "$tarball" >/dev/null
fi

# The project's wheel and every dependency's, plus pip itself to install them in the build.
wheels=$cache/wheels
mkdir -p "$wheels"
rm -f "$wheels"/db4-*.whl
pip_version=$("$pip" --version | cut -d' ' -f2)
"$pip" wheel -q --wheel-dir "$wheels" "${DB4_SRC:-$root}" "pip==$pip_version" 2>&1 \
  | { grep -v '^WARNING: Location .* is ignored' || true; }

echo "deploy: podman build $image"
"$podman" build --quiet --format docker --build-arg BASE_IMAGE=localhost/debian-min \
  --build-arg "PIP_VERSION=$pip_version" --file "$here/Dockerfile" --tag "$image" "$here" >/dev/null
echo "deploy: built $image"
