"""``repotool build``: reproducible rpmbuild of the components."""

from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.cli import Context


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "build",
        parents=[common],
        help="build components' RPMs (cached, reproducible)",
        # RawDescriptionHelpFormatter keeps the text as written: no %-escapes, own wrapping
        description=textwrap.fill(
            "Run rpmbuild for each spec under specs/ (the current one and archive/) for "
            "every target, each in a throwaway _topdir, in parallel. Output is byte-for-byte "
            "reproducible: SOURCE_DATE_EPOCH comes from the spec's %changelog. A component "
            "whose spec and sources did not change is taken from the cache.",
            width=78,
            break_on_hyphens=False,
        ),
        epilog="examples:\n  repotool build\n  repotool build perfsonar-toolkit-ntp --jobs 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="folders under specs/")
    p.add_argument("--jobs", type=int, default=None, help="parallel builds (default: cores)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.build.rpmbuild import build
    from repotool.repo.publish import generated_sources
    from repotool.repo.repository import publish_lock
    from repotool.signing.release_key import open_signer

    cfg = ctx.config
    signer = open_signer(cfg, ctx.runner, ctx.reporter)
    with publish_lock(cfg):  # the build cache is shared with 'release'
        out = build(
            cfg,
            ctx.runner,
            ctx.reporter,
            components=args.components,
            jobs=args.jobs,
            generated=generated_sources(cfg, signer),
        )
    return {
        "summary": f"{len(out.built)} built, {len(out.cached)} from cache; "
        f"{len(out.packages)} packages",
        "built": out.built,
        "cached": out.cached,
        "packages": [str(p.path) for p in out.packages],
    }
