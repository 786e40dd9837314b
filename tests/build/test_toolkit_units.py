"""The toolkit's scripts and systemd generators, run for real from specs/ with a
base.conf made from the debian12 profile (issue 11 item 3): what they write
(drop-ins, the web server configuration, key and certificate, the host page)
and, in network namespaces of their own joined by a private veth link (nothing
leaves the machine), what other hosts see of ntpd and of the firewall.  The
booted node itself is tests/media/test_live_node.py's."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from repotool.media.provides import base_conf, load_profile

SPECS = Path(__file__).resolve().parents[2] / "specs"
NTP = SPECS / "perfsonar-toolkit-ntp"
SECURITY = SPECS / "perfsonar-toolkit-security"
TOOLKIT = SPECS / "perfsonar-toolkit"
FIREWALL = SPECS / "perfsonar-toolkit-firewall"


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """debian12's base.conf, with the TLS pair and the web conf dir in tmp_path."""
    profile = load_profile("debian12")
    settings = dict(profile.settings)
    settings["PS_TLS_KEY"] = str(tmp_path / "private/localhost.key")
    settings["PS_TLS_CERT"] = str(tmp_path / "certs/localhost.crt")
    settings["PS_WEB_CONF_DIR"] = str(tmp_path / "conf-enabled")
    path = tmp_path / "base.conf"
    path.write_text(base_conf(dataclasses.replace(profile, settings=settings)))
    return path


