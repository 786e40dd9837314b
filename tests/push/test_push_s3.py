"""`repotool push` against a real SeaweedFS cluster (tests/push/conftest.py), read by
dnf, by `repotool mirror sync` and by a gpgv-checking reader over plain HTTP GETs.

v1 is the session's release; v2 is the same project released again with one
advisory updated (new metadata generations, new signatures, same packages).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from repotool.mirror.sync_plan import UnpackLimits, decompress, parse_primary, parse_repomd
from tests.conftest import REPOTOOL, DnfHost, Released, make_project, release_json
from tests.push.conftest import BUCKET, Cluster

PREFIX = "perfsonar"
REPOS = ("repo/el6/x86_64", "repo/el7/x86_64")


@dataclass
class Projects:
    v1: Path
    v2: Path
    url: str  #: the prefix's public HTTP URL (what hosts use)
    key: Path  #: the published key

    def revision(self, project: Path, repo: str) -> str:
        return parse_repomd(
            (project / "public" / repo / "repodata/repomd.xml").read_bytes(), repo
        ).revision


def push(project: Path, cluster: Cluster, *extra: str) -> dict[str, object]:
    done = subprocess.run(
        [*REPOTOOL, "push", f"s3://{BUCKET}/{PREFIX}", "--json", "--quiet", *extra],
        cwd=project,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout)["pushes"][0]
    return result


@pytest.fixture(scope="module")
def projects(
    released: Released, seaweed: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Projects:
    root = tmp_path_factory.mktemp("push")
    url = f"{seaweed.s3_url}/{BUCKET}/{PREFIX}"
    # v1: the session's release as published (only read: copied)
    v1 = root / "v1"
    v1.mkdir()
    shutil.copy2(released.project / "repotool.toml", v1 / "repotool.toml")
    shutil.copytree(released.public, v1 / "public", symlinks=True)
    # v2: the same project and key released again, hosts pointed at the bucket
    v2 = make_project(root / "v2", base_url=url, share_key_from=released.project)
    for cache in ("build-cache", "signed", "verified"):
        if (released.project / ".repotool" / cache).exists():
            shutil.copytree(released.project / ".repotool" / cache, v2 / ".repotool" / cache)
    advisory = v2 / "web/content/advisories/PSSA-2014-0001.md"
    text = advisory.read_text()
    assert "updated: 2014-01-28" in text
    advisory.write_text(text.replace("updated: 2014-01-28", "updated: 2014-02-03", 1))
    release_json(v2)
    return Projects(v1, v2, url, released.public / "keys/RPM-GPG-KEY-perfsonar")


# --- a reader over plain HTTP -------------------------------------------------------


def served(url: str, repo: str, key: Path, scratch: Path) -> tuple[str, bytes]:
    """What a host fetching ``repo`` now gets: (revision, repomd.xml) when repomd.xml's
    signature verifies against the published key and every file it names (metadata
    and packages) is there with its checksum; raises AssertionError otherwise."""
    base = f"{url}/{repo}"
    repomd = requests.get(f"{base}/repodata/repomd.xml", timeout=10)
    asc = requests.get(f"{base}/repodata/repomd.xml.asc", timeout=10)
    assert repomd.status_code == 200 and asc.status_code == 200, (
        repomd.status_code,
        asc.status_code,
    )
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "repomd.xml").write_bytes(repomd.content)
    (scratch / "repomd.xml.asc").write_bytes(asc.content)
    keyring = scratch / "key.gpg"
    if not keyring.exists():
        subprocess.run(
            [
                "gpg",
                "--homedir",
                str(scratch),
                "--batch",
                "--dearmor",
                "-o",
                str(keyring),
                str(key),
            ],
            check=True,
            capture_output=True,
        )
    gpgv = subprocess.run(
        [
            "gpgv",
            "--keyring",
            str(keyring),
            str(scratch / "repomd.xml.asc"),
            str(scratch / "repomd.xml"),
        ],
        capture_output=True,
        text=True,
    )
    assert gpgv.returncode == 0, f"{repo}: repomd.xml.asc does not verify: {gpgv.stderr}"
    meta = parse_repomd(repomd.content, base)
    for entry in meta.entries:
        data = requests.get(f"{base}/{entry.file.path}", timeout=10)
        assert data.status_code == 200, f"{repo}: {entry.file.path}: HTTP {data.status_code}"
        assert hashlib.new(entry.file.algo, data.content).hexdigest() == entry.file.digest
        if entry.type == "primary":
            primary = data.content
    xml = decompress(primary, meta.entry("primary").file.path, None, UnpackLimits())  # type: ignore[union-attr]
    for package in parse_primary(xml, base):
        data = requests.get(f"{base}/{package.path}", timeout=10)
        assert data.status_code == 200, f"{repo}: {package.path}: HTTP {data.status_code}"
        assert hashlib.new(package.algo, data.content).hexdigest() == package.digest, package.path
    return meta.revision, repomd.content


def visible_files(public: Path) -> list[str]:
    """What a web server shows of public/: links followed, dot-names hidden."""
    out = []
    for folder, dirs, files in os.walk(public, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [os.path.join(folder, f) for f in files if not f.startswith(".")]
    return out


def host_from_bucket(root: Path, url: str) -> DnfHost:
    """A host set up as the README says: the .repo file taken from the bucket."""
    host = DnfHost(root)
    repo_file = requests.get(f"{url}/repo/perfsonar.repo", timeout=10)
    assert repo_file.status_code == 200
    assert f"baseurl={url}/repo/el$releasever/$basearch/" in repo_file.text
    assert "gpgcheck=1" in repo_file.text and "repo_gpgcheck=1" in repo_file.text
    host.add_repo_file(repo_file.text)
    return host


# --- the tests (in order: each builds on what the previous pushed) ----------------------


def test_push_uploads_the_release_and_dnf_installs_from_the_bucket_with_gpg_checks(
    projects: Projects, seaweed: Cluster, tmp_path: Path
) -> None:
    first = push(projects.v1, seaweed)
    assert first["uploaded"] == len(visible_files(projects.v1 / "public"))
    assert first["changed"] is True
    for repo in REPOS:
        revision, _ = served(projects.url, repo, projects.key, tmp_path / "reader")
        assert revision == projects.revision(projects.v1, repo)
    # every object is on both volume servers (replication 001)
    nodes = seaweed.data_nodes()
    assert len(nodes) == 2 and len(set(nodes.values())) == 1, nodes
    # v1's .repo file names the session server, so the host names the bucket itself
    host = DnfHost(tmp_path / "host")
    host.add_repo_file(
        "[perfsonar]\nname=perfsonar from the bucket\n"
        f"baseurl={projects.url}/repo/el$releasever/$basearch/\n"
        "gpgcheck=1\nrepo_gpgcheck=1\n"
        f"gpgkey={projects.url}/keys/RPM-GPG-KEY-perfsonar\n"
    )
    host.dnf("install", "perfsonar-toolkit", check=True)
    assert any(n.startswith("perfsonar-toolkit-3.3.2-") for n in host.installed())


def test_an_unchanged_tree_costs_one_request(projects: Projects, seaweed: Cluster) -> None:
    again = push(projects.v1, seaweed)
    assert again["changed"] is False and again["uploaded"] == 0
    assert again["requests"] == 1


def test_a_push_killed_at_random_moments_leaves_old_or_new_and_the_next_push_finishes(
    projects: Projects, seaweed: Cluster, tmp_path: Path
) -> None:
    """TERM (deferred across a repomd.xml and its signature) and KILL at random moments
    of a v1 → v2 push; after each, a reader gets v1 or v2 whole. The one state a KILL
    can leave besides is a repository's unfinished switch (its rewritten release
    package, repomd.xml, repomd.xml.asc go up one after the other), which the checks
    refuse; the next push finishes it."""
    v1 = {r: projects.revision(projects.v1, r) for r in REPOS}
    v2 = {r: projects.revision(projects.v2, r) for r in REPOS}
    assert v1 != v2

    def start_push() -> subprocess.Popen[str]:
        """`repotool push` of v2, returned once its uploads begin (planning done)."""
        proc = subprocess.Popen(
            [*REPOTOOL, "push", f"s3://{BUCKET}/{PREFIX}"],
            cwd=projects.v2,
            env=seaweed.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "uploading" not in proc.stderr.readline():
            assert proc.poll() is None, "the push ended before it uploaded"
        return proc

    # when, after the uploads begin, the repositories switch (the moments that matter)
    # and the final manifest is written: kill moments are picked around the switches
    proc = start_push()
    began = time.monotonic()
    switched: float | None = None
    span = 0.0
    old_repomd = (projects.v1 / "public" / REPOS[-1] / "repodata/repomd.xml").read_bytes()
    while proc.poll() is None and time.monotonic() - began < 60:
        span = time.monotonic() - began
        if switched is None:
            repomd = requests.get(f"{projects.url}/{REPOS[-1]}/repodata/repomd.xml", timeout=10)
            switched = span if repomd.content != old_repomd else None
        elif (
            b'"pending": true'
            not in requests.get(f"{projects.url}/.repotool-push.json", timeout=10).content
        ):
            break
        time.sleep(0.005)
    assert proc.wait(timeout=120) == 0
    proc.stderr.close()  # type: ignore[union-attr]
    window = min(span, 2 * (switched if switched is not None else span))
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    rounds: list[str] = []
    for round_ in range(6):
        # back to v1 (after a killed push, its pending objects are put again)
        push(projects.v1, seaweed)
        for repo in REPOS:
            revision, _ = served(projects.url, repo, projects.key, tmp_path / f"v1-{round_}")
            assert revision == v1[repo], f"seed {seed}, round {round_}: v1 not restored"
        how = signal.SIGTERM if round_ % 2 == 0 else signal.SIGKILL
        proc = start_push()
        delay = rng.uniform(0, window)
        time.sleep(delay)
        proc.send_signal(how)
        proc.wait(timeout=60)
        proc.stderr.close()  # type: ignore[union-attr]
        for repo in REPOS:
            try:
                revision, _ = served(projects.url, repo, projects.key, tmp_path / f"r{round_}")
            except AssertionError as e:
                why = f"seed {seed}, round {round_}, {repo}: {e}"
                assert how == signal.SIGKILL, f"TERM left the repository broken: {why}"
                # a KILL inside a repository's switch (rewritten release package,
                # repomd.xml, its signature): the switch is unfinished, v1's signature
                # still served, and the checks refuse what does not match it
                asc = requests.get(f"{projects.url}/{repo}/repodata/repomd.xml.asc", timeout=10)
                old = projects.v1 / "public" / repo / "repodata/repomd.xml.asc"
                assert asc.content == old.read_bytes(), why
                revision = "mid-switch"
            assert revision in (v1[repo], v2[repo], "mid-switch"), f"seed {seed}"
            state = "new" if revision == v2[repo] else "old" if revision == v1[repo] else revision
            seen[state] = seen.get(state, 0) + 1
        rounds.append(f"{how.name} at +{delay:.3f}s")
    print(
        f"kill rounds (seed {seed}, switch at +{switched or 0:.3f}s, done at +{span:.3f}s): "
        f"{rounds}: {seen}"
    )
    push(projects.v2, seaweed)
    for repo in REPOS:
        assert served(projects.url, repo, projects.key, tmp_path / "final")[0] == v2[repo]
    # the bucket holds what the manifest says, with the SHA-256 recorded on each object
    client = seaweed.s3_client()
    manifest = json.loads(requests.get(f"{projects.url}/.repotool-push.json", timeout=10).content)[
        "files"
    ]
    listed = {
        o["Key"].removeprefix(f"{PREFIX}/")
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=PREFIX + "/"
        )
        for o in page.get("Contents", [])
    }
    assert set(manifest) | {".repotool-push.json"} == listed


def test_files_no_longer_published_stay_for_the_keep_window_then_go(
    projects: Projects, seaweed: Cluster
) -> None:
    """v1's metadata generation is gone from v2's tree: kept while the window is open
    (a host holding v1's repomd.xml still gets it), deleted once it has passed."""
    old_primary = next(
        p.name
        for p in (projects.v1 / "public/repo/el7/x86_64/repodata").iterdir()
        if p.name.endswith("-primary.xml.gz")
    )
    url = f"{projects.url}/repo/el7/x86_64/repodata/{old_primary}"
    assert not (projects.v2 / "public/repo/el7/x86_64/repodata" / old_primary).exists()
    assert requests.get(url, timeout=10).status_code == 200
    kept = push(projects.v2, seaweed, "--keep", "3600")
    assert kept["kept"] and kept["deleted"] == 0
    assert requests.get(url, timeout=10).status_code == 200
    gone = push(projects.v2, seaweed, "--keep", "0")
    assert gone["deleted"] == kept["kept"] and gone["kept"] == 0
    assert requests.get(url, timeout=10).status_code == 404
    assert push(projects.v2, seaweed)["requests"] == 1


def test_with_one_volume_server_stopped_hosts_and_mirrors_still_read_the_bucket(
    projects: Projects, seaweed: Cluster, tmp_path: Path
) -> None:
    seaweed.stop("v2")
    try:
        host = host_from_bucket(tmp_path / "host", projects.url)
        host.dnf("install", "perfsonar-toolkit", check=True)
        assert any(n.startswith("perfsonar-toolkit-3.3.2-") for n in host.installed())
        updates = host.dnf("updateinfo", "list", "--all", check=True)
        assert "PSSA-2014-0001" in updates.stdout
        dest = tmp_path / "mirror" / "el7"
        done = subprocess.run(
            [*REPOTOOL, "mirror", "sync", f"{projects.url}/repo/el7/x86_64/", str(dest),
             "--key", str(projects.key), "--json"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["revision"] == projects.revision(
            projects.v2, "repo/el7/x86_64"
        )
        mirrored = sorted(p.name for p in (dest / "Packages").iterdir())
        assert mirrored == sorted(
            p.name for p in (projects.v2 / "public/repo/el7/x86_64/Packages").iterdir()
        )
    finally:
        seaweed.restart("v2")
        seaweed.wait_for("the restarted volume server", lambda: len(seaweed.data_nodes()) == 2)


def test_refused_credentials_and_a_missing_bucket_are_named_with_a_fix(
    projects: Projects, seaweed: Cluster
) -> None:
    push(projects.v2, seaweed)
    wrong = {**seaweed.env, "AWS_SECRET_ACCESS_KEY": "wrong"}
    done = subprocess.run(
        [*REPOTOOL, "push", f"s3://{BUCKET}/{PREFIX}"],
        cwd=projects.v2, env=wrong, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 12, done.stderr
    assert f"s3://{BUCKET}/{PREFIX}/.repotool-push.json: the object store refused access" in (
        done.stderr
    )
    assert "hint: check the credentials" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [*REPOTOOL, "push", "s3://no-such-bucket/x", "--json"],
        cwd=projects.v2, env=seaweed.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 12, done.stderr
    error = json.loads(done.stdout)
    assert error["error"] == "PushAccessError" and "the bucket does not exist" in error["what"]
    assert "create the bucket first" in error["hint"]
    # nothing was written into the real bucket by either
    assert push(projects.v2, seaweed)["requests"] == 1


def test_release_with_push_to_pushes_after_the_local_swap(
    released: Released, seaweed: Cluster, tmp_path: Path
) -> None:
    """`[publish] push_to` makes `repotool release` push public/ once it is live
    locally; the bucket then serves the same signed repomd.xml as public/."""
    prefix = "from-release"
    url = f"{seaweed.s3_url}/{BUCKET}/{prefix}"
    project = make_project(
        tmp_path / "p",
        base_url=url,
        share_key_from=released.project,
        share_builds_from=released.project,
    )
    config = project / "repotool.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[publish]\n",
            f'[publish]\npush_to = ["s3://{BUCKET}/{prefix}"]\n'
            f'push_endpoint_url = "{seaweed.s3_url}"\n',
            1,
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in seaweed.env.items() if k != "AWS_ENDPOINT_URL"}
    done = subprocess.run(
        [*REPOTOOL, "release", "--json", "--quiet"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    pushed = json.loads(done.stdout)["pushed"]
    assert [p["destination"] for p in pushed] == [f"s3://{BUCKET}/{prefix}"]
    for repo in REPOS:
        for name in ("repomd.xml", "repomd.xml.asc"):
            local = (project / "public" / repo / "repodata" / name).read_bytes()
            got = requests.get(f"{url}/{repo}/repodata/{name}", timeout=30)
            assert got.status_code == 200 and got.content == local, (repo, name)
