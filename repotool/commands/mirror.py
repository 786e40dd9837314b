"""CLI for the 'mirror' area: sync, check, list."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.cli import Context
    from repotool.config import Config


def _limits(args: argparse.Namespace, cfg: Config) -> Any:
    from repotool.mirror.fetch import FetchLimits

    return FetchLimits(
        timeout=args.timeout if args.timeout is not None else cfg.mirror.timeout_seconds,
        min_rate=args.min_rate if args.min_rate is not None else cfg.mirror.min_rate_bytes,
        grace=cfg.mirror.min_rate_grace_seconds,
    )


def _sync(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    import tempfile

    from repotool.mirror.fetch import HttpFetcher
    from repotool.mirror.signature import GpgvVerifier
    from repotool.mirror.sync import sync_repository

    cfg = ctx.config
    fetcher = HttpFetcher(_limits(args, cfg))
    dest: Path = args.dest.absolute()
    try:
        with tempfile.TemporaryDirectory(prefix="repotool-gpgv-") as tmp:
            verifier = GpgvVerifier(args.key, ctx.runner, Path(tmp))
            result = sync_repository(
                args.url, dest, fetcher=fetcher, verifier=verifier, reporter=ctx.reporter,
                max_age_seconds=args.max_age if args.max_age is not None
                else cfg.mirror.max_age_seconds,
                # as long as the master keeps a replaced generation's files
                keep_seconds=cfg.mirror.keep_previous_seconds,
                jobs=args.jobs or cfg.mirror.jobs,
            )
    finally:
        fetcher.close()
    if result.changed:
        summary = (
            f"{dest}: now at revision {result.revision}: {result.fetched} file(s) fetched "
            f"({result.fetched_bytes} bytes, {result.resumed} resumed), {result.reused} reused, "
            f"{result.deleted} deleted, {result.kept} kept for hosts holding an older "
            f"repomd.xml; {result.requests} request(s)"
        )
    else:
        summary = (f"{dest}: unchanged at revision {result.revision} "
                   f"({result.requests} request(s), {result.bytes} bytes)")
    return {"summary": summary, "dest": str(dest), **result.to_json()}


def _check(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.mirror.health import check_network

    cfg = ctx.config
    status = check_network(
        cfg, runner=ctx.runner, limits=_limits(args, cfg), mirrors_file=args.mirrors,
    )
    counts: dict[str, int] = {}
    for m in status["mirrors"]:
        counts[m["status"]] = counts.get(m["status"], 0) + 1
    text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no mirrors"
    return {"summary": f"{len(status['mirrors'])} mirror(s): {text}; "
                       f"wrote {status['written']}", **status}


def _list(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.mirror.lists import write_lists

    written = write_lists(ctx.config)
    return {"summary": f"wrote {len(written)} file(s): " + ", ".join(written), "written": written}


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    mirror = sub.add_parser("mirror", help="sync a mirror, check the mirror network, write "
                            "mirrorlist/metalink")
    msub = mirror.add_subparsers(dest="mirror_command", metavar="ACTION", required=True)

    net = argparse.ArgumentParser(add_help=False)
    net.add_argument("--timeout", type=float, help="seconds to connect and the longest "
                     "silence while reading (default: [mirror] timeout_seconds)")
    net.add_argument("--min-rate", type=int, help="minimum bytes/second of a download "
                     "(default: [mirror] min_rate_bytes)")

    s = msub.add_parser(
        "sync", parents=[common, net],
        help="mirror one published repository into DEST, verified and atomically",
        description="Mirror the repository at URL (the base of one repository, e.g. "
        "https://host/repo/el7/x86_64/) into DEST.  repomd.xml must be signed by KEYFILE; "
        "every file is checked against the signed size and checksum; DEST changes in one "
        "atomic step or not at all.  Run it again after a failure: it resumes.",
    )
    s.add_argument("url", metavar="URL")
    s.add_argument("dest", metavar="DEST", type=Path)
    s.add_argument("--key", required=True, type=Path, metavar="KEYFILE",
                   help="the pinned public key (e.g. RPM-GPG-KEY-perfsonar)")
    s.add_argument("--max-age", type=int, metavar="SECONDS",
                   help="refuse metadata older than this (default: [mirror] max_age_seconds)")
    s.add_argument("--jobs", type=int, default=0, help="parallel downloads")
    s.set_defaults(handler=_sync)

    c = msub.add_parser(
        "check", parents=[common, net],
        help="check every mirror against the master; write public/mirrors/status.json",
    )
    c.add_argument("--mirrors", type=Path, help="mirrors.toml (default: [mirror] mirrors_file)")
    c.set_defaults(handler=_check)

    ls = msub.add_parser(
        "list", parents=[common],
        help="write the yum mirrorlist and metalink (fresh mirrors only) into public/mirrors/",
    )
    ls.set_defaults(handler=_list)
