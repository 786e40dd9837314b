"""CLI for the 'mirror' area: sync, media, check, list."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.cli import Context
    from repotool.config import Config
    from repotool.mirror.fetch import HttpFetcher
    from repotool.mirror.signature import GpgvVerifier


def _limits(args: argparse.Namespace, cfg: Config) -> Any:
    from repotool.mirror.fetch import FetchLimits

    return FetchLimits(
        timeout=args.timeout if args.timeout is not None else cfg.mirror.timeout_seconds,
        min_rate=args.min_rate if args.min_rate is not None else cfg.mirror.min_rate_bytes,
        grace=cfg.mirror.min_rate_grace_seconds,
    )


@contextmanager
def _fetch_verified(
    args: argparse.Namespace, ctx: Context
) -> Iterator[tuple[HttpFetcher, GpgvVerifier]]:
    """The bounded HTTP fetcher and a gpgv verifier holding only the pinned key."""
    import tempfile

    from repotool.mirror.fetch import HttpFetcher
    from repotool.mirror.signature import GpgvVerifier

    # a keep-alive connection per download thread (and never fewer than the default)
    fetcher = HttpFetcher(
        _limits(args, ctx.config), connections=max(16, getattr(args, "jobs", 0) or 0)
    )
    try:
        with tempfile.TemporaryDirectory(prefix="repotool-gpgv-") as tmp:
            yield fetcher, GpgvVerifier(args.key, ctx.runner, Path(tmp))
    finally:
        fetcher.close()


def _sync(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.mirror.sync import sync_repository
    from repotool.mirror.sync_plan import UnpackLimits

    cfg = ctx.config
    dest: Path = args.dest.absolute()
    with _fetch_verified(args, ctx) as (fetcher, verifier):
        result = sync_repository(
            args.url,
            dest,
            fetcher=fetcher,
            verifier=verifier,
            reporter=ctx.reporter,
            max_age_seconds=args.max_age
            if args.max_age is not None
            else cfg.mirror.max_age_seconds,
            # as long as the master keeps a replaced generation's files
            keep_seconds=cfg.mirror.keep_previous_seconds,
            jobs=args.jobs or cfg.mirror.jobs,
            unpack=UnpackLimits(max_bytes=args.max_metadata_size)
            if args.max_metadata_size is not None
            else UnpackLimits(),
        )
    if result.changed:
        summary = (
            f"{dest}: now at revision {result.revision}: {result.fetched} file(s) fetched "
            f"({result.fetched_bytes} bytes, {result.resumed} resumed), {result.reused} reused, "
            f"{result.deleted} deleted, {result.kept} kept for hosts holding an older "
            f"repomd.xml; {result.requests} request(s)"
        )
    else:
        summary = (
            f"{dest}: unchanged at revision {result.revision} "
            f"({result.requests} request(s), {result.bytes} bytes)"
        )
    return {"summary": summary, "dest": str(dest), **result.to_json()}


def _media(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.mirror.media import sync_media

    cfg = ctx.config
    dest: Path = args.dest.absolute()
    with _fetch_verified(args, ctx) as (fetcher, verifier):
        result = sync_media(
            args.url,
            dest,
            labels=args.label or None,
            fetcher=fetcher,
            verifier=verifier,
            reporter=ctx.reporter,
            jobs=args.jobs or cfg.mirror.jobs,
            remove=args.remove or (),
            **({"max_image_bytes": args.max_image_size} if args.max_image_size else {}),
        )
    held = ", ".join(result.labels) or "no labels"
    withdrawn = (
        f"; kept {', '.join(result.withdrawn)} (no longer listed; --remove to delete)"
        if result.withdrawn
        else ""
    )
    if result.changed:
        summary = (
            f"{dest}: now holds {held}; updated {', '.join(result.updated) or 'none'}"
            + (f", removed {', '.join(result.removed)}" if result.removed else "")
            + f": {result.fetched} image(s) fetched ({result.fetched_bytes} bytes, "
            f"{result.resumed} resumed), {result.reused} reused; {result.requests} request(s)"
            + withdrawn
        )
    else:
        summary = (
            f"{dest}: unchanged, holds {held} ({result.requests} request(s), {result.bytes} bytes)"
            + withdrawn
        )
    return {"summary": summary, "dest": str(dest), **result.to_json()}


def _check(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.mirror.health import check_network

    cfg = ctx.config
    status = check_network(
        cfg,
        runner=ctx.runner,
        limits=_limits(args, cfg),
        mirrors_file=args.mirrors,
    )
    counts: dict[str, int] = {}
    for m in status["mirrors"]:
        counts[m["status"]] = counts.get(m["status"], 0) + 1
    text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no mirrors"
    return {
        "summary": f"{len(status['mirrors'])} mirror(s): {text}; wrote {status['written']}",
        **status,
    }


def _list(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.mirror.lists import write_lists

    written = write_lists(ctx.config)
    return {"summary": f"wrote {len(written)} file(s): " + ", ".join(written), "written": written}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive number of bytes: {text!r}")
    return value


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    mirror = sub.add_parser(
        "mirror",
        help="sync a mirror (repositories, media), check the "
        "mirror network, write mirrorlist/metalink",
        description=textwrap.fill(
            "Mirror operators: 'sync' keeps a copy of one published repository and 'media' "
            "a copy of the release media, each checked against the pinned release key and "
            "switched in atomically; both run on any host, without a project. The master: "
            "'check' asks every mirror in [mirror] mirrors_file how fresh it is, and 'list' "
            "writes the yum mirrorlist and metalink that steer hosts to the fresh ones.",
            width=78,
        ),
        epilog="examples:\n"
        "  repotool mirror sync https://master.example/repo/el7/x86_64/ /srv/mirror/el7 \\\n"
        "      --key RPM-GPG-KEY-perfsonar\n"
        "  repotool mirror check\n"
        "  repotool mirror list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    msub = mirror.add_subparsers(dest="mirror_command", metavar="ACTION", required=True)

    net = argparse.ArgumentParser(add_help=False)
    net.add_argument(
        "--timeout",
        type=float,
        help="seconds to connect and the longest "
        "silence while reading (default: [mirror] timeout_seconds)",
    )
    net.add_argument(
        "--min-rate",
        type=int,
        help="minimum bytes/second of a download (default: [mirror] min_rate_bytes)",
    )

    s = msub.add_parser(
        "sync",
        parents=[common, net],
        help="mirror one published repository into DEST, verified and atomically",
        description=textwrap.fill(
            "Mirror the repository at URL (the base of one repository, e.g. "
            "https://host/repo/el7/x86_64/) into DEST.  repomd.xml must be signed by KEYFILE; "
            "every file is checked against the signed size and checksum; DEST changes in one "
            "atomic step or not at all.  Run it again after a failure: it resumes.",
            width=78,
        ),
        epilog="examples (from cron; serve /srv/mirror/el7):\n"
        "  repotool mirror sync https://master.example/repo/el7/x86_64/ /srv/mirror/el7 \\\n"
        "      --key RPM-GPG-KEY-perfsonar\n"
        "  repotool mirror sync https://master.example/repo/el7/x86_64/ /srv/mirror/el7 \\\n"
        "      --key RPM-GPG-KEY-perfsonar --max-age 604800 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("url", metavar="URL")
    s.add_argument("dest", metavar="DEST", type=Path)
    s.add_argument(
        "--key",
        required=True,
        type=Path,
        metavar="KEYFILE",
        help="the pinned public key (e.g. RPM-GPG-KEY-perfsonar)",
    )
    s.add_argument(
        "--max-age",
        type=int,
        metavar="SECONDS",
        help="refuse metadata older than this (default: [mirror] max_age_seconds)",
    )
    s.add_argument("--jobs", type=int, default=0, help="parallel downloads")
    s.add_argument(
        "--max-metadata-size",
        type=_positive,
        metavar="BYTES",
        help="the most the primary metadata may unpack to (default: 1 GiB; never more "
        "than 100 times its compressed size, whatever its signed open-size says)",
    )
    s.set_defaults(handler=_sync)

    m = msub.add_parser(
        "media",
        parents=[common, net],
        help="mirror the release media (releases/<label>/) into DEST, verified and atomically",
        description=textwrap.fill(
            "Mirror the live media of each release label from "
            "BASE_URL/releases/<label>/ into DEST/<label>/.  Each label's SHA256SUMS must be "
            "signed by KEYFILE (checked before anything else of the label is fetched); media.json "
            "must agree with it; every image is checked against its size and sha256.  DEST changes "
            "in one atomic step or not at all; run again after a failure: it resumes.  Without "
            "--label, the labels come from BASE_URL/api/releases; with --label, only the named "
            "labels are synced.  A held label is deleted only with --remove: /api/releases is "
            "not signed, so a label it no longer lists is kept (and reported).  An unchanged "
            "label costs one request.",
            width=78,
        ),
        epilog="examples (from cron; serve /srv/mirror/perfsonar/releases):\n"
        "  repotool mirror media https://master.example/ /srv/mirror/perfsonar/releases \\\n"
        "      --key RPM-GPG-KEY-perfsonar --label 3.3.2 --label 3.3.2-2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument(
        "url",
        metavar="BASE_URL",
        help="the base of the published tree (the folder holding releases/)",
    )
    m.add_argument("dest", metavar="DEST", type=Path)
    m.add_argument(
        "--key",
        required=True,
        type=Path,
        metavar="KEYFILE",
        help="the pinned release key (e.g. RPM-GPG-KEY-perfsonar)",
    )
    m.add_argument(
        "--label",
        action="append",
        metavar="LABEL",
        help="a release label, e.g. 3.3.2-2 (repeat for more; default: every "
        "label BASE_URL/api/releases lists)",
    )
    m.add_argument(
        "--remove",
        action="append",
        metavar="LABEL",
        help="delete this held label from DEST (repeat for more); a label the master no "
        "longer lists is otherwise kept, since /api/releases is not signed",
    )
    m.add_argument(
        "--max-image-size",
        type=_positive,
        metavar="BYTES",
        help="the largest image accepted (default: 16 GiB); media.json is not signed, "
        "so its sizes cannot exceed this",
    )
    m.add_argument("--jobs", type=int, default=0, help="parallel downloads")
    m.set_defaults(handler=_media)

    c = msub.add_parser(
        "check",
        parents=[common, net],
        help="check every mirror against the master; write public/mirrors/status.json",
        description=textwrap.fill(
            "Ask every mirror in [mirror] mirrors_file (or --mirrors) for its signed "
            "repomd.xml of each repository and compare it with the master's: a mirror is "
            "fresh, stale (and by how much), down, or serves a bad signature. The result goes to "
            "public/mirrors/status.json, which 'mirror list' and the site read.",
            width=78,
        ),
        epilog="examples:\n"
        "  repotool mirror check\n"
        "  repotool mirror check --mirrors mirror/mirrors.toml --timeout 10 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--mirrors", type=Path, help="mirrors.toml (default: [mirror] mirrors_file)")
    c.set_defaults(handler=_check)

    ls = msub.add_parser(
        "list",
        parents=[common],
        help="write the yum mirrorlist and metalink (fresh mirrors only) into public/mirrors/",
        description=textwrap.fill(
            "From public/mirrors/status.json (written by 'mirror check'), write "
            "public/mirrors/<target>/<arch>/mirrorlist and metalink.xml naming the master "
            "and the mirrors that are fresh. 'repotool release' writes them again after "
            "each publish.",
            width=78,
        ),
        epilog="examples:\n  repotool mirror list\n  repotool mirror list --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ls.set_defaults(handler=_list)
