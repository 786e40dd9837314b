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

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repotool.build.rpmbuild import BuildOutcome, build
from repotool.config import Config
from repotool.errors import AdvisoryError, PublishError, RespinOrderError
from repotool.process import Runner
from repotool.repo.planning import RepoPlan
from repotool.repo.publish import (
    PublishOutcome,
    abort_all,
    finish_all,
    generated_sources,
    plan_all,
    stage_all,
    swap_all,
)
from repotool.repo.repository import publish_lock, staged_view
from repotool.repo.tree_checks import check_inside_public, check_name
from repotool.report import Reporter
from repotool.signing.release_key import open_signer
from repotool.signing.signer import Signer
from repotool.signing.stage import sign_cached

if TYPE_CHECKING:
    from repotool.media import MediaResult, StagedMedia
    from repotool.records.models import Records
    from repotool.site.export import SiteResult


@dataclass(frozen=True)
class SkippedMedia:
    """Media not built this run, and why."""

    version_label: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version_label, "skipped": self.reason}


@dataclass(frozen=True)
class ReleaseResult:
    built: list[str]
    cached: list[str]
    signed: int
    published: list[str]
    unchanged: list[str]
    site: SiteResult
    media: MediaResult | SkippedMedia | None = None
    #: the mirror lists written again (None: no mirror status to list)
    mirror_lists: list[str] | None = None
    #: what each push of [publish] push_to did (empty: none configured)
    pushed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "built": self.built,
            "cached": self.cached,
            "signed": self.signed,
            "published": self.published,
            "unchanged": self.unchanged,
        }
        if self.media is not None:
            out["media"] = self.media.to_json()
        if self.mirror_lists is not None:
            out["mirror_lists"] = self.mirror_lists
        out["site"] = self.site.to_json()
        if self.pushed:
            out["pushed"] = self.pushed
        out["seconds"] = round(self.seconds, 3)
        return out

    @property
    def summary(self) -> str:
        media_text = site_text = ""
        if self.media is not None and not isinstance(self.media, SkippedMedia):
            label = self.media.version_label
            media_text = f"; media {label} in public/releases/{label}/"
            if self.media.superseded_by:
                media_text += f" (superseded by {self.media.superseded_by})"
        if self.site.written:
            site_text = f"; site: {len(self.site.written)} files written"
        if not self.built and not self.signed and not self.published and media_text:
            # new media are a change, even when every repository was already current
            return (
                f"New media{media_text.removeprefix('; media')}; repositories unchanged "
                f"({len(self.unchanged)} already current){site_text}."
            )
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
    from repotool.records.updateinfo import render_updateinfo

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


def respin_order(
    cfg: Config, records: Records, respin: int, *, force: bool, reporter: Reporter
) -> str:
    """Refuse media of a respin older than the newest one, unless ``force``.

    They would carry the older respin's label and date and the packages
    published now.  Returns the newer respin when forced ('' when in order,
    or when the media are already published and nothing is built).
    """
    from repotool.records.respins import newer_respin, respin_label

    label = respin_label(cfg.version, respin)
    releases = cfg.public_dir / "releases"
    if (releases / label / "media.json").is_file():
        return ""
    release = next(r for r in records.releases if r.version == cfg.version)
    published = [p.parent.name for p in releases.glob("*/media.json")]
    newest = newer_respin(cfg.version, respin, [r.version for r in release.respins], published)
    if newest is None:
        return ""
    if not force:
        day = next(r.date for r in release.respins if r.version == label)
        out = newest in published
        record = cfg.path(cfg.site.content_dir) / "releases" / f"{cfg.version}.md"
        raise RespinOrderError(
            f"{label} is older than the newest respin, {newest} "
            f"({'published in ' + str(releases / newest) if out else 'listed in ' + str(record)})"
            f": media {label} would be dated {day} but hold the packages published now",
            where=f"repotool release --respin {respin}",
            hint=f"make the newest media with 'repotool release --respin "
            f"{newest.rpartition('-')[2]}', or add --force to build {label} anyway "
            f"(media.json and the release page then mark them superseded by {newest})",
        )
    reporter.warn(
        f"building media {label} after {newest} (--force): they hold the packages published "
        f"now; media.json and the release page mark them superseded by {newest}"
    )
    return newest


def run_release(
    cfg: Config,
    runner: Runner,
    reporter: Reporter,
    *,
    extra_packages: dict[str, list[Path]] | None = None,
    respin: int | None = None,
    media: bool = True,
    force: bool = False,
) -> ReleaseResult:
    from repotool.records.loading import load_records
    from repotool.site.export import build_site
    from repotool.site.key_inspection import GpgKeyInspector

    started = time.monotonic()
    signer = open_signer(cfg, runner, reporter)
    # the records are checked before any work so a typo costs seconds, not a build
    records = load_records(cfg.path(cfg.site.content_dir))
    media = media and cfg.media.enabled
    label, source_date_epoch = media_label(cfg, records, respin)
    check_name(
        "media label",
        label,
        where=f"{cfg.root / 'repotool.toml'} version",
        hint="use a version like 3.3.2 (a respin is VERSION-N)",
    )
    # one run at a time owns the state folder: build and sign caches, then the tree
    with publish_lock(cfg):
        check_inside_public(cfg, [label] if media else [])
        # read under the lock: no other run publishes media meanwhile
        superseded_by = (
            respin_order(cfg, records, respin, force=force, reporter=reporter)
            if media and respin is not None
            else ""
        )
        outcome, per_target, n_signed = build_and_sign(cfg, signer, runner, reporter)
        for target, paths in (extra_packages or {}).items():
            per_target.setdefault(target, []).extend(paths)
        published = _stage_repositories(cfg, per_target, signer, reporter, records)
        staged_media = _stage_or_abort(
            published,
            lambda: (
                _media(
                    cfg,
                    published,
                    signer,
                    runner,
                    reporter,
                    label,
                    source_date_epoch,
                    superseded_by,
                )
                if media
                else None
            ),
        )
        placed = _swap_in(cfg, published, signer, staged_media)
        mirror_lists = _refresh_mirror_lists(cfg)
        # the site shows what is now published: keys, .repo file, media, archive
        site = build_site(cfg, reporter, keys=GpgKeyInspector(runner))
        pushed = _push(cfg, reporter)
    return ReleaseResult(
        built=outcome.built,
        cached=outcome.cached,
        signed=n_signed,
        published=published.changed,
        unchanged=[f"{s.plan.target.name}/{s.plan.arch}" for s in published.staged if s.unchanged],
        site=site,
        media=placed,
        mirror_lists=mirror_lists,
        pushed=pushed,
        seconds=time.monotonic() - started,
    )


