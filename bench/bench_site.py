"""Benchmark: an advisory page from ``repotool serve`` vs nginx serving the static export.

One run, same machine, both on loopback, side by side: the app (``repotool
serve``, one process: uvicorn with the httptools protocol, the page from
memory through the fast path) and nginx (one worker, the server block that
``repotool site nginx-conf`` writes) over the same ``public/`` after
``repotool site build``.  wrk drives them in alternation (app, nginx, app,
nginx, ...) for ``--rounds`` rounds with gzip accepted, as a browser would,
after a 1 s warm-up each; the median round of each counts, so that a burst
of load from elsewhere on the machine hits both.  nginx runs twice: with
the page's gzip copy made beforehand (``gzip_static``) and
``open_file_cache`` (its best case; the app likewise holds the page and its
gzip copy in memory), and as the production block is (gzipping this page
per request); the ratio is against the faster of the two.  Prints requests/s, p99
latency, the ratio and the load average; writes bench/results/site.json.

    .venv/bin/python bench/bench_site.py [--seconds 5] [--connections 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from repotool.site.nginx_conf import NginxSite, render_server_block  # noqa: E402
from tests.site.site_support import (  # noqa: E402
    NGINX_MAIN_CONF,
    export_site,
    free_port,
    make_site_project,
)

PAGE = "/advisories/PSSA-2014-0002/"


def wait_for(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {seconds} s")
        time.sleep(0.1)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            "Accept-Encoding: gzip",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert p99 is not None, out
    return {
        "requests_per_second": rps,
        "p99_ms": _ms(p99.group(1), p99.group(2)),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def _get(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        return gzip.decompress(body) if r.headers.get("Content-Encoding") == "gzip" else body


def _median(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The round with the median requests/s (its own p99 with it), and every round."""
    ranked = sorted(runs, key=lambda r: r["requests_per_second"])
    chosen: dict[str, Any] = dict(ranked[(len(ranked) - 1) // 2])
    chosen["rounds_requests_per_second"] = [r["requests_per_second"] for r in runs]
    chosen["rounds_p99_ms"] = [r["p99_ms"] for r in runs]
    chosen["median_p99_ms"] = statistics.median(r["p99_ms"] for r in runs)
    return chosen


TARGETS = {
    "app": "repotool serve",
    "nginx": "nginx, gzip_static+cache",
    "nginx_gzip": "nginx, gzip per request",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--cold",
        action="store_true",
        help="start the app with an empty bytecode cache (as from a fresh clone and venv)",
    )
    args = ap.parse_args()
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        project = make_site_project(Path(tmp))
        export_site(project)
        # nginx at its best: the page's gzip copy made once, beside it (gzip_static),
        # as the app keeps one in memory; the other server block gzips per request
        page_file = project.public / PAGE.strip("/") / "index.html"
        page_file.with_name("index.html.gz").write_bytes(
            gzip.compress(page_file.read_bytes(), compresslevel=6, mtime=0)
        )
        ports = {name: free_port() for name in TARGETS}
        prefix = Path(tmp) / "nginx"
        (prefix / "tmp").mkdir(parents=True)
        root = str(project.public.resolve())
        server = prefix / "server.conf"
        server.write_text(
            render_server_block(NginxSite(root, listen=f"127.0.0.1:{ports['nginx']}")).replace(
                "    sendfile on;\n",
                # its best case: open files, sizes and .gz existence cached (not in the
                # production block: a replaced repomd.xml would be stale for a while)
                "    sendfile on;\n    open_file_cache max=1000 inactive=60s;\n"
                "    open_file_cache_valid 60s;\n",
            )
            + render_server_block(
                NginxSite(root, listen=f"127.0.0.1:{ports['nginx_gzip']}")
            ).replace("gzip_static on;", "gzip_static off;")
        )
        conf = prefix / "nginx.conf"
        conf.write_text(
            NGINX_MAIN_CONF.format(prefix=prefix, server=server, worker_connections=1024)
        )
        repotool = ROOT / ".venv" / "bin" / "repotool"
        env = dict(os.environ)
        if args.cold:  # every module compiled afresh: the first start after a clone
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        started = time.monotonic()
        app = subprocess.Popen(
            [str(repotool), "serve", "--quiet", "--port", str(ports["app"])],
            cwd=project.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        nginx = subprocess.Popen(
            ["nginx", "-p", str(prefix), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            urls = {name: f"http://127.0.0.1:{port}{PAGE}" for name, port in ports.items()}
            wait_for(urls["app"])
            app_start_s = time.monotonic() - started  # process start to first page (cold)
            try:
                wait_for(urls["nginx"])
            except RuntimeError:
                print((prefix / "error.log").read_text(errors="replace")[-2000:], file=sys.stderr)
                raise
            same = len({_get(url) for url in urls.values()}) == 1
            for url in urls.values():  # warm-up, not counted
                run_wrk(url, 1, args.connections)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in TARGETS}
            for _ in range(args.rounds):
                for name, url in urls.items():
                    runs[name].append(run_wrk(url, args.seconds, args.connections))
            results: dict[str, Any] = {
                "page": PAGE,
                "seconds": args.seconds,
                "connections": args.connections,
                "rounds": args.rounds,
                "workers": {"app": 1, "nginx": 1},
                "cpus": os.cpu_count(),
                "load_average_before": load_before[0],
                "load_average_after": os.getloadavg()[0],
                "app_start_to_first_page_s": round(app_start_s, 2),
                "cold_start": args.cold,
                "same_bytes": same,
                **{name: _median(r) for name, r in runs.items()},
            }
        finally:
            for proc in (app, nginx):
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
    app_r = results["app"]
    # against the faster nginx (normally gzip_static)
    best = max(("nginx", "nginx_gzip"), key=lambda n: results[n]["requests_per_second"])
    ngx_r = results[best]
    results["compared_with"] = best
    results["ratio_rps_app_over_nginx"] = (
        app_r["requests_per_second"] / ngx_r["requests_per_second"]
    )
    results["ratio_p99_app_over_nginx"] = app_r["p99_ms"] / max(ngx_r["p99_ms"], 1e-9)
    print(
        f"advisory page {PAGE}, {args.rounds} alternating rounds of {args.seconds} s each, "
        f"{args.connections} connections, gzip, 1 process/worker each; median round shown"
    )
    print(
        f"  load average {results['load_average_before']:.2f} before, "
        f"{results['load_average_after']:.2f} after ({results['cpus']} CPUs); "
        f"app start to first page {results['app_start_to_first_page_s']} s "
        f"({'cold: empty bytecode cache' if args.cold else 'warm bytecode cache'})"
    )
    print(f"  identical bytes from all: {results['same_bytes']}")
    for name, label in TARGETS.items():
        r = results[name]
        rounds = ", ".join(f"{x:.0f}" for x in r["rounds_requests_per_second"])
        print(
            f"  {label:25s} {r['requests_per_second']:8.0f} req/s   p99 {r['p99_ms']:7.2f} ms"
            f"   non-2xx {int(r['non_2xx'])}   (rounds: {rounds})"
        )
    print(
        f"  app / {TARGETS[best]}: {results['ratio_rps_app_over_nginx']:.3f} x throughput, "
        f"{results['ratio_p99_app_over_nginx']:.2f} x p99 latency"
    )
    out = ROOT / "bench" / "results" / "site.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
