#!/usr/bin/env bash
# A real Debian for the end-to-end test: `debootstrap --variant=minbase bookworm` from the mirror
# apt uses here, built once and cached. Built in a private mount namespace so that whatever
# debootstrap mounts inside the target can never stay mounted on the host. Idempotent; prints
# the directory.
set -euo pipefail
SUITE=bookworm
DEST="${CD_TEST_DEBIAN_DIR:-/var/cache/chroot-distro-tests/debian-minbase-$SUITE}"

mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    # The first URIs line of a stanza that lists the suite.
    uri=$(awk -v s="$SUITE" '
      /^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i==s) found=u}
      /^$/ {u=""} END {print found}' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  if [ -e /etc/apt/sources.list ]; then
    uri=$(awk -v s="$SUITE" '$1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {u=$i; if ($(i+1)==s) {print u; exit}}}' /etc/apt/sources.list)
    [ -n "$uri" ] && { echo "$uri"; return; }
  fi
  echo http://deb.debian.org/debian
}

if [ ! -e "$DEST/.complete" ]; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  rm -rf "$DEST"
  mkdir -p "$DEST"
  unshare -m --propagation private debootstrap --variant=minbase "$SUITE" "$DEST" "$(mirror)" >&2
  touch "$DEST/.complete"
fi
echo "$DEST"
