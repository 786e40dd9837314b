"""A release key on another machine, reached through a forwarded gpg-agent socket.

With ``[key] agent = "forwarded"`` the release machine's GNUPGHOME holds only the
public key; its standard agent socket (``gpgconf --list-dirs agent-socket``) is the
key machine's restricted socket (``agent-extra-socket`` there), forwarded with
``ssh -R`` (or the agent of a smartcard).  Every gpg call then runs with
``--no-autostart`` so that a missing forward is an error, never a fresh local
agent without the key.  This module checks, before any work, that the socket
answers and that no private key file of the release key sits on this machine.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path

from repotool.errors import KeyAgentError
from repotool.process import Runner

#: added to every gpg (and rpmsign's gpg) call of a forwarded-agent signer
NO_AUTOSTART = "--no-autostart"


def agent_socket(home: Path, runner: Runner) -> Path:
    """Where gpg run with GNUPGHOME ``home`` looks for its agent."""
    done = runner.run(
        ["gpgconf", "--homedir", str(home), "--list-dirs", "agent-socket"],
        where=f"GNUPGHOME {home}",
    )
    return Path(done.text.strip())


def forward_hint(sock: Path) -> str:
    return (
        f"start the forwarding from the machine that holds the key, e.g. "
        f"ssh -R {sock}:<its agent-extra-socket> <this host> (on the key machine, "
        "'gpgconf --list-dirs agent-extra-socket' names it; its gpg-agent must be running), "
        "or plug in the smartcard"
    )


def agent_answer_problem(sock: Path, *, timeout: float = 10.0) -> str | None:
    """Why gpg-agent does not answer at ``sock``; None when it greets with OK."""
    if not sock.exists():
        how = "a dangling link" if sock.is_symlink() else "nothing"
        return f"there is {how} at the gpg-agent socket {sock}"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(sock))
            greeting = conn.recv(256)
    except OSError as e:
        return f"the gpg-agent socket {sock} does not answer ({e.strerror or e})"
    if not greeting.startswith(b"OK"):
        return f"the gpg-agent socket {sock} closed without a gpg-agent greeting"
    return None


def keygrips(listing: str) -> list[str]:
    """The keygrips (``grp`` lines) of a ``gpg --with-colons --with-keygrip`` listing."""
    return [f[9] for f in (line.split(":") for line in listing.splitlines()) if f[0] == "grp"]


def local_private_key_files(home: Path, grips: Iterable[str]) -> list[Path]:
    """Private key files of these keygrips inside ``home`` (none, when forwarded)."""
    folder = home / "private-keys-v1.d"
    return [folder / f"{g}.key" for g in grips if (folder / f"{g}.key").exists()]


def check_forwarded_agent(home: Path, fingerprint: str, runner: Runner) -> Path:
    """Before any work: the forwarded agent answers, and the release key has no
    private key file here.  Returns the socket path (for later error hints)."""
    sock = agent_socket(home, runner)
    problem = agent_answer_problem(sock)
    if problem is not None:
        raise KeyAgentError(
            f'{problem}; [key] agent = "forwarded" signs only through it',
            where=f"GNUPGHOME {home}",
            hint=forward_hint(sock),
        )
    listing = runner.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--no-tty",
            NO_AUTOSTART,
            "--with-colons",
            "--with-keygrip",
            "--list-keys",
            fingerprint,
        ],
        check=False,
        where=f"GNUPGHOME {home}",
    )
    found = local_private_key_files(home, keygrips(listing.text))
    if found:
        raise KeyAgentError(
            f"a private key file of the release key {fingerprint} is on this machine "
            f'({found[0]}), but [key] agent = "forwarded" keeps the key elsewhere',
            where=f"GNUPGHOME {home}",
            hint="delete the private key files of the release key from this GNUPGHOME "
            '(after checking the key machine has them), or set agent = "local"',
        )
    return sock
