"""The release's LiveCD booted under qemu (TCG) as a measurement node.

One VM per test session (the session release's 3.3.2 LiveCD, the embedded
default's Debian base) serves every probe from the host through forwarded
loopback ports; the steps inside go through the root shell on the serial
console.  The tests run in file order: those that change the guest (the two
advisories' before and after) come last.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Released
from tests.media.live_node import (
    CLOSED_PORT,
    GREETER,
    REPO_HOST,
    LiveNode,
    ntp_client_request,
    ntp_monlist_request,
    ntp_readvar_request,
)
from tests.media.media_support import ovmf_available, qemu_available, uefi_firmware_args

pytestmark = pytest.mark.skipif(not qemu_available(), reason="qemu-system-x86_64 is missing")

RELEASE = "releases/3.3.2"
LIVECD = "pS-Performance_Toolkit-3.3.2-LiveCD-x86_64.iso"
LIVEUSB = "pS-Performance_Toolkit-3.3.2-LiveUSB-x86_64.img"
#: services up under TCG on this 2-core machine took about 30 s; the budget is 120 s
BOOT_TIMEOUT = 240


def boot_ready(node: LiveNode) -> None:
    if not node.wait_for("pslive: ready", BOOT_TIMEOUT):
        node.close()
        pytest.fail(f"the live system did not come up:\n{node.output[-4000:]}")
    assert "pslive: FAILED unit" not in node.output, node.output[-4000:]
    status, out = node.sh("dmesg -n 1; stty -echo; echo shell-ok")
    assert status == 0 and "shell-ok" in out, out


@pytest.fixture(scope="module")
def node(
    released: Released, served_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveNode]:
    work = tmp_path_factory.mktemp("live-node")
    iso = released.public / RELEASE / LIVECD
    vm = LiveNode(["-cdrom", str(iso)], repo_port=released.port, work=work)
    try:
        boot_ready(vm)
        yield vm
    finally:
        vm.close()


def host_page(node: LiveNode) -> str:
    """The host page as `curl -k` fetches it (the certificate is self-signed)."""
    done = node.host_run(
        ["curl", "-ksS", "--fail", "--max-time", "90", f"https://127.0.0.1:{node.ports.https}/"]
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def cert_fingerprint(node: LiveNode) -> str:
    """The SHA-256 fingerprint of the certificate the node serves on 443 (openssl)."""
    done = node.host_run(
        [
            "sh",
            "-c",
            f"openssl s_client -connect 127.0.0.1:{node.ports.https} </dev/null 2>/dev/null"
            " | openssl x509 -noout -fingerprint -sha256",
        ]
    )
    found = re.search(r"Fingerprint=([0-9A-F:]{95})", done.stdout)
    assert found, done.stdout + done.stderr
    return found.group(1)


def test_every_service_starts_at_boot(node: LiveNode) -> None:
    assert "pslive: release: pS-Performance Toolkit release 3.3.2" in node.output
    for unit in ("apache2", "ntpsec", "perfsonar-iperf3"):
        status, out = node.sh(f"systemctl is-active {unit}")
        assert status == 0 and out.strip() == "active", f"{unit}: {out}"


def test_a_unit_that_fails_is_named_on_the_console(node: LiveNode) -> None:
    unit = "pslive-broken.service"
    node.put_file(
        f"/etc/systemd/system/{unit}",
        b"[Unit]\nDescription=fails on purpose\n[Service]\nType=oneshot\nExecStart=/bin/false\n",
    )
    try:
        _, out = node.sh(
            f"systemctl daemon-reload; systemctl start {unit}; /usr/libexec/pslive/when-up"
        )
        assert f"pslive: FAILED unit: {unit} (journalctl -u {unit})" in out, out
        assert out.rstrip().endswith("pslive: ready"), out
    finally:
        node.sh(
            f"systemctl reset-failed {unit}; rm /etc/systemd/system/{unit}; systemctl daemon-reload"
        )


def test_host_page_over_https_shows_the_release(node: LiveNode) -> None:
    page = host_page(node)
    assert "3.3.2" in page
    status, versions = node.sh("rpm -q perfsonar-toolkit-ntp perfsonar-toolkit-security")
    assert status == 0, versions
    for nevr in versions.split():
        assert nevr.removesuffix(".noarch") in page or nevr in page, nevr
    assert re.search(r"(?i)ntp", page) and re.search(r"(?i)firewall", page)
    assert len(cert_fingerprint(node)) == 95


def test_ntp_answers_time_but_not_control_or_monlist(node: LiveNode) -> None:
    reply = node.udp_ask(node.ports.ntp, ntp_client_request())
    assert reply is not None and len(reply) >= 48, "no answer to an NTP client request"
    assert reply[0] & 0x07 == 4, "the answer is not a server reply (mode 4)"
    assert reply[24:32] == ntp_client_request()[40:48], "origin time is not our transmit time"
    assert node.udp_ask(node.ports.ntp, ntp_readvar_request(), tries=2) is None, "mode 6 answered"
    assert node.udp_ask(node.ports.ntp, ntp_monlist_request(), tries=2) is None, "monlist answered"
    # the host itself may query its ntpd (loopback is allowed by the restrict lines)
    status, out = node.sh("ntpq -c rv 127.0.0.1", timeout=60)
    assert status == 0 and "version=" in out, out


def test_iperf3_from_the_host_measures_throughput(node: LiveNode) -> None:
    done = node.host_run(
        ["iperf3", "-c", "127.0.0.1", "-p", str(node.ports.iperf), "-t", "2", "-J"]
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    received = json.loads(done.stdout)["end"]["sum_received"]["bits_per_second"]
    assert received > 0


def test_firewall_drops_a_port_outside_the_list(node: LiveNode) -> None:
    node.put_file("/root/greeter.py", GREETER.encode())
    status, out = node.sh(f"nohup python3 /root/greeter.py {CLOSED_PORT} >/dev/null 2>&1 &")
    assert status == 0, out
    # the listener answers inside the guest ...
    status, out = node.sh(
        f"sleep 1; python3 -c 'import socket; print(socket.create_connection("
        f'("127.0.0.1", {CLOSED_PORT})).recv(64).decode())\''
    )
    assert status == 0 and f"open {CLOSED_PORT}" in out, out
    # ... but not from outside, while 443 and 5201 are reachable
    assert node.tcp_greeting(node.ports.closed) == b""
    assert "3.3.2" in host_page(node)
    assert iperf_reachable(node)
    status, rules = node.sh("iptables -S INPUT")
    assert "-P INPUT DROP" in rules or re.search(r"-A INPUT .*-j DROP", rules), rules


def iperf_reachable(node: LiveNode) -> bool:
    done = node.host_run(["iperf3", "-c", "127.0.0.1", "-p", str(node.ports.iperf), "-t", "1"])
    return done.returncode == 0


def test_sbom_names_every_package_in_the_image(node: LiveNode, released: Released) -> None:
    sbom_file = next((released.public / RELEASE).glob("*.cdx.json"))
    listed = {(c["name"], c["version"]) for c in json.loads(sbom_file.read_text())["components"]}
    status, debs = node.sh("dpkg-query -W -f '${Package} ${Version}\\n'")
    assert status == 0, debs
    status, rpms = node.sh(
        "rpm -qa --qf '%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE}\\n' | grep -v '^gpg-pubkey'"
    )
    assert status == 0, rpms
    pairs = [tuple(ln.split(" ", 1)) for ln in (debs + "\n" + rpms).splitlines() if " " in ln]
    assert len(pairs) > 100
    for name, version in pairs:
        plain = version.removeprefix("(none):")
        assert (name, plain) in listed or (name, version) in listed, (name, version)
    for name in ("openssl", "ntpsec", "apache2", "iperf3", "perfsonar-toolkit-security"):
        assert any(n == name for n, _ in listed), name


def guest_dnf(node: LiveNode, served_url: str, *args: str) -> str:
    status, out = node.sh(
        f"sed -i 's#{served_url}#http://{REPO_HOST}#g' /etc/yum.repos.d/perfsonar.repo; "
        f"dnf -y --releasever=7 --setopt=install_weak_deps=False {' '.join(args)}",
        timeout=900,
    )
    assert status == 0, out[-3000:]
    return out


def test_the_advisories_before_and_after_on_the_node(node: LiveNode, served_url: str) -> None:
    """The host as it was before the NTP and Heartbleed advisories (3.3.1's NTP
    configuration, 3.3.2-1's certificate helper), then `yum update` from the
    served repository with gpg checks on, as the advisories tell."""
    guest_dnf(
        node,
        served_url,
        "downgrade",
        "perfsonar-toolkit-ntp-3.3.1",
        "perfsonar-toolkit-security-3.3.2-1.el7",
    )
    status, out = node.sh("systemctl restart ntpsec && sleep 2 && systemctl is-active ntpsec")
    assert status == 0, out
    assert node.udp_ask(node.ports.ntp, ntp_readvar_request()) is not None, (
        "with 3.3.1's configuration ntpd answers control queries from outside"
    )
    before = cert_fingerprint(node)

    out = guest_dnf(node, served_url, "update")
    assert "perfsonar-toolkit-security" in out and "perfsonar-toolkit-ntp" in out, out
    status, versions = node.sh("rpm -q perfsonar-toolkit-security perfsonar-toolkit-ntp")
    assert "perfsonar-toolkit-security-3.3.2-2" in versions, versions
    assert "perfsonar-toolkit-ntp-3.3.2-1" in versions, versions
    status, out = node.sh("systemctl restart ntpsec && sleep 2 && systemctl is-active ntpsec")
    assert status == 0, out
    assert node.udp_ask(node.ports.ntp, ntp_readvar_request(), tries=2) is None, "mode 6 answered"
    assert node.udp_ask(node.ports.ntp, ntp_monlist_request(), tries=2) is None, "monlist answered"

    status, out = node.sh("perfsonar-regenerate-host-cert", timeout=180)
    assert status == 0, out
    deadline = time.monotonic() + 60
    after = before
    while after == before and time.monotonic() < deadline:
        time.sleep(2)
        after = cert_fingerprint(node)
    assert after != before, "the web server still serves the old certificate"
    status, kept = node.sh(
        "ls /etc/pki/tls/private /etc/pki/tls/certs /etc/ssl/private 2>/dev/null"
    )
    assert ".pre-" in kept, kept
    assert "3.3.2" in host_page(node)


@pytest.mark.skipif(not ovmf_available(), reason="OVMF is not installed")
def test_liveusb_boots_as_a_disk_under_uefi(
    released: Released, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("live-usb")
    img = released.public / RELEASE / LIVEUSB
    vm = LiveNode(
        [
            *uefi_firmware_args(work),
            "-drive",
            f"file={img},format=raw,if=virtio,readonly=on",
        ],
        repo_port=None,
        work=work,
    )
    try:
        boot_ready(vm)
        page = host_page(vm)
    finally:
        vm.close()
    assert "3.3.2" in page
    assert "pslive: booting from /dev/vd" in vm.output


def test_boot_files_are_in_the_release(released: Released) -> None:
    assert (released.public / RELEASE / LIVECD).stat().st_size <= 250 * 1024 * 1024
    assert Path(released.public / RELEASE / LIVEUSB).exists()
