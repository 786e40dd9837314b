"""``repotool release``: the whole flow, all-or-nothing.

key check → records check → build → sign → plan repositories → advisories
against the planned repositories → stage (metadata + updateinfo, signed) →
(site, media, staged beside the tree) → swap everything in.  If any stage
fails before the swap, what was published before is left exactly as it was.
Every stage skips work whose inputs did not change.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repotool.build import BuildOutcome, build
from repotool.config import Config
from repotool.process import Runner
from repotool.publish import (
    PublishOutcome,
    abort_all,
    commit_all,
    generated_sources,
    plan_all,
    stage_all,
)
from repotool.repo import RepoPlan, publish_lock
from repotool.report import Reporter
from repotool.signing import Signer, open_signer, sign_cached


@dataclass
class ReleaseResult:
    built: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    signed: int = 0
    published: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "built": self.built,
            "cached": self.cached,
            "signed": self.signed,
            "published": self.published,
            "unchanged": self.unchanged,
            **self.extra,
            "seconds": round(self.seconds, 3),
        }

    @property
    def summary(self) -> str:
        if not self.built and not self.signed and not self.published:
            return f"Nothing changed: {len(self.unchanged)} repositories already current."
        return (
            f"Built {len(self.built)}, signed {self.signed}, published "
            f"{', '.join(self.published) or 'nothing new'} in {self.seconds:.1f}s."
        )


def build_and_sign(
    cfg: Config,
    signer: Signer,
    runner: Runner,
    reporter: Reporter,
    *,
    components: Sequence[str] = (),
) -> tuple[BuildOutcome, dict[str, list[Path]], int]:
    """Build (cached) and sign (cached); returns signed packages per target."""
    outcome = build(
        cfg, runner, reporter, components=components, generated=generated_sources(cfg, signer)
    )
    signed, n_signed = sign_cached(cfg, signer, [p.path for p in outcome.packages], reporter)
    per_target: dict[str, list[Path]] = {}
    for p in outcome.packages:
        per_target.setdefault(p.target, []).append(signed[p.path])
    return outcome, per_target, n_signed


def _updateinfo_fn(cfg: Config, advisories: Sequence[Any]) -> Any:
    from repotool.advisories import render_updateinfo

    def fn(target: str, plan: RepoPlan) -> bytes | None:
        if not advisories:
            return None
        sums = {p.nevra: p.sha256 for p in plan.packages}
        return render_updateinfo(
            advisories,
            target,
            plan.nevras,
            sums=sums,  # type: ignore[arg-type]
            product=cfg.product,
            advisory_url=lambda a: f"{cfg.site.base_url.rstrip('/')}/advisories/{a.id}/",
        )

    return fn


def run_release(
    cfg: Config,
    runner: Runner,
    reporter: Reporter,
    *,
    extra_packages: dict[str, list[Path]] | None = None,
) -> ReleaseResult:
    from repotool.advisories import check_advisories
    from repotool.records import load_records

    started = time.monotonic()
    result = ReleaseResult()
    signer = open_signer(cfg, runner, reporter)
    # the records are checked before any work so a typo costs seconds, not a build
    records = load_records(cfg.path(cfg.site.content_dir))
    outcome, per_target, n_signed = build_and_sign(cfg, signer, runner, reporter)
    result.built, result.cached, result.signed = outcome.built, outcome.cached, n_signed
    for target, paths in (extra_packages or {}).items():
        per_target.setdefault(target, []).extend(paths)

    with publish_lock(cfg):
        plans = plan_all(cfg, per_target, signer, reporter)
        check_advisories(
            records.advisories,
            {p.target.name: p.nevras for p in plans},  # type: ignore[misc]
        )
        published = stage_all(plans, signer, _updateinfo_fn(cfg, records.advisories), reporter)
        try:
            _stage_beside(cfg, published, signer, runner, reporter, result)
        except BaseException:
            abort_all(published)
            raise
        commit_all(published, cfg, signer)
    result.published = published.changed
    result.unchanged = [
        f"{s.plan.target.name}/{s.plan.arch}" for s in published.staged if s.unchanged
    ]
    result.seconds = time.monotonic() - started
    return result


def _stage_beside(
    cfg: Config,
    published: PublishOutcome,
    signer: Signer,
    runner: Runner,
    reporter: Reporter,
    result: ReleaseResult,
) -> None:
    """Stages that must succeed before the repositories are swapped in."""
    return None
