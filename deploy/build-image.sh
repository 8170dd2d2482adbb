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
if [ "$(id -u)" != 0 ]; then
  echo "deploy: building the image needs root (debootstrap, rootful podman): sudo $0 $*" >&2
  exit 1
fi

if ! "$podman" image exists "$base"; then
  tarball=$cache/debian-min-$suite.tar
  if [ ! -s "$tarball" ]; then
    echo "deploy: debootstrap --variant=minbase $suite (once; cached in $tarball)"
    rootfs=$cache/rootfs-$suite
    rm -rf "$rootfs"
    debootstrap --variant=minbase "$suite" "$rootfs" http://deb.debian.org/debian >/dev/null
    # What debian:bookworm-slim leaves out: apt's caches and lists (the Dockerfile updates
    # them), translations and manuals, now and for packages installed later.
    rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
      "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/man/*
    printf '%s\n' 'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/man/*' \
      'path-exclude /usr/share/info/*' > "$rootfs/etc/dpkg/dpkg.cfg.d/01-db4-slim"
    tar -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$rootfs"
  fi
  echo "deploy: podman import $base"
  "$podman" import --quiet - "$base" < "$tarball" >/dev/null
fi

# Nothing to do when the image was built from exactly these sources and this recipe.
src=${DB4_SRC:-$root}
pip_version=$("$pip" --version | cut -d' ' -f2)
sources=$( (cd "$src" && find pyproject.toml README.md db4core db4rpc db4node db4router protos \
  client -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' -print0 | sort -z \
  | xargs -0 sha256sum; cd "$here" && sha256sum Dockerfile healthcheck.py .dockerignore; \
  echo "pip $pip_version") | sha256sum | cut -c1-32)
if [ "$("$podman" image inspect --format '{{index .Labels "db4.sources"}}' "$image" \
       2>/dev/null)" = "$sources" ]; then
  echo "deploy: $image is up to date"
  exit 0
fi

# The project's wheel and every dependency's, plus pip itself to install them in the build.
wheels=$cache/wheels
mkdir -p "$wheels"
rm -f "$wheels"/db4-*.whl
"$pip" wheel -q --wheel-dir "$wheels" "$src" "pip==$pip_version" 2>&1 \
  | { grep -v '^WARNING: Location .* is ignored' || true; }

echo "deploy: podman build $image"
"$podman" build --quiet --format docker --build-arg BASE_IMAGE=localhost/debian-min \
  --build-arg "PIP_VERSION=$pip_version" --label "db4.sources=$sources" \
  --file "$here/Dockerfile" --tag "$image" "$here" >/dev/null
# Earlier builds' images and stages, now untagged (the layers in use stay cached).
"$podman" image prune --force >/dev/null
echo "deploy: built $image"