def run(argv: list[str], conf: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A script of specs/ (not executable in git; the specs install it 0755) run by sh."""
    return subprocess.run(
        ["sh", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PERFSONAR_BASE_CONF": str(conf), **env},
    )


def test_the_generators_write_drop_ins_for_the_bases_services(conf: Path, tmp_path: Path) -> None:
    out = tmp_path / "generator"
    for script in (
        NTP / "perfsonar-toolkit-ntp.generator",
        SECURITY / "perfsonar-toolkit-security.generator",
        TOOLKIT / "perfsonar-toolkit.generator",
    ):
        done = run([str(script), str(out)], conf)
        assert done.returncode == 0, done.stderr
    ntp = (out / "ntpsec.service.d/50-perfsonar-toolkit-ntp.conf").read_text()
    assert ntp.endswith(
        "[Service]\nExecStart=\nExecStart=/usr/sbin/ntpd -p /run/ntpd.pid -g -N -u ntpsec:ntpsec"
        " -c /etc/perfsonar/ntp.conf\n"
    )
    security = (out / "apache2.service.d/50-perfsonar-toolkit-security.conf").read_text()
    assert "Wants=perfsonar-host-cert.service\nAfter=perfsonar-host-cert.service\n" in security
    web = (out / "apache2.service.d/50-perfsonar-toolkit.conf").read_text()
    assert "Wants=perfsonar-toolkit-web.service\nAfter=perfsonar-toolkit-web.service\n" in web


def test_without_base_conf_the_generators_leave_the_base_alone(tmp_path: Path) -> None:
    out = tmp_path / "generator"
    out.mkdir()
    for script in SPECS.glob("perfsonar-toolkit*/*.generator"):
        done = run([str(script), str(out)], tmp_path / "no-base.conf")
        assert done.returncode == 0, done.stderr
    assert list(out.iterdir()) == []


def fingerprint(cert: Path) -> str:
    return subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def public_key(key: Path) -> str:
    return subprocess.run(
        ["openssl", "pkey", "-pubout", "-in", str(key)], capture_output=True, text=True, check=True
    ).stdout


def test_first_boot_makes_a_pair_once_and_the_fix_replaces_the_key(
    conf: Path, tmp_path: Path
) -> None:
    key, cert = tmp_path / "private/localhost.key", tmp_path / "certs/localhost.crt"
    script = str(SECURITY / "perfsonar-regenerate-host-cert")
    first = run([script, "--if-missing", "--no-restart"], conf)
    assert first.returncode == 0, first.stderr
    assert oct(key.stat().st_mode & 0o777) == "0o600" and cert.is_file()
    before = fingerprint(cert), public_key(key)
    again = run([script, "--if-missing", "--no-restart"], conf)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert (fingerprint(cert), public_key(key)) == before
    renewed = run([script, "--no-restart"], conf)
    assert renewed.returncode == 0, renewed.stderr
    assert fingerprint(cert) != before[0] and public_key(key) != before[1]
    kept = sorted(p.name.split(".pre-")[0] for p in tmp_path.rglob("*.pre-*"))
    assert kept == ["localhost.crt", "localhost.key"]


def test_the_3_3_2_1_helper_reads_base_conf_and_keeps_the_key(conf: Path, tmp_path: Path) -> None:
    key, cert = tmp_path / "private/localhost.key", tmp_path / "certs/localhost.crt"
    script = str(SECURITY / "perfsonar-regenerate-host-cert-3.3.2-1")
    assert run([script, "--if-missing", "--no-restart"], conf).returncode == 0
    before = fingerprint(cert), public_key(key)
    assert run([script, "--no-restart"], conf).returncode == 0
    assert fingerprint(cert) != before[0] and public_key(key) == before[1]


def test_the_web_configuration_serves_the_host_page_over_tls(conf: Path, tmp_path: Path) -> None:
    done = run([str(TOOLKIT / "perfsonar-toolkit-webconf")], conf)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "conf-enabled/perfsonar-toolkit.conf").read_text()
    assert 'ScriptAliasMatch "^/$" "/usr/libexec/perfsonar/perfsonar-host-page"' in text
    assert f'SSLCertificateFile "{tmp_path}/certs/localhost.crt"' in text
    assert "<VirtualHost _default_:443>" in text
    again = run([str(TOOLKIT / "perfsonar-toolkit-webconf")], conf)
    assert again.returncode == 0 and again.stdout == ""  # unchanged: not rewritten
    el7 = conf.read_text().replace('PS_WEB_TLS_VHOST="toolkit"', 'PS_WEB_TLS_VHOST="base"')
    conf.write_text(el7)
    assert run([str(TOOLKIT / "perfsonar-toolkit-webconf")], conf).returncode == 0
    assert "VirtualHost" not in (tmp_path / "conf-enabled/perfsonar-toolkit.conf").read_text()


def test_the_host_page_shows_the_firewall_state_escaped(conf: Path, tmp_path: Path) -> None:
    state = tmp_path / "firewall-state"
    state.write_text(
        "loaded 2014-01-28 by perfsonar-firewall\n-P INPUT DROP\n-A INPUT -j PERFSONAR\n"
        "-N PERFSONAR\n-A PERFSONAR -p icmp -j ACCEPT\n-A PERFSONAR -j RETURN <x>\n"
    )
    done = run(
        [str(TOOLKIT / "perfsonar-host-page"), "--html"],
        conf,
        PERFSONAR_FIREWALL_STATE=str(state),
        PS_NTPQ="false",
    )
    assert done.returncode == 0, done.stderr
    page = done.stdout
    assert page.startswith("<!DOCTYPE html>")
    assert "Firewall: loaded: INPUT policy DROP, 2 rules in the PERFSONAR chain" in page
    assert "RETURN &lt;x&gt;" in page and "<x>" not in page
    cgi = run([str(TOOLKIT / "perfsonar-host-page")], conf, PERFSONAR_FIREWALL_STATE=str(state))
    # (text mode reads the header's CRLF as LF)
    assert cgi.stdout.startswith("Content-Type: text/html; charset=utf-8\n")
    assert "\n\n<!DOCTYPE html>" in cgi.stdout


# --- what other hosts see: two network namespaces joined by a veth pair ------


def need(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


@contextlib.contextmanager
def two_hosts(tag: str) -> Iterator[tuple[str, str]]:
    """Namespaces 'node' (10.213.0.1) and 'peer' (10.213.0.2) on a private link."""
    node, peer = f"psnode{tag}{os.getpid()}", f"pspeer{tag}{os.getpid()}"
    cmds = [
        ["ip", "netns", "add", node],
        ["ip", "netns", "add", peer],
        [
            "ip",
            "link",
            "add",
            f"v{tag}{os.getpid()}a",
            "type",
            "veth",
            "peer",
            "name",
            f"v{tag}{os.getpid()}b",
        ],
        ["ip", "link", "set", f"v{tag}{os.getpid()}a", "netns", node],
        ["ip", "link", "set", f"v{tag}{os.getpid()}b", "netns", peer],
        ["ip", "-n", node, "addr", "add", "10.213.0.1/24", "dev", f"v{tag}{os.getpid()}a"],
        ["ip", "-n", peer, "addr", "add", "10.213.0.2/24", "dev", f"v{tag}{os.getpid()}b"],
        ["ip", "-n", node, "link", "set", f"v{tag}{os.getpid()}a", "up"],
        ["ip", "-n", peer, "link", "set", f"v{tag}{os.getpid()}b", "up"],
        ["ip", "-n", node, "link", "set", "lo", "up"],
    ]
    try:
        for c in cmds:
            subprocess.run(c, check=True, capture_output=True, timeout=30)
        yield node, peer
    finally:
        for ns in (node, peer):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def in_ns(
    ns: str, argv: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=60, env=env
    )


ASK = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
packet = struct.pack("!BBHHHHH", 0x26, 2, 1, 0, 0, 0, 0)  # mode 6, READVAR
for _ in range(3):
    s.sendto(packet, ("10.213.0.1", 123))
    try:
        print("answered", len(s.recv(2000)))
        break
    except OSError:
        pass
else:
    print("silent")
"""


@pytest.mark.parametrize(
    ("restrict", "seen"),
    [("perfsonar-restrict-3.3.1.conf", "answered"), ("perfsonar-restrict.conf", "silent")],
)
def test_ntpd_answers_control_queries_from_other_hosts_only_with_3_3_1(
    tmp_path: Path, restrict: str, seen: str
) -> None:
    """The advisory's before and after with the base's ntpd (ntpsec here) and
    the toolkit's ntp.conf, as the generator starts it."""
    need("ntpd", "ip")
    conf = tmp_path / "ntp.conf"
    text = (NTP / "ntp.conf").read_text()
    conf.write_text(
        text.replace("/etc/ntp/perfsonar-restrict.conf", str(NTP / restrict))
        .replace("keys /etc/ntp/keys", "")
        .replace("/var/lib/ntp/drift", str(tmp_path / "drift"))
        # this machine's clock is not ours to discipline
        + "disable kernel\n"
    )
    tag = "a" if "3.3.1" in restrict else "b"
    with two_hosts(tag) as (node, peer):
        pid = tmp_path / "ntpd.pid"
        started = in_ns(
            node, ["ntpd", "-p", str(pid), "-c", str(conf), "-l", str(tmp_path / "log")]
        )
        assert started.returncode == 0, started.stderr
        try:
            # ntpd answers the host itself once it is up (bounded wait)
            deadline = time.monotonic() + 30
            local = in_ns(node, ["ntpq", "-n", "-c", "rv", "127.0.0.1"])
            while "version=" not in local.stdout and time.monotonic() < deadline:
                time.sleep(0.5)
                local = in_ns(node, ["ntpq", "-n", "-c", "rv", "127.0.0.1"])
            log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
            assert "version=" in local.stdout, local.stdout + local.stderr + log[-3000:]
            asked = in_ns(peer, ["python3", "-c", ASK])
            assert asked.stdout.split()[0] == seen, asked.stdout + asked.stderr
        finally:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid.read_text()), 15)


