"""Publishing at scale, side by side with createrepo_c.

    .venv/bin/python bench/bench_publish.py [--sizes 1000,10000] [--repeat 3]
    bench/results/plotenv/bin/python bench/plot_publish.py   # the PNG in docs/

For each corpus size N (packages from bench/corpus.py: sizes and file counts
like EPEL's, signed with the bench key):

1. full publish of N packages never seen (no index, no ledger: every
   signature is checked) vs the ``createrepo_c`` CLI, same workers, gzip
   metadata, sha256, no sqlite;
2. the same with the index lost but the files verified before (the ledger);
3. adding one package to the N vs ``createrepo_c --update``;
4. loading the index of N packages.

Both sides run as child processes, round after round alternating (so both see
the same load); each reports wall time, the peak RSS of its largest process
(``wait4``) and the peak of its process tree's summed PSS (sampled every 20 ms,
so short peaks may be missed).  Medians are printed and written to
bench/results/publish-scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
KEYHOME = RESULTS / "keycfg"
sys.path.insert(0, str(ROOT))

from repotool.config import Config, PublishConfig, TargetConfig  # noqa: E402


def bench_config(work: Path) -> Config:
    return Config(
        root=work,
        state_dir=Path("state"),
        targets=(TargetConfig(name="el7"),),
        publish=PublishConfig(public_dir=Path("public"), keep_versions=3),
    )


# --- the child: one publish ------------------------------------------------------------


def publish_once(work: Path, incoming: list[Path], ledger: Path | None) -> None:
    """The release's own publish path (plan, stage, swap in) for the bench's target."""
    from repotool.process import SubprocessRunner
    from repotool.repo.publish import commit_all, plan_all, stage_all
    from repotool.repo.repository import publish_lock
    from repotool.report import SilentReporter
    from repotool.signing.signer import Signer

    cfg = bench_config(work)
    home = KEYHOME / "state" / "gnupg"
    fpr = (home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION").read_text().split()[0]
    signer = Signer(gnupghome=home, fingerprint=fpr, runner=SubprocessRunner(), ledger=ledger)
    reporter = SilentReporter()
    with publish_lock(cfg):
        plans = plan_all(cfg, {cfg.targets[0].name: incoming}, signer, reporter)
        commit_all(stage_all(plans, signer, lambda target, plan: None, reporter), cfg, signer)


# --- measuring a child -----------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    out = [pid]
    for p in out:
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measured(argv: list[str]) -> dict[str, float]:
    """Run argv; wall seconds, the largest process's peak RSS and the tree's peak PSS (MiB)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, sum(_pss_kb(p) for p in _tree(proc.pid)))

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode})")
    return {"s": wall, "rss_mib": usage.ru_maxrss / 1024, "pss_mib": peak / 1024}


def createrepo_argv(folder: Path, workers: int, *, update: bool = False) -> list[str]:
    return [
        "createrepo_c",
        "--quiet",
        *(["--update"] if update else []),
        "--no-database",
        "--workers",
        str(workers),
        "--general-compress-type",
        "gz",
        "--checksum",
        "sha256",
        str(folder),
    ]


