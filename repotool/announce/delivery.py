"""Handing a finished message to the list's SMTP server.

:class:`SmtpTransport` is the one-method seam the announce flow is given;
:class:`SmtplibTransport` is the real one (smtplib, optional STARTTLS and
login).  Every failure of the server or the network becomes one
:class:`~repotool.errors.DeliveryError` subclass naming ``host:port`` and what
to do; nothing else leaks out.

The password never comes from the command line: :func:`smtp_settings` reads
it from ``[announce] smtp_password_file`` or the environment variable named by
``smtp_password_env``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from repotool.config import Config
from repotool.errors import (
    ConfigError,
    DeliveryError,
    SmtpAuthError,
    SmtpConnectError,
    SmtpRejectedError,
    SmtpTimeoutError,
)


class SmtpTransport(Protocol):
    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> None:
        """Deliver ``message`` (CRLF bytes, sent as they are) or raise DeliveryError."""
        ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    starttls: bool
    user: str
    password: str | None
    timeout: float
    cafile: Path | None = None

    @property
    def where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def smtp_settings(cfg: Config, environ: Mapping[str, str]) -> SmtpSettings:
    """The [announce] SMTP settings with the password read from its file or the
    environment.  Refuses to send a password unencrypted to another machine."""
    a = cfg.announce
    where = "repotool.toml [announce]"
    password: str | None = None
    if a.smtp_user:
        if a.smtp_password_file is not None:
            path = cfg.path(a.smtp_password_file)
            try:
                password = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as e:
                raise ConfigError(
                    f"cannot read the SMTP password file: {e.strerror}",
                    where=str(path),
                    hint="create it (mode 0600) holding only the password, or fix "
                    "[announce] smtp_password_file",
                ) from e
        elif environ.get(a.smtp_password_env):
            password = environ[a.smtp_password_env]
        else:
            raise ConfigError(
                f"smtp_user is '{a.smtp_user}' but no password is given",
                where=where,
                hint=f"put it in a file named by smtp_password_file, or in the environment "
                f"variable {a.smtp_password_env} (never on the command line)",
            )
        if not a.smtp_starttls and not _is_loopback(a.smtp_host):
            raise ConfigError(
                f"the SMTP password would cross the network unencrypted to {a.smtp_host}",
                where=where,
                hint="set smtp_starttls = true (or use a relay on 127.0.0.1)",
            )
    return SmtpSettings(
        host=a.smtp_host,
        port=a.smtp_port,
        starttls=a.smtp_starttls,
        user=a.smtp_user,
        password=password,
        timeout=a.smtp_timeout,
        cafile=cfg.path(a.smtp_cafile) if a.smtp_cafile else None,
    )


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(words.split())}"


class SmtplibTransport:
    """Sends through smtplib; one connection per message."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> None:
        s = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            try:
                # connecting in the constructor also gives STARTTLS the name to check
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                self._greet(smtp)
                refused = smtp.sendmail(sender, list(recipients), message)
            except (smtplib.SMTPException, OSError) as e:
                raise delivery_error(e, s) from e
            if refused:
                first, (code, text) = next(iter(refused.items()))
                raise SmtpRejectedError(
                    f"the server refused the recipient {first}: {_reply(code, text)}",
                    where=s.where,
                    hint="check [announce] list_address",
                )
            # the message was accepted; a lost goodbye changes nothing
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
        finally:
            # after a failure do not wait for the server again: just drop the line
            if smtp is not None:
                smtp.close()

    def _greet(self, smtp: smtplib.SMTP) -> None:
        """EHLO, then STARTTLS and login as configured."""
        s = self.settings
        smtp.ehlo()
        if s.starttls:
            context = ssl.create_default_context(cafile=str(s.cafile) if s.cafile else None)
            smtp.starttls(context=context)
            smtp.ehlo()
        if s.user:
            smtp.login(s.user, s.password or "")


def _check(s: SmtpSettings) -> str:
    return (
        f"check [announce] smtp_host and smtp_port, and that the server at {s.host}:{s.port} runs"
    )


def delivery_error(e: smtplib.SMTPException | OSError, s: SmtpSettings) -> DeliveryError:
    """The :class:`DeliveryError` that says what smtplib's or the network's ``e`` means."""
    if isinstance(e, TimeoutError | smtplib.SMTPServerDisconnected):
        return _no_answer(e, s)
    if isinstance(e, smtplib.SMTPException):
        return _smtp_refusal(e, s)
    return _network_error(e, s)


def _no_answer(e: BaseException, s: SmtpSettings) -> DeliveryError:
    # smtplib reports a reply that never came as a lost connection
    if not isinstance(e, TimeoutError) and not isinstance(e.__context__, TimeoutError):
        return SmtpConnectError(
            f"the server closed the connection: {e}", where=s.where, hint=_check(s)
        )
    return SmtpTimeoutError(
        f"the server did not answer within {s.timeout:g} s",
        where=s.where,
        hint=f"{_check(s)}; a slow server may need a larger [announce] smtp_timeout",
    )


def _smtp_refusal(e: smtplib.SMTPException, s: SmtpSettings) -> DeliveryError:
    where = s.where
    if isinstance(e, smtplib.SMTPAuthenticationError):
        return SmtpAuthError(
            f"the server refused the login of user '{s.user}': {_reply(e.smtp_code, e.smtp_error)}",
            where=where,
            hint="check [announce] smtp_user and the password in smtp_password_file "
            "or the environment",
        )
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        first, (code, text) = next(iter(e.recipients.items()))
        return SmtpRejectedError(
            f"the server refused the recipient {first}: {_reply(code, text)}",
            where=where,
            hint="check [announce] list_address, and that this server accepts "
            "mail for the list from the sender",
        )
    if isinstance(e, smtplib.SMTPSenderRefused):
        return SmtpRejectedError(
            f"the server refused the sender {e.sender}: {_reply(e.smtp_code, e.smtp_error)}",
            where=where,
            hint="check [announce] from_address, and that the list accepts posts from it",
        )
    if isinstance(e, smtplib.SMTPDataError):
        return SmtpRejectedError(
            f"the server refused the message: {_reply(e.smtp_code, e.smtp_error)}",
            where=where,
            hint="read the server's reason above; fix and send again",
        )
    if isinstance(e, smtplib.SMTPNotSupportedError):
        wanted = "STARTTLS" if s.starttls else "AUTH"
        return SmtpConnectError(
            f"the server does not offer {wanted}: {e}",
            where=where,
            hint="set [announce] smtp_starttls / smtp_user to what the server supports",
        )
    if isinstance(e, smtplib.SMTPResponseException):
        return DeliveryError(
            f"the server answered {_reply(e.smtp_code, e.smtp_error)}",
            where=where,
            hint="read the server's reason; fix and send again",
        )
    return DeliveryError(f"SMTP failed: {e}", where=where, hint=_check(s))


def _network_error(e: OSError, s: SmtpSettings) -> DeliveryError:
    if isinstance(e, ssl.SSLError):
        return SmtpConnectError(
            f"STARTTLS failed: {e.reason or e}",
            where=s.where,
            hint="trust the server's CA with [announce] smtp_cafile, or fix its certificate",
        )
    if isinstance(e, ConnectionRefusedError):
        return SmtpConnectError("connection refused", where=s.where, hint=_check(s))
    return SmtpConnectError(
        f"cannot reach the server: {e.strerror or e}", where=s.where, hint=_check(s)
    )
