"""repotool mirror sync against a real HTTP server on 127.0.0.1 that injects faults."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from repotool.cli import main
from repotool.errors import MirrorError, MirrorIntegrityError, MirrorTransportError
from repotool.mirror.fetch import FetchLimits, HttpFetcher
from repotool.report import SilentReporter
from tests.mirror.mirror_fixtures import (
    DAY,
    FaultServer,
    Repos,
    do_sync,
    tree_snapshot,
)

#: short limits, only for the faults that need them to end quickly (stall, drip); every
#: other download uses the defaults so that a loaded CI machine does not fail it
STRICT = FetchLimits(timeout=1.5, min_rate=50_000, grace=0.5)


def served_files(tree: Path) -> dict[str, str]:
    """What the upstream publishes, minus the test's spare signature."""
    snap = tree_snapshot(tree)
    snap.pop("repodata/repomd.xml.other-asc")
    return snap


def older_files(tree: Path) -> dict[str, str]:
    """What a host holding ``tree``'s repomd.xml may still ask for."""
    snap = served_files(tree)
    for name in ("repodata/repomd.xml", "repodata/repomd.xml.asc"):
        snap.pop(name)
    return snap


def assert_serves(dest: Path, tree: Path, *, besides: tuple[Path, ...] = ()) -> None:
    """DEST is ``tree`` as its signed metadata describes it, plus the files the
    metadata of ``besides`` (replaced generations still kept) names, and nothing else."""
    snap = tree_snapshot(dest)
    snap.pop("repodata/repomd.xml.key")
    want = {}
    for older in besides:
        want.update(older_files(older))
    want.update(served_files(tree))
    assert snap == want


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/x.rpm",
        "http://mirror.example:99999/x.rpm",
        "http:///x.rpm",
        "ftp://mirror.example/x.rpm",
    ],
)
def test_a_url_the_fetcher_cannot_parse_is_a_transport_error(url: str, tmp_path: Path) -> None:
    fetcher = HttpFetcher(FetchLimits())
    try:
        with pytest.raises(MirrorTransportError, match="not a valid http\\(s\\) URL") as info:
            fetcher.download(url, tmp_path / "x.rpm", size=10, algo="sha256")
        assert info.value.where == url
        with pytest.raises(MirrorTransportError, match="not a valid http\\(s\\) URL"):
            fetcher.get_small(url, max_bytes=10)
    finally:
        fetcher.close()
    assert not (tmp_path / "x.rpm").exists()


