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
the same load); each reports wall time, the peak RSS of its largest process (as
GNU ``time`` reports it, see :func:`measured`) and the peak of its process
tree's summed PSS (sampled every 20 ms, so short peaks may be missed).  Medians
are printed and written to bench/results/publish-scale.json.  Needs
``/usr/bin/time`` (Debian's ``time`` package).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
KEYHOME = RESULTS / "keycfg"
sys.path.insert(0, str(ROOT))

from repotool.config import Config, PublishConfig, TargetConfig  # noqa: E402
from repotool.signing.signer import Signer  # noqa: E402


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
    from repotool.process import SubprocessRunner, require_tools
    from repotool.repo.publish import commit_all, plan_all, stage_all
    from repotool.repo.repository import publish_lock
    from repotool.report import SilentReporter
    from repotool.signing.release_key import check_signer

    cfg = bench_config(work)
    home = KEYHOME / "state" / "gnupg"
    fpr = (home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION").read_text().split()[0]
    signer = Signer(gnupghome=home, fingerprint=fpr, runner=SubprocessRunner(), ledger=ledger)
    reporter = SilentReporter()
    # the checks every command makes of its key first (gpg and gpgv runs), as the CLI's
    # open_signer does: the bench measures what a maintainer's publish costs
    require_tools(["gpg", "gpgv"])
    check_signer(cfg, signer, reporter)
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


#: runs each measured command: its peak RSS is the one thing it reports
GNU_TIME = "/usr/bin/time"


def measured(argv: list[str]) -> dict[str, float]:
    """Run argv; wall seconds, the largest process's peak RSS and the tree's peak PSS (MiB).

    The peak RSS comes from GNU ``time``, not from this process's own ``wait4``: a
    child started from here (fork or vfork, then exec) keeps this process's
    high-water mark in its ``ru_maxrss``, so ``wait4`` said "this bench's RSS" for any
    command smaller than the bench (createrepo_c's 22 MiB showed as 45-60).  ``time``
    is small, so the high-water mark its child inherits is ``time``'s own."""
    if not os.access(GNU_TIME, os.X_OK):
        raise SystemExit(f"{GNU_TIME} is missing: install Debian's 'time' package")
    t = time.perf_counter()
    with tempfile.NamedTemporaryFile("r", prefix="bench-rss-", dir=RESULTS) as out:
        proc = subprocess.Popen(
            [GNU_TIME, "-f", "%M", "-o", out.name, *argv], stdout=subprocess.DEVNULL
        )
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
        rss_kb = int(out.read().split()[-1])
    return {
        "s": wall,
        # user + system CPU of the child and everything it waited for (its workers):
        # on a machine shared with others, this moves far less than the wall time
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mib": rss_kb / 1024,
        "pss_mib": peak / 1024,
        # the machine is shared: the 1-minute load average as this run ended
        "load1": os.getloadavg()[0],
    }


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


def median(values: Iterable[float]) -> float:
    import statistics  # the parent's: not imported by the measured children

    return statistics.median(values)


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: median(r[k] for r in runs) for k in runs[0]}


def link_all(rpms: list[Path], folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for r in rpms:
        os.link(r, folder / r.name)


def drop_caches() -> None:
    """Empty the page cache (root only): the next run reads its files, interpreter and
    libraries from the disk, as on a machine that just booted."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as e:
        raise SystemExit(f"--cold: cannot write /proc/sys/vm/drop_caches ({e}); run as root") from e


def bench_size(
    n: int, key: object, workers: int, repeat: int, *, cold: bool = False
) -> dict[str, object]:
    import corpus  # bench/corpus.py

    rpms = corpus.corpus(n, key)  # type: ignore[arg-type]
    extra = corpus.RESULTS / "corpus-extra" / corpus.rpm_name(corpus.shape(0, "bench-extra"))
    if not extra.exists():
        extra.parent.mkdir(parents=True, exist_ok=True)
        extra.write_bytes(corpus.make_rpm(corpus.shape(0, "bench-extra"), key))  # type: ignore[arg-type]
    total = sum(p.stat().st_size for p in rpms)
    for p in [] if cold else rpms:  # into the page cache, for both sides alike
        with p.open("rb") as f:
            while f.read(1 << 20):
                pass

    def measure(argv: list[str]) -> dict[str, float]:
        if cold:
            drop_caches()
        return measured(argv)

    work = Path(tempfile.mkdtemp(prefix=f"bench-publish-{n}-", dir=RESULTS))
    ours = work / "ours"
    repo = ours / "public/repo/el7/x86_64"
    base = work / "createrepo"
    ledger = work / "ledger.sha256"
    out: dict[str, object] = {
        "packages": n,
        "bytes": total,
        "repeat": repeat,
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "loadavg_before": os.getloadavg(),
        "page_cache": "cold (dropped before every measured run)"
        if cold
        else "warm (every file read once before the first round)",
    }

    def reset_ours() -> None:
        shutil.rmtree(ours, ignore_errors=True)
        link_all(rpms, repo / "Packages")

    # 1 and 2: full publish
    base_runs, unseen_runs, known_runs = [], [], []
    for _ in range(repeat):
        link_all(rpms, base / "Packages")
        shutil.rmtree(base / "repodata", ignore_errors=True)
        base_runs.append(measure(createrepo_argv(base, workers)))
        reset_ours()
        unseen_runs.append(measure(ours_argv(ours, [], None)))
        if not ledger.exists():  # the ledger learns these files once
            reset_ours()
            subprocess.run(ours_argv(ours, [], ledger), check=True)
        reset_ours()
        known_runs.append(measure(ours_argv(ours, [], ledger)))
    out["createrepo_c full"] = medians(base_runs)
    out["ours full, unseen"] = medians(unseen_runs)
    out["ours full, index lost"] = medians(known_runs)

    # 3: add one package
    base_add, ours_add = [], []
    for _ in range(repeat):
        (base / "Packages" / extra.name).unlink(missing_ok=True)
        subprocess.run(createrepo_argv(base, workers, update=True), check=True)
        os.link(extra, base / "Packages" / extra.name)
        base_add.append(measure(createrepo_argv(base, workers, update=True)))
        (repo / "Packages" / extra.name).unlink(missing_ok=True)
        subprocess.run(ours_argv(ours, [], ledger), check=True)
        ours_add.append(measure(ours_argv(ours, [extra], None)))
    out["createrepo_c --update +1"] = medians(base_add)
    out["ours +1"] = medians(ours_add)

    # 4: loading the index
    from repotool.repo.index import RepoIndex

    index_path = ours / "state/repo-index/el7-x86_64.json"
    loads, cpu = [], []
    for _ in range(max(repeat, 5)):
        t, c = time.perf_counter(), time.process_time()
        RepoIndex.load(index_path)
        loads.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    out["index load s"] = median(loads)
    out["index load cpu s"] = median(cpu)
    out["index bytes"] = index_path.stat().st_size
    out["loadavg_after"] = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)
    return out


# --- the no-op release and signing (small, rpmbuild-made packages) ----------------------


def timed(fn: Callable[[], object], setup: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        setup()
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return median(runs)


def make_packages(n: int, prefix: str = "bench-pkg") -> Path:
    out = RESULTS / f"{prefix}-{n}"
    if out.is_dir() and len(list(out.glob("*.rpm"))) == n:
        return out
    top = Path(tempfile.mkdtemp(prefix="bench-top-"))
    for sub in ("SOURCES", "BUILD", "RPMS", "SRPMS", "SPECS"):
        (top / sub).mkdir()
    lines = [
        "Name: benchbase",
        "Version: 1.0",
        "Release: 1.el7",
        "Summary: bench",
        "License: MIT",
        "BuildArch: noarch",
        "%description",
        "bench",
        "%install",
        f"for i in $(seq 1 {n}); do mkdir -p %{{buildroot}}/usr/share/bench/$i; "
        "echo $i > %{buildroot}/usr/share/bench/$i/data; done",
    ]
    for i in range(1, n + 1):
        lines += [
            f"%package -n {prefix}{i}",
            f"Summary: bench package {i}",
            f"%description -n {prefix}{i}",
            f"bench package {i}",
            f"%files -n {prefix}{i}",
            f"/usr/share/bench/{i}/data",
        ]
    lines += ["%files", "%changelog", "* Tue Jan 28 2014 b <b@b> - 1.0-1", "- bench"]
    spec = top / "bench.spec"
    spec.write_text("\n".join(lines) + "\n")
    print(f"building {n} packages once (cached in {out}) ...", file=sys.stderr)
    subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--nodeps",
            "--define",
            f"_topdir {top}",
            "--define",
            "_binary_payload w9.gzdio",
            str(spec),
        ],
        check=True,
        capture_output=True,
    )
    tmp = RESULTS / f".pkgs-{n}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for rpm in (top / "RPMS").rglob(f"{prefix}*.rpm"):
        shutil.move(str(rpm), tmp / rpm.name)
    shutil.rmtree(top)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def signed_packages(unsigned: Path, signer: Signer) -> Path:
    out = RESULTS / f"{unsigned.name}-signed-{signer.short_id}"
    if out.is_dir() and len(list(out.glob("*.rpm"))) == len(list(unsigned.glob("*.rpm"))):
        return out
    tmp = RESULTS / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(unsigned, tmp)
    print("signing them once ...", file=sys.stderr)
    signer.sign_rpms(sorted(tmp.glob("*.rpm")))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def bench_noop_and_sign(signer: Signer, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """A no-op ``repotool release`` of the embedded default, and signing ``--sign``
    packages vs one ``rpmsign --addsign`` over all of them."""
    results: dict[str, dict[str, float]] = {}
    rpms = sorted(signed_packages(make_packages(2000), signer).glob("*.rpm"))
    work = Path(tempfile.mkdtemp(prefix="bench-sign-", dir=RESULTS))
    # 3. no-op release of the embedded default
    proj = Path(tempfile.mkdtemp(prefix="bench-release-", dir=RESULTS))
    for name in ("repotool.toml", "specs", "web", "mirror"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, proj / name)
        elif src.exists():
            shutil.copy2(src, proj / name)
    cli = [sys.executable, "-m", "repotool", "release", "--quiet"]
    subprocess.run(cli, cwd=proj, check=True, capture_output=True)
    o = timed(
        lambda: subprocess.run(cli, cwd=proj, check=True, capture_output=True),
        lambda: None,
        max(args.repeat, 5),
    )
    results["no-op release (whole CLI)"] = {"ours_s": o, "goal_s": 1.0}

    # 4. signing M packages
    sample = rpms[: args.sign]
    sdir = work / "sign"

    def setup_sign() -> None:
        shutil.rmtree(sdir, ignore_errors=True)
        sdir.mkdir()
        for r in make_packages(2000).glob("*.rpm"):
            if r.name in {s.name for s in sample}:
                shutil.copyfile(r, sdir / r.name)

    def base_sign() -> None:
        subprocess.run(
            [
                "rpmsign",
                "--addsign",
                "--define",
                f"_gpg_name {signer.fingerprint}",
                "--define",
                "__gpg /usr/bin/gpg",
                "--define",
                f"_gpg_path {signer.gnupghome}",
                *map(str, sorted(sdir.glob("*.rpm"))),
            ],
            check=True,
            capture_output=True,
        )

    def ours_sign() -> None:
        signer.sign_rpms(sorted(sdir.glob("*.rpm")), jobs=args.workers)

    b = timed(base_sign, setup_sign, args.repeat)
    o = timed(ours_sign, setup_sign, args.repeat)
    results[f"sign {len(sample)} packages"] = {"baseline_s": b, "ours_s": o, "ratio": o / b}

    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(proj, ignore_errors=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--sign", type=int, default=200, help="packages to sign (with --classic)")
    ap.add_argument(
        "--classic", action="store_true", help="also the no-op release and the signing bench"
    )
    ap.add_argument(
        "--cold",
        action="store_true",
        help="drop the page cache before every measured run (root): a machine that just booted",
    )
    ap.add_argument("--publish", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--incoming", type=Path, action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--ledger", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        publish_once(args.publish, args.incoming, args.ledger)
        return 0
    # the children run as an installed repotool does, with its bytecode written once
    # (pip compiles it; the first run of a fresh clone writes it)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
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
        r = bench_size(n, key, args.workers, args.repeat, cold=args.cold)
        results.append(r)
        print(json.dumps(r), file=sys.stderr)
    # sizes measured in other sessions stay in the report (each says when and how)
    out_path = RESULTS / "publish-scale.json"
    # warm and cold page cache are kept apart; the other kind stays as it was
    kind = "results_cold" if args.cold else "results"
    report: dict[str, object] = json.loads(out_path.read_text()) if out_path.exists() else {}
    measured_now = {r["packages"] for r in results}
    earlier = [
        r
        for r in report.get(kind, [])  # type: ignore[attr-defined]
        if r.get("packages") not in measured_now and "repeat" in r
    ]
    report.update(
        {
            "workers": args.workers,
            "repeat": args.repeat,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            kind: sorted([*earlier, *results], key=lambda r: int(r["packages"])),
        }
    )
    if args.classic:
        report["classic"] = bench_noop_and_sign(signer, args)
        print(json.dumps(report["classic"], indent=2))
    out_path.write_text(json.dumps(report, indent=2))
    print(
        f"{'case':34} {'N':>6} {'s':>8} {'ratio':>6} {'CPU s':>8} {'ratio':>6}"
        f" {'RSS MiB':>8} {'PSS MiB':>8}"
    )
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
                cpu_ratio = m["cpu_s"] / r[base_key]["cpu_s"]  # type: ignore[index]
                print(
                    f"{k:34} {r['packages']:6} {m['s']:8.2f} {ratio:6.2f} "  # type: ignore[index]
                    f"{m['cpu_s']:8.2f} {cpu_ratio:6.2f} "  # type: ignore[index]
                    f"{m['rss_mib']:8.0f} {m['pss_mib']:8.0f}"  # type: ignore[index]
                )
        print(
            f"{'index load':34} {r['packages']:6} {r['index load s']:8.3f}        "
            f"{r['index load cpu s']:8.3f}"
        )
        print(f"  load average during these runs (median): {r['createrepo_c full']['load1']:.1f}")  # type: ignore[index]
    print(f"load average before {load_before}, after {report['loadavg_after']}")
    return 0


def stop_bench_agents() -> None:
    """The bench key's gpg-agent (started by signing) does not outlive the run."""
    subprocess.run(
        ["gpgconf", "--homedir", str(KEYHOME / "state" / "gnupg"), "--kill", "all"],
        check=False,
        capture_output=True,
    )


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    finally:
        if "--publish" not in sys.argv:  # the parent, once: not inside a measured child
            stop_bench_agents()
