"""Publishing and signing, side by side with the tools a maintainer would otherwise use.

    .venv/bin/python bench/bench_publish.py [--packages 2000] [--sign 200] [--repeat 3]

1. full publish of a cold repository (N packages) vs ``createrepo_c`` CLI,
   same workers, gzip metadata, sha256, no sqlite
2. adding one package to it vs ``createrepo_c --update``
3. a no-op ``repotool release`` of the embedded default
4. signing M packages vs one ``rpmsign --addsign`` over all of them

Packages are made once (one spec, N tiny subpackages) and cached in
bench/results/ (gitignored).  Prints a table and JSON; the numbers recorded in
docs/benchmarks.md come from this script.
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
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from repotool.config import Config, PublishConfig, TargetConfig  # noqa: E402
from repotool.process import SubprocessRunner  # noqa: E402
from repotool.repo.publish import commit_all, plan_all, stage_all  # noqa: E402
from repotool.repo.repository import publish_lock  # noqa: E402
from repotool.report import SilentReporter  # noqa: E402
from repotool.signing.release_key import open_signer  # noqa: E402
from repotool.signing.signer import Signer  # noqa: E402


def publish(cfg: Config, incoming: list[Path], checker: Signer, signer: Signer) -> None:
    """The release's own publish path (plan, stage, swap in) for the bench's one target;
    ``checker`` verifies the packages' signatures, ``signer`` signs the metadata."""
    reporter = SilentReporter()
    with publish_lock(cfg):
        plans = plan_all(cfg, {cfg.targets[0].name: incoming}, checker, reporter)
        commit_all(stage_all(plans, signer, lambda target, plan: None, reporter), cfg, signer)


def timed(fn: Callable[[], object], setup: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        setup()
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


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


def bench_config(work: Path) -> Config:
    return Config(
        root=work,
        state_dir=Path("state"),
        targets=(TargetConfig(name="el7"),),
        publish=PublishConfig(public_dir=Path("public"), keep_versions=3),
    )


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


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--packages", type=int, default=2000)
    ap.add_argument("--sign", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    runner = SubprocessRunner()
    keyhome = RESULTS / "keycfg"
    signer = open_signer(bench_config(keyhome), runner, SilentReporter())
    pkgs = signed_packages(make_packages(args.packages), signer)
    rpms = sorted(pkgs.glob("*.rpm"))
    results: dict[str, dict[str, float]] = {}

    # 1. full publish of a cold repository
    work = Path(tempfile.mkdtemp(prefix="bench-publish-", dir=RESULTS))
    cfg = bench_config(work)
    repo = cfg.public_dir / "repo/el7/x86_64"
    base = work / "createrepo"

    def setup_ours() -> None:
        shutil.rmtree(work / "public", ignore_errors=True)
        shutil.rmtree(work / "state" / "repo-index", ignore_errors=True)
        (repo / "Packages").mkdir(parents=True)
        for r in rpms:
            os.link(r, repo / "Packages" / r.name)

    # a signer without a ledger checks every file, as for packages never seen
    unseen = Signer(gnupghome=signer.gnupghome, fingerprint=signer.fingerprint, runner=runner)

    def ours_full() -> None:
        publish(cfg, [], unseen, signer)

    def ours_full_known() -> None:
        # the index is gone but the files' signatures were verified before (the
        # ledger of SHA-256s kept with the key), e.g. a new mirror tree or a lost index
        publish(cfg, [], signer, signer)

    def setup_base() -> None:
        shutil.rmtree(base, ignore_errors=True)
        (base / "Packages").mkdir(parents=True)
        for r in rpms:
            os.link(r, base / "Packages" / r.name)

    def base_full() -> None:
        subprocess.run(
            [
                "createrepo_c",
                "--quiet",
                "--no-database",
                "--workers",
                str(args.workers),
                "--general-compress-type",
                "gz",
                "--checksum",
                "sha256",
                str(base),
            ],
            check=True,
        )

    b = timed(base_full, setup_base, args.repeat)
    o = timed(ours_full, setup_ours, args.repeat)
    results["full publish, unseen packages"] = {"baseline_s": b, "ours_s": o, "ratio": o / b}
    ours_full_known()  # the ledger now knows these files
    k = timed(ours_full_known, setup_ours, args.repeat)
    results["full publish, cold index"] = {"baseline_s": b, "ours_s": k, "ratio": k / b}

    # 2. add one package (the repositories above are in place)
    extra = make_packages(1, prefix="bench-extra")
    extra_signed = signed_packages(extra, signer)
    one = next(extra_signed.glob("*.rpm"))

    def setup_add_ours() -> None:
        (repo / "Packages" / one.name).unlink(missing_ok=True)
        ours_full_known()  # a current repository without the extra package

    def ours_add() -> None:
        publish(cfg, [one], unseen, signer)

    def setup_add_base() -> None:
        (base / "Packages" / one.name).unlink(missing_ok=True)
        base_full()
        shutil.copyfile(one, base / "Packages" / one.name)

    def base_add() -> None:
        subprocess.run(
            [
                "createrepo_c",
                "--quiet",
                "--update",
                "--no-database",
                "--workers",
                str(args.workers),
                "--general-compress-type",
                "gz",
                "--checksum",
                "sha256",
                str(base),
            ],
            check=True,
        )

    b = timed(base_add, setup_add_base, args.repeat)
    o = timed(ours_add, setup_add_ours, args.repeat)
    results["add one package"] = {"baseline_s": b, "ours_s": o, "ratio": o / b}

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
        for r in make_packages(args.packages).glob("*.rpm"):
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
    print(f"{'benchmark':32} {'baseline s':>11} {'ours s':>9} {'ratio':>7}")
    for name, r in results.items():
        print(
            f"{name:32} {r.get('baseline_s', float('nan')):11.3f} {r['ours_s']:9.3f} "
            f"{r.get('ratio', float('nan')):7.2f}"
        )
    print(
        json.dumps(
            {"packages": args.packages, "workers": args.workers, "results": results}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
