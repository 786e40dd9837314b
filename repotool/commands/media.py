"""CLI for the 'media' area: ``repotool media build VERSION``."""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import TYPE_CHECKING, Any

from repotool.config import Config
from repotool.errors import ConfigError

if TYPE_CHECKING:
    from repotool.cli import Context


def default_source_date_epoch(cfg: Config, environ: dict[str, str]) -> int:
    """SOURCE_DATE_EPOCH when set, else the time of the published repository metadata,
    so that rebuilding from the same repository gives the same image."""
    value = environ.get("SOURCE_DATE_EPOCH")
    if value:
        if not value.isdigit():
            raise ConfigError(
                f"SOURCE_DATE_EPOCH='{value}' is not a whole number of seconds",
                where="environment",
                hint="unset it or give seconds since 1970",
            )
        return int(value)
    repomd = cfg.public_dir / "repo" / cfg.media.target / cfg.media.arch / "repodata" / "repomd.xml"
    return int(repomd.stat().st_mtime) if repomd.exists() else 0


def _build(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.media import build_media, discard_media, publish_media
    from repotool.signing.release_key import open_signer

    cfg = ctx.config
    epoch = (
        args.source_date_epoch
        if args.source_date_epoch is not None
        else default_source_date_epoch(cfg, dict(os.environ))
    )
    signer = open_signer(cfg, ctx.runner, ctx.reporter)
    staged = build_media(
        cfg,
        signer,
        ctx.runner,
        ctx.reporter,
        version_label=args.version or cfg.version,
        source_date_epoch=epoch,
    )
    try:
        result = publish_media(staged)
    except BaseException:
        discard_media(staged)
        raise
    lines = [f"Live media {result.version_label} in {result.directory}:"]
    lines += [f"  {i.name}  {i.size} bytes  sha256 {i.sha256}" for i in result.images]
    if result.sbom is not None:
        lines.append(f"  {result.sbom.name}  {result.sbom.size} bytes  (SBOM, CycloneDX JSON)")
    return {"summary": "\n".join(lines), **result.to_json()}


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    media = sub.add_parser(
        "media",
        help="build the LiveCD/LiveUSB images of a release",
        description=textwrap.fill(
            "The live media of a release: one isohybrid image that boots from CD (LiveCD) "
            "and from a USB stick (LiveUSB), with the toolkit installed from the signed "
            "repository, in public/releases/<label>/ beside SHA256SUMS, its signature and "
            "media.json. 'repotool release' builds them for a new version or respin; "
            "'media build' builds them alone.",
            width=78,
        ),
        epilog="examples:\n  repotool media build\n  repotool media build 3.3.2-2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    msub = media.add_subparsers(dest="media_command", metavar="ACTION", required=True)
    build = msub.add_parser(
        "build",
        parents=[common],
        help="build, check and publish the live media into public/releases/VERSION/",
        description=textwrap.fill(
            "Install the toolkit from the published signed repository on top of the "
            "[media] base, squash it, master an isohybrid ISO (LiveCD, and the same image as "
            "LiveUSB), implant its checksum, write SHA256SUMS and its signature and media.json. "
            "Nothing appears in public/releases/ unless it is complete and verified.",
            width=78,
        ),
        epilog="examples:\n"
        "  repotool media build                    the config's version, e.g. 3.3.2\n"
        "  repotool media build 3.3.2-2            a respin (list it in the release record)\n"
        "  repotool media build --source-date-epoch 1397088000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument(
        "version",
        nargs="?",
        default=None,
        help="release label, e.g. 3.3.2 or 3.3.2-2 for a respin (default: the config's version)",
    )
    build.add_argument(
        "--source-date-epoch",
        type=int,
        default=None,
        help="time stamp of every file in the image (default: "
        "$SOURCE_DATE_EPOCH, else the time of the published repomd.xml)",
    )
    build.set_defaults(handler=_build)
