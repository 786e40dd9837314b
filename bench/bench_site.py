"""Benchmark: an advisory page from the FastAPI app vs nginx serving the static export.

One run, same machine, both on loopback: the app (``repotool serve``, one
uvicorn process) and nginx (one worker) serving ``public/`` after
``repotool site build``.  wrk drives each for a bounded time with gzip
accepted, as a browser would.  Prints requests/s, p99 latency and the ratio;
writes bench/results/site.json.

    .venv/bin/python bench/bench_site.py [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.site.site_support import export_site, free_port, make_site_project  # noqa: E402

PAGE = "/advisories/PSSA-2014-0002/"

NGINX_CONF = """\
daemon off;
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    gzip on;
    gzip_min_length 512;
    gzip_types text/css application/atom+xml application/rss+xml application/json;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {public};
        disable_symlinks if_not_owner;
        location / {{ try_files $uri $uri/index.html =404; }}
    }}
}}
"""


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        project = make_site_project(Path(tmp))
        export_site(project)
        app_port, nginx_port = free_port(), free_port()
        prefix = Path(tmp) / "nginx"
        (prefix / "tmp").mkdir(parents=True)
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, port=nginx_port, public=project.public))
        repotool = ROOT / ".venv" / "bin" / "repotool"
        app = subprocess.Popen(
            [str(repotool), "serve", "--quiet", "--port", str(app_port)],
            cwd=project.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        nginx = subprocess.Popen(
            ["nginx", "-p", str(prefix), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            app_url = f"http://127.0.0.1:{app_port}{PAGE}"
            nginx_url = f"http://127.0.0.1:{nginx_port}{PAGE}"
            wait_for(app_url)
            try:
                wait_for(nginx_url)
            except RuntimeError:
                print((prefix / "error.log").read_text(errors="replace")[-2000:], file=sys.stderr)
                raise
            with urllib.request.urlopen(app_url) as a, urllib.request.urlopen(nginx_url) as n:
                same = a.read() == n.read()
            results = {
                "page": PAGE,
                "seconds": args.seconds,
                "connections": args.connections,
                "same_bytes": same,
                "app": run_wrk(app_url, args.seconds, args.connections),
                "nginx": run_wrk(nginx_url, args.seconds, args.connections),
            }
        finally:
            for proc in (app, nginx):
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
    app_r, ngx_r = results["app"], results["nginx"]
    assert isinstance(app_r, dict) and isinstance(ngx_r, dict)
    results["ratio_rps_app_over_nginx"] = (
        app_r["requests_per_second"] / ngx_r["requests_per_second"]
    )
    results["ratio_p99_app_over_nginx"] = app_r["p99_ms"] / max(ngx_r["p99_ms"], 1e-9)
    print(f"advisory page {PAGE}, {args.seconds} s each, {args.connections} connections, gzip")
    print(f"  identical bytes from both: {results['same_bytes']}")
    for name, r in (("FastAPI app", app_r), ("nginx static", ngx_r)):
        print(
            f"  {name:13s} {r['requests_per_second']:10.0f} req/s   p99 {r['p99_ms']:8.2f} ms"
            f"   non-2xx {int(r['non_2xx'])}"
        )
    print(
        f"  app/nginx: {results['ratio_rps_app_over_nginx']:.3f} x throughput, "
        f"{results['ratio_p99_app_over_nginx']:.1f} x p99 latency"
    )
    out = ROOT / "bench" / "results" / "site.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
