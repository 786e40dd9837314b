"""A no-op ``repotool release``, side by side with ``createrepo_c --update``.

    .venv/bin/python bench/bench_noop.py [--runs 20] [--warmup 3] [--project DIR]

Releases a copy of the embedded default once (or uses ``--project``, a released
project), then times with hyperfine, in the project folder:

1. ``repotool release --quiet`` with nothing changed: the fast path (the stamp
   in the state folder holds, nothing heavy is imported);
2. the same with the stamp removed before each run: the full path deciding
   that nothing changed (key check, records, build cache, repositories, site);
3. ``createrepo_c --update`` on a copy of the published el7 repository: what a
   maintainer would otherwise run to keep a repository current;
4. ``repotool --version``: the interpreter and the command line's own start-up,
   the floor under any repotool command.

Page cache warm (hyperfine's warm-up runs).  Prints a table and JSON and saves
it to bench/results/noop.json; the numbers in docs/benchmarks.md come from it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
REPOTOOL = str(Path(sys.executable).parent / "repotool")
STAMP = ".repotool/release-stamp.json"


def released_project() -> Path:
    """A copy of the embedded default, released once (media from the shared cache)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    proj = Path(tempfile.mkdtemp(prefix="bench-noop-", dir=RESULTS))
    for name in ("repotool.toml", "specs", "web", "mirror"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, proj / name)
        elif src.exists():
            shutil.copy2(src, proj / name)
    toml = proj / "repotool.toml"
    cache = ROOT / ".repotool" / "media-cache"
    text = toml.read_text()
    if re.search(r"^\[media\]\s*$", text, re.M):
        text = re.sub(
            r"^\[media\]\s*$", f'[media]\ncache_dir = "{cache}"', text, count=1, flags=re.M
        )
    else:
        text += f'\n[media]\ncache_dir = "{cache}"\n'
    toml.write_text(text)
    subprocess.run([REPOTOOL, "release", "--quiet"], cwd=proj, check=True, timeout=1800)
    return proj


def hyperfine(proj: Path, runs: int, warmup: int, repo_copy: Path) -> list[dict[str, object]]:
    out = RESULTS / "noop-hyperfine.json"
    cmds = [
        ("repotool release (fast no-op)", f"{REPOTOOL} release --quiet", ""),
        (
            "repotool release (full path, stamp removed)",
            f"{REPOTOOL} release --quiet",
            f"rm -f {STAMP}",
        ),
        (
            "createrepo_c --update (same repository)",
            f"createrepo_c --update --quiet {repo_copy}",
            "",
        ),
        ("repotool --version (start-up floor)", f"{REPOTOOL} --version", ""),
    ]
    argv = ["hyperfine", "--warmup", str(warmup), "--runs", str(runs), "--export-json", str(out)]
    for name, cmd, prepare in cmds:
        argv += ["--command-name", name]
        argv += ["--prepare", prepare or "true"]
        argv.append(cmd)
    subprocess.run(argv, cwd=proj, check=True, timeout=3600)
    # leave the stamp in place for the next run of the bench
    subprocess.run([REPOTOOL, "release", "--quiet"], cwd=proj, check=True, timeout=1800)
    rows = []
    for r in json.loads(out.read_text())["results"]:
        rows.append(
            {
                "command": r["command"],
                "median_s": r["median"],
                "mean_s": r["mean"],
                "min_s": r["min"],
                "max_s": r["max"],
                "cpu_s": r["user"] + r["system"],
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--project", type=Path, help="a released project (default: make one)")
    args = parser.parse_args()
    proj = args.project.resolve() if args.project else released_project()
    if not (proj / STAMP).is_file():
        subprocess.run([REPOTOOL, "release", "--quiet"], cwd=proj, check=True, timeout=1800)
    repo_copy = RESULTS / "bench-noop-createrepo"
    shutil.rmtree(repo_copy, ignore_errors=True)
    # a plain copy (repodata as a folder): createrepo_c replaces repodata/ itself
    shutil.copytree(proj / "public" / "repo" / "el7" / "x86_64", repo_copy, symlinks=False)
    load = Path("/proc/loadavg").read_text().split()[:3]
    rows = hyperfine(proj, args.runs, args.warmup, repo_copy)
    print(f"\nload average before: {' '.join(load)}")
    print(f"{'command':48} {'median':>8} {'min':>8} {'cpu':>8}")
    for r in rows:
        print(f"{r['command']:48} {r['median_s']:8.3f} {r['min_s']:8.3f} {r['cpu_s']:8.3f}")
    data = {"project": str(proj), "load_before": load, "runs": args.runs, "results": rows}
    (RESULTS / "noop.json").write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
    # the project's development key started a gpg-agent (the full-path runs sign)
    subprocess.run(
        ["gpgconf", "--homedir", str(proj / ".repotool" / "gnupg"), "--kill", "all"],
        check=False,
        capture_output=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
