"""``repotool site build``: the static export of the site into public/."""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from repotool.cli import Context
from repotool.report import Reporter, Step


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "site",
        parents=[common],
        help="render the site (pages, feeds) into public/",
        description="The announcement site: release and advisory pages, news, mailing lists, "
        "Atom/RSS feeds. 'repotool serve' serves it live; 'site build' exports it as static "
        "files so that any web server or mirror can host it.",
    )
    site_sub = p.add_subparsers(dest="site_command", metavar="SUBCOMMAND")
    b = site_sub.add_parser(
        "build",
        parents=[common],
        help="export every page and feed into public/",
        description="Render every page and feed into public/ (atomically, file by file), "
        "then write public/.site-export.json: 'repotool serve' switches to the new site "
        "only then. Does nothing when records, templates and published files are unchanged "
        "and the exported files are intact.",
        epilog="example: repotool site build   then: repotool serve, or any static server",
    )
    b.add_argument("--public-dir", type=Path, help="export here instead of the config's public/")
    b.add_argument("--force", action="store_true", help="export even when nothing changed")
    b.set_defaults(handler=run_build)

    def show_help(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
        p.print_help()
        return {"summary": ""}

    p.set_defaults(handler=show_help)


def run_build(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.site.export import build_site
    from repotool.site.published import GpgKeyInspector

    result = build_site(
        ctx.config,
        _WarningsOnly(ctx.reporter),
        keys=GpgKeyInspector(ctx.runner),
        public_dir=args.public_dir,
        force=args.force,
    )
    if result.skipped:
        summary = f"site unchanged in {result.public_dir} ({len(result.files)} files)"
    else:
        summary = (
            f"site exported into {result.public_dir}: {len(result.written)} written, "
            f"{len(result.removed)} removed, {len(result.files)} files in all"
        )
    return {"summary": summary, **result.to_json()}


class _WarningsOnly:
    """The export's own closing line would repeat the command's summary, which
    says the same (and is the one --json and scripts read): warnings and
    progress pass, notices do not."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        self._reporter.warn(message)

    def step(self, title: str, total: int | None) -> AbstractContextManager[Step]:
        return self._reporter.step(title, total)
