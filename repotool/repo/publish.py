"""Publishing every target's repository together, plus the stable files hosts fetch.

``plan_all`` and ``stage_all`` plan and stage every (target, arch) repository;
``swap_all`` swaps them in, all or none (each swap is a single rename);
``finish_all`` writes the public key and the ``.repo`` file and tidies each
repository; ``abort_all`` leaves the published tree as it was.  The release
holds :func:`repotool.repo.repository.publish_lock` around all of them, and
places other staged things (the media) between ``swap_all`` and ``finish_all``.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import PublishError
from repotool.repo.index import gc_paused
from repotool.repo.planning import RepoPlan, plan_repo
from repotool.repo.read_pass import Progress
from repotool.repo.recovery import intent_path, roll_forward, write_intent
from repotool.repo.repository import (
    Flipped,
    Prepared,
    PreparedRepo,
    Staged,
    abort_repo,
    finish_repo,
    flip,
    prepare_swap,
    stage_repo,
    undo_prepared,
    unflip,
)
from repotool.repo.tree_checks import check_config_names, check_inside_public
from repotool.report import Reporter, Step
from repotool.signing.signer import Signer

#: (target name, plan) → updateinfo.xml bytes or None
UpdateinfoFn = Callable[[str, RepoPlan], bytes | None]


def render_repo_file(cfg: Config, *, gpgkey: str) -> str:
    """The yum .repo file hosts use; ``gpgkey`` is a URL (published) or file:// (package)."""
    base = cfg.publish.base_url.rstrip("/")
    metalink = (
        f"metalink={base}/mirrors/el$releasever/$basearch/metalink.xml\n"
        if cfg.publish.metalink
        else ""
    )
    return (
        f"# {cfg.product} yum repository. Packages and repository metadata are\n"
        f"# signed; yum checks both against the key{'s' if ' ' in gpgkey else ''} below.\n"
        f"[{cfg.publish.repo_id}]\n"
        f"name={cfg.publish.repo_name}\n"
        f"baseurl={base}/repo/el$releasever/$basearch/\n"
        f"{metalink}"
        "enabled=1\n"
        "gpgcheck=1\n"
        "repo_gpgcheck=1\n"
        # a security repository: hosts see new errata within hours, not after days
        "metadata_expire=6h\n"
        f"gpgkey={gpgkey}\n"
    )


def published_key_url(cfg: Config) -> str:
    return f"{cfg.publish.base_url.rstrip('/')}/keys/{cfg.key.public_key_name}"


