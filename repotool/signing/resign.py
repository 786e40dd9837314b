"""``repotool key rotate --resign``: every retained package signed by the key that signs now.

A published file is never re-signed in place: a host holding the previous
repomd.xml would fetch a file whose checksum no longer matches it.  Each package
not signed by the signing key gets a re-signed copy under its own name,
``<name>-<version>-<release>.<arch>.key-<ID>.rpm`` (ID: the signing key's short
id), and the next metadata generation names that copy instead
(:func:`repotool.repo.planning.one_file_per_build`).  The copies go in as the
release's extra packages, so they are checked, staged, swapped in and kept like
any release (all targets or none); the older files stay for as long as a live
generation names them (``[publish] keep_generations_seconds``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from repotool.config import Config
from repotool.digests import file_digest
from repotool.errors import KeyRotationError, PublishError, SigningStateError
from repotool.process import Runner
from repotool.report import Reporter, SilentReporter
from repotool.signing.lifecycle import Rotation
from repotool.signing.revocation import RemovedKey
from repotool.signing.signer import Signer

if TYPE_CHECKING:
    from repotool.release import ReleaseResult

_RESIGNED_STEM = re.compile(r"\.key-[0-9A-F]{8}\Z")


def resigned_name(filename: str, fingerprint: str) -> str:
    """Pure: the file name of ``filename`` re-signed by the key ``fingerprint``."""
    stem = filename.removesuffix(".rpm")
    return f"{_RESIGNED_STEM.sub('', stem)}.key-{fingerprint[-8:].upper()}.rpm"


def check_resign(
    *, rotation: Rotation | None, compromised: Sequence[RemovedKey], today: dt.date, where: str
) -> None:
    """Pure: re-signing needs a key hosts already trust that is not the old one."""
    if rotation is None and not compromised:
        raise KeyRotationError(
            "no key rotation is under way: there is no new key to re-sign the packages with",
            where=where,
            hint="start one first: 'repotool key rotate --new KEY' (docs/keys.md); "
            "--resign runs from its switch date on",
        )
    if rotation is not None and not rotation.switched(today):
        raise KeyRotationError(
            f"the old key {rotation.old} signs until {rotation.switch_date}: hosts that have "
            "not taken the release package with the new key yet could not check re-signed "
            "packages",
            where=where,
            hint=f"run it on or after {rotation.switch_date} (the switch date), when the new "
            "key signs",
        )


def current_packages(cfg: Config) -> list[tuple[str, Path]]:
    """(target, file) of every package a current repository generation names."""
    from repotool.repo.index import RepoIndex
    from repotool.repo.recovery import current_generation

    found: list[tuple[str, Path]] = []
    for target in cfg.targets:
        for arch in target.arches:
            repo_dir = cfg.public_dir / "repo" / target.name / arch
            current = current_generation(repo_dir)
            if current is None:
                continue
            index = RepoIndex.load(cfg.state / "repo-index" / f"{target.name}-{arch}.json")
            generation = index.generations.get(current)
            names = (
                generation.packages
                if generation is not None
                else tuple(p.name for p in (repo_dir / "Packages").glob("*.rpm"))
            )
            found += [(target.name, repo_dir / "Packages" / name) for name in names]
    return found


@dataclass(frozen=True)
class Copies:
    #: target → re-signed copies, to publish as the release's extra packages
    per_target: dict[str, list[Path]]
    #: packages checked / not signed by the signing key
    checked: int
    resigned: int


def resign_copies(cfg: Config, signer: Signer, reporter: Reporter) -> Copies:
    """Re-signed copies (kept per key in ``<state>/resigned/<FPR>/``, so a run that
    failed later does not sign again) of every package a current generation names
    that the signing key did not sign."""
    found = current_packages(cfg)
    results = signer.check_rpms([p for _, p in found])
    todo = [(t, p) for (t, p), r in zip(found, results, strict=True) if not r.ok]
    root = cfg.state / "resigned" / signer.fingerprint
    work = root / ".work"
    per_target: dict[str, list[Path]] = {}
    to_sign: dict[Path, tuple[Path, Path]] = {}  # final → (source, work copy)
    for target, src in todo:
        try:
            digest = file_digest(src)
        except OSError as e:
            raise PublishError(
                f"a package the current metadata names cannot be read: {e.strerror or e}",
                where=str(src),
                hint="run 'repotool release' first (it reads the repository again and mends "
                "it), then re-sign",
            ) from e
        final = root / digest / resigned_name(src.name, signer.fingerprint)
        if not final.is_file():
            to_sign[final] = (src, work / final.parent.name / final.name)
        if final not in per_target.setdefault(target, []):
            per_target[target].append(final)
    if to_sign:
        shutil.rmtree(work, ignore_errors=True)
        try:
            for src, tmp in to_sign.values():
                tmp.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, tmp)
        except OSError as e:
            shutil.rmtree(work, ignore_errors=True)
            raise SigningStateError(
                f"cannot copy the packages to re-sign: {e.strerror or e}",
                where=str(work),
                hint=f"free space in {cfg.state} (or fix its permissions), then run again",
            ) from e
        tmps = [tmp for _, tmp in to_sign.values()]
        with reporter.step(f"Re-signing packages with {signer.fingerprint}", len(tmps)) as step:
            signer.sign_rpms(tmps, jobs=cfg.build.jobs)
            step.advance(len(tmps))
        signer.require_signed(tmps, [file_digest(t) for t in tmps])
        for final, (_, tmp) in to_sign.items():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        shutil.rmtree(work, ignore_errors=True)
    return Copies(per_target, len(found), len(todo))


@dataclass(frozen=True)
class Resigned:
    fingerprint: str
    copies: Copies
    release: ReleaseResult


def resign_and_publish(
    cfg: Config, runner: Runner, reporter: Reporter, *, where: str, today: dt.date
) -> Resigned:
    """Refused before anything changes unless a new key signs now; then the copies,
    then a release that publishes them (without new media)."""
    from repotool.release import run_release
    from repotool.repo.repository import publish_lock
    from repotool.signing.keyring import load_rotation
    from repotool.signing.release_key import open_signer
    from repotool.signing.revocation import compromised, load_removed

    check_resign(
        rotation=load_rotation(cfg),
        compromised=compromised(load_removed(cfg)),
        today=today,
        where=where,
    )
    with publish_lock(cfg):
        # quiet: the release below opens the key again and says what it says once
        signer = open_signer(cfg, runner, SilentReporter())
        copies = resign_copies(cfg, signer, reporter)
    result = run_release(cfg, runner, reporter, extra_packages=copies.per_target, media=False)
    return Resigned(signer.fingerprint, copies, result)
