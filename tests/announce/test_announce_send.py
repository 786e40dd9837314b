"""Announcements end to end: a real SMTP server on loopback (aiosmtpd), real gpg.

The release key is a throwaway key made once for the module; each test has
its own state (outbox) and public folder and reads the real web/content/.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import mailbox
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from repotool.announce.headers import header_lines
from repotool.cli import main
from repotool.media.plan import ImageRecord, manifest_json, media_names
from tests.announce.announce_support import PASSWORD, USER, ListServer, smtp_server
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
CONTENT = REPO / "web" / "content"
LIST = "perfsonar-announce@lists.perfsonar.invalid"
SENDER = "release@perfsonar.invalid"


# --- the release key ---------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    home: Path
    fingerprint: str
    public: bytes


@pytest.fixture(scope="module")
def release_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Key]:
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    subprocess.run(
        [
            *gpg,
            "--passphrase",
            "",
            "--quick-gen-key",
            "Test Release Key <rel@test.invalid>",
            "rsa3072",  # at least RSA-3072: weaker keys are refused
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    listing = subprocess.run(
        [*gpg, "--with-colons", "--list-secret-keys"], check=True, capture_output=True, text=True
    ).stdout
    fpr = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr:"))
    public = subprocess.run(
        [*gpg, "--armor", "--export", fpr], check=True, capture_output=True
    ).stdout
    yield Key(home, fpr, public)
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        check=False,
        capture_output=True,
        timeout=30,
    )


def gpg_verify(
    key: Key, folder: Path, signed: bytes, signature: bytes
) -> subprocess.CompletedProcess[str]:
    """What a reader does: a keyring holding only the published public key."""
    home = folder / "reader-gnupg"
    home.mkdir(mode=0o700, exist_ok=True)
    base = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    subprocess.run(
        [*base, "--import"], input=key.public, check=True, capture_output=True, timeout=30
    )
    (folder / "part").write_bytes(signed)
    (folder / "part.asc").write_bytes(signature)
    done = subprocess.run(
        [*base, "--verify", str(folder / "part.asc"), str(folder / "part")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        check=False,
        capture_output=True,
        timeout=30,
    )
    return done


def take_apart(raw: bytes) -> tuple[bytes, bytes]:
    """Signed part and signature of a received PGP/MIME message, as a mail reader
    finds them: between the boundary lines (RFC 3156 section 5)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/signed"
    assert msg.get_param("protocol") == "application/pgp-signature"
    assert msg.get_param("micalg") == "pgp-sha256"
    delim = b"--" + str(msg.get_boundary()).encode()
    pieces = raw.split(b"\r\n" + delim)
    signed = pieces[1].removeprefix(b"\r\n")
    sig_part = pieces[2].removeprefix(b"\r\n")
    signature = sig_part.split(b"\r\n\r\n", 1)[1]
    assert b"application/pgp-signature" in sig_part.split(b"\r\n\r\n", 1)[0]
    return signed, signature


# --- a real SMTP server on loopback ------------------------------------------------------


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the client trusts it via smtp_cafile)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@contextmanager
def silent_server(port: int) -> Iterator[None]:
    """Accepts connections (the kernel does) and never says a word."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(8)
        yield


# --- the project -------------------------------------------------------------------------


@dataclass
class Project:
    root: Path
    port: int
    key: Key

    @property
    def config(self) -> Path:
        return self.root / "repotool.toml"

    def configure(self, **announce: object) -> None:
        lines = [
            'state_dir = "state"',
            "[publish]",
            'public_dir = "public"',
            "[site]",
            f'content_dir = "{self.root / "content"}"',
            "[key]",
            'mode = "production"',
            f'fingerprint = "{self.key.fingerprint}"',
            f'gnupghome = "{self.key.home}"',
            "[announce]",
            f"smtp_port = {self.port}",
            "smtp_timeout = 1.5",
        ]
        lines += [f"{k} = {json.dumps(v)}" for k, v in announce.items()]
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def outbox(self) -> Path:
        return self.root / "state" / "outbox"

    @property
    def archive(self) -> Path:
        return self.root / "public" / "lists" / "perfsonar-announce"

    def run(
        self, capsys: pytest.CaptureFixture[str], *args: str
    ) -> tuple[int, dict[str, Any], str]:
        capsys.readouterr()
        code = main(["announce", *args, "--config", str(self.config), "--json", "--quiet"])
        out, err = capsys.readouterr()
        return code, json.loads(out), err

    def outbox_entries(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.outbox.glob("*.json"))]


@pytest.fixture
def project(tmp_path: Path, release_key: Key) -> Project:
    shutil.copytree(CONTENT, tmp_path / "content")
    p = Project(tmp_path, free_port(), release_key)
    p.configure()
    return p


def write_media(project: Project, version: str, data: bytes) -> str:
    """public/releases/<version>/media.json by the media stage's own writer."""
    import hashlib

    names = media_names(
        prefix="pS-Performance_Toolkit",
        version_label=version,
        arch="x86_64",
        volume_label="pS-Toolkit",
    )
    digest = hashlib.sha256(data).hexdigest()
    folder = project.root / "public" / "releases" / version
    folder.mkdir(parents=True)
    (folder / "media.json").write_text(
        manifest_json(
            names=names,
            product="pS-Performance Toolkit",
            source_date_epoch=1397131200,
            images=[ImageRecord("livecd", names.livecd, len(data), digest)],
            kernel="6.1.0",
            base="busybox",
            packages=["perfsonar-toolkit"],
        )
    )
    return digest


