#!/usr/bin/env bash
# Prepare the foreign-architecture fixture of the cd-runtime tests (CI setup runs this once):
#   * an arm64 static busybox, extracted from Debian's busybox-static:arm64 package (downloaded,
#     not installed), at $DEST/bin/busybox;
#   * binfmt_misc mounted and qemu-aarch64 enabled (Debian's qemu-user-static + binfmt-support
#     register it with the F flag, so the interpreter need not be inside the container).
# Idempotent; prints the busybox path on success.
set -euo pipefail

DEST="${CD_TEST_ARM64_DIR:-/var/cache/chroot-distro-tests/arm64-busybox}"

if [ ! -x "$DEST/bin/busybox" ]; then
  export DEBIAN_FRONTEND=noninteractive
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  if ! (cd "$work" && apt-get download -q busybox-static:arm64 >/dev/null 2>&1); then
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download -q busybox-static:arm64 >/dev/null)
  fi
  mkdir -p "$work/x"
  dpkg-deb -x "$work"/busybox-static_*_arm64.deb "$work/x"
  mkdir -p "$DEST/bin"
  install -m 0755 "$work/x/bin/busybox" "$DEST/bin/busybox"
fi

if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 >/dev/null
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64

echo "$DEST/bin/busybox"