def ours_argv(work: Path, incoming: list[Path], ledger: Path | None) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--publish", str(work)]
    argv += [a for p in incoming for a in ("--incoming", str(p))]
    return argv + (["--ledger", str(ledger)] if ledger else [])


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def link_all(rpms: list[Path], folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for r in rpms:
        os.link(r, folder / r.name)


def bench_size(n: int, key: object, workers: int, repeat: int) -> dict[str, object]:
    import corpus  # bench/corpus.py

    rpms = corpus.corpus(n, key)  # type: ignore[arg-type]
    extra = corpus.RESULTS / "corpus-extra" / corpus.rpm_name(corpus.shape(0, "bench-extra"))
    if not extra.exists():
        extra.parent.mkdir(parents=True, exist_ok=True)
        extra.write_bytes(corpus.make_rpm(corpus.shape(0, "bench-extra"), key))  # type: ignore[arg-type]
    total = sum(p.stat().st_size for p in rpms)
    for p in rpms:  # into the page cache, for both sides alike
        with p.open("rb") as f:
            while f.read(1 << 20):
                pass
    work = Path(tempfile.mkdtemp(prefix=f"bench-publish-{n}-", dir=RESULTS))
    ours = work / "ours"
    repo = ours / "public/repo/el7/x86_64"
    base = work / "createrepo"
    ledger = work / "ledger.sha256"
    out: dict[str, object] = {"packages": n, "bytes": total}

    def reset_ours() -> None:
        shutil.rmtree(ours, ignore_errors=True)
        link_all(rpms, repo / "Packages")

    # 1 and 2: full publish
    base_runs, unseen_runs, known_runs = [], [], []
    for _ in range(repeat):
        link_all(rpms, base / "Packages")
        shutil.rmtree(base / "repodata", ignore_errors=True)
        base_runs.append(measured(createrepo_argv(base, workers)))
        reset_ours()
        unseen_runs.append(measured(ours_argv(ours, [], None)))
        if not ledger.exists():  # the ledger learns these files once
            reset_ours()
            subprocess.run(ours_argv(ours, [], ledger), check=True)
        reset_ours()
        known_runs.append(measured(ours_argv(ours, [], ledger)))
    out["createrepo_c full"] = medians(base_runs)
    out["ours full, unseen"] = medians(unseen_runs)
    out["ours full, index lost"] = medians(known_runs)

    # 3: add one package
    base_add, ours_add = [], []
    for _ in range(repeat):
        (base / "Packages" / extra.name).unlink(missing_ok=True)
        subprocess.run(createrepo_argv(base, workers, update=True), check=True)
        os.link(extra, base / "Packages" / extra.name)
        base_add.append(measured(createrepo_argv(base, workers, update=True)))
        (repo / "Packages" / extra.name).unlink(missing_ok=True)
        subprocess.run(ours_argv(ours, [], ledger), check=True)
        ours_add.append(measured(ours_argv(ours, [extra], None)))
    out["createrepo_c --update +1"] = medians(base_add)
    out["ours +1"] = medians(ours_add)

    # 4: loading the index
    from repotool.repo.index import RepoIndex

    index_path = ours / "state/repo-index/el7-x86_64.json"
    loads = []
    for _ in range(max(repeat, 5)):
        t = time.perf_counter()
        RepoIndex.load(index_path)
        loads.append(time.perf_counter() - t)
    out["index load s"] = statistics.median(loads)
    out["index bytes"] = index_path.stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--publish", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--incoming", type=Path, action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--ledger", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        publish_once(args.publish, args.incoming, args.ledger)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import corpus

    from repotool.process import SubprocessRunner
    from repotool.report import SilentReporter
    from repotool.signing.release_key import open_signer

    RESULTS.mkdir(parents=True, exist_ok=True)
    signer = open_signer(bench_config(KEYHOME), SubprocessRunner(), SilentReporter())
    key = corpus.load_signing_key(signer.gnupghome, signer.fingerprint)
    load_before = os.getloadavg()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        r = bench_size(n, key, args.workers, args.repeat)
        results.append(r)
        print(json.dumps(r), file=sys.stderr)
    report = {
        "workers": args.workers,
        "repeat": args.repeat,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "results": results,
    }
    (RESULTS / "publish-scale.json").write_text(json.dumps(report, indent=2))
    print(f"{'case':34} {'N':>6} {'s':>8} {'ratio':>6} {'RSS MiB':>8} {'PSS MiB':>8}")
    pairs = [
        ("ours full, unseen", "createrepo_c full"),
        ("ours full, index lost", "createrepo_c full"),
        ("ours +1", "createrepo_c --update +1"),
    ]
    for r in results:
        for ours_key, base_key in pairs:
            for k in (base_key, ours_key):
                m = r[k]
                ratio = m["s"] / r[base_key]["s"]  # type: ignore[index]
                print(
                    f"{k:34} {r['packages']:6} {m['s']:8.2f} {ratio:6.2f} "  # type: ignore[index]
                    f"{m['rss_mib']:8.0f} {m['pss_mib']:8.0f}"  # type: ignore[index]
                )
        print(f"{'index load':34} {r['packages']:6} {r['index load s']:8.3f}")
    print(f"load average before {load_before}, after {report['loadavg_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
