"""A booted LiveCD as a measurement node: qemu (TCG) in a network namespace of
its own, with a root shell on the serial console.

qemu runs in a fresh network namespace that holds only a loopback interface
(``unshare --net``), so user-mode networking can reach nothing outside this
machine.  (Not ``restrict=on``: that mode drops the guest's UDP answers to
forwarded ports, so no NTP probe could be answered.)  Ports of the guest are
forwarded with ``hostfwd`` to 127.0.0.1 of that namespace (443, 123/udp,
5201 and one port the firewall must drop); the probes run there through
``nsenter``.  The guest reaches the test's repository server through
``guestfwd`` (10.0.2.100:80), relayed by socat over a Unix socket (the file
system is shared between the namespaces) to the server on the host's loopback.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: the address the guest reaches the repository server at
REPO_HOST = "10.0.2.100"
#: a port outside the toolkit's firewall list, with a listener started in the guest
CLOSED_PORT = 9999
#: the forwarded ports in the namespace (fixed: the namespace is the node's own)
PORTS_HTTPS, PORTS_NTP, PORTS_IPERF, PORTS_CLOSED = 10443, 10123, 15201, 19999

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


@dataclass(frozen=True)
class Ports:
    https: int
    ntp: int
    iperf: int
    closed: int


class LiveNode:
    """qemu-system-x86_64 booting one image; the serial console is read by a thread
    and written to by :meth:`sh`."""

    def __init__(
        self, drive_args: list[str], *, repo_port: int | None, work: Path, memory: int = 1024
    ) -> None:
        self.ports = Ports(PORTS_HTTPS, PORTS_NTP, PORTS_IPERF, PORTS_CLOSED)
        p = self.ports
        netdev = (
            "user,id=n0,"
            f"hostfwd=tcp:127.0.0.1:{p.https}-:443,"
            f"hostfwd=udp:127.0.0.1:{p.ntp}-:123,"
            f"hostfwd=tcp:127.0.0.1:{p.iperf}-:5201,"
            f"hostfwd=tcp:127.0.0.1:{p.closed}-:{CLOSED_PORT}"
        )
        self._relay: subprocess.Popen[bytes] | None = None
        if repo_port is not None:
            sock = work / "repo.sock"
            sock.unlink(missing_ok=True)
            self._relay = subprocess.Popen(
                ["socat", f"UNIX-LISTEN:{sock},fork", f"TCP:127.0.0.1:{repo_port}"],
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            netdev += f",guestfwd=tcp:{REPO_HOST}:80-cmd:socat - UNIX-CONNECT:{sock}"
        self.lines: list[str] = []
        self._partial = ""
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.started = time.monotonic()
        qemu = [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            str(memory),
            "-smp",
            "2",
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
            "-netdev",
            netdev,
            "-device",
            "virtio-net-pci,netdev=n0",
            *drive_args,
        ]
        # unshare runs sh in the new namespace, sh brings lo up and becomes qemu:
        # one process, whose pid names the namespace for nsenter
        self._proc = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *qemu],
            cwd=work,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def host_run(
        self, argv: Sequence[str], *, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """A program of this machine run in the node's network namespace (where the
        forwarded ports are)."""
        return subprocess.run(
            ["nsenter", f"--net=/proc/{self._proc.pid}/ns/net", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def udp_ask(self, port: int, payload: bytes, *, tries: int = 3) -> bytes | None:
        """Send payload to 127.0.0.1:port in the namespace; the first answer, or None."""
        done = self.host_run([sys.executable, "-c", _UDP_ASK, str(port), payload.hex(), str(tries)])
        assert done.returncode == 0, done.stderr
        answer = done.stdout.strip()
        return bytes.fromhex(answer) if answer != "none" else None

    def tcp_greeting(self, port: int, *, timeout: float = 8.0) -> bytes:
        """What a listener in the guest sends first through the forwarded port (b"" when
        nothing comes: slirp accepts on the host side at once, so only data proves
        that the guest's listener was reached)."""
        done = self.host_run([sys.executable, "-c", _TCP_GREETING, str(port), str(timeout)])
        assert done.returncode == 0, done.stderr
        return bytes.fromhex(done.stdout.strip())

    def _read(self) -> None:
        assert self._proc.stdout is not None
        while True:
            chunk = os.read(self._proc.stdout.fileno(), 4096)
            if not chunk:
                break
            text = self._partial + _ANSI.sub("", chunk.decode("utf-8", "replace"))
            *done, self._partial = text.split("\n")
            with self._lock:
                self.lines.extend(done)

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines) + "\n" + self._partial

    def wait_for(self, marker: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.output:
                return True
            if self._proc.poll() is not None:
                return marker in self.output
            time.sleep(0.2)
        return False

    def sh(self, command: str, *, timeout: float = 120) -> tuple[int, str]:
        """Run a shell command as root in the guest: (exit status, output)."""
        n = next(self._counter)
        # the markers are split in the typed line, so the console's echo of the
        # command never looks like them
        begin, end = f"<<B{n}>>", f"<<E{n}"
        line = f'echo "<<B""{n}>>"; ( {command} ) 2>&1 </dev/null; echo "<<E""{n} $?>>"\n'
        assert self._proc.stdin is not None
        self._proc.stdin.write(line.encode())
        self._proc.stdin.flush()
        deadline = time.monotonic() + timeout
        pattern = re.compile(re.escape(begin) + r"\n(.*?)\n?" + re.escape(end) + r" (\d+)>>", re.S)
        while time.monotonic() < deadline:
            found = pattern.search(self.output)
            if found:
                return int(found.group(2)), found.group(1)
            if self._proc.poll() is not None:
                break
            time.sleep(0.2)
        raise TimeoutError(
            f"the guest did not finish `{command}` within {timeout} s; console tail:\n"
            + "\n".join(self.output.splitlines()[-30:])
        )

    def put_file(self, path: str, content: bytes, *, mode: str = "0644") -> None:
        """Write a file in the guest (base64 over the console, in short lines: the
        terminal's line buffer holds about 4 KB)."""
        encoded = base64.b64encode(content).decode()
        self.sh(f": > {path}.b64")
        for i in range(0, len(encoded), 512):
            status, out = self.sh(f"echo {encoded[i : i + 512]} >> {path}.b64")
            assert status == 0, out
        status, out = self.sh(f"base64 -d {path}.b64 > {path} && chmod {mode} {path}")
        assert status == 0, out

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(timeout=30)
        if self._relay is not None:
            self._relay.terminate()
            try:
                self._relay.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._relay.kill()
                self._relay.wait(timeout=10)
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._reader.join(timeout=5)


# --- NTP probes: the packets ntpdig (mode 3), ntpq -c rv (mode 6) and ntpdc -c
# monlist (mode 7) send, to the guest's port 123 through the forwarded UDP port.


def ntp_client_request() -> bytes:
    """Mode 3 (client), version 4; the transmit time is a marker echoed as origin."""
    return bytes([0x23]) + bytes(39) + struct.pack("!Q", 0x1234_5678_9ABC_DEF0)


def ntp_readvar_request() -> bytes:
    """Mode 6 (control), opcode 2 READVAR, association 0: `ntpq -c rv`."""
    return struct.pack("!BBHHHHH", 0x16, 0x02, 1, 0, 0, 0, 0)


def ntp_monlist_request() -> bytes:
    """Mode 7 (private), implementation XNTPD (3), request MON_GETLIST_1 (42): the
    request of the amplification attack (CVE-2013-5211)."""
    return bytes([0x17, 0x00, 0x03, 0x2A]) + bytes(4) + bytes(40)


_UDP_ASK = """
import socket, sys
port, payload, tries = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3.0)
for _ in range(tries):
    s.sendto(payload, ("127.0.0.1", port))
    try:
        print(s.recvfrom(65536)[0].hex())
        break
    except TimeoutError:
        continue
else:
    print("none")
"""

_TCP_GREETING = """
import socket, sys
port, timeout = int(sys.argv[1]), float(sys.argv[2])
try:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        print(s.recv(64).hex())
except OSError:
    print("")
"""


#: a listener for the guest: greets each connection with "open <port>"
GREETER = """import socket, sys
port = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen()
while True:
    c, _ = s.accept()
    c.sendall(b"open %d\\n" % port)
    c.close()
"""
