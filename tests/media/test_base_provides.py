"""The base provides package (repotool/media/provides.py): what rpm learns about a
base made without rpm, and the settings file the toolkit reads."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repotool.errors import BaseSystemError
from repotool.media.provides import (
    base_conf,
    build_base_provides,
    exists_in_root,
    load_profile,
)
from repotool.process import SubprocessRunner

EPOCH = 1390867200  # 2014-01-28


def rpm_query(rpm: Path, *args: str) -> list[str]:
    done = subprocess.run(
        ["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def payload_file(rpm: Path, path: str, scratch: Path) -> str:
    scratch.mkdir(parents=True, exist_ok=True)
    cpio = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet", f".{path}"], input=cpio, cwd=scratch, check=True)
    return (scratch / path.lstrip("/")).read_text()


def fake_root(tmp_path: Path, *, without: str = "") -> Path:
    """A root holding each proving file of debian12 (as empty files), but one."""
    root = tmp_path / "root"
    for proof in load_profile("debian12").capabilities.values():
        if proof == without:
            continue
        p = root / proof.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()
    return root


def test_the_package_provides_every_capability_and_installs_base_conf(tmp_path: Path) -> None:
    profile = load_profile("debian12")
    rpm = build_base_provides(SubprocessRunner(), profile, tmp_path / "out", epoch=EPOCH, root=None)
    assert rpm.name == "perfsonar-base-debian12-1-1.noarch.rpm"
    provides = {line.split()[0] for line in rpm_query(rpm, "--provides")}
    assert {
        "/bin/sh",
        "openssl",
        "httpd",
        "mod_ssl",
        "ntp",
        "iperf3",
        "iptables",
        "systemd",
    } <= provides
    assert rpm_query(rpm, "--qf", "%{GROUP} %{BUILDTIME}") == [f"System Environment/Base {EPOCH}"]
    assert rpm_query(rpm, "-l") == ["/etc/perfsonar", "/etc/perfsonar/base.conf"]
    conf = payload_file(rpm, "/etc/perfsonar/base.conf", tmp_path / "x")
    assert conf == base_conf(profile)
    assert 'PS_WEB_SERVICE="apache2.service"\n' in conf
    assert 'PS_NTP_SERVICE="ntpsec.service"\n' in conf
    # what the toolkit's scripts do with it: /bin/sh reads every key back
    shown = subprocess.run(
        [
            "sh",
            "-c",
            '. "$1"; printf "%s|%s" "$PS_TLS_KEY" "$PS_NTPD_ARGS"',
            "sh",
            str(tmp_path / "x/etc/perfsonar/base.conf"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == "/etc/ssl/private/localhost.key|-p /run/ntpd.pid -g -N -u ntpsec:ntpsec"


def test_the_same_inputs_make_the_same_package(tmp_path: Path) -> None:
    profile = load_profile("debian12")
    runner = SubprocessRunner()
    one = build_base_provides(runner, profile, tmp_path / "a", epoch=EPOCH, root=None)
    two = build_base_provides(runner, profile, tmp_path / "b", epoch=EPOCH, root=None)
    assert one.read_bytes() == two.read_bytes()


def test_a_root_with_every_proving_file_is_accepted(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    rpm = build_base_provides(
        SubprocessRunner(), load_profile("debian12"), tmp_path / "out", epoch=EPOCH, root=root
    )
    assert rpm.is_file()


def test_a_capability_whose_file_is_missing_is_refused(tmp_path: Path) -> None:
    root = fake_root(tmp_path, without="/usr/sbin/ntpd")
    profile = load_profile("debian12")
    with pytest.raises(BaseSystemError) as caught:
        build_base_provides(SubprocessRunner(), profile, tmp_path / "out", epoch=EPOCH, root=root)
    assert (
        caught.value.what
        == "the base lacks what its profile says it provides: ntp (no /usr/sbin/ntpd)"
    )
    assert caught.value.where == f"{profile.source}: [capabilities], root {root}"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.rpm"))


def test_symlinks_resolve_inside_the_root_not_on_this_machine(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    # Debian's alternatives: an absolute link, which this machine may well satisfy
    (root / "usr/sbin/iptables-restore").symlink_to("/etc/alternatives/iptables-restore")
    assert not exists_in_root(root, "/usr/sbin/iptables-restore")
    (root / "etc/alternatives").mkdir(parents=True)
    (root / "etc/alternatives/iptables-restore").symlink_to("/usr/sbin/xtables-nft-multi")
    (root / "usr/sbin/xtables-nft-multi").touch()
    assert exists_in_root(root, "/usr/sbin/iptables-restore")
    (root / "bin").symlink_to("usr/sbin")
    assert exists_in_root(root, "/bin/xtables-nft-multi")
    # ".." stops at the root, as in a chroot
    assert exists_in_root(root, "/../../usr/sbin/xtables-nft-multi")


def test_a_missing_profile_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(BaseSystemError) as caught:
        load_profile("debian99")
    assert caught.value.what == "there is no base profile 'debian99'"
    assert str(caught.value.where).endswith("repotool/media/bases/debian99.toml")
    assert "debian12" in str(caught.value.hint) and "el7" in str(caught.value.hint)


@pytest.mark.parametrize(
    ("table", "line", "what"),
    [
        (
            "settings",
            'PS_X = "$(reboot)"',
            "the value of PS_X has a character that base.conf cannot carry "
            "(a quote, backslash, $, backtick or control character)",
        ),
        ("settings", 'ps_lower = "x"', "the setting name 'ps_lower' is not a shell variable name"),
        ("capabilities", 'httpd = "usr/sbin/apache2"', None),
        ("capabilities", '"two words" = "/bin/sh"', "'two words' is not an rpm capability name"),
    ],
)
def test_a_bad_entry_names_the_file_and_key(
    tmp_path: Path, table: str, line: str, what: str | None
) -> None:
    good = {
        "settings": 'PS_BASE = "t"',
        "capabilities": '"/bin/sh" = "/bin/sh"',
    }
    good[table] = line
    path = tmp_path / "t.toml"
    path.write_text(
        'name = "t"\ndescription = "test"\n'
        f"[settings]\n{good['settings']}\n[capabilities]\n{good['capabilities']}\n"
    )
    with pytest.raises(BaseSystemError) as caught:
        load_profile(str(path))
    key = line.split(" = ")[0].strip('"')
    assert caught.value.where == f"{path}: [{table}] {key}"
    if what is not None:
        assert caught.value.what == what
    else:
        assert "must be an absolute path" in caught.value.what


def test_the_el7_sample_profile_reads() -> None:
    el7 = load_profile("el7")
    assert el7.settings["PS_WEB_SERVICE"] == "httpd.service"
    assert el7.settings["PS_TLS_KEY"] == "/etc/pki/tls/private/localhost.key"
    assert el7.settings["PS_WEB_TLS_VHOST"] == "base"
    assert set(el7.settings) == set(load_profile("debian12").settings)
