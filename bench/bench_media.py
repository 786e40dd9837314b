"""Media build time against plain xorriso mastering of the same ISO tree.

    .venv/bin/python bench/bench_media.py [--runs N] [--compression xz|gzip]

One run, side by side: ``build_media`` (dnf install from the signed repository,
mksquashfs, initramfs, xorriso, implantisomd5, checksums, signature, checks,
atomic publish) and ``xorriso -as mkisofs`` with the same arguments on the
tree extracted from the image it made.  Prints the medians and the ratio;
the numbers are recorded in docs/media.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repotool.config import load_config
from repotool.media import build_media, publish_media
from repotool.media.iso import xorriso_argv
from repotool.process import SubprocessRunner
from repotool.report import SilentReporter
from repotool.signing.release_key import open_signer
from tests.media.media_support import publish_signed_repo

EPOCH = 1390000000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compression", default="xz")
    args = ap.parse_args()
    runner = SubprocessRunner()
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        root = Path(tmp)
        (root / "repotool.toml").write_text(
            f'version = "3.3.2"\n[media]\nsquashfs_compression = "{args.compression}"\n'
        )
        cfg = load_config(root / "repotool.toml")
        signer = open_signer(cfg, runner, SilentReporter())
        publish_signed_repo(cfg, signer, runner)
        # warm-up: fetches and unpacks the base .debs into the state cache
        result = publish_media(
            build_media(
                cfg,
                signer,
                runner,
                SilentReporter(),
                version_label="3.3.2",
                source_date_epoch=EPOCH,
            )
        )
        iso = result.directory / result.images[0].name
        tree = root / "tree"
        subprocess.run(
            ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(tree)],
            check=True,
            capture_output=True,
        )
        subprocess.run(["chmod", "-R", "u+w", str(tree)], check=True)
        (tree / "isolinux" / "boot.cat").unlink(missing_ok=True)
        label = json.loads((result.directory / "media.json").read_text())["volume_label"]

        ours: list[float] = []
        plain: list[float] = []
        for _ in range(args.runs):
            t = time.perf_counter()
            publish_media(
                build_media(
                    cfg,
                    signer,
                    runner,
                    SilentReporter(),
                    version_label="3.3.2",
                    source_date_epoch=EPOCH,
                )
            )
            ours.append(time.perf_counter() - t)
            out = root / "plain.iso"
            t = time.perf_counter()
            subprocess.run(
                xorriso_argv(tree, out, volume_label=label),
                check=True,
                capture_output=True,
                env={"SOURCE_DATE_EPOCH": str(EPOCH), "PATH": "/usr/bin:/bin"},
            )
            plain.append(time.perf_counter() - t)
            out.unlink()
        size = result.images[0].size
    a, b = statistics.median(ours), statistics.median(plain)
    print(f"image size            {size / 1e6:.1f} MB (squashfs {args.compression})")
    print(f"repotool media build  median {a:.2f} s  runs {[round(x, 2) for x in ours]}")
    print(f"plain xorriso master  median {b:.2f} s  runs {[round(x, 2) for x in plain]}")
    print(f"ratio                 {a / b:.1f}x")
    print(
        json.dumps(
            {
                "media_build_s": a,
                "xorriso_s": b,
                "ratio": a / b,
                "size": size,
                "compression": args.compression,
                "runs": args.runs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
