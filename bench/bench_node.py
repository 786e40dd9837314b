"""The LiveCD as a measurement node: image size, warm media build, boot to services up.

    .venv/bin/python bench/bench_node.py [--runs N] [--boots N]

On a copy of the embedded default (the Debian base), after one `repotool
release` (which makes or reuses the cached Debian root in
.repotool/media-cache/ of this checkout, shared with the tests):

* media build with a warm base cache: `repotool media build 3.3.2-9` (the
  whole stage: root unpacked, base provides package, dnf install of the
  toolkit with signature checks, squashfs, initramfs, EFI image, ISO,
  implanted MD5, SHA256SUMS signed, SBOM, every check) beside the floor a hand
  script would run on the same cached root: `tar -x`, `mksquashfs -comp zstd`
  and `xorriso -as mkisofs` of the same ISO tree (no toolkit install, no
  checks), side by side, medians;
* boot under qemu TCG (2 vCPUs, 1 GiB) to `pslive: ready` (every unit started),
  the LiveCD as a CD-ROM with SeaBIOS; recorded, no baseline.

Budgets (issue 11): image <= 250 MB, warm media build <= 2 min, boot <= 120 s.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from repotool.media.iso import xorriso_argv  # noqa: E402
from tests.media.live_node import LiveNode  # noqa: E402

CACHE = REPO / ".repotool" / "media-cache"
REPOTOOL = [sys.executable, "-m", "repotool"]


def project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("repotool.toml", "specs", "web", "mirror"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    toml = dest / "repotool.toml"
    toml.write_text(toml.read_text() + f'\n[media]\ncache_dir = "{CACHE}"\n')
    return dest


def run(argv: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=3600)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--boots", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp:
        work = Path(tmp)
        p = project(work / "p")
        first = run([*REPOTOOL, "release", "--quiet"], p)
        iso = next((p / "public/releases/3.3.2").glob("*-LiveCD-*.iso"))
        size = iso.stat().st_size
        tree = work / "tree"
        subprocess.run(
            ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(tree)],
            check=True,
            capture_output=True,
        )
        subprocess.run(["chmod", "-R", "u+w", str(tree)], check=True)
        (tree / "isolinux" / "boot.cat").unlink(missing_ok=True)
        label = json.loads((p / "public/releases/3.3.2/media.json").read_text())["volume_label"]
        base_tar = max(CACHE.glob("base-debian12-*.tar"), key=os.path.getmtime)

        ours: list[float] = []
        floor: list[float] = []
        for _ in range(args.runs):
            ours.append(run([*REPOTOOL, "media", "build", "3.3.2-9", "--quiet"], p))
            shutil.rmtree(p / "public/releases/3.3.2-9")
            root = work / "root"
            root.mkdir()
            t = time.perf_counter()
            subprocess.run(["tar", "-C", str(root), "-xpf", str(base_tar)], check=True)
            sq = work / "sq.img"
            subprocess.run(
                ["mksquashfs", str(root), str(sq), "-noappend", "-quiet", "-comp", "zstd"],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                xorriso_argv(tree, work / "plain.iso", volume_label=label),
                check=True,
                capture_output=True,
            )
            floor.append(time.perf_counter() - t)
            shutil.rmtree(root)
            sq.unlink()
            (work / "plain.iso").unlink()

        # the project's development key started a gpg-agent: stop it
        subprocess.run(
            ["gpgconf", "--homedir", str(p / ".repotool" / "gnupg"), "--kill", "all"],
            check=False,
            capture_output=True,
        )
        boots: list[float] = []
        for i in range(args.boots):
            vm_dir = work / f"vm{i}"
            vm_dir.mkdir()
            vm = LiveNode(["-cdrom", str(iso)], repo_port=None, work=vm_dir)
            try:
                t = time.monotonic()
                if vm.wait_for("pslive: ready", 600):
                    boots.append(time.monotonic() - t)
            finally:
                vm.close()
    a, b = statistics.median(ours), statistics.median(floor)
    load = os.getloadavg()[0]
    print(f"image size                  {size / 1e6:.1f} MB (budget 250 MB)")
    print(f"first release (cold media)  {first:.1f} s")
    print(f"media build, warm base      median {a:.1f} s  runs {[round(x, 1) for x in ours]}")
    print(f"hand floor (tar+sq+xorriso) median {b:.1f} s  runs {[round(x, 1) for x in floor]}")
    print(f"ratio                       {a / b:.2f}x")
    print(f"boot to ready (TCG)         {[round(x, 1) for x in boots]} s (budget 120 s)")
    print(f"load average                {load:.1f}")
    print(
        json.dumps(
            {
                "image_bytes": size,
                "first_release_s": first,
                "media_build_s": ours,
                "hand_floor_s": floor,
                "ratio": a / b,
                "boot_s": boots,
                "load": load,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
