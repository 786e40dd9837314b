"""``repotool release``: build → sign → publish (→ site, media), all-or-nothing."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.cli import Context


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "release",
        parents=[common],
        help="cut a release: build, sign and publish everything that changed",
        description="Build every component for every target (cached), sign the packages with "
        "the release key, check the advisories against the repositories about to be "
        "published, write and sign the repository metadata with errata, then swap it all "
        "into public/ at once. If any step fails, public/ is left exactly as it was. Run it "
        "again with nothing changed and nothing is rebuilt, re-signed or rewritten.",
        epilog="examples:\n  repotool release\n  repotool release --json | jq .published",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.release import run_release

    result = run_release(ctx.config, ctx.runner, ctx.reporter)
    return {"summary": result.summary, **result.to_json()}
