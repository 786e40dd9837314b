"""Push ``public/`` to S3-compatible object storage in an order that keeps readers safe.

``plan.py`` decides (values in, values out), ``store.py`` is the seam to the
bucket with its in-memory fake, ``s3.py`` the boto3 side, ``run.py`` reads the
tree and carries out the plan.  See docs/push.md.
"""

from __future__ import annotations

from pathlib import Path

from repotool.push.run import PushResult, push_tree
from repotool.report import Reporter

__all__ = ["PushResult", "push_public"]


def push_public(
    public_dir: Path,
    destination: str,
    *,
    keep_seconds: float,
    reporter: Reporter,
    endpoint_url: str | None = None,
    jobs: int = 4,
) -> PushResult:
    """Push ``public_dir`` to ``destination`` (``s3://BUCKET[/PREFIX]``).

    The caller holds :func:`repotool.repo.repository.publish_lock` (``repotool push``
    takes it; ``release`` calls this after its swap, still holding it).
    """
    from repotool.push.s3 import open_s3_store

    store = open_s3_store(destination, endpoint_url=endpoint_url)
    return push_tree(public_dir, store, keep_seconds=keep_seconds, reporter=reporter, jobs=jobs)
