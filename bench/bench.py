#!/usr/bin/env python3
"""Benchmark chroot-distro against the tools users would pick instead, in one run.

`make bench` runs it as root on a Debian machine. It installs what it needs (apt-get: Debian's
docker-registry, skopeo, umoci, podman, debootstrap; pip: the published Python chroot-distro in a
virtualenv), builds the release binary, builds a realistic image (a `debootstrap
--variant=minbase` Debian, a layer of 20 000 small files, a layer of mixed files and a layer
with one 200 MB incompressible file: about 800 MB unpacked), serves it from docker-registry on 127.0.0.1 (a free
port) and measures, alternating the tools inside each repetition:

  install, cold cache   chroot-distro, Python chroot-distro, podman pull (vfs), skopeo copy +
                        umoci unpack, and tar -xzf of the layer blobs (the floor)
  install, warm cache   a second container from the same image
  login -- /bin/true    chroot-distro, Python chroot-distro, podman run --rm, chroot, and
                        unshare -m chroot (the floor)
  2nd session           the same while a session runs: chroot-distro and the Python tool log in
                        again, podman exec, and nsenter into the session's namespace (the floor)
  backup to .tar.zst    chroot-distro vs tar -I 'zstd -T0' (the floor)
  diff                  chroot-distro vs Python chroot-distro

Wall time (median and min-max over the repetitions) and peak RSS (/usr/bin/time's %M: the
command and whatever it waited for) go to bench/results.md, which is also spliced into the Benchmarks
section of README.md.

Everything lives under $CD_BENCH_DIR (default /var/tmp/cd-bench): the image, the registry, the
virtualenv and a tmpfs (`run/`) that holds every tool's store, so the disk's slowdowns after
heavy writes favour no one. Each tool gets its own state directories there. The registry is
stopped and everything mounted under the work dir is unmounted on exit, failure or Ctrl-C.

`--check` only checks the script (the report renderer and the mount table parser on canned
data): fast, no network, no root.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("CD_BENCH_DIR", "/var/tmp/cd-bench")).resolve()
OURS = REPO / "target" / "release" / "chroot-distro"
VENV = WORK / "venv"
PY_TOOL = VENV / "bin" / "chroot-distro"
IMAGE_TAG = "bench"
REPO_NAME = "bench/debian"
SUITE = "bookworm"
APT_PACKAGES = [
    "docker-registry", "skopeo", "umoci", "podman", "runc", "debootstrap", "uidmap", "time",
    "python3-venv", "zstd", "tar", "gzip", "util-linux", "ca-certificates",
]
LOGIN_RUNS = 15  # `login -- /bin/true` runs per repetition; the repetition's figure is their median

# Tool names, as they appear in the table.
CD = "chroot-distro"
PY = "chroot-distro (Python 3.2)"
PODMAN_PULL = "podman pull (vfs)"
PODMAN_CREATE = "podman create (vfs)"
PODMAN_RUN = "podman run --rm (runc, overlay, host net)"
SKOPEO = "skopeo copy + umoci unpack"
UMOCI = "umoci unpack (layout already copied)"
TAR_FLOOR = "tar -xzf of the layer blobs (floor)"
CHROOT = "chroot"
UNSHARE_FLOOR = "unshare -m chroot (floor)"
PODMAN_EXEC = "podman exec (runc)"
NSENTER_FLOOR = "nsenter -m -r -t PID (floor)"
ZSTD_FLOOR = "tar -I 'zstd -T0' -cf (floor)"

T_COLD = "install, cold cache"
T_WARM = "install, warm cache (2nd container)"
T_LOGIN = "login C -- /bin/true"
T_JOIN = "login C -- /bin/true, 2nd session"
T_BACKUP = "backup to .tar.zst"
T_DIFF = "diff (warm page cache)"

FLOORS = {
    T_COLD: TAR_FLOOR,
    T_WARM: TAR_FLOOR,
    T_LOGIN: UNSHARE_FLOOR,
    T_JOIN: NSENTER_FLOOR,
    T_BACKUP: ZSTD_FLOOR,
}

# One line per figure where chroot-distro is slower than a peer, keyed by (task, peer). Filled
# in from profiling the run that produced bench/results.md; a slower figure without an entry is
# reported as not analysed.
CAUSES: dict[tuple[str, str], str] = {
    (T_WARM, PODMAN_CREATE): "podman's vfs driver copies the image directory it already unpacked; "
    "chroot-distro keeps only the compressed layers and re-inflates them (gzip) for every new "
    "container",
    (T_LOGIN, CHROOT): "bare chroot makes no mount namespace and mounts nothing; login also makes a "
    "private namespace and mounts /proc, /sys, /dev and the default binds, and sets up the user "
    "and the environment",
    (T_DIFF, PY): "the Python tool answers from a baseline index it cached (JSON) on its first "
    "diff; so does chroot-distro (a binary index per layer), so this would be noise",
    (T_COLD, PY): "within the noise of this shared 2-core VM: both are bound by inflating the "
    "same gzip layers (their floor, tar -xzf, is within 10 % of both)",
}


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def sh(*cmd, check=True, env=None, quiet=True, **kw) -> subprocess.CompletedProcess:
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run([str(c) for c in cmd], check=check, env=env, stdout=out, stderr=out, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- mounts and cleanup


def unescape_mountinfo(field_: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def mounts_under(path: Path, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    base = str(path).rstrip("/")
    found = []
    for line in mountinfo.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        mp = unescape_mountinfo(parts[4])
        if mp == base or mp.startswith(base + "/"):
            found.append(mp)
    return sorted(set(found), key=lambda m: (-m.count("/"), m))


def unmount_under(path: Path, keep_top: bool = False) -> None:
    for _ in range(5):
        mps = [m for m in mounts_under(path) if not (keep_top and m == str(path))]
        if not mps:
            return
        for mp in mps:
            sh("umount", "-l", mp, check=False)
    left = [m for m in mounts_under(path) if not (keep_top and m == str(path))]
    if left:
        raise RuntimeError(f"cannot unmount {left}")


def wipe(path: Path) -> None:
    """Delete `path` only once nothing is mounted below it (a bind-mounted host /dev or home
    would otherwise be deleted through), and never across filesystems."""
    if not path.exists() and not path.is_symlink():
        return
    unmount_under(path)
    sh("rm", "-rf", "--one-file-system", path, check=False)
    if path.exists():
        # chattr +i leftovers and the like: report, do not loop.
        raise RuntimeError(f"cannot delete {path}")


class Cleanup:
    """Undo stack run once, on normal exit, exceptions, Ctrl-C and SIGTERM."""

    def __init__(self):
        self.actions: list[tuple[str, object]] = []
        self.done = False

    def push(self, what: str, fn) -> None:
        self.actions.append((what, fn))

    def run(self) -> None:
        if self.done:
            return
        self.done = True
        # Ctrl-C during cleanup must not leave a registry behind.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            while self.actions:
                what, fn = self.actions.pop()
                try:
                    fn()
                except Exception as e:  # noqa: BLE001 - keep cleaning up
                    log(f"cleanup: {what}: {e}")
        finally:
            signal.signal(signal.SIGINT, old)


# ---------------------------------------------------------------- set-up


def setup_tools() -> None:
    def installed(pkg: str) -> bool:
        q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        return "install ok installed" in q.stdout

    missing = [p for p in APT_PACKAGES if not installed(p)]
    if missing:
        log(f"apt-get install {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sh("apt-get", "update", "-qq", env=env, quiet=False)
        sh("apt-get", "install", "-y", "-qq", *missing, env=env, quiet=False)
    # The Debian package starts its own registry on :5000; ours runs on a free port.
    if shutil.which("systemctl"):
        sh("systemctl", "stop", "docker-registry", check=False)
    if not PY_TOOL.exists():
        log("pip install chroot-distro (the published Python tool) into a virtualenv")
        shutil.rmtree(VENV, ignore_errors=True)
        sh(sys.executable, "-m", "venv", VENV)
        sh(VENV / "bin" / "pip", "install", "-q", "chroot-distro", quiet=False)
    log("cargo build --release --bin chroot-distro")
    sh("cargo", "build", "--release", "--bin", "chroot-distro", cwd=REPO, quiet=False)


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources)."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = dict(
                    (k.strip(), v.strip()) for k, _, v in
                    (ln.partition(":") for ln in stanza.splitlines() if ":" in ln and not ln.startswith("#"))
                )
                uris = fields.get("URIs", "").split()
                suites = fields.get("Suites", "").split()
                if uris and SUITE in suites:
                    return uris[0]
        else:
            for ln in text.splitlines():
                parts = ln.split()
                if len(parts) >= 3 and parts[0] == "deb" and SUITE in parts[2:3]:
                    uri = next((p for p in parts[1:] if not p.startswith("[")), "")
                    if uri:
                        return uri
    return "http://deb.debian.org/debian"


def cached_tree(done: Path, what: str, fill) -> Path:
    """`done`, made once by `fill` in a sibling temporary folder renamed into place only when
    complete, so an interrupted run never leaves a half tree that looks finished."""
    if not done.exists():
        log(f"making {what}")
        tmp = done.with_name(done.name + ".tmp")
        wipe(tmp)
        fill(tmp)
        tmp.rename(done)
    return done


def build_image() -> Path:
    """An OCI layout with four layers, cached between runs under WORK/image."""
    img = WORK / "image"
    layout = img / "oci-4layers"
    if (layout / "index.json").exists():
        return layout
    img.mkdir(parents=True, exist_ok=True)
    deb = img / "debian"
    if not (deb / "etc" / "debian_version").exists():
        mirror = debian_mirror()
        log(f"debootstrap --variant=minbase {SUITE} from {mirror} (a few minutes, cached)")
        tmp = img / "debian.tmp"
        wipe(tmp)
        sh("debootstrap", "--variant=minbase", SUITE, tmp, mirror, quiet=False)
        unmount_under(tmp)
        wipe(deb)
        tmp.rename(deb)

    def small_files(tmp: Path) -> None:
        for d in range(100):
            sub = tmp / "srv" / "small" / f"d{d:03}"
            sub.mkdir(parents=True)
            for f in range(200):
                size = 256 + (f * 37 + d * 11) % 3800
                (sub / f"f{f:03}.txt").write_bytes(os.urandom(size // 2).hex().encode())

    def mixed_files(tmp: Path) -> None:
        (tmp / "opt" / "mixed").mkdir(parents=True)
        # Real ELF binaries, shared libraries and text, as an application layer would add.
        sh("cp", "-a", deb / "usr", tmp / "opt" / "mixed" / "usr")
        data = tmp / "opt" / "mixed" / "data"
        data.mkdir()
        for i in range(40):
            # Half-compressible: hex text of random bytes, 1 to 6 MB.
            size = (1 + i % 6) << 20
            (data / f"blob{i:02}.hex").write_bytes(os.urandom(size // 2).hex().encode())

    def big_file(tmp: Path) -> None:
        (tmp / "srv" / "big").mkdir(parents=True)
        with open(tmp / "srv" / "big" / "random.bin", "wb") as f:
            for _ in range(200):
                f.write(os.urandom(1 << 20))

    small = cached_tree(img / "small", "the layer of 20 000 small files", small_files)
    mixed = cached_tree(
        img / "mixed",
        "the layer of mixed files (binaries, libraries, text, medium data files)",
        mixed_files,
    )
    big = cached_tree(img / "big200", "the layer with one 200 MB incompressible file", big_file)
    log("assembling the OCI layout (four gzip layers)")
    wipe(layout)
    tmp = img / "oci.tmp"
    wipe(tmp)
    write_layout(tmp, [deb, small, mixed, big])
    tmp.rename(layout)
    return layout


def write_blob(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_layout(layout: Path, trees: list[Path]) -> None:
    """An OCI image layout with one gzip layer per tree. Layers are made with GNU tar and gzip
    (umoci 0.4.7's `insert` wrote a truncated layer of the small-files tree here)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers, diff_ids = [], []
    for tree in trees:
        part = layout / "layer.tmp"
        with open(part, "wb") as out:
            tar = subprocess.Popen(["tar", "-C", tree, "--numeric-owner", "--xattrs", "-cf", "-", "."],
                                   stdout=subprocess.PIPE)
            gz = subprocess.Popen(["gzip", "-n", "-6"], stdin=subprocess.PIPE, stdout=out)
            diff_id = hashlib.sha256()
            while chunk := tar.stdout.read(1 << 20):
                diff_id.update(chunk)
                gz.stdin.write(chunk)
            gz.stdin.close()
            if tar.wait() != 0 or gz.wait() != 0:
                raise RuntimeError(f"cannot make the layer of {tree}")
        digest = hashlib.sha256()
        with open(part, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        size = part.stat().st_size
        part.rename(blobs / digest.hexdigest())
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": f"sha256:{digest.hexdigest()}", "size": size})
        diff_ids.append(f"sha256:{diff_id.hexdigest()}")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    config = {
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/bash"],
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"bench: {t.name}"} for t in trees],
    }
    cfg = write_blob(layout, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                "layers": layers}
    man = write_blob(layout, json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **man,
        "annotations": {"org.opencontainers.image.ref.name": IMAGE_TAG}}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def layer_blobs(layout: Path) -> list[Path]:
    index = json.loads((layout / "index.json").read_text())
    desc = next(m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == IMAGE_TAG)
    manifest = json.loads((layout / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_text())
    return [layout / "blobs" / "sha256" / layer["digest"].split(":")[1] for layer in manifest["layers"]]


def unpacked_size(layout: Path) -> int:
    total = 0
    for blob in layer_blobs(layout):
        out = subprocess.run(["sh", "-c", f"gzip -dc '{blob}' | wc -c"], capture_output=True, check=True)
        total += int(out.stdout)
    return total


class Registry:
    """Debian's docker-registry on 127.0.0.1 at a free port, holding the bench image."""

    def __init__(self, layout: Path, cleanup: Cleanup):
        self.port = free_port()
        self.dir = WORK / "registry"
        wipe(self.dir)
        self.dir.mkdir(parents=True)
        cfg = self.dir / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.dir / 'data'}\nhttp:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "registry.log", "wb"),
            start_new_session=True,
        )
        cleanup.push("stop the registry", self.stop)
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"docker-registry did not start; see {self.dir / 'registry.log'}")
                time.sleep(0.1)
        self.ref = f"127.0.0.1:{self.port}/{REPO_NAME}:latest"
        log(f"pushing the image to {self.ref}")
        sh("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:{IMAGE_TAG}",
           f"docker://{self.ref}", env=tool_env(WORK / "tmp"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Tmpfs:
    """The stores of every tool, on one tmpfs under the work dir."""

    def __init__(self, path: Path, cleanup: Cleanup):
        self.path = path
        wipe(path)
        path.mkdir(parents=True)
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        size = max(6 << 30, min(12 << 30, ram * 6 // 10))
        sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path)
        cleanup.push(f"unmount {path}", self.close)

    def reset(self) -> None:
        """Empty the tmpfs: every tool's mounts released first, then the files."""
        unmount_under(self.path, keep_top=True)
        for child in self.path.iterdir():
            wipe(child)

    def close(self) -> None:
        unmount_under(self.path)
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------------- measuring


@dataclass
class Sample:
    secs: float
    rss_kib: int


class Failed(Exception):
    pass


def timed(cmd, env=None, cwd=None) -> Sample:
    """Wall seconds and peak RSS (KiB) of one command. The RSS comes from /usr/bin/time (its
    wait4 rusage: the largest of the command and the children it waited for; daemons it leaves
    behind are not counted). Spawning the command straight from Python would not do: a
    process's max RSS survives exec, so every figure would start at Python's own size."""
    with tempfile.NamedTemporaryFile("r") as rss, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        # Its own process group, so that Ctrl-C (which reaches us) can stop the whole tree.
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name, *map(str, cmd)],
                                env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            msg = [ln for ln in err.read().decode(errors="replace").splitlines()
                   if ln.strip() and not ln.startswith("Command exited with")]
            raise Failed(f"exit {proc.returncode}: {(msg or [''])[-1][:200]}")
        kib = int((rss.read().split() or ["0"])[-1])
    return Sample(elapsed, kib)


def tool_env(base: Path) -> dict:
    """Every tool's state under `base`: XDG dirs (both chroot-distros), TMPDIR (skopeo)."""
    base.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        XDG_DATA_HOME=str(base / "data"),
        XDG_CACHE_HOME=str(base / "cache"),
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_RUNTIME_DIR=str(base / "runtime"),
        TMPDIR=str(base / "tmp"),
        CD_NO_PROGRESS="1",
        CD_FORCE_NO_COLORS="1",
        CHROOT_DISTRO_NO_ELEVATE="1",
    )
    for k in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "TMPDIR"):
        Path(env[k]).mkdir(parents=True, exist_ok=True)
    os.chmod(env["XDG_RUNTIME_DIR"], 0o700)
    return env


