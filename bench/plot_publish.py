"""Plot bench/results/publish-scale.json (from bench_publish.py) into docs/.

    python3 -m venv bench/results/plotenv && bench/results/plotenv/bin/pip install matplotlib
    bench/results/plotenv/bin/python bench/plot_publish.py

matplotlib lives in that venv (or the ``bench`` extra), never in the runtime deps.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bench" / "results" / "publish-scale.json"
OUT = ROOT / "docs" / "bench_publish_scale.png"

SERIES = [
    ("createrepo_c full", "createrepo_c (full)", "tab:gray", "-"),
    ("ours full, unseen", "repotool full, unseen (signatures checked)", "tab:blue", "-"),
    ("ours full, index lost", "repotool full, index lost (ledger)", "tab:blue", ":"),
    ("createrepo_c --update +1", "createrepo_c --update (+1)", "tab:gray", "--"),
    ("ours +1", "repotool +1", "tab:orange", "--"),
]


COLD_SERIES = [
    ("createrepo_c full", "createrepo_c (full), cold page cache", "tab:gray"),
    ("ours full, unseen", "repotool full, unseen, cold page cache", "tab:green"),
]


def main() -> None:
    report = json.loads(SOURCE.read_text())
    rows = sorted(report["results"], key=lambda r: r["packages"])
    ns = [r["packages"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = [
        ("s", "wall time (s, median)"),
        ("cpu_s", "CPU time (s, median)"),
        ("rss_mib", "peak RSS of largest process (MiB)"),
    ]
    cold = sorted(report.get("results_cold", []), key=lambda r: r["packages"])
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for key, label, color, style in SERIES:
            ax.plot(ns, [r[key][metric] for r in rows], style, marker="o", color=color, label=label)
        for key, label, color in COLD_SERIES:  # page cache dropped before each run
            ax.plot(
                [r["packages"] for r in cold],
                [r[key][metric] for r in cold],
                ":",
                marker="x",
                color=color,
                label=label,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("packages")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    how = "; ".join(
        f"{r['packages']:,}: median of {r['repeat']}, load ≈ {r['createrepo_c full']['load1']:.0f}"
        for r in rows
    )
    fig.suptitle(
        f"publish at scale vs createrepo_c ({report['workers']} workers, 2-core machine, "
        f"o: warm page cache, x: cold; {how})",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(OUT)


if __name__ == "__main__":
    main()