#: a listener that greets every connection (port in argv[1]); killed by the test
LISTEN = (
    "import socket, sys\n"
    "s = socket.socket()\n"
    "s.bind(('0.0.0.0', int(sys.argv[1])))\n"
    "s.listen()\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    c.send(b'hi')\n"
    "    c.close()\n"
)


def tcp_open(peer: str, port: int) -> bool:
    probe = (
        "import socket\ntry:\n"
        f"    socket.create_connection(('10.213.0.1', {port}), timeout=2).recv(4)\n"
        "    print('open')\nexcept OSError:\n    print('closed')\n"
    )
    return in_ns(peer, ["python3", "-c", probe]).stdout.strip() == "open"


def test_the_firewall_opens_the_toolkit_ports_and_drops_the_rest(tmp_path: Path) -> None:
    need("iptables-restore", "ip6tables-restore", "iptables", "ip")
    rules = tmp_path / "etc/perfsonar/firewall"
    rules.mkdir(parents=True)
    for f in FIREWALL.glob("*.rules"):
        shutil.copy2(f, rules / f.name)
    script = (
        (FIREWALL / "perfsonar-firewall")
        .read_text()
        .replace("RULES=/etc/perfsonar/firewall", f"RULES={rules}")
    )
    (tmp_path / "perfsonar-firewall").write_text(script)
    with two_hosts("c") as (node, peer):
        listeners = [
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    node,
                    "python3",
                    "-c",
                    LISTEN,
                    str(port),
                ]
            )
            for port in (443, 5201, 9999)
        ]
        try:
            time.sleep(1)
            assert tcp_open(peer, 9999)
            loaded = in_ns(
                node,
                ["sh", str(tmp_path / "perfsonar-firewall"), "start"],
                env={
                    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                    "PERFSONAR_BASE_CONF": "/nonexistent",
                    "PERFSONAR_FIREWALL_STATE": str(tmp_path / "state"),
                },
            )
            assert loaded.returncode == 0, loaded.stderr
            assert tcp_open(peer, 443) and tcp_open(peer, 5201)
            assert not tcp_open(peer, 9999)
            state = (tmp_path / "state").read_text()
            assert "-P INPUT DROP" in state and "-A INPUT -j PERFSONAR" in state
        finally:
            for p in listeners:
                p.kill()
                p.wait(timeout=10)