def lowered_ulimits() -> list[str]:
    """podman sets RLIMIT_NOFILE and RLIMIT_NPROC in the container; where CAP_SYS_RESOURCE is
    withheld (a VM sandbox) even re-setting the caller's own hard limit fails with EPERM, so
    ask for limits strictly below it. 4096 is plenty for /bin/true and does not change timing."""
    out = []
    for name, res in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        _, hard = resource.getrlimit(res)
        limit = 4096 if hard == resource.RLIM_INFINITY else min(4096, max(hard - 1, 1))
        out += ["--ulimit", f"{name}={limit}:{limit}"]
    return out


def podman(base: Path, driver: str) -> list:
    return ["podman", "--root", base / "storage", "--runroot", base / "run", "--tmpdir", base / "tmp",
            "--storage-driver", driver, "--events-backend", "file", "--cgroup-manager", "cgroupfs"]


@dataclass
class Results:
    data: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def add(self, task: str, tool: str, fn) -> None:
        if task not in self.order:
            self.order.append(task)
        self.data.setdefault((task, tool), [])
        if (task, tool) in self.errors:
            return
        try:
            self.data[(task, tool)].append(fn())
        except (Failed, OSError, subprocess.CalledProcessError) as e:
            log(f"{task} / {tool}: {e}")
            self.errors[(task, tool)] = not_measured(tool, str(e))

    def fail(self, task: str, tool: str, why: str) -> None:
        if task not in self.order:
            self.order.append(task)
        self.data.setdefault((task, tool), [])
        self.errors.setdefault((task, tool), why)

    def median(self, task: str, tool: str) -> float | None:
        s = self.data.get((task, tool))
        if not s or (task, tool) in self.errors:
            return None
        return statistics.median(x.secs for x in s)


