"""``repotool mirror check``: is each mirror fresh, stale, down or badly signed?

The master is the local published tree (``public/repo/<target>/<arch>/``).  For
every mirror and repository, the mirror's repomd.xml and its signature are
fetched (bounded), the signature is checked with gpgv against the published
key, and :func:`classify` compares it with the master's.  The result is
written to ``public/mirrors/status.json`` (shape in docs/mirrors.md).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import MirrorError
from repotool.mirror.fetch import Fetcher, FetchLimits, HttpFetcher
from repotool.mirror.network import Mirror, load_mirrors
from repotool.mirror.signature import GpgvVerifier
from repotool.mirror.sync import REPOMD, REPOMD_LIMIT, SIGNATURE_LIMIT
from repotool.mirror.sync_plan import Repomd, parse_repomd
from repotool.process import Runner

SCHEMA = 1
#: worst first: a mirror's overall status is the worst of its repositories
SEVERITY = ("bad-signature", "down", "stale", "fresh")


@dataclass(frozen=True)
class Observation:
    """What fetching one mirror's repomd.xml gave: bytes, or why not."""

    repomd: bytes | None = None
    down: str | None = None
    bad_signature: str | None = None


@dataclass(frozen=True)
class RepoHealth:
    status: str
    revision: str | None
    timestamp: int | None
    sha256: str | None
    #: seconds the mirror's newest metadata is behind the master's
    behind_seconds: int | None
    detail: str


def classify(master: Repomd, master_bytes: bytes, seen: Observation, where: str) -> RepoHealth:
    """Pure: compare a mirror's repomd.xml with the master's."""
    if seen.down is not None:
        return RepoHealth("down", None, None, None, None, seen.down)
    if seen.bad_signature is not None or seen.repomd is None:
        return RepoHealth(
            "bad-signature", None, None, None, None, seen.bad_signature or "no signature"
        )
    sha = hashlib.sha256(seen.repomd).hexdigest()
    if seen.repomd == master_bytes:
        return RepoHealth(
            "fresh",
            master.revision,
            master.newest_timestamp,
            sha,
            0,
            "same repomd.xml as the master",
        )
    try:
        mine = parse_repomd(seen.repomd, where)
    except MirrorError as e:
        return RepoHealth("stale", None, None, sha, None, f"unreadable repomd.xml: {e.what}")
    behind = master.newest_timestamp - mine.newest_timestamp
    if behind > 0:
        detail = (
            f"{_human(behind)} behind the master (revision {mine.revision} vs {master.revision})"
        )
    else:
        detail = f"differs from the master (revision {mine.revision} vs {master.revision})"
    return RepoHealth("stale", mine.revision, mine.newest_timestamp, sha, max(behind, 0), detail)


def overall(statuses: Sequence[str]) -> str:
    for s in SEVERITY:
        if s in statuses:
            return s
    return "fresh"


def _human(seconds: int) -> str:
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def observe(fetcher: Fetcher, verifier: GpgvVerifier, repo_url: str) -> Observation:
    """Shell: fetch one mirror's repomd.xml and signature, bounded, and verify."""
    url = repo_url + REPOMD
    try:
        body = fetcher.get_small(url, max_bytes=REPOMD_LIMIT).body
        sig = fetcher.get_small(url + ".asc", max_bytes=SIGNATURE_LIMIT).body
    except MirrorError as e:
        return Observation(down=e.what)
    try:
        verifier.verify(body, sig, url)
    except MirrorError as e:
        return Observation(bad_signature=e.what)
    return Observation(repomd=body)


def repo_keys(cfg: Config) -> list[tuple[str, str]]:
    return [(t.name, a) for t in cfg.targets for a in t.arches]


def master_repomd(cfg: Config, target: str, arch: str) -> bytes:
    path = cfg.public_dir / "repo" / target / arch / REPOMD
    try:
        return path.read_bytes()
    except OSError as e:
        raise MirrorError(
            f"the master repository is not published: {e.strerror}",
            where=str(path),
            hint="run 'repotool release' (or publish) first",
        ) from e


def check_network(
    cfg: Config,
    *,
    runner: Runner,
    limits: FetchLimits,
    mirrors_file: Path | None = None,
    fetcher: Fetcher | None = None,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Check every mirror; write public/mirrors/status.json; return its content."""
    mirrors = load_mirrors(mirrors_file or cfg.path(cfg.mirror.mirrors_file))
    key = cfg.public_dir / "keys" / cfg.key.public_key_name
    own = fetcher is None
    http: Fetcher = fetcher or HttpFetcher(limits)
    try:
        with tempfile.TemporaryDirectory(prefix="repotool-check-") as tmp:
            verifier = GpgvVerifier(key, runner, Path(tmp))
            status = _check(cfg, mirrors, http, verifier, now())
    finally:
        if own and isinstance(http, HttpFetcher):
            http.close()
    out = cfg.public_dir / "mirrors" / "status.json"
    write_atomic(out, (json.dumps(status, indent=2, sort_keys=True) + "\n").encode())
    return {**status, "written": str(out)}


def _check(
    cfg: Config, mirrors: Sequence[Mirror], fetcher: Fetcher, verifier: GpgvVerifier, now: float
) -> dict[str, Any]:
    masters: dict[str, tuple[Repomd, bytes]] = {}
    for target, arch in repo_keys(cfg):
        data = master_repomd(cfg, target, arch)
        where = str(cfg.public_dir / "repo" / target / arch / REPOMD)
        sig_path = cfg.public_dir / "repo" / target / arch / (REPOMD + ".asc")
        verifier.verify(data, sig_path.read_bytes() if sig_path.exists() else b"", where)
        masters[f"{target}/{arch}"] = (parse_repomd(data, where), data)

    jobs = [(m, k) for m in mirrors for k in masters]

    def one(job: tuple[Mirror, str]) -> RepoHealth:
        mirror, key = job
        target, arch = key.split("/")
        url = mirror.repo_url(target, arch)
        master, master_bytes = masters[key]
        return classify(master, master_bytes, observe(fetcher, verifier, url), url + REPOMD)

    with ThreadPoolExecutor(max(1, cfg.mirror.jobs)) as pool:
        results = dict(zip(jobs, pool.map(one, jobs), strict=True))
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "schema": SCHEMA,
        "generated": stamp,
        "generated_timestamp": int(now),
        "master": {
            k: {
                "revision": r.revision,
                "timestamp": r.newest_timestamp,
                "sha256": hashlib.sha256(b).hexdigest(),
            }
            for k, (r, b) in masters.items()
        },
        "mirrors": [
            {
                "name": m.name,
                "url": m.url,
                "region": m.region,
                "contact": m.contact,
                "status": overall([results[(m, k)].status for k in masters]),
                "repos": {k: asdict(results[(m, k)]) for k in masters},
            }
            for m in mirrors
        ],
    }
