"""Adding one package to a published repository reads that package only: no other
package file is opened, the index keeps the old chunks where they are (one new
segment holds the new package's), and the metadata files are byte-for-byte what a
publish from nothing writes, uncompressed."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from repotool.config import Config, PublishConfig, TargetConfig
from repotool.repo.index import chunk_dir
from repotool.repo.publish import commit_all, plan_all, stage_all
from repotool.repo.repository import publish_lock
from repotool.report import SilentReporter
from repotool.signing.signer import Signer
from tests.conftest import build_rpms, make_gpg_key, rpmsign
from tests.signing.signing_support import RecordingRunner

SPEC = """Name: {name}
Version: 1.0
Release: 1
Summary: plus one
License: MIT
BuildArch: noarch
%description
plus one
%install
mkdir -p %{{buildroot}}/usr/share/{name}
echo {name} > %{{buildroot}}/usr/share/{name}/data
%files
/usr/share/{name}
"""

#: rpm files opened while the audit hook records (the hook stays for the process)
_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and args and str(args[0]).endswith(".rpm"):
        _opened.append(str(args[0]))


sys.addaudithook(_audit)


def _config(root: Path) -> Config:
    return Config(
        root=root,
        state_dir=Path("state"),
        targets=(TargetConfig(name="el7"),),
        publish=PublishConfig(public_dir=Path("public")),
    )


def _publish(cfg: Config, signer: Signer, incoming: list[Path]) -> None:
    with publish_lock(cfg):
        plans = plan_all(cfg, {"el7": incoming}, signer, SilentReporter())
        commit_all(stage_all(plans, signer, lambda t, p: None, SilentReporter()), cfg, signer)


def _xml(repodata: Path) -> dict[str, bytes]:
    """The XML the repository's repomd.xml names (older generations' files are there too)."""
    repomd = (repodata / "repomd.xml").read_text()
    out = {}
    for kind in ("primary", "filelists", "other"):
        (name,) = re.findall(rf'href="repodata/([0-9a-f]{{64}}-{kind}\.xml\.gz)"', repomd)
        out[kind] = gzip.decompress((repodata / name).read_bytes())
    return out


def test_adding_one_package_reads_only_that_package(tmp_path: Path) -> None:
    global _opened
    home = tmp_path / "gnupg"
    fpr = make_gpg_key(home, "release <r@localhost>", algo="rsa2048")
    names = ["pone-a", "pone-b", "pone-c", "pone-new"]
    rpms = build_rpms({n: SPEC.format(name=n) for n in names}, tmp_path / "build")
    rpmsign(rpms, home, fpr)
    by_name = {r.name.split("-1.0")[0]: r for r in rpms}
    first, new = [by_name[n] for n in names[:3]], by_name["pone-new"]
    runner = RecordingRunner()
    signer = Signer(gnupghome=home, fingerprint=fpr, runner=runner)
    cfg = _config(tmp_path / "project")
    _publish(cfg, signer, first)
    index_path = cfg.state / "repo-index/el7-x86_64.json"
    (old_segment,) = chunk_dir(index_path).iterdir()
    old_bytes = old_segment.read_bytes()

    _opened = []
    try:
        _publish(cfg, signer, [new])
    finally:
        opened, _opened = _opened, None
    repo = cfg.public_dir / "repo/el7/x86_64"
    published = {repo / "Packages" / r.name for r in first}
    assert not published & {Path(p) for p in opened}, opened
    assert str(new) in opened
    assert runner.checksig_runs() == 0  # checked in the read pass
    # the old chunks stay where they were; one new segment holds the new package's
    segments = sorted(chunk_dir(index_path).iterdir())
    assert old_segment in segments and old_segment.read_bytes() == old_bytes
    (added,) = [s for s in segments if s != old_segment]
    assert b"pone-new" in added.read_bytes() and b"pone-a" not in added.read_bytes()
    rows = [r for line in index_path.read_bytes().split(b"\n")[1:] for r in json.loads(line)]
    assert sorted(r[0] for r in rows) == sorted(r.name for r in [*first, new])

    # the same XML as a publish of all four from nothing
    fresh = _config(tmp_path / "fresh")
    _publish(fresh, signer, [*first, new])
    assert _xml(repo / "repodata") == _xml(fresh.public_dir / "repo/el7/x86_64/repodata")
    shutil.rmtree(tmp_path / "build", ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_recording() -> None:
    global _opened
    _opened = None
