"""``repotool publish``: the signed repositories with errata, swapped in atomically."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.cli import Context


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "publish",
        parents=[common],
        help="publish the signed packages as yum repositories (with errata)",
        description=textwrap.fill(
            "Write repodata with createrepo_c into public/repo/<target>/<arch>/, sign "
            "repomd.xml, add updateinfo from web/content/advisories/, and swap the new metadata "
            "generation in with one rename. Earlier generations stay for a while so hosts "
            "holding an older repomd.xml never get a 404. Unsigned or foreign-signed packages "
            "are refused. Same as 'release' (builds and signs what is missing first).",
            width=78,
        ),
        epilog="examples:\n  repotool publish\n"
        "  repotool publish --add el7 extra/foo-1.0-1.el7.noarch.rpm",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--add",
        nargs=2,
        action="append",
        default=[],
        metavar=("TARGET", "RPM"),
        help="also publish this signed RPM file into TARGET's repository",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.release import run_release

    extra: dict[str, list[Path]] = {}
    for target, rpm in args.add:
        ctx.config.target(target)
        extra.setdefault(target, []).append(Path(rpm))
    result = run_release(ctx.config, ctx.runner, ctx.reporter, extra_packages=extra)
    return {"summary": result.summary, **result.to_json()}