def not_measured(tool: str, msg: str) -> str:
    if tool == CD and "not available yet" in msg:
        return "not measured (install not landed)"
    return f"failed: {msg}"


def rotate(items: list, n: int) -> list:
    n %= len(items)
    return items[n:] + items[:n]


def bench_install(res: Results, t: Tmpfs, ref: str, blobs: list[Path], reps: int) -> None:
    def ours() -> None:
        env = tool_env(t.path / "cd")
        res.add(T_COLD, CD, lambda: timed([OURS, "install", "-q", ref, "--name", "a"], env=env))
        res.add(T_WARM, CD, lambda: timed([OURS, "install", "-q", ref, "--name", "b"], env=env))

    def python() -> None:
        env = tool_env(t.path / "py")
        res.add(T_COLD, PY, lambda: timed([PY_TOOL, "install", "-q", "--allow-insecure", "-n", "a", ref], env=env))
        res.add(T_WARM, PY, lambda: timed([PY_TOOL, "install", "-q", "--allow-insecure", "-n", "b", ref], env=env))

    def pod() -> None:
        base = t.path / "podman"
        env = tool_env(base)
        p = podman(base, "vfs")
        res.add(T_COLD, PODMAN_PULL, lambda: timed([*p, "pull", "-q", "--tls-verify=false", ref], env=env))
        res.add(T_WARM, PODMAN_CREATE, lambda: timed([*p, "create", "--name", "b", ref, "/bin/true"], env=env))

    def skopeo() -> None:
        base = t.path / "skopeo"
        env = tool_env(base)
        script = (f"skopeo copy -q --src-tls-verify=false docker://{ref} oci:{base}/oci:x && "
                  f"umoci unpack --image {base}/oci:x {base}/a")
        res.add(T_COLD, SKOPEO, lambda: timed(["sh", "-c", script], env=env))
        res.add(T_WARM, UMOCI, lambda: timed(["umoci", "unpack", "--image", f"{base}/oci:x", f"{base}/b"], env=env))

    def floor() -> None:
        base = t.path / "tar"

        def extract(dest: Path) -> Sample:
            script = f"mkdir -p {dest} && " + " && ".join(f"tar -xzf {b} -C {dest}" for b in blobs)
            return timed(["sh", "-c", script])

        res.add(T_COLD, TAR_FLOOR, lambda: extract(base / "a"))
        res.add(T_WARM, TAR_FLOOR, lambda: extract(base / "b"))

    tools = [ours, python, pod, skopeo, floor]
    for rep in range(reps):
        log(f"install: repetition {rep + 1}/{reps}")
        for tool in rotate(tools, rep):
            t.reset()
            tool()
    t.reset()


def bench_login(res: Results, t: Tmpfs, ref: str, reps: int) -> None:
    log("login: installing one container per tool (not timed)")
    cd_env = tool_env(t.path / "cd")
    py_env = tool_env(t.path / "py")
    pod_base = t.path / "podman-overlay"
    pod_env = tool_env(pod_base)
    p = podman(pod_base, "overlay")
    rootfs = Path(cd_env["XDG_DATA_HOME"]) / "chroot-distro" / "containers" / "c" / "rootfs"
    prep = {
        CD: [OURS, "install", "-q", ref, "--name", "c"],
        PY: [PY_TOOL, "install", "-q", "--allow-insecure", "-n", "p", ref],
        PODMAN_RUN: [*p, "pull", "-q", "--tls-verify=false", ref],
    }
    envs = {CD: cd_env, PY: py_env, PODMAN_RUN: pod_env}
    cases = {
        CD: [OURS, "login", "c", "--", "/bin/true"],
        PY: [PY_TOOL, "login", "p", "--", "/bin/true"],
        # crun refuses this VM's hybrid cgroup layout; runc copes.
        PODMAN_RUN: [*p, "--runtime", "runc", "run", "--rm", "--pull", "never", "--network", "host",
                     *lowered_ulimits(), ref, "/bin/true"],
        CHROOT: ["chroot", rootfs, "/bin/true"],
        UNSHARE_FLOOR: ["unshare", "-m", "chroot", rootfs, "/bin/true"],
    }
    for tool, cmd in prep.items():
        try:
            timed(cmd, env=envs[tool])
        except Failed as e:
            log(f"login / {tool}: setup failed: {e}")
            res.fail(T_LOGIN, tool, f"failed: install for the login test: {e}")
    if (T_LOGIN, CD) in res.errors:
        for tool in (CHROOT, UNSHARE_FLOOR):
            res.fail(T_LOGIN, tool, "not measured (needs chroot-distro's rootfs)")
    measure_short_commands(res, T_LOGIN, "login", cases, envs, reps)
    sh(OURS, "unmount", "c", env=cd_env, check=False)
    sh(PY_TOOL, "unmount", "p", env=py_env, check=False)
    if (T_LOGIN, CD) not in res.errors:
        bench_join(res, cases, envs, p, ref, reps)


