#!/usr/bin/env bash
# The published Python chroot-distro in a virtualenv, for the store-compatibility test (and
# nothing else: its code is never copied). Idempotent; prints the path of its executable.
set -euo pipefail
VERSION=3.2.0
DEST="${CD_TEST_PYTHON_TOOL_DIR:-/var/cache/chroot-distro-tests/python-tool-$VERSION}"
# A venv cannot be moved after creation, so completion is marked by a file instead.
if [ ! -e "$DEST/.complete" ]; then
  rm -rf "$DEST"
  mkdir -p "$(dirname "$DEST")"
  if ! python3 -m venv "$DEST" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$DEST"
    python3 -m venv "$DEST"
  fi
  "$DEST/bin/pip" install -q --disable-pip-version-check "chroot-distro==$VERSION" >&2
  touch "$DEST/.complete"
fi
echo "$DEST/bin/chroot-distro"
