"""``repotool sign``: sign packages with the release key and check them as hosts do."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.cli import Context


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "sign",
        parents=[common],
        help="sign the built packages (or the RPM files named) with the release key",
        description=textwrap.fill(
            "Sign with rpmsign, then check every signature with 'rpmkeys --checksig' "
            "against the public key that is published. Without files: the build outputs (kept "
            "signed per key, so nothing is signed twice). With files: those files, in place.",
            width=78,
        ),
        epilog="examples:\n  repotool sign\n  repotool sign extra/foo-1.0-1.el7.noarch.rpm\n"
        "  repotool sign --check public/repo/el7/x86_64/Packages/*.rpm",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="*", type=Path, metavar="RPM")
    p.add_argument("--check", action="store_true", help="only check the files' signatures")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.errors import BadSignatureError
    from repotool.release import build_and_sign
    from repotool.repo.repository import publish_lock
    from repotool.signing.release_key import open_signer

    cfg = ctx.config
    signer = open_signer(cfg, ctx.runner, ctx.reporter)
    if args.files:
        if not args.check:
            signer.sign_rpms(args.files, jobs=cfg.build.jobs)
        results = signer.check_rpms(args.files)
        rows = [{"file": str(r.path), "ok": r.ok, "detail": r.detail} for r in results]
        bad = [r for r in results if not r.ok]
        if bad:
            raise BadSignatureError(
                bad[0].detail,
                where=str(bad[0].path),
                hint=f"{len(bad)} of {len(results)} packages fail the check",
            )
        return {"summary": f"{len(rows)} packages signed by {signer.fingerprint}", "files": rows}
    with publish_lock(cfg):  # the build and sign caches are shared with 'release'
        _, per_target, n = build_and_sign(cfg, signer, ctx.runner, ctx.reporter)
    return {
        "summary": f"{n} newly signed; {sum(map(len, per_target.values()))} signed packages",
        "signed": n,
        "packages": {t: [str(p) for p in ps] for t, ps in per_target.items()},
    }
