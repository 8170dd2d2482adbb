#!/usr/bin/env bash
# podman with db4's configuration: runtime runc (crun cannot run containers on cgroups v1
# hybrid hosts), ulimits at the host's hard limits (runc refuses higher ones), and storage under
# deploy/.cache so that nothing outside the work tree fills up. Arguments go to podman unchanged.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${DB4_PODMAN_CACHE:-$here/.cache}
mkdir -p "$cache/storage" "$cache/run"
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
if [ "$nofile" = unlimited ]; then nofile=1048576; fi
conf=$cache/containers.conf
new=$(printf '[engine]\nruntime = "runc"\n\n[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
  "$nofile" "$nofile" "$nproc" "$nproc")
[ -f "$conf" ] && [ "$(cat "$conf")" = "$new" ] || printf '%s\n' "$new" > "$conf"
storage=$cache/storage.conf
new=$(printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
  "$cache/storage" "$cache/run")
[ -f "$storage" ] && [ "$(cat "$storage")" = "$new" ] || printf '%s\n' "$new" > "$storage"
export CONTAINERS_CONF=$conf CONTAINERS_STORAGE_CONF=$storage
exec podman "$@"