def test_first_sync_mirrors_the_tree_and_noop_costs_one_request(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    dest = tmp_path / "mirror" / "el7"
    result = do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert result.changed and result.fetched == len(served_files(mirror_repos.gen1)) - 2
    snap = tree_snapshot(dest)
    key = snap.pop("repodata/repomd.xml.key")
    assert snap == served_files(mirror_repos.gen1)
    assert key == tree_snapshot(mirror_repos.root)["key.asc"]
    # dnf-facing check: rpm itself accepts the mirrored package
    rpm = dest / "Packages" / "mt-alpha-1.0-1.noarch.rpm"
    out = subprocess.run(
        ["rpm", "-qp", "--qf", "%{NAME}", str(rpm)], capture_output=True, text=True, check=True
    ).stdout
    assert out == "mt-alpha"

    fault_server.state.log.clear()
    again = do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert not again.changed
    assert [(r.path, r.status) for r in fault_server.state.log] == [("repodata/repomd.xml", 304)]
    assert again.requests == 1 and again.bytes == 0


def test_update_keeps_the_replaced_generations_files_for_the_keep_window(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    dest = tmp_path / "el7"
    start = time.time()
    fault_server.state.root = mirror_repos.gen0
    do_sync(fault_server.url, dest, mirror_repos.key, tmp_path, max_age=60 * DAY)
    old_target = os.readlink(dest)
    fault_server.state.root = mirror_repos.gen1
    fault_server.state.log.clear()
    result = do_sync(fault_server.url, dest, mirror_repos.key, tmp_path, now=lambda: start)
    # a host that fetched gen0's repomd.xml just before the swap still finds its primary
    # and the rest of its metadata (gen1's metadata files have other names)
    assert_serves(dest, mirror_repos.gen1, besides=(mirror_repos.gen0,))
    assert result.changed and result.deleted == 0 and result.kept == 6
    assert fault_server.state.requests_for("mt-alpha-1.0-1.noarch.rpm") == []
    assert os.readlink(dest) != old_target
    assert not (dest.parent / old_target).exists(), "the old generation folder is removed"

    # 8 days later (past the 7-day window) gen0's files go; gen1's, replaced only now,
    # stay, among them mt-gamma, which gen2 no longer lists
    fault_server.state.root = mirror_repos.gen2
    result = do_sync(
        fault_server.url,
        dest,
        mirror_repos.key,
        tmp_path,
        max_age=60 * DAY,
        now=lambda: start + 8 * DAY,
    )
    assert_serves(dest, mirror_repos.gen2, besides=(mirror_repos.gen1,))
    assert (dest / "Packages" / "mt-gamma-1.0-1.noarch.rpm").exists()
    assert result.deleted == 6 and result.kept == 7
    assert [p.name for p in dest.parent.glob(".el7.repotool/gen-*")] == [
        os.path.basename(os.readlink(dest))
    ]


def test_a_replaced_generation_that_cannot_be_deleted_only_warns(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    dest = tmp_path / "el7"
    do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    old = dest.parent / os.readlink(dest)
    (old / "held-open").mkdir()  # a file no metadata names, so it is never linked onward
    stuck = old / "held-open" / "file"
    stuck.write_bytes(b"x")
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode:
            pytest.skip("cannot make a file undeletable here (chattr +i)")
        undo = ["chattr", "-i", str(stuck)]
    else:
        stuck.parent.chmod(0o555)
        undo = ["chmod", "755", str(stuck.parent)]
    try:
        fault_server.state.root = mirror_repos.gen2
        reporter = SilentReporter()
        result = do_sync(fault_server.url, dest, mirror_repos.key, tmp_path, reporter=reporter)
        assert result.changed
        assert old.exists() and (dest.parent / os.readlink(dest)) != old
        assert (
            f"WARNING: could not delete the replaced generation {old}; the next sync "
            "tries again" in reporter.messages
        )
        # state.json was still written: the next run is a conditional request
        fault_server.state.log.clear()
        assert not do_sync(fault_server.url, dest, mirror_repos.key, tmp_path).changed
        assert [r.status for r in fault_server.state.log] == [304]
    finally:
        subprocess.run(undo, check=True)


FAULTS = [
    (
        "truncate",
        MirrorTransportError,
        r"the file is truncated: the server sent \d+ of \d+ bytes",
        True,
    ),
    (
        "corrupt",
        MirrorIntegrityError,
        r"checksum mismatch: sha256 of the download is [0-9a-f]{64}",
        False,
    ),
    (
        "endless",
        MirrorIntegrityError,
        r"sent more than the \d+ bytes the metadata declares "
        r"\(endless data\)",
        False,
    ),
    ("stall", MirrorTransportError, r"stalled: no data for 1.5 seconds after \d+ bytes", True),
    ("drop", MirrorTransportError, r"the connection dropped after \d+ of \d+ bytes", True),
    (
        "drip",
        MirrorTransportError,
        r"too slow: \d+ bytes in [\d.]+ seconds, below the minimum "
        r"of 50000 bytes/second",
        True,
    ),
]
#: the faults that end only by a limit: a short timeout (stall) or a high minimum rate (drip)
TIMED_FAULTS = {"stall", "drip"}


@pytest.mark.parametrize(
    ("fault", "error", "message", "resumes"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_faulty_package_leaves_dest_untouched_and_rerun_resumes(
    fault_server: FaultServer,
    mirror_repos: Repos,
    tmp_path: Path,
    fault: str,
    error: type[MirrorError],
    message: str,
    resumes: bool,
) -> None:
    dest = tmp_path / "el7"
    do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    before, target = tree_snapshot(dest), os.readlink(dest)
    big = "mt-delta-1.0-1.noarch.rpm"
    fault_server.state.root = mirror_repos.gen2
    fault_server.state.faults[big] = fault
    with pytest.raises(error) as info:
        do_sync(
            fault_server.url,
            dest,
            mirror_repos.key,
            tmp_path,
            limits=STRICT if fault in TIMED_FAULTS else None,
        )
    assert re.search(message, str(info.value)), str(info.value)
    assert big in str(info.value)  # where: the URL of the file
    assert tree_snapshot(dest) == before and os.readlink(dest) == target

    fault_server.state.faults.clear()
    fault_server.state.log.clear()
    result = do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert_serves(dest, mirror_repos.gen2, besides=(mirror_repos.gen1,))
    # files the failed run completed are not fetched again
    fetched = {r.path for r in fault_server.state.log}
    assert fetched == {"repodata/repomd.xml", "repodata/repomd.xml.asc", f"Packages/{big}"}
    ranges = [r.range for r in fault_server.state.requests_for(big)]
    if resumes:
        assert result.resumed == 1
        assert len(ranges) == 1 and ranges[0] and re.fullmatch(r"bytes=[1-9]\d*-", ranges[0])
    else:
        assert result.resumed == 0 and ranges == [None]


def test_bad_signature_is_refused_before_anything_else_is_fetched(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    dest = tmp_path / "el7"
    do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    before = tree_snapshot(dest)
    fault_server.state.root = mirror_repos.gen2
    fault_server.state.faults["repomd.xml.asc"] = "badsig"
    fault_server.state.log.clear()
    with pytest.raises(
        MirrorIntegrityError,
        match=r"bad signature: repomd\.xml\.asc does not "
        r"verify against the pinned key key\.asc",
    ):
        do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert {r.path for r in fault_server.state.log} == {
        "repodata/repomd.xml",
        "repodata/repomd.xml.asc",
    }
    assert tree_snapshot(dest) == before
    fault_server.state.faults.clear()
    assert do_sync(fault_server.url, dest, mirror_repos.key, tmp_path).changed


def test_wrong_pinned_key_is_refused(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    dest = tmp_path / "el7"
    with pytest.raises(MirrorIntegrityError, match="bad signature"):
        do_sync(fault_server.url, dest, mirror_repos.other_key, tmp_path)
    assert not dest.exists()


def test_rollback_is_refused(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    dest = tmp_path / "el7"
    fault_server.state.root = mirror_repos.gen2
    do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    before = tree_snapshot(dest)
    fault_server.state.root = mirror_repos.gen1
    with pytest.raises(
        MirrorIntegrityError,
        match=r"rollback refused: the upstream repomd.xml "
        r"\(revision \d+, newest timestamp \d+\) is older than the one held",
    ):
        do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert tree_snapshot(dest) == before


def test_freeze_is_refused_unless_the_age_is_allowed(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    dest = tmp_path / "el7"
    fault_server.state.root = mirror_repos.gen0
    with pytest.raises(
        MirrorIntegrityError,
        match=r"freeze refused: the upstream metadata is "
        r"\d+ seconds old .*more than the allowed 604800",
    ) as info:
        do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert "--max-age" in str(info.value)
    assert not dest.exists()
    assert do_sync(fault_server.url, dest, mirror_repos.key, tmp_path, max_age=60 * DAY).changed


def test_cli_sync_reports_errors_and_results(
    fault_server: FaultServer,
    mirror_repos: Repos,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dest = tmp_path / "el7"
    fault_server.state.root = mirror_repos.gen0
    argv = [
        "mirror",
        "sync",
        fault_server.url,
        str(dest),
        "--key",
        str(mirror_repos.key),
        "--timeout",
        "2",
        "-q",
    ]
    assert main(argv) == 11
    err = capsys.readouterr().err
    assert "repotool: error: " + fault_server.url + "repodata/repomd.xml: freeze refused" in err
    assert main([*argv, "--max-age", str(60 * DAY)]) == 0
    out = capsys.readouterr().out
    assert f"{dest}: now at revision" in out and "7 file(s) fetched" in out
    assert main([*argv, "--max-age", str(60 * DAY)]) == 0
    assert "unchanged" in capsys.readouterr().out
    fault_server.state.root = mirror_repos.gen1
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # gen0 → gen1: mt-alpha is reused, mt-gamma fetched, the 6 old metadata files are
    # kept for hosts that hold gen0's repomd.xml
    assert data["ok"] and data["changed"]
    assert (data["reused"], data["fetched"], data["deleted"], data["kept"]) == (1, 7, 0, 6)