# --- tests ---------------------------------------------------------------------------------


def test_advisory_is_shown_then_sent_once_signed_and_archived(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with smtp_server(project.port, ListServer()) as server:
        code, shown, _ = project.run(capsys, "advisory", "PSSA-2014-0002")
        assert code == 0 and shown["status"] == "unsent" and shown["sent"] is False
        assert server.received == []
        queued = Path(shown["outbox"]).read_bytes()

        before = time.time()
        code, sent, _ = project.run(capsys, "advisory", "PSSA-2014-0002", "--send")
        assert code == 0, sent
        assert sent["sent"] is True and sent["status"] == "sent"
        assert len(server.received) == 1
        envelope_from, rcpts, raw = server.received[0]

    # the message that was shown is the message that arrived, byte for byte
    assert raw == queued
    assert (envelope_from, rcpts) == (SENDER, [LIST])
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"] == "pS-Performance Toolkit <release@perfsonar.invalid>"
    assert msg["To"] == LIST
    assert msg["Subject"] == (
        '[perfsonar-announce] PSSA-2014-0002 (Critical): OpenSSL "Heartbleed": regenerate '
        "the host key and certificate (CVE-2014-0160)"
    )
    assert msg["Message-ID"] == sent["message_id"] == shown["message_id"]
    assert msg["List-Id"].endswith("<perfsonar-announce.lists.perfsonar.invalid>")
    sent_date = email.utils.parsedate_to_datetime(msg["Date"]).timestamp()
    assert before - 600 < sent_date <= time.time() + 1

    signed, signature = take_apart(raw)
    verified = gpg_verify(project.key, project.root, signed, signature)
    assert verified.returncode == 0, verified.stderr
    assert "Good signature" in verified.stderr
    tampered = gpg_verify(
        project.key, project.root, signed.replace(b"yum update", b"yum remove"), signature
    )
    assert tampered.returncode != 0

    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "       yum update\n" in text
    assert "       /usr/sbin/perfsonar-regenerate-host-cert\n" in text
    assert "  http://127.0.0.1:8080/advisories/PSSA-2014-0002/\n" in text
    assert [ln for ln in text.splitlines() if len(ln) > 72] == []

    # the list archive: index, the message as sent, the mbox
    index = json.loads((project.archive / "archive.json").read_text())
    assert index == [
        {
            "message_id": sent["message_id"],
            "subject": msg["Subject"],
            "date": sent["sent_at"][:19] + "Z",
            "kind": "advisory",
            "ref": "PSSA-2014-0002",
            "file": sent["file"],
        }
    ]
    assert (project.archive / sent["file"]).read_bytes() == raw
    box = mailbox.mbox(str(project.archive / "archive.mbox"))
    try:
        archived = list(box)
        assert [m["Message-ID"] for m in archived] == [sent["message_id"]]
        # a reader of the mbox download can verify it too
        again = archived[0].as_bytes().replace(b"\n", b"\r\n")
        assert take_apart(again)[0] == signed
    finally:
        box.close()


def test_second_send_is_refused_unless_forced(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with smtp_server(project.port, ListServer()) as server:
        assert project.run(capsys, "advisory", "PSSA-2014-0001", "--send")[0] == 0
        code, out, err = project.run(capsys, "advisory", "PSSA-2014-0001", "--send")
        assert code == 10
        assert out["error"] == "AlreadySentError"
        assert "the advisory PSSA-2014-0001 was announced already" in err
        assert "repotool announce advisory PSSA-2014-0001 --send --force" in err
        assert len(server.received) == 1

        # showing it again writes nothing and says it was sent
        code, out, _ = project.run(capsys, "advisory", "PSSA-2014-0001")
        assert code == 0 and out["already_sent"]
        assert len(project.outbox_entries()) == 1

        code, forced, _ = project.run(capsys, "advisory", "PSSA-2014-0001", "--send", "--force")
        assert code == 0
        assert len(server.received) == 2
    ids = [email.message_from_bytes(r[2])["Message-ID"] for r in server.received]
    assert ids[0] != ids[1] == forced["message_id"]
    index = json.loads((project.archive / "archive.json").read_text())
    assert [e["message_id"] for e in index] == ids


def test_release_respin_announces_media_with_checksums(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = write_media(project, "3.3.2-2", b"live image bytes")
    with smtp_server(project.port, ListServer()) as server:
        code, out, _ = project.run(capsys, "release", "3.3.2-2", "--send")
        assert code == 0, out
    raw = server.received[0][2]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "[perfsonar-announce] pS-Performance Toolkit 3.3.2-2: new live media"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "- pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso (livecd, 16 bytes)\n" in text
    assert f"  {digest}\n" in text
    assert "  http://127.0.0.1:8080/releases/3.3.2/#respin-3.3.2-2\n" in text
    signed, signature = take_apart(raw)
    assert gpg_verify(project.key, project.root, signed, signature).returncode == 0


def test_release_without_media_is_refused_unless_told(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = project.run(capsys, "release", "3.3.2")
    assert code == 10 and out["error"] == "MediaListMissingError"
    assert f"{project.root}/public/releases/3.3.2/media.json: the live media" in err
    assert "--without-media" in err
    assert not project.outbox.exists() or project.outbox_entries() == []
    code, out, _ = project.run(capsys, "release", "3.3.2", "--without-media")
    assert code == 0
    assert "The live media of 3.3.2 are not published yet" in out["text"]


def _assert_unsent_then_delivered(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    err: str,
    server: ListServer,
    tls: tuple[Path, Path] | None = None,
) -> None:
    """After a failure the message waits in the outbox; a later --send delivers it."""
    (entry,) = project.outbox_entries()
    assert entry["status"] == "unsent" and len(entry["attempts"]) == 1
    assert f"stays unsent in the outbox ({project.outbox / entry['stem']}.eml)" in err
    assert "send it later with: repotool announce advisory PSSA-2014-0001 --send" in err
    with smtp_server(project.port, server, tls=tls):
        code, out, _ = project.run(capsys, "advisory", "PSSA-2014-0001", "--send")
    assert code == 0, out
    assert out["message_id"] == entry["message_id"]  # the same message, not a new one
    assert (project.outbox / f"{entry['stem']}.eml").read_bytes() == server.received[-1][2]
    assert project.outbox_entries()[0]["status"] == "sent"


def test_connection_refused_keeps_the_message(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = project.run(capsys, "advisory", "PSSA-2014-0001", "--send")
    assert code == 10 and out["error"] == "SmtpConnectError"
    assert f"SMTP server 127.0.0.1:{project.port}: connection refused" in err
    _assert_unsent_then_delivered(project, capsys, err, ListServer())


def test_recipient_rejected_keeps_the_message(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = ListServer(refuse_recipients=True)
    with smtp_server(project.port, handler):
        code, out, err = project.run(capsys, "advisory", "PSSA-2014-0001", "--send")
    assert code == 10 and out["error"] == "SmtpRejectedError"
    assert (
        f"SMTP server 127.0.0.1:{project.port}: the server refused the recipient {LIST}: "
        f"550 5.1.1 <{LIST}>: no such list here"
    ) in err
    assert handler.received == []
    handler.refuse_recipients = False
    _assert_unsent_then_delivered(project, capsys, err, handler)


def test_authentication_failure_keeps_the_message(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server_cert: tuple[Path, Path],
) -> None:
    tls = {"smtp_starttls": True, "smtp_cafile": str(server_cert[0])}
    project.configure(smtp_user=USER, **tls)
    monkeypatch.setenv("REPOTOOL_SMTP_PASSWORD", "wrong")
    handler = ListServer()
    with smtp_server(project.port, handler, tls=server_cert):
        code, out, err = project.run(capsys, "advisory", "PSSA-2014-0001", "--send")
    assert code == 10 and out["error"] == "SmtpAuthError"
    assert f"the server refused the login of user '{USER}': 535" in err
    assert "wrong" not in err
    # the right password, from a file this time
    monkeypatch.delenv("REPOTOOL_SMTP_PASSWORD")
    (project.root / "smtp-password").write_text(PASSWORD + "\n")
    project.configure(smtp_user=USER, smtp_password_file=str(project.root / "smtp-password"), **tls)
    _assert_unsent_then_delivered(project, capsys, err, handler, tls=server_cert)


def test_untrusted_server_certificate_is_refused(
    project: Project, capsys: pytest.CaptureFixture[str], server_cert: tuple[Path, Path]
) -> None:
    project.configure(smtp_starttls=True)  # the system CAs do not know the test CA
    handler = ListServer()
    with smtp_server(project.port, handler, tls=server_cert):
        code, out, err = project.run(capsys, "advisory", "PSSA-2014-0001", "--send")
    assert code == 10 and out["error"] == "SmtpConnectError"
    assert (
        f"SMTP server 127.0.0.1:{project.port}: STARTTLS failed: CERTIFICATE_VERIFY_FAILED" in err
    )
    assert "smtp_cafile" in err
    assert handler.received == []


def test_server_that_never_answers_times_out(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with silent_server(project.port):
        started = time.monotonic()
        code, out, err = project.run(capsys, "advisory", "PSSA-2014-0001", "--send")
        assert time.monotonic() - started < 15
    assert code == 10 and out["error"] == "SmtpTimeoutError"
    assert f"SMTP server 127.0.0.1:{project.port}: the server did not answer within 1.5 s" in err
    _assert_unsent_then_delivered(project, capsys, err, ListServer())


def test_missing_password_is_found_before_signing(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPOTOOL_SMTP_PASSWORD", raising=False)
    project.configure(smtp_user=USER)
    code, out, err = project.run(capsys, "advisory", "PSSA-2014-0001", "--send")
    assert code == 2 and out["error"] == "ConfigError"
    assert "smtp_user is 'announcer' but no password is given" in err
    assert "REPOTOOL_SMTP_PASSWORD (never on the command line)" in err
    assert not project.outbox.exists()


def test_changed_records_replace_the_unsent_message(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    first = project.run(capsys, "advisory", "PSSA-2014-0001")[1]
    again = project.run(capsys, "advisory", "PSSA-2014-0001")[1]
    assert again["reused"] is True and again["message_id"] == first["message_id"]
    adv = project.root / "content" / "advisories" / "PSSA-2014-0001.md"
    adv.write_text(adv.read_text().replace("monlist queries (CVE", "monlist (CVE", 1))
    changed = project.run(capsys, "advisory", "PSSA-2014-0001")[1]
    assert changed["reused"] is False and changed["message_id"] != first["message_id"]
    assert [e["message_id"] for e in project.outbox_entries()] == [changed["message_id"]]


def test_outbox_and_archive_commands(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    with smtp_server(project.port, ListServer()):
        project.run(capsys, "advisory", "PSSA-2014-0001", "--send")
    project.run(capsys, "advisory", "PSSA-2014-0002")
    code = main(["announce", "outbox", "--config", str(project.config)])
    out = capsys.readouterr().out
    assert code == 0
    assert "sent" in out.splitlines()[0] and "PSSA-2014-0001" in out.splitlines()[0]
    assert out.splitlines()[1].startswith("unsent") and "PSSA-2014-0002" in out.splitlines()[1]
    shutil.rmtree(project.root / "public")
    code = main(["announce", "archive", "--config", str(project.config)])
    assert code == 0
    assert "(1 message)" in capsys.readouterr().out
    index = json.loads((project.archive / "archive.json").read_text())
    assert [e["ref"] for e in index] == ["PSSA-2014-0001"]
    assert (project.archive / index[0]["file"]).exists()


def test_help_teaches_the_workflow() -> None:
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "repotool"), "announce", "advisory", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0
    text = done.stdout
    for words in (
        "--send",
        "--force",
        "outbox",
        "never from the command line",
        "PGP/MIME",
        "repotool announce advisory PSSA-2014-0001 --send --json",
        "stays unsent in the outbox",
    ):
        assert words in " ".join(text.split()), words


def test_the_site_reads_the_archive(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """The contract with the site: it renders the list pages from archive.json."""
    from repotool.site.published import parse_archive

    with smtp_server(project.port, ListServer()):
        sent = project.run(capsys, "advisory", "PSSA-2014-0001", "--send")[1]
    path = project.archive / "archive.json"
    (entry,) = parse_archive(path.read_bytes(), "perfsonar-announce", str(path))
    assert entry.message_id == sent["message_id"]
    assert entry.url == f"/lists/perfsonar-announce/{sent['file']}"


def _title_of_length(n: int) -> str:
    """A title of exactly ``n`` characters mixing ASCII, Latin-1, quotes, Cyrillic,
    CJK and an emoji (4 UTF-8 bytes), so every way of cutting an encoded word occurs."""
    words = ["OpenSSL", "“Heartbleed”", "Café", "Ж", "漢字", "😀", "naïve", "x=?y", "(a_b)"]
    text = ""
    i = 0
    while len(text) < n:
        text += ("" if not text else " ") + words[(i * 7 + n) % len(words)]
        i += 1
    text = text[:n].rstrip()
    return text + "é" * (n - len(text))


def _subject_of(title: str) -> str:
    return f"[perfsonar-announce] PSSA-2014-0002 (Critical): {title}"


def _check_wire_header(head: bytes, title: str) -> None:
    head.decode("ascii")  # 7-bit headers: no raw UTF-8 on the wire
    assert max(len(line) for line in head.split(b"\r\n")) <= 78, head
    assert b"=?utf-8?q?" in head or title.isascii()


#: every length from 1 to 200 goes through the header encoder; these (the reported
#: titles and the lengths around the 78-column fold) also go through a real send
SENT_LENGTHS = (1, 2, 9, 27, 28, 29, 40, 50, 51, 52, 78, 120, 200)


def test_titles_of_every_length_encode_to_7bit_folded_headers() -> None:
    """Issue 12.5: a short non-ASCII title ("Café") crashed the header code; every
    length must come out RFC 2047-encoded, 7-bit, in lines of at most 78, and read
    back as written."""
    titles = ["Café", "OpenSSL “Heartbleed”"] + [_title_of_length(n) for n in range(1, 201)]
    assert {len(t) for t in titles} >= set(range(1, 201))
    for title in titles:
        head = header_lines([("Subject", _subject_of(title))])
        _check_wire_header(head.rstrip(b"\r\n"), title)
        msg = email.message_from_bytes(head + b"\r\nbody\r\n", policy=email.policy.default)
        assert msg["Subject"] == _subject_of(title), title


def test_titles_of_many_lengths_reach_the_list_intact(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same through `announce advisory --send` to a real SMTP server."""
    adv = project.root / "content" / "advisories" / "PSSA-2014-0002.md"
    original = adv.read_text(encoding="utf-8")
    old_title = next(ln for ln in original.splitlines() if ln.startswith("title:"))
    titles = ["Café", "OpenSSL “Heartbleed”"] + [_title_of_length(n) for n in SENT_LENGTHS]
    with smtp_server(project.port, ListServer()) as server:
        for title in titles:
            adv.write_text(
                original.replace(old_title, f"title: {json.dumps(title, ensure_ascii=False)}"),
                encoding="utf-8",
            )
            code, _, err = project.run(capsys, "advisory", "PSSA-2014-0002", "--send", "--force")
            assert code == 0, (title, err)
    assert len(server.received) == len(titles)
    for title, (_, _, raw) in zip(titles, server.received, strict=True):
        _check_wire_header(raw.split(b"\r\n\r\n", 1)[0], title)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Subject"] == _subject_of(title)


def test_an_id_or_version_with_a_control_character_is_refused_at_once(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the command is given names outbox files and the subject: checked first."""
    for args, said in (
        (["advisory", "PSSA-2014-0001\n"], "argument ID: 'PSSA-2014-0001\\n' is not an advisory"),
        (["release", "3.3.2\u202e"], "argument VERSION: '3.3.2\\u202e' is not a release"),
    ):
        with pytest.raises(SystemExit) as info:
            main(["announce", *args, "--config", str(project.config)])
        assert info.value.code == 2
        assert said in capsys.readouterr().err
    assert not project.outbox.exists()
