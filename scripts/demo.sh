#!/usr/bin/env bash
# The offline demo: a throwaway store, a tiny image made from Debian's busybox-static,
# installed and entered. Everything lives in a temp dir that is removed at the end.
set -euo pipefail
BIN=$(realpath "${1:-target/debug/chroot-distro}")
WORK=$(mktemp -d /tmp/chroot-distro-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export XDG_DATA_HOME=$WORK/data XDG_CACHE_HOME=$WORK/cache

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "chroot-distro --version"; "$BIN" --version
step "chroot-distro list"; "$BIN" list
# Until 'install' lands the demo makes the container by hand from busybox.
ROOT=$XDG_DATA_HOME/chroot-distro/containers/demo/rootfs
mkdir -p "$ROOT"/{bin,etc,root,tmp}
cp /bin/busybox "$ROOT/bin/busybox"
for a in sh ls cat echo uname id; do ln -sf busybox "$ROOT/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$ROOT/etc/passwd"
step "chroot-distro list"; "$BIN" list
step "chroot-distro rename demo demo2"; "$BIN" rename demo demo2
step "chroot-distro remove demo2"; "$BIN" remove demo2
