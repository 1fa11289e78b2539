#!/usr/bin/env bash
# Install the system packages the demo and the test suite need (Debian). Idempotent and quiet
# when everything is already there, so `make test` stays fast on a prepared machine.
set -euo pipefail

PACKAGES=(
  docker-registry skopeo umoci busybox-static zstd xz-utils bzip2 gzip apache2-utils openssl
  qemu-user-static binfmt-support util-linux python3 ca-certificates curl debootstrap buildah
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian package starts a registry service on :5000; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop docker-registry >/dev/null 2>&1 || true
fi

if ! command -v cargo-nextest >/dev/null 2>&1 && ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi
