#!/usr/bin/env python3
"""Benchmark chroot-distro against the tools users would pick instead, in one run.

Run with `make bench` (it installs what it needs first). Everything happens under
$CD_BENCH_DIR (default /var/tmp/chroot-distro-bench); the stores and the baselines' targets live on
one tmpfs so the disk's slowdowns after heavy writes do not favour whoever runs first. The tools
are alternated inside each repetition and the median and min-max of every figure are reported,
with ratios to the floor (the fastest thing that does the same work) and to each peer.

The image: a `debootstrap --variant=minbase` Debian, a layer of many small files and a layer
with one large incompressible file (about 700 MB unpacked), served by Debian's docker-registry
on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("CD_BENCH_DIR", "/var/tmp/chroot-distro-bench"))
OURS = REPO / "target" / "release" / "chroot-distro"
VENV = WORK / "venv"
PY_TOOL = VENV / "bin" / "chroot-distro"
IMAGE_TAG = "bench"
REPO_NAME = "bench/debian"


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def sh(*cmd, check=True, env=None, quiet=True, **kw) -> subprocess.CompletedProcess:
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run([str(c) for c in cmd], check=check, env=env, stdout=out, stderr=out, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- set-up


def setup_tools() -> None:
    log("installing system packages (apt-get)")
    sh(REPO / "scripts" / "setup-system.sh", quiet=False)
    pkgs = ["podman", "debootstrap", "time", "python3-venv", "uidmap"]
    missing = [p for p in pkgs if sh("dpkg", "-s", p, check=False).returncode != 0]
    if missing:
        sh("apt-get", "install", "-y", "-qq", *missing, quiet=False)
    if not PY_TOOL.exists():
        log("installing the published Python chroot-distro into a virtualenv")
        sh(sys.executable, "-m", "venv", VENV)
        sh(VENV / "bin" / "pip", "install", "-q", "chroot-distro", quiet=False)
    log("building chroot-distro (release)")
    sh("cargo", "build", "--release", "--bin", "chroot-distro", cwd=REPO, quiet=False)


def debian_mirror() -> str:
    src = Path("/etc/apt/sources.list.d/debian.sources")
    if src.exists():
        for line in src.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    for line in Path("/etc/apt/sources.list").read_text().splitlines():
        if line.startswith("deb ") and "security" not in line:
            return line.split()[1]
    return "http://deb.debian.org/debian"


def build_image() -> Path:
    """An OCI layout with three layers, cached between runs."""
    layout = WORK / "oci"
    if (layout / "index.json").exists():
        return layout
    deb = WORK / "debian"
    if not (deb / "etc" / "debian_version").exists():
        log("debootstrap --variant=minbase bookworm (a few minutes, cached)")
        shutil.rmtree(deb, ignore_errors=True)
        sh("debootstrap", "--variant=minbase", "bookworm", deb, debian_mirror(), quiet=False)
    small = WORK / "small"
    if not small.exists():
        log("making the many-small-files layer")
        tmp = WORK / "small.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for d in range(100):
            sub = tmp / "srv" / "small" / f"d{d:03}"
            sub.mkdir(parents=True)
            for f in range(200):
                (sub / f"f{f:03}.txt").write_bytes(os.urandom(512 + (f * 37) % 3500).hex().encode()[:2048])
        tmp.rename(small)
    big = WORK / "big"
    if not big.exists():
        log("making the large incompressible layer")
        tmp = WORK / "big.tmp"
        (tmp / "srv" / "big").mkdir(parents=True, exist_ok=True)
        with open(tmp / "srv" / "big" / "random.bin", "wb") as f:
            for _ in range(350):
                f.write(os.urandom(1 << 20))
        tmp.rename(big)
    log("assembling the OCI layout with umoci")
    shutil.rmtree(layout, ignore_errors=True)
    sh("umoci", "init", "--layout", layout)
    sh("umoci", "new", "--image", f"{layout}:{IMAGE_TAG}")
    for src in (deb, small, big):
        sh("umoci", "insert", "--image", f"{layout}:{IMAGE_TAG}", src, "/")
    sh("umoci", "config", "--image", f"{layout}:{IMAGE_TAG}", "--config.cmd", "/bin/bash")
    return layout


class Registry:
    def __init__(self, layout: Path):
        self.port = free_port()
        self.dir = WORK / "registry"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        cfg = self.dir / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.dir / 'data'}\nhttp:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        self.ref = f"127.0.0.1:{self.port}/{REPO_NAME}:latest"
        sh("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:{IMAGE_TAG}", f"docker://{self.ref}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


class Tmpfs:
    def __init__(self, path: Path, size: str = "10g"):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path)

    def reset(self) -> None:
        for child in self.path.iterdir():
            # Our own sessions may still hold mounts in a container; release before deleting.
            sh("umount", "-R", "-l", child, check=False)
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink()

    def close(self) -> None:
        sh("umount", "-l", self.path, check=False)


# ---------------------------------------------------------------- measuring


def timed(cmd, env=None, cwd=None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command."""
    with tempfile.NamedTemporaryFile("r") as tf:
        start = time.perf_counter()
        r = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", tf.name, *map(str, cmd)],
            env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        elapsed = time.perf_counter() - start
        if r.returncode != 0:
            raise RuntimeError(f"{cmd} failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
        rss = int((tf.read().strip().splitlines() or ["0"])[-1])
    return elapsed, rss


def store_env(base: Path) -> dict:
    env = dict(os.environ)
    env.update(
        XDG_DATA_HOME=str(base / "data"),
        XDG_CACHE_HOME=str(base / "cache"),
        CD_NO_PROGRESS="1",
        CHROOT_DISTRO_NO_ELEVATE="1",
    )
    return env


class Results:
    def __init__(self):
        self.data: dict[tuple[str, str], list[tuple[float, int]]] = {}

    def add(self, task: str, tool: str, sample: tuple[float, int]) -> None:
        self.data.setdefault((task, tool), []).append(sample)

    def median(self, task: str, tool: str) -> float | None:
        s = self.data.get((task, tool))
        return statistics.median(x[0] for x in s) if s else None


def bench_install(res: Results, t: Tmpfs, reg: Registry, layout: Path, reps: int) -> None:
    ref = reg.ref
    for rep in range(reps):
        log(f"install, cold cache: repetition {rep + 1}/{reps}")
        # chroot-distro
        t.reset()
        env = store_env(t.path)
        res.add("install (cold)", "chroot-distro", timed([OURS, "install", "-q", ref, "--name", "a"], env=env))
        res.add("install (warm)", "chroot-distro", timed([OURS, "install", "-q", ref, "--name", "b"], env=env))
        # the Python tool
        t.reset()
        res.add("install (cold)", "chroot-distro (Python)",
                timed([PY_TOOL, "install", "--allow-insecure", ref, "--name", "a"], env=env))
        res.add("install (warm)", "chroot-distro (Python)",
                timed([PY_TOOL, "install", "--allow-insecure", ref, "--name", "b"], env=env))
        # podman (vfs)
        t.reset()
        pod = ["podman", "--root", t.path / "podman", "--runroot", t.path / "podman-run",
               "--storage-driver", "vfs"]
        res.add("install (cold)", "podman pull (vfs)", timed([*pod, "pull", "-q", "--tls-verify=false", ref]))
        # skopeo + umoci
        t.reset()
        res.add("install (cold)", "skopeo copy + umoci unpack", timed(
            ["sh", "-c", f"skopeo copy -q --src-tls-verify=false docker://{ref} oci:{t.path}/sk:x && "
                         f"umoci unpack --image {t.path}/sk:x {t.path}/bundle"]))
        # the floor: tar -xzf of the same layer blobs, no network, no verification
        t.reset()
        blobs = layer_blobs(layout)
        script = f"mkdir -p {t.path}/floor && " + " && ".join(f"tar -xzf {b} -C {t.path}/floor" for b in blobs)
        res.add("install (cold)", "tar -xzf of the layers (floor)", timed(["sh", "-c", script]))
        res.add("install (warm)", "tar -xzf of the layers (floor)", timed(["sh", "-c", script.replace("/floor", "/floor2")]))


def layer_blobs(layout: Path) -> list[Path]:
    index = json.loads((layout / "index.json").read_text())
    desc = next(m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == IMAGE_TAG)
    manifest = json.loads((layout / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_text())
    return [layout / "blobs" / "sha256" / l["digest"].split(":")[1] for l in manifest["layers"]]


def bench_login(res: Results, t: Tmpfs, reg: Registry, reps: int, runs: int = 20) -> None:
    t.reset()
    env = store_env(t.path)
    sh(OURS, "install", "-q", reg.ref, "--name", "c", env=env)
    sh(PY_TOOL, "install", "--allow-insecure", reg.ref, "--name", "p", env=env)
    rootfs = t.path / "data" / "chroot-distro" / "containers" / "c" / "rootfs"
    cases = {
        "chroot-distro": [OURS, "login", "c", "--", "/bin/true"],
        "chroot-distro (Python)": [PY_TOOL, "login", "p", "--", "/bin/true"],
        "unshare -m chroot (floor)": ["unshare", "-m", "chroot", rootfs, "/bin/true"],
        "chroot": ["chroot", rootfs, "/bin/true"],
    }
    for rep in range(reps):
        log(f"login -- /bin/true: repetition {rep + 1}/{reps}")
        for tool, cmd in cases.items():
            samples = [timed(cmd, env=env) for _ in range(runs)]
            res.add("login -- /bin/true", tool,
                    (statistics.median(s[0] for s in samples), max(s[1] for s in samples)))
    # A second session joining a running container.
    holder = subprocess.Popen([OURS, "login", "c", "--", "/bin/sleep", "60"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        for rep in range(reps):
            samples = [timed(cases["chroot-distro"], env=env) for _ in range(runs)]
            res.add("login, joining a running container", "chroot-distro",
                    (statistics.median(s[0] for s in samples), max(s[1] for s in samples)))
    finally:
        holder.terminate()
        holder.wait()
        sh(OURS, "unmount", "c", env=env, check=False)


def bench_backup_diff(res: Results, t: Tmpfs, reg: Registry, reps: int) -> None:
    t.reset()
    env = store_env(t.path)
    sh(OURS, "install", "-q", reg.ref, "--name", "c", env=env)
    sh(PY_TOOL, "install", "--allow-insecure", reg.ref, "--name", "p", env=env)
    containers = t.path / "data" / "chroot-distro" / "containers"
    for rep in range(reps):
        log(f"backup and diff: repetition {rep + 1}/{reps}")
        out = t.path / "b.tar.zst"
        out.unlink(missing_ok=True)
        res.add("backup to .tar.zst", "chroot-distro", timed([OURS, "backup", "-q", "-o", out, "c"], env=env))
        out.unlink(missing_ok=True)
        res.add("backup to .tar.zst", "tar -I 'zstd -T0' (floor)",
                timed(["tar", "-I", "zstd -T0", "-cf", out, "-C", containers, "c"]))
        out.unlink(missing_ok=True)
        res.add("diff", "chroot-distro", timed([OURS, "diff", "c"], env=env))
        res.add("diff", "chroot-distro (Python)", timed([PY_TOOL, "diff", "p"], env=env))


# ---------------------------------------------------------------- report


def render(res: Results, reps: int) -> str:
    floors = {
        "install (cold)": "tar -xzf of the layers (floor)",
        "install (warm)": "tar -xzf of the layers (floor)",
        "login -- /bin/true": "unshare -m chroot (floor)",
        "backup to .tar.zst": "tar -I 'zstd -T0' (floor)",
    }
    lines = [
        f"Benchmark run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{platform.node() or 'this machine'}: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // (1 << 30)} GiB, "
        f"Linux {platform.release()}; {reps} repetitions, tools alternated, stores on tmpfs.",
        "",
        "| task | tool | median | min – max | × floor | × chroot-distro | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    tasks = []
    for task, _ in res.data:
        if task not in tasks:
            tasks.append(task)
    for task in tasks:
        floor = res.median(task, floors.get(task, ""))
        ours = res.median(task, "chroot-distro")
        for (t_, tool), samples in res.data.items():
            if t_ != task:
                continue
            times = [s[0] for s in samples]
            med = statistics.median(times)
            rss = max(s[1] for s in samples)
            fmt = (lambda x: f"{x * 1000:.1f} ms") if med < 1 else (lambda x: f"{x:.2f} s")
            ratio_floor = f"{med / floor:.2f}" if floor else "–"
            ratio_ours = f"{med / ours:.2f}" if ours else "–"
            lines.append(
                f"| {task} | {tool} | {fmt(med)} | {fmt(min(times))} – {fmt(max(times))} "
                f"| {ratio_floor} | {ratio_ours} | {rss / 1024:.1f} MiB |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=int(os.environ.get("REPS", "3")))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results.md")
    ap.add_argument("--check", action="store_true", help="only check that the script loads")
    args = ap.parse_args()
    if args.check:
        return 0
    if os.geteuid() != 0:
        log("run as root: the tools under test chroot and mount")
        return 1
    WORK.mkdir(parents=True, exist_ok=True)
    setup_tools()
    layout = build_image()
    reg = Registry(layout)
    t = Tmpfs(WORK / "tmpfs")
    res = Results()
    try:
        bench_install(res, t, reg, layout, args.reps)
        bench_login(res, t, reg, args.reps)
        bench_backup_diff(res, t, reg, args.reps)
    finally:
        t.reset()
        t.close()
        reg.stop()
    table = render(res, args.reps)
    args.out.write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
