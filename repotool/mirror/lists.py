"""``repotool mirror list``: write the yum mirrorlist and metalink into public/.

For every target and arch::

    public/mirrors/<target>/<arch>/mirrorlist     base URLs, fresh mirrors first, master last
    public/mirrors/<target>/<arch>/metalink.xml   repomd.xml size + hashes, recent alternates,
                                                  the same URLs with preferences

A mirror is listed when the repomd.xml that ``repotool mirror check`` saw on it
(public/mirrors/status.json) is the master's current one or a recent alternate.
The history of the master's repomd.xml lives in the state folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import MirrorError
from repotool.mirror.health import master_repomd, repo_keys
from repotool.mirror.metalink import (
    RepomdDigest,
    Resource,
    digest_repomd,
    render_metalink,
    render_mirrorlist,
    update_history,
)
from repotool.mirror.sync_plan import parse_repomd

MASTER_PREFERENCE = 1


def _status(cfg: Config) -> dict[str, Any]:
    path = cfg.public_dir / "mirrors" / "status.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MirrorError(
            "no mirror status yet", where=str(path), hint="run 'repotool mirror check' first"
        ) from None
    except (OSError, ValueError) as e:
        raise MirrorError(
            f"cannot read the mirror status: {e}",
            where=str(path),
            hint="run 'repotool mirror check' again",
        ) from e
    return data


def _history(path: Path) -> list[RepomdDigest]:
    if not path.exists():
        return []
    try:
        return [RepomdDigest.from_json(d) for d in json.loads(path.read_text())]
    except (ValueError, KeyError, AssertionError) as e:
        raise MirrorError(
            f"the repomd.xml history is damaged: {e}",
            where=str(path),
            hint="delete the file; alternates start again from now",
        ) from e


def write_lists(cfg: Config, *, now: Callable[[], float] = time.time) -> list[str]:
    status = _status(cfg)
    written: list[str] = []
    stamp = int(now())
    base = cfg.publish.base_url.rstrip("/")
    for target, arch in repo_keys(cfg):
        key = f"{target}/{arch}"
        data = master_repomd(cfg, target, arch)
        repomd = parse_repomd(data, key)
        current = digest_repomd(data, repomd.newest_timestamp)
        hist_path = cfg.state / "mirror" / f"repomd-history-{target}-{arch}.json"
        history, alternates = update_history(
            _history(hist_path), current, now=stamp, keep_seconds=cfg.mirror.alternates_seconds
        )
        write_atomic(hist_path, json.dumps([d.to_json() for d in history], indent=1).encode())
        accepted = {current.sha256} | {a.sha256 for a in alternates}
        listed = [
            m
            for m in status.get("mirrors", [])
            if m.get("repos", {}).get(key, {}).get("sha256") in accepted
        ]
        # fresh (current metadata) first, then those on an alternate; keep file order within
        listed.sort(key=lambda m: m["repos"][key]["sha256"] != current.sha256)
        mirror_bases = [f"{m['url']}repo/{target}/{arch}/" for m in listed]
        master_base = f"{base}/repo/{target}/{arch}/"
        resources = [
            Resource(
                url=u + "repodata/repomd.xml",
                location=m["region"],
                preference=max(MASTER_PREFERENCE + 1, 100 - i),
            )
            for i, (u, m) in enumerate(zip(mirror_bases, listed, strict=True))
        ] + [
            Resource(
                url=master_base + "repodata/repomd.xml", location="", preference=MASTER_PREFERENCE
            )
        ]
        out = cfg.public_dir / "mirrors" / target / arch
        write_atomic(out / "mirrorlist", render_mirrorlist([*mirror_bases, master_base]).encode())
        write_atomic(
            out / "metalink.xml",
            render_metalink(current, alternates, resources, generated=stamp).encode(),
        )
        written += [str(out / "mirrorlist"), str(out / "metalink.xml")]
    return written