def bench_join(res: Results, login: dict, envs: dict, p: list, ref: str, reps: int) -> None:
    """A second session while one is running: chroot-distro and the Python tool log in again,
    podman execs into its running container, and the floor enters the running session's mount
    namespace and root with nsenter."""
    log("2nd session: starting a long-running session per tool (not timed)")
    long = ["/bin/sleep", "3600"]
    background = []
    cases = {}
    for tool, name in ((CD, "c"), (PY, "p")):
        if (T_LOGIN, tool) in res.errors:
            res.fail(T_JOIN, tool, res.errors[(T_LOGIN, tool)])
            continue
        before = set(pids_of("sleep"))
        background.append(subprocess.Popen([*login[tool][:3], "--", *long], env=envs[tool],
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True))
        deadline = time.monotonic() + 20
        new = []
        while not new and time.monotonic() < deadline:
            time.sleep(0.1)
            new = sorted(set(pids_of("sleep")) - before)
        if not new:
            res.fail(T_JOIN, tool, "not measured (the first session did not start)")
            continue
        cases[tool] = login[tool]
        if tool == CD:
            cases[NSENTER_FLOOR] = ["nsenter", "-m", "-r", "-t", str(new[0]), "/bin/true"]
    pod_env = envs[PODMAN_RUN]
    if (T_LOGIN, PODMAN_RUN) in res.errors:
        res.fail(T_JOIN, PODMAN_EXEC, res.errors[(T_LOGIN, PODMAN_RUN)])
    else:
        try:
            timed([*p, "--runtime", "runc", "run", "-d", "--name", "join", "--pull", "never",
                   "--network", "host", *lowered_ulimits(), ref, *long], env=pod_env)
            cases[PODMAN_EXEC] = [*p, "exec", "join", "/bin/true"]
            envs = {**envs, PODMAN_EXEC: pod_env}
        except Failed as e:
            res.fail(T_JOIN, PODMAN_EXEC, not_measured(PODMAN_EXEC, str(e)))
    try:
        measure_short_commands(res, T_JOIN, "2nd session", cases, envs, reps)
    finally:
        sh(*p, "rm", "-f", "-t", "0", "join", env=pod_env, check=False)
        for proc in background:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        sh(OURS, "unmount", "c", env=envs[CD], check=False)
        sh(PY_TOOL, "unmount", "p", env=envs[PY], check=False)


