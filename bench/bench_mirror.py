"""Benchmark: `repotool mirror sync` beside `dnf reposync` on the same loopback repository.

    .venv/bin/python bench/bench_mirror.py [--packages 2000] [--runs 3]

Builds (once, cached under bench/results/) a signed repository of N tiny noarch
packages from one spec with N subpackages, serves it with nginx on 127.0.0.1,
then alternates cold syncs of both tools and reports the median times and their
ratio, the median CPU seconds (user + system) each tool used (steadier than the
wall time on a busy machine), plus the requests and bytes of a no-op re-sync
(from nginx's access log).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPOTOOL = [sys.executable, "-m", "repotool"]
ENV = {**os.environ, "LC_ALL": "C.UTF-8"}


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=1800, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done  # type: ignore[no-any-return]


def build_repo(n: int) -> tuple[Path, Path]:
    """A signed repository of n packages (cached); returns (repo dir, public key)."""
    root = RESULTS / f"mirror-repo-{n}"
    repo, key = root / "repo", root / "key.asc"
    if (root / "done").exists():
        return repo, key
    shutil.rmtree(root, ignore_errors=True)
    home = root / "gnupg"
    home.mkdir(parents=True, mode=0o700)
    uid = "Bench Mirror <bench@localhost>"
    run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "rsa2048",
            "sign",
            "never",
        ]
    )
    key.write_text(run(["gpg", "--homedir", str(home), "--armor", "--export", uid]).stdout)
    subs = "".join(
        f"%package -n bench-{i:04d}\nSummary: bench package {i}\n"
        f"%description -n bench-{i:04d}\nbench package {i}\n"
        f"%files -n bench-{i:04d}\n/usr/share/bench/{i:04d}\n\n"
        for i in range(n)
    )
    spec = root / "bench.spec"
    spec.write_text(
        "Name: bench\nVersion: 1.0\nRelease: 1\nSummary: mirror benchmark\nLicense: MIT\n"
        "BuildArch: noarch\n\n%description\nmirror benchmark\n\n"
        f"%install\nmkdir -p %{{buildroot}}/usr/share/bench\n"
        f"for i in $(seq -w 0000 {n - 1:04d}); do echo $i > %{{buildroot}}/usr/share/bench/$i;"
        " done\n\n" + subs
    )
    t0 = time.monotonic()
    run(["rpmbuild", "-bb", "--define", f"_topdir {root / 'rpmbuild'}", str(spec)])
    print(f"built {n} packages in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    shutil.move(str(root / "rpmbuild" / "RPMS" / "noarch"), str(repo / "Packages"))
    run(["createrepo_c", "--quiet", str(repo)])
    repomd = repo / "repodata" / "repomd.xml"
    run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--yes",
            "--local-user",
            uid,
            "--armor",
            "--output",
            str(repomd) + ".asc",
            "--detach-sign",
            str(repomd),
        ]
    )
    shutil.rmtree(root / "rpmbuild")
    (root / "done").write_text("ok")
    return repo, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(docroot: Path, work: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = work / "access.log"
    conf = work / "nginx.conf"
    conf.write_text(f"""
daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log;
events {{ worker_connections 256; }}
http {{
  log_format bench '$request_uri $status $bytes_sent';
  access_log {log} bench;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  types {{ application/xml xml; application/x-rpm rpm; }}
  server {{ listen 127.0.0.1:{port}; root {docroot}; }}
}}
""")
    proc = subprocess.Popen(
        ["nginx", "-p", str(work), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/", log


def log_since(log: Path, offset: int) -> tuple[int, int, int]:
    """(requests, bytes sent, new offset) of the access log after ``offset``."""
    data = log.read_bytes()
    lines = data[offset:].decode().splitlines()
    return len(lines), sum(int(ln.split()[-1]) for ln in lines), len(data)


def children_cpu() -> float:
    """CPU seconds (user + system) of the waited-for child processes so far."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``argv``."""
    t0, c0 = time.monotonic(), children_cpu()
    run(argv)
    return time.monotonic() - t0, children_cpu() - c0


def ours(url: str, dest: Path, key: Path) -> tuple[float, float]:
    return timed(
        [
            *REPOTOOL,
            "mirror",
            "sync",
            url,
            str(dest),
            "--key",
            str(key),
            "--json",
            "-q",
            "--max-age",
            str(10 * 365 * 86400),
        ]
    )


def reposync(url: str, dest: Path, cache: Path) -> tuple[float, float]:
    shutil.rmtree(cache, ignore_errors=True)
    empty = cache / "repos.d"
    empty.mkdir(parents=True)
    return timed(
        [
            "dnf",
            "-q",
            f"--setopt=reposdir={empty}",
            f"--setopt=cachedir={cache}",
            "--nogpgcheck",
            f"--repofrompath=bench,{url}",
            "--repo=bench",
            "reposync",
            "--download-metadata",
            "--norepopath",
            "-p",
            str(dest),
        ]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--packages", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    repo, key = build_repo(args.packages)
    with tempfile.TemporaryDirectory(prefix="bench-mirror-", dir=RESULTS) as tmp:
        work = Path(tmp)
        proc, url, log = start_nginx(repo, work)
        try:
            times: dict[str, list[float]] = {"repotool": [], "reposync": []}
            cpu: dict[str, list[float]] = {"repotool": [], "reposync": []}
            for i in range(args.runs):
                for tool, (wall, used) in (
                    ("repotool", ours(url, work / f"ours-{i}" / "el7", key)),
                    ("reposync", reposync(url, work / f"dnf-{i}", work / "dnf-cache")),
                ):
                    times[tool].append(wall)
                    cpu[tool].append(used)
                print(
                    f"run {i + 1}: repotool {times['repotool'][-1]:.2f} s "
                    f"(CPU {cpu['repotool'][-1]:.2f} s), dnf reposync "
                    f"{times['reposync'][-1]:.2f} s (CPU {cpu['reposync'][-1]:.2f} s)",
                    file=sys.stderr,
                )
            _, _, off = log_since(log, 0)
            ours(url, work / "ours-0" / "el7", key)
            noop_req, noop_bytes, off = log_since(log, off)
            reposync_again = time.monotonic()
            run(
                [
                    "dnf",
                    "-q",
                    f"--setopt=reposdir={work / 'dnf-cache' / 'repos.d'}",
                    f"--setopt=cachedir={work / 'dnf-cache'}",
                    "--nogpgcheck",
                    f"--repofrompath=bench,{url}",
                    "--repo=bench",
                    "reposync",
                    "--download-metadata",
                    "--norepopath",
                    "-p",
                    str(work / "dnf-0"),
                ]
            )
            reposync_again = time.monotonic() - reposync_again
            dnf_req, dnf_bytes, off = log_since(log, off)
        finally:
            proc.terminate()
            proc.wait(10)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "packages": args.packages,
        "runs": args.runs,
        "cold_seconds_median": med,
        "cold_cpu_seconds_median": {k: round(statistics.median(v), 2) for k, v in cpu.items()},
        "ratio_reposync_over_repotool": round(med["reposync"] / med["repotool"], 2),
        "noop_resync": {
            "repotool": {"requests": noop_req, "bytes": noop_bytes},
            "reposync": {
                "requests": dnf_req,
                "bytes": dnf_bytes,
                "seconds": round(reposync_again, 2),
            },
        },
    }
    (RESULTS / "mirror.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
