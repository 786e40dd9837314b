"""``repotool release``: the whole flow, all-or-nothing.

key check → records check → build → sign → plan repositories → advisories
against the planned repositories → stage every repository (metadata +
updateinfo, signed) → live media built from the staged repository and staged
→ swap: every repository's link flips, then the media move in, then the key
and the ``.repo`` file → mirror lists refreshed → the site is exported from
what is now public.  If any stage before the swap fails, what was published
before is left exactly as it was; a run killed among the flips is rolled
forward by the next one.  Every stage skips work whose inputs did not change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repotool.build.rpmbuild import BuildOutcome, build
from repotool.config import Config
from repotool.errors import AdvisoryError
from repotool.process import Runner
from repotool.repo.publish import (
    PublishOutcome,
    abort_all,
    commit_all,
    generated_sources,
    plan_all,
    stage_all,
)
from repotool.repo.repository import RepoPlan, publish_lock, staged_view
from repotool.report import Reporter
from repotool.signing.release_key import open_signer
from repotool.signing.signer import Signer, sign_cached

if TYPE_CHECKING:
    from repotool.records.models import Records


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
        media = self.extra.get("media") or {}
        site = self.extra.get("site") or {}
        media_text = site_text = ""
        if media and not media.get("skipped"):
            label = media.get("version")
            media_text = f"; media {label} in public/releases/{label}/"
        if site.get("written"):
            site_text = f"; site: {len(site['written'])} files written"
        if not self.built and not self.signed and not self.published:
            return (
                f"Nothing changed: {len(self.unchanged)} repositories already current"
                f"{media_text}{site_text}."
            )
        return (
            f"Built {len(self.built)}, signed {self.signed}, published "
            f"{', '.join(self.published) or 'nothing new'}{media_text}{site_text} "
            f"in {self.seconds:.1f}s."
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
    from repotool.records.advisories import render_updateinfo

    def fn(target: str, plan: RepoPlan) -> bytes | None:
        if not advisories:
            return None
        sums = {p.nevra: p.sha256 for p in plan.packages}
        return render_updateinfo(
            advisories,
            target,
            plan.nevras,
            sums=sums,
            product=cfg.product,
            advisory_url=lambda a: f"{cfg.site.base_url.rstrip('/')}/advisories/{a.id}/",
        )

    return fn


def media_label(cfg: Config, records: Records, respin: int | None) -> tuple[str, int]:
    """The media's version label and SOURCE_DATE_EPOCH, from the release record."""
    release = next((r for r in records.releases if r.version == cfg.version), None)
    where = str(cfg.path(cfg.site.content_dir) / "releases" / f"{cfg.version}.md")
    if release is None:
        raise AdvisoryError(
            f"there is no release record for {cfg.version}",
            where=where,
            hint="write the release notes there (version, date, notes) before releasing",
        )
    day = release.date
    label = cfg.version
    if respin is not None:
        label = f"{cfg.version}-{respin}"
        found = next((r for r in release.respins if r.version == label), None)
        if found is None:
            raise AdvisoryError(
                f"the release record lists no respin {label}",
                where=where,
                hint=f"add it under respins: (version: {label}, date, advisories) first",
            )
        day = found.date
    epoch = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    return label, epoch


def run_release(
    cfg: Config,
    runner: Runner,
    reporter: Reporter,
    *,
    extra_packages: dict[str, list[Path]] | None = None,
    respin: int | None = None,
    media: bool = True,
) -> ReleaseResult:
    from repotool.records.loading import load_records

    started = time.monotonic()
    result = ReleaseResult()
    signer = open_signer(cfg, runner, reporter)
    # the records are checked before any work so a typo costs seconds, not a build
    records = load_records(cfg.path(cfg.site.content_dir))
    media = media and cfg.media.enabled
    label, source_date_epoch = media_label(cfg, records, respin)
    # one run at a time owns the state folder: build and sign caches, then the tree
    with publish_lock(cfg):
        published = _build_and_publish(
            cfg,
            signer,
            runner,
            reporter,
            records,
            result,
            extra_packages,
            media=media,
            label=label,
            source_date_epoch=source_date_epoch,
        )
    result.published = published.changed
    result.unchanged = [
        f"{s.plan.target.name}/{s.plan.arch}" for s in published.staged if s.unchanged
    ]
    result.seconds = time.monotonic() - started
    return result


