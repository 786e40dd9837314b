"""The Debian base (repotool/media/debian.py): its cache key, mmdebstrap's command
line, the live set-up, and the errors for a bad profile or a missing package."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from repotool.errors import BaseSystemError
from repotool.media.debian import (
    DPKG_OPTIONS,
    DebianRootCache,
    apt_index_digest,
    cache_key,
    live_setup,
    mmdebstrap_argv,
    read_profile,
)
from repotool.process import SubprocessRunner
from repotool.report import SilentReporter
from tests.signing.signing_support import RecordingRunner


def test_the_shipped_profile_carries_the_services_the_toolkit_configures() -> None:
    p = read_profile("debian12")
    for name in ("systemd-sysv", "ntpsec", "apache2", "iperf3", "iptables", "openssl", "dnf"):
        assert name in p.packages
    assert any("a2enmod" in c and "ssl" in c for c in p.customize)


def test_cache_key_follows_what_the_root_is_made_of() -> None:
    p = read_profile("debian12")
    key = cache_key(p, tool_version="mmdebstrap 1.3.5", index="i1")
    assert key == cache_key(
        dataclasses.replace(p, packages=tuple(reversed(p.packages))),
        tool_version="mmdebstrap 1.3.5",
        index="i1",
    ), "the order of the package list does not matter"
    for other in (
        cache_key(p, tool_version="mmdebstrap 1.3.6", index="i1"),
        cache_key(p, tool_version="mmdebstrap 1.3.5", index="i2"),
        cache_key(
            dataclasses.replace(p, packages=(*p.packages, "tcpdump")),
            tool_version="mmdebstrap 1.3.5",
            index="i1",
        ),
        cache_key(
            dataclasses.replace(p, customize=()), tool_version="mmdebstrap 1.3.5", index="i1"
        ),
    ):
        assert other != key


def test_apt_index_digest_changes_with_the_release_files(tmp_path: Path) -> None:
    (tmp_path / "deb_dists_bookworm_InRelease").write_text("Date: 1\n")
    (tmp_path / "deb_dists_bookworm_main_binary-amd64_Packages.lz4").write_text("big")
    first = apt_index_digest(tmp_path)
    (tmp_path / "deb_dists_bookworm_main_binary-amd64_Packages.lz4").write_text("bigger")
    assert apt_index_digest(tmp_path) == first, "only the Release files name the index"
    (tmp_path / "deb_dists_bookworm_InRelease").write_text("Date: 2\n")
    assert apt_index_digest(tmp_path) != first


def test_mmdebstrap_command_line() -> None:
    p = read_profile("debian12")
    argv = mmdebstrap_argv(p, Path("/c/x.part.tar"), [Path("/etc/apt/sources.list.d/d.sources")])
    assert argv[:2] == ["mmdebstrap", "--variant=minbase"]
    assert argv[2] == "--include=" + ",".join(p.packages)
    assert [a for a in argv if a.startswith("--dpkgopt=")] == [
        f"--dpkgopt={o}" for o in DPKG_OPTIONS
    ]
    assert argv[-3:] == [p.suite, "/c/x.part.tar", "/etc/apt/sources.list.d/d.sources"]


def test_a_warm_cache_runs_no_mmdebstrap(tmp_path: Path) -> None:
    runner = RecordingRunner()
    cache = DebianRootCache(runner, tmp_path, SilentReporter())
    p = read_profile("debian12")
    version = runner.run(["mmdebstrap", "--version"]).text.strip()
    made = tmp_path / (
        f"base-{p.name}-{cache_key(p, tool_version=version, index=apt_index_digest())}.tar"
    )
    made.write_bytes(b"a root made before")
    runner.calls.clear()
    assert cache.tarball(p) == made
    assert runner.calls == [["mmdebstrap", "--version"]]


def test_a_package_missing_from_apt_is_named(tmp_path: Path) -> None:
    profile = tmp_path / "mybase.toml"
    profile.write_text(
        'name = "mybase"\nsuite = "bookworm"\npackages = ["iperf3", "nosuch-perfsonar-tool"]\n'
    )
    cache = DebianRootCache(SubprocessRunner(), tmp_path / "cache", SilentReporter())
    with pytest.raises(BaseSystemError) as e:
        cache.tarball(read_profile("mybase.toml", tmp_path))
    assert "the Debian base package 'nosuch-perfsonar-tool' is not in the apt sources" in str(
        e.value
    )
    assert e.value.where == f"{profile}: packages"
    assert list((tmp_path / "cache").iterdir()) == [], "no partial root is left"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "there is no base profile 'gone.toml'"),
        ('name = "x"\npackages = []\n', "the base profile has no package list"),
        ('name = "x"\npackages = ["a"]\ncustomize = "a2enmod ssl"\n', "customize must be a list"),
        ("name = \n", "the base profile cannot be read"),
    ],
)
def test_bad_profiles_are_refused(tmp_path: Path, text: str | None, expected: str) -> None:
    if text is not None:
        (tmp_path / "gone.toml").write_text(text)
    with pytest.raises(BaseSystemError) as e:
        read_profile("gone.toml", tmp_path)
    assert expected in str(e.value)
    assert str(tmp_path / "gone.toml") in str(e.value.where)


def test_live_setup(tmp_path: Path) -> None:
    root = tmp_path
    (root / "etc").mkdir()
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "lib/systemd/system/systemd-networkd.service").write_text("[Unit]\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/dnf").write_text("#!/bin/sh\n")
    live_setup(root)
    assert (root / "etc/hostname").read_text() == "pslive\n"
    autologin = root / "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
    assert "--autologin root" in autologin.read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "systemd-networkd.service") == (
        "/lib/systemd/system/systemd-networkd.service"
    )
    assert os.readlink(wants / "pslive-banner.service") == (
        "/etc/systemd/system/pslive-banner.service"
    )
    assert "%_dbpath /var/lib/rpm" in (root / "etc/rpm/macros.pslive").read_text()
    assert os.readlink(root / "usr/bin/yum") == "dnf"
    when_up = (root / "usr/libexec/pslive/when-up").read_text()
    assert "pslive: FAILED unit" in when_up and when_up.rstrip().endswith('"pslive: ready"')
    assert (root / "etc/machine-id").read_text() == ""