def generated_sources(cfg: Config, signer: Signer) -> dict[str, bytes]:
    """Files the release package is built from that come from the config and the
    key(s): during a key rotation both keys, and the .repo lists both."""
    from repotool.signing.keyring import release_keys

    keys = release_keys(cfg, signer)
    gpgkey = " ".join(f"file:///etc/pki/rpm-gpg/{name}" for name in keys.package_gpgkeys)
    return {"perfsonar.repo": render_repo_file(cfg, gpgkey=gpgkey).encode(), **keys.package}


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _gc_paused(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Each step of the publish runs without the cyclic collector (see
    :func:`repotool.repo.index.gc_paused`)."""

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with gc_paused():
            return fn(*args, **kwargs)

    return run


@dataclass(frozen=True)
class PublishOutcome:
    """Every repository staged (or unchanged), none swapped in yet."""

    staged: list[Staged]

    @property
    def changed(self) -> list[str]:
        return [f"{s.plan.target.name}/{s.plan.arch}" for s in self.staged if not s.unchanged]


@_gc_paused
def plan_all(
    cfg: Config, incoming: Mapping[str, Sequence[Path]], signer: Signer, reporter: Reporter
) -> list[RepoPlan]:
    """Plans for every target and arch; ``incoming`` maps a target to its new packages.

    Every new package, and every file found changed in Packages/, must pass
    ``rpmkeys --checksig`` against the published key.
    """
    # before anything is written: names that cannot be files, links out of public/
    check_config_names(cfg)
    check_inside_public(cfg)
    for repo_dir in roll_forward(cfg):
        reporter.warn(f"finished the swap a killed run had begun: {repo_dir}")
    plans = []
    with reporter.step("Planning repositories", len(cfg.targets)) as step:
        for target in cfg.targets:
            for arch in target.arches:
                plans.append(
                    plan_repo(
                        cfg,
                        target,
                        arch,
                        incoming.get(target.name, ()),
                        verify=signer.require_signed,
                        progress=reading_progress(step, f"{target.name}/{arch}"),
                    )
                )
            step.advance(note=target.name)
    # after a key compromise, nothing signed by that key is published again (docs/keys.md)
    from repotool.signing.revocation import refuse_compromised

    refuse_compromised(
        cfg,
        (
            (
                f"{p.target.name}/{p.arch}",
                p.incoming.get(pkg.filename, p.repo_dir / "Packages" / pkg.filename),
            )
            for p in plans
            for pkg in p.packages
        ),
    )
    return plans


def reading_progress(step: Step, where: str, every: float = 0.2) -> Progress:
    """The read pass's progress as the step's note ("el7/x86_64: 3,200/10,000 files
    read"), at most every ``every`` seconds and always at the end: a first publish of
    a large repository reads for minutes."""
    last = -every

    def show(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= every:
            last = now
            step.advance(0, note=f"{where}: {done:,}/{total:,} files read")

    return show


@_gc_paused
def stage_all(
    plans: Sequence[RepoPlan],
    signer: Signer,
    updateinfo: UpdateinfoFn,
    reporter: Reporter,
) -> PublishOutcome:
    staged: list[Staged] = []
    try:
        with reporter.step("Writing and signing repository metadata", len(plans)) as step:
            for plan in plans:
                staged.append(stage_repo(plan, signer, updateinfo(plan.target.name, plan)))
                step.advance(note=f"{plan.target.name}/{plan.arch}")
    except BaseException:
        abort_all(PublishOutcome(staged))
        raise
    return PublishOutcome(staged)


def abort_all(outcome: PublishOutcome) -> None:
    for s in reversed(outcome.staged):
        abort_repo(s)


def swap_all(outcome: PublishOutcome, cfg: Config) -> list[Flipped]:
    """Swap every repository in, all or none.

    Everything that can fail (final names, journals, packages landing) is done
    for every target first; then an intent file is written and the links flip
    in a tight loop.  A run killed among the flips is rolled forward by the
    next run (:func:`repotool.repo.recovery.roll_forward`).  If anything fails,
    every repository is back as it was.
    """
    prepared: list[Prepared] = []
    flipped: list[Flipped] = []
    try:
        for s in outcome.staged:
            prepared.append(prepare_swap(s))
        write_intent(
            cfg,
            {
                str(p.plan.repo_dir): p.generation.name
                for p in prepared
                if isinstance(p, PreparedRepo)
            },
        )
        for p in prepared:
            flipped.append(flip(p))
    except BaseException as e:
        _undo_swap(outcome, prepared, flipped)
        intent_path(cfg).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise PublishError(
                f"could not swap the new repositories in: {e.strerror or e}",
                where=str(e.filename or cfg.public_dir),
                hint="nothing was changed; free space or fix permissions, then run again",
            ) from e
        raise
    return flipped


def _undo_swap(outcome: PublishOutcome, prepared: list[Prepared], flipped: list[Flipped]) -> None:
    """Every repository back as it was, whichever state each had reached."""
    for f in reversed(flipped):
        with contextlib.suppress(OSError):
            unflip(f)
    for p in reversed(prepared[len(flipped) :]):
        with contextlib.suppress(OSError):
            undo_prepared(p)
    for s in reversed(outcome.staged[len(prepared) :]):
        abort_repo(s)


@_gc_paused
def finish_all(flipped: Sequence[Flipped], cfg: Config, signer: Signer) -> None:
    """After the swap: the published key and .repo file, then each repository's
    bookkeeping (retire the previous generation, prune, save the index)."""
    try:
        intent_path(cfg).unlink(missing_ok=True)
        from repotool.signing.keyring import release_keys

        keys = release_keys(cfg, signer)
        for name, key in keys.published.items():
            key_path = cfg.public_dir / "keys" / name
            if not key_path.exists() or key_path.read_bytes() != key:
                write_atomic(key_path, key)
        for name in keys.stale_in(cfg.public_dir / "keys"):  # a retired rotation's keys
            (cfg.public_dir / "keys" / name).unlink(missing_ok=True)
        base = published_key_url(cfg).rpartition("/")[0]
        gpgkey = " ".join(f"{base}/{name}" for name in keys.repo_gpgkeys)
        repo_file = render_repo_file(cfg, gpgkey=gpgkey).encode()
        repo_path = cfg.public_dir / "repo" / f"{cfg.publish.repo_id}.repo"
        if not repo_path.exists() or repo_path.read_bytes() != repo_file:
            write_atomic(repo_path, repo_file)
        for f in flipped:
            finish_repo(f)
    except OSError as e:
        raise PublishError(
            f"the new repositories are live, but finishing failed: {e.strerror or e}",
            where=str(e.filename or cfg.public_dir),
            hint="hosts get complete repositories; fix the cause (space, permissions) "
            "and run again to tidy up",
        ) from e


def commit_all(outcome: PublishOutcome, cfg: Config, signer: Signer) -> None:
    """Swap every repository in and finish them (a publish with nothing else to place)."""
    finish_all(swap_all(outcome, cfg), cfg, signer)
