"""Bad input, crashes and concurrent runs: clear errors and nothing half-published."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import createrepo_c as cr
import pytest

from repotool.config import load_config
from repotool.repo.index import RepoIndex
from repotool.repo.repository import publish_lock
from tests.conftest import (
    REPOTOOL,
    Released,
    make_gpg_key,
    make_project,
    release_json,
    run_repotool,
    tree_digest,
    use_production_key,
)
from tests.release_support import bump_release


@pytest.fixture
def project(released: Released, tmp_path: Path) -> Path:
    """A fresh project, nothing published yet, with the session's development key and
    build cache (only what a test changes is built)."""
    return make_project(
        tmp_path / "p",
        base_url=released.url,
        share_key_from=released.project,
        share_builds_from=released.project,
    )


def _fails(project: Path, *args: str, code: int, env: dict[str, str] | None = None) -> str:
    done = run_repotool(project, *args, env=env)
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    assert not (project / "public").exists(), "nothing may be published"
    return done.stderr


def test_malformed_spec_names_the_file_and_line(project: Path) -> None:
    spec = project / "specs/perfsonar-toolkit-sysctl/perfsonar-toolkit-sysctl.spec"
    spec.write_text(spec.read_text().replace("License:", "Licence-Typo: x\nLicense:", 1))
    err = _fails(project, "release", code=4)
    assert str(spec) in err
    assert re.search(r"line \d+: Unknown tag: Licence-Typo", err), err


def test_failing_build_shows_rpmbuilds_words(project: Path) -> None:
    spec = project / "specs/perfsonar-toolkit-firewall/perfsonar-toolkit-firewall.spec"
    spec.write_text(
        spec.read_text().replace("%install\n", "%install\necho 'disk on fire' >&2; exit 3\n", 1)
    )
    err = _fails(project, "release", code=4)
    assert "rpmbuild failed" in err and "disk on fire" in err
    assert "component perfsonar-toolkit-firewall" in err


def test_missing_source_names_spec_line_and_file(project: Path) -> None:
    (project / "specs/perfsonar-toolkit-ntp/ntp.conf").unlink()
    err = _fails(project, "release", code=4)
    assert "source file 'ntp.conf' is missing" in err
    assert re.search(r"perfsonar-toolkit-ntp[^ ]*\.spec:\d+", err), err


def test_unknown_component(project: Path) -> None:
    err = _fails(project, "build", "perfsonar-nosuch", code=4)
    assert "unknown component 'perfsonar-nosuch'" in err
    assert "perfsonar-toolkit-ntp" in err  # the hint lists the known ones


def test_broken_config_names_file_and_line(project: Path) -> None:
    toml = project / "repotool.toml"
    toml.write_text(toml.read_text() + "\n[publish\nkeep_versions = 3\n")
    err = _fails(project, "release", code=2)
    assert "repotool.toml" in err and "line" in err


def test_unknown_config_setting_is_refused(project: Path) -> None:
    toml = project / "repotool.toml"
    toml.write_text(toml.read_text().replace("keep_versions = 3", "keep_version = 3"))
    err = _fails(project, "release", code=2)
    assert "unknown setting(s): keep_version" in err


def test_missing_production_key(project: Path, tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    use_production_key(project, "AB" * 20, home)
    err = _fails(project, "release", code=5)
    assert f"no secret key with fingerprint {'AB' * 20}" in err


def test_expired_production_key(project: Path, tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    fpr = make_gpg_key(
        home, "Old Release Key <old@example.invalid>", expire="1d", faked_time="20200101T000000"
    )
    use_production_key(project, fpr, home)
    err = _fails(project, "release", code=5)
    assert f"the signing key {fpr} expired on 2020-01-02" in err


def test_missing_tool_names_the_debian_package(released: Released, tmp_path: Path) -> None:
    # nothing cached: the release has to build, and rpmbuild is not there
    project = make_project(tmp_path / "p", base_url=released.url, share_key_from=released.project)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("gpg", "gpgv", "gpg-agent", "gpgconf", "rpmsign", "rpmkeys"):
        os.symlink(f"/usr/bin/{tool}", bin_dir / tool)
    env = {**os.environ, "PATH": str(bin_dir)}
    err = _fails(project, "release", code=3, env=env)
    assert "the program 'rpmbuild' is not installed" in err
    assert "apt-get install rpm" in err


def test_concurrent_publish_is_refused_while_the_lock_is_held(project: Path) -> None:
    cfg = load_config(project / "repotool.toml")
    with publish_lock(cfg):
        done = run_repotool(project, "release")
    assert done.returncode == 6, done.stderr
    assert "another publish is running" in done.stderr


# --- a published project that the tests below change ----------------------------------


def _assert_repo_complete(repo: Path) -> set[str]:
    """What a client sees is whole: every file repomd.xml names exists with its checksum."""
    repodata = repo / "repodata"
    assert repodata.is_symlink() and repodata.resolve().is_dir()
    repomd = cr.Repomd(str(repodata / "repomd.xml"))
    hrefs = set()
    for rec in repomd.records:
        path = repo / rec.location_href
        assert path.is_file(), f"{rec.location_href} is missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.checksum
        hrefs.add(rec.location_href)
    primary = next(r for r in repomd.records if r.type == "primary")
    pkgs: list[str] = []

    def collect(pkg: cr.Package) -> None:
        pkgs.append(pkg.location_href)

    cr.xml_parse_primary(str(repo / primary.location_href), pkgcb=collect, do_files=False)
    for href in pkgs:
        assert (repo / href).is_file(), f"{href} named by primary.xml is missing"
    return hrefs


def test_older_repomd_keeps_working_after_an_update(release_copy: Path) -> None:
    project = release_copy
    repo = project / "public/repo/el7/x86_64"
    old = _assert_repo_complete(repo)
    bump_release(project / "specs/perfsonar-toolkit-sysctl/perfsonar-toolkit-sysctl.spec")
    release_json(project)
    new = _assert_repo_complete(repo)
    assert old != new
    for href in old:  # a host holding the older repomd.xml finds every file it names
        assert (repo / href).is_file()


def test_publish_killed_at_any_point_leaves_a_complete_repo_and_recovers(
    release_copy: Path,
) -> None:
    """SIGKILL at each stage of a publish, caught by watching the tree change."""
    project = release_copy
    repo = project / "public/repo/el7/x86_64"
    journal = project / ".repotool/repo-index/el7-x86_64.pending.json"
    spec = project / "specs/perfsonar-toolkit-sysctl/perfsonar-toolkit-sysctl.spec"
    moments: dict[str, Callable[[], bool]] = {
        "new packages waiting": lambda: any(repo.glob(".incoming-*")),
        "metadata being written": lambda: any(repo.glob(".repodata-*.tmp")),
        "journal written, link not yet swapped": journal.exists,
    }
    hit: list[str] = []
    for name, moment in moments.items():
        for _attempt in range(5):  # bounded: a moment may be too short to catch once
            bump_release(spec)
            assert run_repotool(project, "sign", "--quiet").returncode == 0  # build + sign first
            before = os.readlink(repo / "repodata")
            proc = subprocess.Popen(
                [*REPOTOOL, "release", "--quiet"],
                cwd=project,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 60
            while proc.poll() is None and not moment() and time.monotonic() < deadline:
                time.sleep(0.0005)
            caught = proc.poll() is None and moment()
            if caught:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            # whatever the moment, hosts see a complete repository, old or new
            _assert_repo_complete(repo)
            if caught:
                hit.append(name)
                if name != "journal written, link not yet swapped":
                    assert os.readlink(repo / "repodata") == before
                break
    assert len(hit) >= 2, f"kills landed only at: {hit}"
    release_json(project)  # recovers, and publishes whatever the last kill interrupted
    _assert_repo_complete(repo)
    assert not list(repo.glob(".repodata-*.tmp")) and not list(repo.glob(".view-*"))
    assert not list(repo.glob(".incoming-*")) and not journal.exists()
    assert not list((repo / "Packages").glob(".*.tmp"))
    names = {p.name for p in (repo / "Packages").iterdir()}
    evr = re.search(r"^Release:\s*(\d+)", spec.read_text(), re.M)
    assert evr and f"perfsonar-toolkit-sysctl-3.3.2-{evr.group(1)}.el7.noarch.rpm" in names
    # every generation folder left is one the index knows (none half-made)
    index = RepoIndex.load(project / ".repotool/repo-index/el7-x86_64.json")
    on_disk = {d.name.removeprefix(".repodata-") for d in repo.glob(".repodata-*")}
    assert on_disk == set(index.generations)


def test_unsigned_file_dropped_into_published_packages_is_refused(
    release_copy: Path, tmp_path: Path
) -> None:
    project = release_copy
    from tests.release_support import make_rpm

    rpm = make_rpm(tmp_path, "dropped")
    pkg_dir = project / "public/repo/el7/x86_64/Packages"
    before_meta = tree_digest(project / "public/repo/el7/x86_64/repodata")
    (pkg_dir / rpm.name).write_bytes(rpm.read_bytes())
    done = run_repotool(project, "release")
    assert done.returncode == 5, done.stderr
    assert "dropped-1.0-1.el7.noarch.rpm" in done.stderr and "not signed" in done.stderr
    assert tree_digest(project / "public/repo/el7/x86_64/repodata") == before_meta


def test_package_re_signed_in_place_is_noticed_despite_same_size_and_mtime(
    release_copy: Path, tmp_path: Path
) -> None:
    """Re-signing keeps a package's size and its mtime can be set back; it must be noticed.

    Here someone re-signs a published package in place with another (same-size)
    key: a size+mtime check would keep serving it; publish reads it again,
    and refuses it.
    """
    project = release_copy
    repo = project / "public/repo/el7/x86_64"
    rpm = repo / "Packages/perfsonar-toolkit-firewall-3.3.2-1.el7.noarch.rpm"
    st = rpm.stat()
    old_sha = hashlib.sha256(rpm.read_bytes()).hexdigest()
    home = tmp_path / "stranger"
    fpr = make_gpg_key(home, "Other <other@example.invalid>", algo="rsa3072")
    subprocess.run(
        [
            "rpmsign",
            "--addsign",
            "--define",
            f"_gpg_name {fpr}",
            "--define",
            "__gpg /usr/bin/gpg",
            "--define",
            f"_gpg_path {home}",
            "--define",
            "_gpg_digest_algo sha256",
            str(rpm),
        ],
        check=True,
        capture_output=True,
    )
    os.utime(rpm, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert rpm.stat().st_size == st.st_size and rpm.stat().st_mtime_ns == st.st_mtime_ns
    assert hashlib.sha256(rpm.read_bytes()).hexdigest() != old_sha
    before = tree_digest(repo / "repodata")
    done = run_repotool(project, "release")
    assert done.returncode == 5, done.stderr
    assert f"{rpm}: signed by key ID {fpr[-16:].lower()}, not by the published key" in done.stderr
    assert tree_digest(repo / "repodata") == before


def test_lost_index_keeps_older_generations_for_hosts_that_hold_them(release_copy: Path) -> None:
    project = release_copy
    repo = project / "public/repo/el7/x86_64"
    first = _assert_repo_complete(repo)
    spec = project / "specs/perfsonar-toolkit-sysctl/perfsonar-toolkit-sysctl.spec"
    bump_release(spec)
    release_json(project)
    second = _assert_repo_complete(repo)
    old_pkg = repo / "Packages/perfsonar-toolkit-sysctl-3.3.2-1.el7.noarch.rpm"
    assert old_pkg.exists()
    index = project / ".repotool/repo-index/el7-x86_64.json"
    index.write_bytes(b"\x80\x09garbage")  # damaged: unreadable, an unknown pickle protocol
    bump_release(spec)
    assert release_json(project)["published"] == ["el6/x86_64", "el7/x86_64"]
    _assert_repo_complete(repo)
    for href in first | second:  # hosts holding either older repomd.xml find every file
        assert (repo / href).is_file(), href
    assert len(list(repo.glob(".repodata-*"))) == 3


def test_a_run_killed_between_the_targets_flips_is_rolled_forward(release_copy: Path) -> None:
    """el6 flipped, el7 not yet, then the process died: the next run completes the release."""
    project = release_copy
    bump_release(project / "specs/perfsonar-toolkit-sysctl/perfsonar-toolkit-sysctl.spec")
    script = f"""
