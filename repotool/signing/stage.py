"""The sign stage of a release: signed copies of built packages, kept per key.

Each package is signed once per key (the copy is named by the unsigned file's
SHA-256) and every new signature is checked against the published key before it
is kept; see :class:`repotool.signing.signer.Signer`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from repotool.config import Config
from repotool.digests import file_digest
from repotool.errors import SigningStateError
from repotool.report import Reporter
from repotool.signing.signer import Signer


def sign_cached(
    cfg: Config, signer: Signer, unsigned: Sequence[Path], reporter: Reporter
) -> tuple[dict[Path, Path], int]:
    """Signed copies of built packages, kept per key so nothing is signed twice.

    Returns (unsigned path → signed path, number newly signed).  New signatures
    are checked with rpmkeys against the published key before they are kept.
    """
    root = cfg.state / "signed" / signer.fingerprint
    out: dict[Path, Path] = {}
    todo: list[tuple[Path, Path, Path]] = []  # unsigned, work copy, final
    work = root / ".work"
    for src in unsigned:
        final = root / file_digest(src) / src.name
        if final.is_file():
            out[src] = final
        else:
            todo.append((src, work / final.parent.name / src.name, final))
    if todo:
        shutil.rmtree(work, ignore_errors=True)
        try:
            for src, tmp, _ in todo:
                tmp.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, tmp)
        except OSError as e:
            shutil.rmtree(work, ignore_errors=True)
            raise SigningStateError(
                f"cannot copy the packages to sign: {e.strerror or e}",
                where=str(work),
                hint=f"free space in {cfg.state} (or fix its permissions), then run again",
            ) from e
        with reporter.step("Signing packages", len(todo)) as step:
            signer.sign_rpms([t for _, t, _ in todo], jobs=cfg.build.jobs)
            step.advance(len(todo))
        fresh = [t for _, t, _ in todo]
        signer.require_signed(fresh, [file_digest(t) for t in fresh])
        for src, tmp, final in todo:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            out[src] = final
        shutil.rmtree(work, ignore_errors=True)
    return out, len(todo)
