"""``repotool release``: build → sign → publish (→ site, media), all-or-nothing."""

from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.cli import Context
    from repotool.config import Config


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "release",
        parents=[common],
        help="cut a release: build, sign and publish everything that changed",
        description=textwrap.fill(
            "Build every component for every target (cached), sign the packages with "
            "the release key, check the advisories against the repositories about to be "
            "published, write and sign the repository metadata with errata, then swap it all "
            "into public/ at once. If any step fails, public/ is left exactly as it was. Run "
            "it again with nothing changed and nothing is rebuilt, re-signed or rewritten.",
            width=78,
        ),
        epilog="examples:\n  repotool release\n"
        "  repotool release --respin 2        # after a security fix: media 3.3.2-2\n"
        "  repotool release --respin 3.3.2-2  # the same, by the respin's version\n"
        "  repotool release --respin 2 --force  # after 3.3.2-3: built, marked superseded\n"
        "  repotool release --json | jq .published",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--respin",
        metavar="N",
        help="make new live media VERSION-N with the current packages (list the respin "
        "in web/content/releases/VERSION.md first); N or VERSION-N. A respin older than "
        "the newest one is refused",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --respin: build the media of a respin older than the newest one anyway "
        "(they hold today's packages; media.json and the release page mark them superseded)",
    )
    p.add_argument("--no-media", action="store_true", help="do not build live media this time")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    # nothing changed since the last release's stamp: say so before any heavy import
    from repotool.repo.inputs import record_release, unchanged_release

    noop = unchanged_release(ctx.config_path, vars(args), ctx.reporter)
    if noop is not None:
        return noop
    from repotool.release import run_release

    result = run_release(
        ctx.config,
        ctx.runner,
        ctx.reporter,
        respin=respin_argument(args.respin, ctx.config) if args.respin is not None else None,
        media=not args.no_media,
        force=args.force,
    )
    out = {"summary": result.summary, **result.to_json()}
    record_release(ctx.config_path, ctx.config, out)
    return out


def respin_argument(text: str, cfg: Config) -> int:
    """``--respin 2`` or ``--respin 3.3.2-2`` (a respin of repotool.toml's version): 2."""
    from repotool.errors import ConfigError
    from repotool.records.respins import RespinArgumentError, parse_respin

    try:
        return parse_respin(text, cfg.version)
    except RespinArgumentError as e:
        raise ConfigError(
            str(e),
            where=str(cfg.root / "repotool.toml"),
            hint=f"give the respin's number (--respin 2 makes {cfg.version}-2), or release "
            "the other version by setting version in repotool.toml",
        ) from e