import os
from pathlib import Path
from repotool.config import load_config
from repotool.process import SubprocessRunner
from repotool.repo.publish import plan_all, stage_all
from repotool.release import build_and_sign
from repotool.signing.release_key import open_signer
from repotool.repo.repository import flip, prepare_swap, publish_lock
from repotool.repo.recovery import write_intent
from repotool.report import SilentReporter
cfg = load_config(Path({str(project / "repotool.toml")!r}))
r, rep = SubprocessRunner(), SilentReporter()
signer = open_signer(cfg, r, rep)
with publish_lock(cfg):
    _, per_target, _ = build_and_sign(cfg, signer, r, rep)
    out = stage_all(plan_all(cfg, per_target, signer, rep), signer, lambda t, p: None, rep)
    prepared = [prepare_swap(s) for s in out.staged]
    write_intent(cfg, {{str(p.plan.repo_dir): p.generation.name for p in prepared}})
    flip(prepared[0])
    print(prepared[0].plan.target.name, prepared[1].generation.name)
    os._exit(9)  # killed between the flips
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=project, timeout=300
    )
    assert done.returncode == 9, done.stderr
    first, el7_generation = done.stdout.split()
    assert first == "el6"
    el7 = project / "public/repo/el7/x86_64"
    assert os.readlink(el7 / "repodata") != el7_generation  # half-released right now
    result = run_repotool(project, "release", "--json")
    assert result.returncode == 0, result.stderr
    # rolled forward, not back (this release then adds its errata on top)
    assert f"finished the swap a killed run had begun: {el7}" in result.stderr
    assert os.readlink(el7 / "repodata") >= el7_generation
    for target in ("el6", "el7"):
        repo = project / f"public/repo/{target}/x86_64"
        _assert_repo_complete(repo)
        assert (repo / f"Packages/perfsonar-toolkit-sysctl-3.3.2-2.{target}.noarch.rpm").exists()
    assert not (project / ".repotool/publish-intent.json").exists()


def test_a_failed_swap_publishes_neither_repositories_nor_media(release_copy: Path) -> None:
    project = release_copy
    bump_release(project / "specs/perfsonar-toolkit-sysctl/perfsonar-toolkit-sysctl.spec")
    before = tree_digest(project / "public")
    pkgs = project / "public/repo/el7/x86_64/Packages"
    if subprocess.run(["chattr", "+i", str(pkgs)], capture_output=True).returncode != 0:
        pytest.skip("this file system cannot make a folder immutable (chattr +i)")
    try:
        done = run_repotool(project, "release", "--respin", "2")
    finally:
        subprocess.run(["chattr", "-i", str(pkgs)], check=True)
    assert done.returncode == 6, done.stderr
    assert "could not swap the new repositories in" in done.stderr
    after = tree_digest(project / "public")
    assert after == before  # el6 rolled back too; no 3.3.2-2 media went public
    # (the site's page for the listed respin was there before; its media never came)
    assert not list((project / "public/releases/3.3.2-2").glob("*.iso"))
    assert not (project / "public/releases/3.3.2-2/media.json").exists()
    ok = run_repotool(project, "release", "--respin", "2", "--json", "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert (project / "public/releases/3.3.2-2/media.json").is_file()