def measure_short_commands(res: Results, task: str, label: str, cases: dict, envs: dict,
                           reps: int) -> None:
    """`task` for each tool's command in `cases`: one untimed run each (first-use set-up: the
    Python tool's mounts, podman's runtime dirs), then `reps` repetitions with the tools
    alternated, each figure the median of LOGIN_RUNS runs."""
    for tool, cmd in cases.items():
        if (task, tool) not in res.errors:
            try:
                timed(cmd, env=envs.get(tool))
            except Failed as e:
                res.fail(task, tool, not_measured(tool, str(e)))

    def runs(tool: str) -> Sample:
        samples = [timed(cases[tool], env=envs.get(tool)) for _ in range(LOGIN_RUNS)]
        return Sample(statistics.median(s.secs for s in samples), max(s.rss_kib for s in samples))

    for rep in range(reps):
        log(f"{label}: repetition {rep + 1}/{reps}")
        for tool in rotate(list(cases), rep):
            res.add(task, tool, lambda tool=tool: runs(tool))


def pids_of(comm: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if (d / "comm").read_text().strip() == comm:
                    out.append(int(d.name))
    return out


def bench_backup_diff(res: Results, t: Tmpfs, reps: int) -> None:
    """Reuses the containers the login test installed."""
    cd_env = tool_env(t.path / "cd")
    py_env = tool_env(t.path / "py")
    containers = Path(cd_env["XDG_DATA_HOME"]) / "chroot-distro" / "containers"
    out = t.path / "backup.tar.zst"
    if not (containers / "c").exists():
        for tool in (CD, ZSTD_FLOOR):
            res.fail(T_BACKUP, tool, "not measured (install not landed)")
        res.fail(T_DIFF, CD, "not measured (install not landed)")
    # Warm the page cache for diff (the layers and the rootfs) and check both tools run.
    for cmd, env in (([OURS, "diff", "c"], cd_env), ([PY_TOOL, "diff", "p"], py_env)):
        sh(*cmd, env=env, check=False)

    def backup_ours() -> Sample:
        out.unlink(missing_ok=True)
        return timed([OURS, "backup", "-q", "-o", out, "c"], env=cd_env)

    def backup_tar() -> Sample:
        out.unlink(missing_ok=True)
        return timed(["tar", "-I", "zstd -T0", "-cf", out, "-C", containers, "c"])

    jobs = [
        (T_BACKUP, CD, backup_ours),
        (T_BACKUP, ZSTD_FLOOR, backup_tar),
        (T_DIFF, CD, lambda: timed([OURS, "diff", "c"], env=cd_env)),
        (T_DIFF, PY, lambda: timed([PY_TOOL, "diff", "p"], env=py_env)),
    ]
    for rep in range(reps):
        log(f"backup and diff: repetition {rep + 1}/{reps}")
        for task, tool, fn in rotate(jobs, rep):
            res.add(task, tool, fn)
    out.unlink(missing_ok=True)


# ---------------------------------------------------------------- report


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return f"{model}, {os.cpu_count()} cores, {ram:.0f} GiB RAM, Linux {platform.release()}"


def fmt_secs(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def render(res: Results, reps: int, image_mb: int, when: str, host: str, commit: str) -> str:
    lines = [
        f"Run of {when} at commit `{commit}` on {host}.",
        f"Image: Debian {SUITE} minbase + 20 000 small files + mixed files + one 200 MB "
        f"incompressible file, {image_mb} MB unpacked, four gzip layers, served by "
        f"docker-registry on 127.0.0.1. "
        f"{reps} repetitions, tools alternated within each; median and min – max of wall time; "
        f"`login` figures are the median of {LOGIN_RUNS} runs per repetition. Stores on tmpfs. "
        "Peak RSS is the largest of the command and the children it waited for.",
        "",
        "| task | tool | median | min – max | × floor | × chroot-distro | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    slower = []
    for task in res.order:
        floor = res.median(task, FLOORS.get(task, ""))
        ours = res.median(task, CD)
        for (t_, tool), samples in res.data.items():
            if t_ != task:
                continue
            if (task, tool) in res.errors or not samples:
                why = res.errors.get((task, tool), "not measured")
                lines.append(f"| {task} | {tool} | {why} | | | | |")
                continue
            times = [s.secs for s in samples]
            med = statistics.median(times)
            rss = max(s.rss_kib for s in samples)
            r_floor = f"{med / floor:.2f}" if floor else "–"
            r_ours = f"{med / ours:.2f}" if ours else "–"
            lines.append(
                f"| {task} | {tool} | {fmt_secs(med)} | {fmt_secs(min(times))} – {fmt_secs(max(times))} "
                f"| {r_floor} | {r_ours} | {rss / 1024:.1f} MiB |"
            )
            if ours and tool != CD and tool != FLOORS.get(task) and med < ours:
                slower.append((task, tool, ours / med))
    lines.append("")
    lines.append("× floor: median over the floor's median (the fastest way to do the same work). "
                 "× chroot-distro: median over chroot-distro's; above 1 means chroot-distro is faster.")
    lines.append("")
    lines.append("Where chroot-distro is slower than a peer:")
    lines.append("")
    if not slower:
        lines.append("- nowhere in this run.")
    for task, tool, ratio in slower:
        cause = CAUSES.get((task, tool), "cause not analysed yet")
        lines.append(f"- {task}, vs {tool} ({ratio:.2f}× its time): {cause}")
    return "\n".join(lines) + "\n"


README_START = "<!-- bench:start (written by bench/bench.py) -->"
README_END = "<!-- bench:end -->"


def splice_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        log(f"{readme} has no bench markers; not updated")
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{table}{README_END}{tail}")


def self_check() -> int:
    """What `make lint` runs: the pure parts, on canned data."""
    info = ("36 25 0:32 / /var/tmp/cd-bench/run rw - tmpfs tmpfs rw\n"
            "37 36 0:5 / /var/tmp/cd-bench/run/py/data/x\\040y/dev rw - devtmpfs udev rw\n"
            "38 25 0:33 / /var/tmp/cd-benchmark rw - tmpfs tmpfs rw\n")
    got = mounts_under(Path("/var/tmp/cd-bench/run"), info)
    assert got == ["/var/tmp/cd-bench/run/py/data/x y/dev", "/var/tmp/cd-bench/run"], got
    res = Results()
    res.add(T_COLD, CD, lambda: Sample(2.0, 50_000))
    res.add(T_COLD, TAR_FLOOR, lambda: Sample(1.0, 2_000))
    res.add(T_COLD, PY, lambda: Sample(1.5, 90_000))
    res.fail(T_LOGIN, CD, "not measured (install not landed)")
    out = render(res, 1, 700, "2000-01-01", "test machine", "0000000")
    assert "| 2.00 s | 2.00 s – 2.00 s | 2.00 | 1.00 |" in out, out
    assert "vs chroot-distro (Python 3.2) (1.33× its time)" in out, out
    assert "not measured (install not landed)" in out, out
    assert rotate([1, 2, 3], 4) == [2, 3, 1]
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=int(os.environ.get("REPS", "3")))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results.md")
    ap.add_argument("--readme", type=Path, default=REPO / "README.md")
    ap.add_argument("--only", default="install,login,backup",
                    help="comma-separated subset of install,login,backup (backup needs login's containers)")
    ap.add_argument("--check", action="store_true", help="only check the script itself (fast, offline)")
    args = ap.parse_args()
    if args.check:
        return self_check()
    if os.geteuid() != 0:
        log("run as root: the tools under test chroot and mount")
        return 1
    WORK.mkdir(parents=True, exist_ok=True)
    cleanup = Cleanup()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = set(args.only.split(","))
    try:
        setup_tools()
        layout = build_image()
        blobs = layer_blobs(layout)
        image_mb = unpacked_size(layout) // 1_000_000
        reg = Registry(layout, cleanup)
        t = Tmpfs(WORK / "run", cleanup)
        cleanup.push("release the tools' mounts", lambda: unmount_under(t.path, keep_top=True))
        res = Results()
        if "install" in only:
            bench_install(res, t, reg.ref, blobs, args.reps)
        if "login" in only or "backup" in only:
            t.reset()
            bench_login(res, t, reg.ref, args.reps if "login" in only else 0)
        if "backup" in only:
            bench_backup_diff(res, t, args.reps)
        t.reset()
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        cleanup.run()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        commit += " + uncommitted changes"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    table = render(res, args.reps, image_mb, when, machine(), commit)
    args.out.write_text("# Benchmark results\n\nWritten by `make bench` (bench/bench.py).\n\n" + table)
    splice_readme(args.readme, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
