#!/usr/bin/env bash
# The offline demo: a tiny image made from Debian's busybox-static, served by Debian's
# docker-registry on 127.0.0.1, installed with chroot-distro and entered. Everything lives in a
# temp dir (store, cache, registry) that is removed at the end, also on failure or Ctrl-C.
# Set DEMO_SHELL=1 to get an interactive shell in the container at the end.
set -euo pipefail
BIN=$(realpath "${1:-target/debug/chroot-distro}")
WORK=$(mktemp -d /tmp/chroot-distro-demo.XXXXXX)
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
  "$BIN" kill demo >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export XDG_DATA_HOME=$WORK/data XDG_CACHE_HOME=$WORK/cache CHROOT_DISTRO_NO_ELEVATE=1

# Bold command lines on a terminal only (and never with CD_FORCE_NO_COLORS or NO_COLOR).
if [ -t 1 ] && [ -z "${CD_FORCE_NO_COLORS:-}" ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
  step() { printf '\n$ %s\n' "$*"; }
fi
sha() { sha256sum "$1" | cut -d' ' -f1; }

# 1. An OCI image layout with one layer: busybox, its applets, /etc files.
ROOT=$WORK/rootfs
mkdir -p "$ROOT"/{bin,etc,root,tmp,proc,sys,dev}
cp /bin/busybox "$ROOT/bin/busybox"
for a in sh ls cat echo uname id hostname ps env mount head; do ln -s busybox "$ROOT/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"
printf 'PRETTY_NAME="chroot-distro demo (busybox)"\n' >"$ROOT/etc/os-release"
OCI=$WORK/oci
mkdir -p "$OCI/blobs/sha256"
tar --numeric-owner --owner=0 --group=0 -C "$ROOT" -cf "$WORK/layer.tar" .
DIFF_ID=$(sha "$WORK/layer.tar")
gzip -n -c "$WORK/layer.tar" >"$WORK/layer.tar.gz"
LAYER=$(sha "$WORK/layer.tar.gz")
mv "$WORK/layer.tar.gz" "$OCI/blobs/sha256/$LAYER"
ARCH=$(dpkg --print-architecture)
cat >"$WORK/config.json" <<EOF
{"architecture":"$ARCH","os":"linux","config":{"Env":["PATH=/bin","DEMO=1"],"Entrypoint":["/bin/echo","hello from the entrypoint of"],"Cmd":["demo:1"]},"rootfs":{"type":"layers","diff_ids":["sha256:$DIFF_ID"]}}
EOF
CONFIG=$(sha "$WORK/config.json")
cp "$WORK/config.json" "$OCI/blobs/sha256/$CONFIG"
cat >"$WORK/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$CONFIG","size":$(stat -c %s "$WORK/config.json")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$LAYER","size":$(stat -c %s "$OCI/blobs/sha256/$LAYER")}]}
EOF
MANIFEST=$(sha "$WORK/manifest.json")
cp "$WORK/manifest.json" "$OCI/blobs/sha256/$MANIFEST"
echo '{"imageLayoutVersion":"1.0.0"}' >"$OCI/oci-layout"
cat >"$OCI/index.json" <<EOF
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$MANIFEST","size":$(stat -c %s "$WORK/manifest.json"),"annotations":{"org.opencontainers.image.ref.name":"demo"}}]}
EOF

# 2. A registry on a free loopback port, filled with skopeo.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: 127.0.0.1:$PORT}
EOF
/usr/bin/docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
# As root, skopeo would keep a blob-info cache in /var/lib/containers; the demo touches nothing
# outside its temp dir (a nonzero _CONTAINERS_ROOTLESS_UID moves the cache under XDG_DATA_HOME).
_CONTAINERS_ROOTLESS_UID=1000 XDG_DATA_HOME="$WORK/skopeo-data" \
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$OCI:demo" "docker://127.0.0.1:$PORT/demo:1"

# 3. The tool itself.
step "chroot-distro --version"; "$BIN" --version
step "chroot-distro install 127.0.0.1:$PORT/demo:1"; "$BIN" install "127.0.0.1:$PORT/demo:1"
step "chroot-distro list"; "$BIN" list
step "chroot-distro login demo -- sh -c '. /etc/os-release; echo \$PRETTY_NAME; id; hostname'"
"$BIN" login demo -- sh -c '. /etc/os-release; echo $PRETTY_NAME; id; hostname'
step "chroot-distro run demo"; "$BIN" run demo
if [ "${DEMO_SHELL:-}" = 1 ] && [ -t 0 ]; then
  step "chroot-distro login demo   (type 'exit' to leave)"; "$BIN" login demo || true
fi
step "chroot-distro backup demo -o demo.tar.zst"; "$BIN" backup demo -o "$WORK/demo.tar.zst"
step "chroot-distro remove demo"; "$BIN" remove demo
step "chroot-distro restore demo.tar.zst"; "$BIN" restore "$WORK/demo.tar.zst"
step "chroot-distro reset demo   (from the cache: the registry is stopped first)"
kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true; REG_PID=
"$BIN" reset demo
step "chroot-distro remove demo"; "$BIN" remove demo
