"""The publish side's pure planning: a snapshot and the index in, decisions out."""

from __future__ import annotations

from pathlib import Path

from repotool.config import Config, PublishConfig, TargetConfig
from repotool.repo.generations import Generation
from repotool.repo.index import RepoIndex
from repotool.repo.packages import RepoPackage
from repotool.repo.planning import RepoSnapshot, decide_plan, sort_incoming, stale_files


def pkg(name: str, release: str, arch: str = "noarch", stat: int = 1) -> RepoPackage:
    filename = f"{name}-1.0-{release}.el7.{arch}.rpm"
    return RepoPackage(
        filename,
        name,
        0,
        "1.0",
        f"{release}.el7",
        arch,
        filename.encode().hex()[:64],
        (0, 1),
        (stat, stat, stat, stat),
        ("", "", ""),
    )


REPO = Path("/srv/public/repo/el7/x86_64")


def test_only_unknown_or_changed_files_are_read_again() -> None:
    a, b = pkg("a", "1"), pkg("b", "1")
    snapshot = RepoSnapshot(
        REPO,
        "100",
        {a.filename: a.stat, b.filename: (9, 9, 9, 9), "new-1.0-1.el7.noarch.rpm": (1, 1, 1, 1)},
    )
    assert stale_files(snapshot, {a.filename: a, b.filename: b}) == [
        b.filename,
        "new-1.0-1.el7.noarch.rpm",
    ]


def test_incoming_packages_are_new_published_or_of_another_arch() -> None:
    have = pkg("a", "1")
    again, fresh, other = pkg("a", "1", stat=2), pkg("b", "1"), pkg("c", "1", arch="aarch64")
    sort = sort_incoming(
        "x86_64",
        {have.filename: have},
        [(Path("/in/a.rpm"), again), (Path("/in/b.rpm"), fresh), (Path("/in/c.rpm"), other)],
    )
    assert sort.new == {fresh.filename: (Path("/in/b.rpm"), fresh)}
    assert sort.published == [(Path("/in/a.rpm"), again, have)]


def test_the_plan_keeps_the_newest_versions_and_brings_in_only_those() -> None:
    old, mid = pkg("a", "1"), pkg("a", "2")
    newest, too_old = pkg("a", "3"), pkg("a", "0")
    index = RepoIndex(
        {old.filename: old, mid.filename: mid},
        {"100": Generation((old.filename, mid.filename), digest="d100")},
    )
    snapshot = RepoSnapshot(REPO, "100", {old.filename: old.stat, mid.filename: mid.stat})
    cfg = Config(publish=PublishConfig(keep_versions=2))
    new = {
        newest.filename: (Path("/in/a3.rpm"), newest),
        too_old.filename: (Path("/in/a0.rpm"), too_old),
    }
    plan = decide_plan(
        cfg, TargetConfig(), snapshot, index, Path("/state/i.json"), new, reread=False
    )
    assert [p.filename for p in plan.packages] == [mid.filename, newest.filename]
    assert plan.incoming == {newest.filename: Path("/in/a3.rpm")}
    assert (plan.current_revision, plan.current_digest, plan.arch) == ("100", "d100", "x86_64")
