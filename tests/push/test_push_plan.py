"""The push's decisions and its resumption, on the in-memory store (fast, exhaustive).

The trees here are small synthetic ``public/`` folders whose repomd.xml lists its
generation's files and whose "signature" names the repomd.xml it signs, so a
reader model can tell a consistent repository from a broken one at any moment.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from repotool.errors import PushAccessError, PushManifestError
from repotool.push.plan import (
    MANIFEST_NAME,
    LocalFile,
    Manifest,
    ManifestEntry,
    parse_manifest,
    plan_push,
    render_manifest,
)
from repotool.push.run import push_tree, read_manifest, snapshot_tree
from repotool.push.s3 import parse_destination
from repotool.push.store import MemoryStore, SimulatedKill
from repotool.report import SilentReporter

REPOS = ("repo/el6/x86_64", "repo/el7/x86_64")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_release(public: Path, version: int) -> None:
    """A published tree of ``version``: packages, a checksum-named generation whose
    repomd.xml names them, a signature naming that repomd.xml, media, pages.
    Files of earlier versions that the local tree no longer holds are removed."""
    import shutil

    if public.exists():
        shutil.rmtree(public)
    for repo in REPOS:
        base = public / repo
        (base / "Packages").mkdir(parents=True)
        (base / "repodata").mkdir()
        names = [f"Packages/tool-{v}.rpm" for v in range(1, version + 1)]
        for name in names:
            (base / name).write_bytes(f"rpm {repo} {name}".encode() * 50)
        # the release package: same name, rebuilt with new bytes in every version
        names.append("Packages/release.rpm")
        (base / "Packages/release.rpm").write_bytes(f"release {repo} {version}".encode())
        primary = "\n".join(f"{n} {sha((base / n).read_bytes())}" for n in names).encode()
        primary_name = f"repodata/{sha(primary)}-primary.xml.gz"
        (base / primary_name).write_bytes(primary)
        repomd = f"revision {version}\n{primary_name}\n".encode()
        (base / "repodata/repomd.xml").write_bytes(repomd)
        (base / "repodata/repomd.xml.asc").write_bytes(b"signs " + sha(repomd).encode())
        (base / "repodata/repomd.xml.key").write_bytes(b"key")
    media = public / "releases" / f"3.{version}"
    media.mkdir(parents=True)
    (media / "live.iso").write_bytes(b"iso" * 1000 + bytes([version]))
    sums = f"{sha((media / 'live.iso').read_bytes())}  live.iso\n".encode()
    (media / "SHA256SUMS").write_bytes(sums)
    (media / "SHA256SUMS.asc").write_bytes(b"signs " + sha(sums).encode())
    (media / "media.json").write_bytes(b"{}")
    (public / "repo/perfsonar.repo").write_bytes(b"[perfsonar]\n")
    (public / "index.html").write_bytes(f"<h1>release {version}</h1>".encode())
    (public / "keys").mkdir()
    (public / "keys/RPM-GPG-KEY-perfsonar").write_bytes(b"key")


def reader_problems(store: MemoryStore) -> list[str]:
    """What a host reading the bucket now would trip over (empty: all is fine)."""
    problems = []
    for repo in REPOS:
        try:
            repomd = store.read(f"{repo}/repodata/repomd.xml")
            asc = store.read(f"{repo}/repodata/repomd.xml.asc")
        except KeyError:
            problems.append(f"{repo}: no repomd.xml or signature")
            continue
        if asc != b"signs " + sha(repomd).encode():
            problems.append(f"{repo}: repomd.xml.asc does not sign repomd.xml")
            continue
        primary_name = repomd.decode().splitlines()[1]
        try:
            primary = store.read(f"{repo}/{primary_name}")
        except KeyError:
            problems.append(f"{repo}: {primary_name} missing")
            continue
        for line in primary.decode().splitlines():
            name, digest = line.split()
            if f"{repo}/{name}" not in store.objects:
                problems.append(f"{repo}: {name} missing")
            elif sha(store.read(f"{repo}/{name}")) != digest:
                problems.append(f"{repo}: {name} does not match its checksum")
    return problems


def revision(store: MemoryStore, repo: str = "repo/el7/x86_64") -> int:
    return int(store.read(f"{repo}/repodata/repomd.xml").split()[1])


def push(public: Path, store: MemoryStore, *, now: float = 1000.0, keep: float = 3600.0):  # type: ignore[no-untyped-def]
    return push_tree(public, store, keep_seconds=keep, reporter=SilentReporter(), jobs=1, now=now)


# --- the plan ------------------------------------------------------------------------


def test_uploads_go_packages_and_media_then_metadata_then_each_signed_pair_then_pages(
    tmp_path: Path,
) -> None:
    write_release(tmp_path / "public", 1)
    plan = plan_push(snapshot_tree(tmp_path / "public"), None, now=0, keep_seconds=0)
    order = [u.path for u in plan.uploads]
    phases = [u.phase for u in plan.uploads]
    assert phases == sorted(phases, key=["content", "metadata", "index", "pages"].index)
    first_meta = phases.index("metadata")
    assert all(p.endswith((".rpm", ".iso")) or p.startswith("keys/") for p in order[:first_meta])
    for repo in REPOS:
        key, xml, asc = (
            order.index(f"{repo}/repodata/repomd.xml{s}") for s in (".key", "", ".asc")
        )
        assert key < xml < asc and asc == xml + 1
    sums = order.index("releases/3.1/SHA256SUMS")
    assert all(order.index(f"{repo}/repodata/repomd.xml.asc") < sums for repo in REPOS)
    assert order[sums + 1 : sums + 3] == ["releases/3.1/SHA256SUMS.asc", "releases/3.1/media.json"]
    assert order.index("releases/3.1/live.iso") < sums
    assert order[-2:] == sorted(["index.html", "repo/perfsonar.repo"])


def test_a_package_rewritten_in_place_goes_up_inside_its_repositorys_switch(
    tmp_path: Path,
) -> None:
    write_release(tmp_path / "public", 1)
    store = MemoryStore()
    push(tmp_path / "public", store)
    write_release(tmp_path / "public", 2)
    plan = plan_push(
        snapshot_tree(tmp_path / "public"), read_manifest(store), now=0, keep_seconds=0
    )
    order = [u.path for u in plan.uploads]
    for repo in REPOS:
        at = order.index(f"{repo}/Packages/release.rpm")
        # (repomd.xml.key did not change: not uploaded)
        assert order[at + 1 : at + 3] == [f"{repo}/repodata/repomd.xml{s}" for s in ("", ".asc")]
        assert order.index(f"{repo}/Packages/tool-2.rpm") < order.index(
            next(p for p in order if "primary" in p)
        )


def test_snapshot_reads_repodata_through_its_link_and_skips_hidden_generations(
    tmp_path: Path,
) -> None:
    public = tmp_path / "public"
    gen = public / "repo/el7/x86_64/.repodata-7"
    gen.mkdir(parents=True)
    (gen / "repomd.xml").write_bytes(b"r")
    (public / "repo/el7/x86_64/repodata").symlink_to(".repodata-7")
    (public / ".site-export.json").write_bytes(b"{}")
    tree = snapshot_tree(public)
    assert sorted(tree) == ["repo/el7/x86_64/repodata/repomd.xml"]
    assert tree["repo/el7/x86_64/repodata/repomd.xml"].sha256 == sha(b"r")


def test_manifest_round_trips_and_foreign_objects_are_refused() -> None:
    manifest = Manifest(
        {
            "a/b.rpm": ManifestEntry(sha(b"x"), 1),
            "c": ManifestEntry(sha(b"y"), 2, 5.5),
            "d": ManifestEntry(sha(b"z"), 3, pending=True),
        },
        9.0,
    )
    assert parse_manifest(render_manifest(manifest), "m") == manifest
    with pytest.raises(PushManifestError, match="not JSON"):
        parse_manifest(b"<html>", "s3://b/p/.repotool-push.json")
    with pytest.raises(PushManifestError, match="format is not 'repotool-push/1'"):
        parse_manifest(b'{"files": {}}', "m")
    with pytest.raises(PushManifestError, match=r"entry of '../etc/passwd' is malformed"):
        parse_manifest(
            b'{"format": "repotool-push/1", "files": {"../etc/passwd": {"sha256": "'
            + sha(b"").encode()
            + b'", "size": 1}}}',
            "m",
        )


def test_destination_names_are_checked_before_anything_runs() -> None:
    assert parse_destination("s3://repo/perfsonar/") == ("repo", "perfsonar")
    assert parse_destination("s3://repo") == ("repo", "")
    with pytest.raises(PushAccessError, match="not an s3:// destination") as e:
        parse_destination("https://repo/x")
    assert "s3://BUCKET/PREFIX" in str(e.value)
    with pytest.raises(PushAccessError, match="not a usable bucket"):
        parse_destination("s3://repo/a/../b")


# --- pushing: changes only, no-op, keep window ---------------------------------------


def test_second_push_of_an_unchanged_tree_is_one_get(tmp_path: Path) -> None:
    public = tmp_path / "public"
    write_release(public, 1)
    store = MemoryStore()
    first = push(public, store)
    assert first.uploaded == len(snapshot_tree(public)) and not reader_problems(store)
    assert store.log[-1] == ("put", MANIFEST_NAME)  # written last
    store.log.clear()
    again = push(public, store, now=2000.0)
    assert store.log == [("get", MANIFEST_NAME)]
    assert not again.changed and again.unchanged == first.uploaded


def test_only_changed_files_go_up_and_gone_files_stay_for_the_keep_window(
    tmp_path: Path,
) -> None:
    public = tmp_path / "public"
    write_release(public, 1)
    store = MemoryStore()
    push(public, store, now=1000.0)
    old_primary = next(k for k in store.objects if k.startswith("repo/el7") and "primary" in k)
    write_release(public, 2)
    store.log.clear()
    result = push(public, store, now=1000.0, keep=3600.0)
    put = {k for op, k in store.log if op == "put"}
    # unchanged: the key, the old package, the .repo file; the old media stay for now
    assert "keys/RPM-GPG-KEY-perfsonar" not in put
    assert "repo/el7/x86_64/Packages/tool-1.rpm" not in put
    assert "repo/el7/x86_64/Packages/tool-2.rpm" in put
    assert old_primary in store.objects and "releases/3.1/live.iso" in store.objects
    assert result.deleted == 0 and result.kept == 6  # 2 primaries + the 3.1 media's 4 files
    assert revision(store) == 2 and not reader_problems(store)
    # still inside the window: kept, nothing uploaded, one GET
    store.log.clear()
    assert not push(public, store, now=1000.0 + 3599).changed
    assert store.log == [("get", MANIFEST_NAME)]
    # past it: deleted, after which the manifest is written
    store.log.clear()
    late = push(public, store, now=1000.0 + 3600)
    assert late.deleted == 6 and old_primary not in store.objects
    assert "releases/3.1/live.iso" not in store.objects
    assert [op for op, _ in store.log][-1:] == ["put"] and store.log[-1][1] == MANIFEST_NAME
    assert not reader_problems(store)


def test_a_file_back_after_it_was_gone_is_put_again(tmp_path: Path) -> None:
    """A push stopped after its deletes but before the manifest leaves an entry for
    a deleted file; if the file comes back it must not be taken as present."""
    tree = {"a": LocalFile("a", sha(b"a"), 1)}
    held = Manifest({"a": ManifestEntry(sha(b"a"), 1, gone_since=5.0)})
    plan = plan_push(tree, held, now=10.0, keep_seconds=100)
    assert [u.path for u in plan.uploads] == ["a"]
    assert plan.manifest.entries["a"].gone_since is None


# --- killed pushes -------------------------------------------------------------------


def test_a_push_killed_before_any_change_leaves_readers_safe_and_the_next_push_finishes(
    tmp_path: Path,
) -> None:
    """Every moment a kill can hit (before each PUT or DELETE): hosts see release 1
    or release 2 whole, except inside a repository's switch (its rewritten release
    package, repomd.xml, its signature: objects a store cannot switch at once), where
    the checksum or signature check fails: hosts never take unchecked data. The next
    push always completes, of that tree or of another (a stopped push's objects are
    pending in the manifest, never trusted by their old checksums)."""
    public = tmp_path / "public"
    write_release(public, 1)
    reference = MemoryStore()
    push(public, reference, now=0.0)
    held = read_manifest(reference)
    write_release(public, 2)
    plan = plan_push(snapshot_tree(public), held, now=10.0, keep_seconds=0.0)
    group_of = {u.path: u.group for u in plan.uploads if u.phase == "index"}
    count = MemoryStore(objects=dict(reference.objects))
    push(public, count, now=10.0, keep=0.0)
    changes = [key for op, key in count.log if op in ("put", "delete")]
    assert len(changes) == count.changes >= 20
    inside_switch = []
    for n in range(len(changes)):
        store = MemoryStore(objects=dict(reference.objects), kill_before_change=n)
        with pytest.raises(SimulatedKill):
            push(public, store, now=10.0, keep=0.0)
        problems = reader_problems(store)
        if problems:
            # the last change made and the next one belong to the same switch
            group = group_of.get(changes[n - 1])
            assert group and group.endswith("/repodata") and group_of.get(changes[n]) == group
            assert all(p.startswith(group.removesuffix("/repodata") + ":") for p in problems)
            inside_switch.append(n)
        else:
            assert revision(store, "repo/el6/x86_64") in (1, 2)
        store.kill_before_change = None
        # the operator may push another tree next (here: back to release 1)
        write_release(public, 1)
        push(public, store, now=15.0, keep=3600.0)
        assert not reader_problems(store), (n, reader_problems(store))
        assert revision(store) == revision(store, "repo/el6/x86_64") == 1, n
        write_release(public, 2)
        finished = push(public, store, now=20.0, keep=0.0)
        assert not reader_problems(store) and revision(store) == 2, n
        assert set(store.objects) == set(count.objects), n
        assert finished.changed
    # per repository: after the release package, after repomd.xml
    assert len(inside_switch) == 2 * len(REPOS)


def test_a_large_file_a_stopped_push_already_put_is_not_sent_again(tmp_path: Path) -> None:
    public = tmp_path / "public"
    write_release(public, 1)
    big = public / "releases/3.1/live.iso"
    big.write_bytes(b"\x00" * (2 * 1024 * 1024))
    sums = f"{sha(big.read_bytes())}  live.iso\n".encode()
    (public / "releases/3.1/SHA256SUMS").write_bytes(sums)
    store = MemoryStore(kill_before_change=3)  # the intent manifest, the key, the image
    with pytest.raises(SimulatedKill):
        push(public, store)
    assert store.read("releases/3.1/live.iso") == big.read_bytes()
    store.kill_before_change = None
    store.log.clear()
    again = push(public, store)
    assert again.resumed == 1 and ("put", "releases/3.1/live.iso") not in store.log
    assert ("head", "releases/3.1/live.iso") in store.log
    assert again.uploaded_bytes == sum(f.size for f in snapshot_tree(public).values()) - (
        2 * 1024 * 1024
    )
    assert not reader_problems(store)


def test_term_during_a_repositorys_switch_waits_for_the_switch(tmp_path: Path) -> None:
    """SIGTERM arriving between repomd.xml and its signature is held until both are
    up, then ends the process as usual."""
    marker = tmp_path / "marker"
    script = (
        "import os, signal, sys\n"
        "from repotool.push.run import _signals_deferred\n"
        "with _signals_deferred():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        f"    open({str(marker)!r}, 'w').write('both PUTs done')\n"
        f"open({str(marker)!r}, 'a').write(' and past the switch')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGTERM
    assert marker.read_text() == "both PUTs done"