def _push(cfg: Config, reporter: Reporter) -> list[dict[str, Any]]:
    """public/ to each object store of ``[publish] push_to``, after the local swap and
    the site (still under the publish lock; see docs/push.md)."""
    if not cfg.publish.push_to:
        return []
    from repotool.push import push_public

    return [
        push_public(
            cfg.public_dir,
            destination,
            keep_seconds=cfg.publish.keep_generations_seconds,
            reporter=reporter,
            endpoint_url=cfg.publish.push_endpoint_url or None,
        ).to_json()
        for destination in cfg.publish.push_to
    ]


def _stage_repositories(
    cfg: Config,
    per_target: dict[str, list[Path]],
    signer: Signer,
    reporter: Reporter,
    records: Records,
) -> PublishOutcome:
    """Plan every repository, check the advisories against the plans, stage them."""
    from repotool.csaf.document import check_exportable
    from repotool.records.advisories import check_advisories

    plans = plan_all(cfg, per_target, signer, reporter)
    check_advisories(records.advisories, {p.target.name: p.nevras for p in plans})
    # the CSAF documents the site will publish: refused now, before anything is swapped in
    check_exportable(records.advisories, {p.target.name: p.nevras for p in plans})
    return stage_all(plans, signer, _updateinfo_fn(cfg, records.advisories), reporter)


def _stage_or_abort(
    published: PublishOutcome, stage: Callable[[], StagedMedia | SkippedMedia | None]
) -> StagedMedia | SkippedMedia | None:
    """Run a stage after the repositories are staged; if it fails, nothing stays."""
    try:
        return stage()
    except BaseException:
        abort_all(published)
        raise


def _swap_in(
    cfg: Config,
    published: PublishOutcome,
    signer: Signer,
    staged_media: StagedMedia | SkippedMedia | None,
) -> MediaResult | SkippedMedia | None:
    """The repositories flip (all or none), then the media move in right after them,
    then the key, the .repo file and the repositories' bookkeeping."""
    from repotool.media import StagedMedia, discard_media, publish_media

    try:
        flipped = swap_all(published, cfg)
    except BaseException:
        if isinstance(staged_media, StagedMedia):
            discard_media(staged_media)
        raise
    placed: MediaResult | SkippedMedia | None = None
    media_error: OSError | None = None
    if isinstance(staged_media, StagedMedia):
        try:
            placed = publish_media(staged_media)
        except OSError as e:
            discard_media(staged_media)
            media_error = e
    else:
        placed = staged_media
    finish_all(flipped, cfg, signer)
    if media_error is not None and isinstance(staged_media, StagedMedia):
        final = staged_media.result.directory
        raise PublishError(
            "the new repositories are live, but the media could not be moved into place: "
            f"{media_error.strerror or media_error}",
            where=str(media_error.filename or final),
            hint=f"fix the cause, then run again: the media of {final.name} are built again",
        ) from media_error
    return placed


def _refresh_mirror_lists(cfg: Config) -> list[str] | None:
    """The metalink names the current repomd.xml: it must follow every publish."""
    if not (cfg.public_dir / "mirrors" / "status.json").is_file() or not _lists_stale(cfg):
        return None
    from repotool.mirror.lists import write_lists

    return write_lists(cfg)


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
    superseded_by: str = "",
) -> StagedMedia | SkippedMedia:
    """Live media from the staged repository, built and checked in a staging folder.

    They are moved into public/releases/ only after the repositories are swapped
    in (:func:`_swap_in`), so media never name packages hosts cannot get.
    Media of a published version are never rebuilt (hosts and mirrors hold
    their checksums); a security respin makes new media under a new label.
    """
    from repotool.media import build_media

    if (cfg.public_dir / "releases" / label / "media.json").is_file():
        return SkippedMedia(label, "already published")
    staged = next(
        s
        for s in published.staged
        if s.plan.target.name == cfg.media.target and s.plan.arch == cfg.media.arch
    )
    key_file = cfg.state / "media-key" / cfg.key.public_key_name
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(signer.public_key_armored())
    return build_media(
        cfg,
        signer,
        runner,
        reporter,
        version_label=label,
        source_date_epoch=source_date_epoch,
        repo_dir=staged.plan.repo_dir if staged.unchanged else staged_view(staged),
        key_file=key_file,
        superseded_by=superseded_by,
    )
