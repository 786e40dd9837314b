"""A real SMTP server on loopback (aiosmtpd) for the tests that send announcements.

Shared by tests/announce/test_announce_send.py, tests/test_cli.py,
tests/test_readme_night.py and tests/test_release_media.py.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

USER, PASSWORD = "announcer", "correct horse"


@dataclass
class ListServer:
    """aiosmtpd handler of the list: records what arrives, can refuse the recipient."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse_recipients: bool = False

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_recipients:
            return f"550 5.1.1 <{address}>: no such list here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert envelope.original_content is not None
        self.received.append(
            (str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 2.0.0 queued"


def check_login(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(
    port: int, handler: ListServer, *, tls: tuple[Path, Path] | None = None
) -> Iterator[ListServer]:
    """aiosmtpd on 127.0.0.1:port; with ``tls``: STARTTLS, then a login is required."""
    kwargs: dict[str, Any] = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        kwargs = {
            "tls_context": context,
            "require_starttls": True,
            "auth_required": True,
            "auth_require_tls": True,
            "authenticator": check_login,
        }
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10, **kwargs)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()