def _build_and_publish(
    cfg: Config,
    signer: Signer,
    runner: Runner,
    reporter: Reporter,
    records: Records,
    result: ReleaseResult,
    extra_packages: dict[str, list[Path]] | None,
    *,
    media: bool,
    label: str,
    source_date_epoch: int,
) -> PublishOutcome:
    from repotool.records.advisories import check_advisories
    from repotool.site.export import build_site

    outcome, per_target, n_signed = build_and_sign(cfg, signer, runner, reporter)
    result.built, result.cached, result.signed = outcome.built, outcome.cached, n_signed
    for target, paths in (extra_packages or {}).items():
        per_target.setdefault(target, []).extend(paths)
    plans = plan_all(cfg, per_target, signer, reporter)
    check_advisories(records.advisories, {p.target.name: p.nevras for p in plans})
    published = stage_all(plans, signer, _updateinfo_fn(cfg, records.advisories), reporter)
    staged_media: Path | None = None
    try:
        if media:
            result.extra["media"], staged_media = _media(
                cfg, published, signer, runner, reporter, label, source_date_epoch
            )
    except BaseException:
        abort_all(published)
        raise

    def place_media() -> None:
        # the verified media go public right after the repositories they came from
        if staged_media is not None:
            from repotool.media.publish import swap_into_place

            swap_into_place(staged_media, cfg.public_dir / "releases" / label)
            shutil.rmtree(staged_media.parent.parent, ignore_errors=True)

    commit_all(published, cfg, signer, then=place_media)
    if (cfg.public_dir / "mirrors" / "status.json").is_file() and _lists_stale(cfg):
        # the metalink names the current repomd.xml: it must follow every publish
        from repotool.mirror.lists import write_lists

        result.extra["mirror_lists"] = write_lists(cfg)
    # the site shows what is now published: keys, .repo file, media, archive
    result.extra["site"] = build_site(cfg, reporter).to_json()
    return published


def _lists_stale(cfg: Config) -> bool:
    """A mirrorlist/metalink older than its repomd.xml (also after a killed run)."""
    for target in cfg.targets:
        for arch in target.arches:
            repomd = cfg.public_dir / "repo" / target.name / arch / "repodata" / "repomd.xml"
            metalink = cfg.public_dir / "mirrors" / target.name / arch / "metalink.xml"
            if repomd.exists() and (
                not metalink.exists() or metalink.stat().st_mtime < repomd.stat().st_mtime
            ):
                return True
    return False


def _media(
    cfg: Config,
    published: PublishOutcome,
    signer: Signer,
    runner: Runner,
    reporter: Reporter,
    label: str,
    source_date_epoch: int,
) -> tuple[dict[str, Any], Path | None]:
    """Live media from the staged repository, verified in a staging folder.

    They are moved into public/releases/ only after the repositories are swapped
    in (see ``place_media``), so media never name packages hosts cannot get.
    Media of a published version are never rebuilt (hosts and mirrors hold
    their checksums); a security respin makes new media under a new label.
    """
    from repotool.media import build_media

    manifest = cfg.public_dir / "releases" / label / "media.json"
    if manifest.is_file():
        return {"version": label, "skipped": "already published"}, None
    staged = next(
        s
        for s in published.staged
        if s.plan.target.name == cfg.media.target and s.plan.arch == cfg.media.arch
    )
    key_file = cfg.state / "media-key" / cfg.key.public_key_name
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(signer.public_key_armored())
    # build_media publishes into <public_dir>/releases/: give it a private one
    shadow = cfg.state / "media-staging"
    shutil.rmtree(shadow, ignore_errors=True)
    shadow_cfg = dataclasses.replace(
        cfg, publish=dataclasses.replace(cfg.publish, public_dir=shadow)
    )
    done = build_media(
        shadow_cfg,
        signer,
        runner,
        reporter,
        version_label=label,
        source_date_epoch=source_date_epoch,
        repo_dir=staged.plan.repo_dir if staged.unchanged else staged_view(staged),
        key_file=key_file,
    )
    info = done.to_json()
    info["directory"] = str(cfg.public_dir / "releases" / label)
    return info, shadow / "releases" / label
