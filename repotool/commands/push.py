"""CLI for the 'push' area: copy public/ to S3-compatible object storage."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.cli import Context

DESCRIPTION = """\
Upload the published tree (public/) to S3-compatible object storage (AWS S3,
SeaweedFS, MinIO, Ceph) so hosts can install straight from the bucket's HTTP
endpoint. The order keeps every reader safe: packages and media first, then
the new metadata generation, then each repository's repomd.xml and its
signature, then the .repo file and the site pages. Only files whose SHA-256
changed go up; an unchanged tree costs one GET of the manifest
(PREFIX/.repotool-push.json). Files no longer published stay for the keep
window (hosts holding an older repomd.xml still fetch them), then are deleted.
A push stopped at any moment leaves the bucket serving the old or the new
release; run it again to finish.

Credentials and region come from the standard AWS places (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/config); the endpoint from
--endpoint-url or AWS_ENDPOINT_URL. The bucket must exist and allow anonymous
read; set [publish] base_url to its public URL (http://HOST/BUCKET/PREFIX) so
the .repo file points there. A host then takes the .repo file from the bucket:
  curl -o /etc/yum.repos.d/perfsonar.repo http://HOST/BUCKET/PREFIX/repo/perfsonar.repo
A mirror syncs from it like from any master:
  repotool mirror sync http://HOST/BUCKET/PREFIX/repo/el7/x86_64/ DEST --key KEYFILE
"""

EPILOG = """\
examples:
  repotool push s3://perfsonar-repo
  repotool push s3://repo/perfsonar --endpoint-url http://127.0.0.1:8333
  repotool push s3://repo/perfsonar --keep 86400 --json
  repotool push s3://repo/perfsonar s3://backup/perfsonar     # two destinations in turn
"""


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "push",
        parents=[common],
        help="upload public/ to S3-compatible object storage, in a reader-safe order",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "destinations",
        nargs="+",
        metavar="s3://BUCKET[/PREFIX]",
        help="where to push (one or more, pushed one after the other)",
    )
    p.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="the S3 API endpoint (default: AWS_ENDPOINT_URL, else AWS)",
    )
    p.add_argument(
        "--keep",
        type=float,
        metavar="SECONDS",
        help="keep files no longer published this long before deleting them "
        "(default: [publish] keep_generations_seconds)",
    )
    p.add_argument(
        "--jobs", type=int, default=4, metavar="N", help="parallel uploads within a phase"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.push import push_public
    from repotool.push.s3 import parse_destination
    from repotool.repo.repository import publish_lock

    cfg = ctx.config
    for destination in args.destinations:
        parse_destination(destination)  # every name checked before the first upload
    keep = args.keep if args.keep is not None else cfg.publish.keep_generations_seconds
    results = []
    with publish_lock(cfg):
        for destination in args.destinations:
            result = push_public(
                cfg.public_dir,
                destination,
                keep_seconds=keep,
                reporter=ctx.reporter,
                endpoint_url=args.endpoint_url,
                jobs=max(1, args.jobs),
            )
            results.append(result)
    lines = []
    for r in results:
        if r.changed:
            lines.append(
                f"{r.destination}: {r.uploaded} file(s) uploaded ({r.uploaded_bytes} bytes), "
                f"{r.resumed} already there from a stopped push, {r.unchanged} unchanged, "
                f"{r.deleted} deleted, {r.kept} kept for hosts holding older metadata; "
                f"{r.requests} request(s) in {r.seconds:.1f}s"
            )
        else:
            lines.append(
                f"{r.destination}: unchanged ({r.unchanged} file(s); {r.requests} request(s))"
            )
    return {"summary": "\n".join(lines), "pushes": [r.to_json() for r in results]}
