"""The one exception tree of repotool.

Every error says what failed, where (file, line, component, URL) and what the
user can do next.  Only ``repotool.cli`` turns these into exit codes and only
the web app turns them into HTTP status codes.

::

    RepotoolError
     ├── ConfigError              repotool.toml is missing, unreadable or invalid
     │    └── ProjectNotFoundError  no repotool.toml in the working folder or above it
     ├── ToolError                an outside program could not do its job
     │    ├── ToolMissingError     the program is not installed (names the Debian package)
     │    └── ToolFailedError      the program ran and exited non-zero
     ├── BuildError               a component could not be built
     │    ├── SpecError            a .spec or its sources are wrong
     │    ├── UnknownComponentError
     │    └── BuildCacheError      a build-cache entry in the state folder is damaged
     ├── SigningError             keys, signatures, verification
     │    ├── KeyUnavailableError  missing, expired or unusable signing key
     │    │    ├── WeakKeyError     weaker than RSA-3072/Ed25519 (unless [key] allow_weak_key)
     │    │    └── KeyAgentError    a forwarded agent socket is silent, or its key files are here
     │    ├── BadSignatureError    a package or file fails signature/digest checks
     │    ├── SigningStateError    a signing file in the state folder is damaged
     │    ├── KeyRotationError     a key lifecycle step refused (rotation twice, key expires first)
     │    └── CompromisedKeyError  a publish would name a package signed by a compromised key
     ├── PublishError             the repository could not be published
     │    ├── LockHeldError        another publish is running
     │    ├── CompatibilityError   a package needs rpm features a target lacks
     │    └── UnsafePathError      a name with control characters, or a link out of public/
     ├── AdvisoryError            an advisory or release record is invalid
     │    └── RecordInvalidError   problems in web/content records (file, line, field, fix)
     │         ├── AdvisoryMismatchError  a fixed package is not in its target's repository
     │         └── CsafInvalidError  an advisory would make an invalid CSAF 2.0 document
     ├── MediaError               live media could not be composed
     │    ├── BaseSystemError      the live base (kernel, busybox, base repos) is missing
     │    ├── LiveRootError        toolkit packages could not be installed into the live root
     │    ├── MediaVerifyError     a finished image fails its checksum or signature check
     │    └── RespinOrderError     a respin older than the newest one (unless --force)
     ├── SiteError                the site could not be rendered
     │    ├── PublishedFileError   a file the site reads from public/ is broken
     │    └── SiteExportError      the static export could not be written into public/
     ├── AnnounceError            an announcement could not be rendered or sent
     │    ├── AlreadySentError     the announcement was sent before (use --force)
     │    ├── NothingToAnnounceError  no advisory or release with that id/version
     │    ├── MediaListMissingError   a release's media.json is absent or unreadable
     │    └── DeliveryError        SMTP failed; the message stays in the outbox, unsent
     │         ├── SmtpConnectError    connection refused, DNS, STARTTLS failed
     │         ├── SmtpTimeoutError    the server did not answer in smtp_timeout
     │         ├── SmtpAuthError       the server refused the user or password
     │         └── SmtpRejectedError   the server refused a recipient or the message
     ├── MirrorError              a mirror sync/check failed
     │    ├── MirrorIntegrityError bad signature, checksum, size, rollback, freeze
     │    └── MirrorTransportError connection refused, timeout, too slow, dropped
     └── PushError                a push of public/ to object storage failed
          ├── PushAccessError      bad destination, no credentials, access refused, no bucket
          ├── PushTransportError   the endpoint is unreachable or failed a request
          └── PushManifestError    the bucket's push manifest is not one repotool wrote
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class RepotoolError(Exception):
    """Base of every error repotool raises on purpose.

    ``what`` says what failed, ``where`` names the file/line/component/URL and
    ``hint`` says what the user can do next.
    """

    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_json(self) -> dict[str, str | None]:
        return {
            "error": type(self).__name__,
            "what": self.what,
            "where": self.where,
            "hint": self.hint,
        }


# --- configuration ---------------------------------------------------------
class ConfigError(RepotoolError):
    exit_code = 2


class ProjectNotFoundError(ConfigError):
    pass


# --- outside programs ------------------------------------------------------
class ToolError(RepotoolError):
    exit_code = 3


class ToolMissingError(ToolError):
    def __init__(self, tool: str, debian_package: str | None) -> None:
        pkg = debian_package or "the package that provides it"
        super().__init__(
            f"the program '{tool}' is not installed",
            where=tool,
            hint=f"install it with: apt-get install {pkg}",
        )
        self.tool = tool
        self.debian_package = debian_package


class ToolFailedError(ToolError):
    def __init__(
        self,
        argv: list[str],
        returncode: int,
        stderr: str,
        *,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        what = f"'{argv[0]}' exited with status {returncode}"
        if tail:
            what += ":\n    " + tail.replace("\n", "\n    ")
        super().__init__(what, where=where, hint=hint)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


# --- build -----------------------------------------------------------------
class BuildError(RepotoolError):
    exit_code = 4


class SpecError(BuildError):
    pass


class UnknownComponentError(BuildError):
    pass


class BuildCacheError(BuildError):
    pass


# --- signing ---------------------------------------------------------------
class SigningError(RepotoolError):
    exit_code = 5


class KeyUnavailableError(SigningError):
    pass


class BadSignatureError(SigningError):
    pass


class WeakKeyError(KeyUnavailableError):
    pass


class SigningStateError(SigningError):
    pass


class KeyRotationError(SigningError):
    """A ``repotool key`` step refused before anything is published: the reason and the fix."""


class CompromisedKeyError(SigningError):
    """A package a new repository generation would name is signed by a key that
    ``repotool key compromised`` took out of service (the file and the fix named)."""


class KeyAgentError(KeyUnavailableError):
    """``[key] agent = "forwarded"``: the agent socket (named) does not answer, or a private
    key file of the release key is on the release machine after all."""


# --- publishing ------------------------------------------------------------
class PublishError(RepotoolError):
    exit_code = 6


class LockHeldError(PublishError):
    pass


class CompatibilityError(PublishError):
    pass


class UnsafePathError(PublishError):
    """A name from input that cannot be a published file name (control characters,
    '/', leading '.'), or a symlink leading a published path outside public/."""


# --- advisories and release records ---------------------------------------
class AdvisoryError(RepotoolError):
    exit_code = 7


@dataclass(frozen=True)
class RecordProblem:
    """One problem in one record file: where it is, what is wrong, how to fix it."""

    file: str
    line: int
    field: str
    what: str
    fix: str

    def __str__(self) -> str:
        field = f" {self.field}:" if self.field else ""
        return f"{self.file}:{self.line}:{field} {self.what}\n      fix: {self.fix}"


class RecordInvalidError(AdvisoryError):
    """Every problem found in the advisory/release/news files, all at once."""

    def __init__(self, problems: Sequence[RecordProblem]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        lines = "\n  ".join(str(p) for p in self.problems)
        files = sorted({p.file for p in self.problems})
        super().__init__(
            f"{n} problem{'s' if n != 1 else ''} in the records:\n  {lines}",
            where=files[0] if len(files) == 1 else None,
            hint="fix each file as its 'fix:' line says, then run: repotool advisory check",
        )

    def __str__(self) -> str:
        # each problem already names its file and line
        return f"{self.what}\n  hint: {self.hint}"

    @classmethod
    def one(cls, problem: RecordProblem) -> RecordInvalidError:
        return cls([problem])

    def to_json(self) -> dict[str, object]:  # type: ignore[override]
        return {
            **super().to_json(),
            "problems": [
                {"file": p.file, "line": p.line, "field": p.field, "what": p.what, "fix": p.fix}
                for p in self.problems
            ],
        }


class AdvisoryMismatchError(RecordInvalidError):
    """An advisory names a package that its target's repository does not hold."""


class CsafInvalidError(RecordInvalidError):
    """An advisory whose CSAF 2.0 export would be invalid (refused before publishing)."""


# --- live media ------------------------------------------------------------
class MediaError(RepotoolError):
    exit_code = 8


class BaseSystemError(MediaError):
    pass


class LiveRootError(MediaError):
    pass


class MediaVerifyError(MediaError):
    pass


class RespinOrderError(MediaError):
    """Media of a respin older than the newest: they would hold the newer packages."""


# --- site ------------------------------------------------------------------
class SiteError(RepotoolError):
    exit_code = 9


class PublishedFileError(SiteError):
    pass


class SiteExportError(SiteError):
    pass


# --- announcements ---------------------------------------------------------
class AnnounceError(RepotoolError):
    exit_code = 10


class AlreadySentError(AnnounceError):
    pass


class NothingToAnnounceError(AnnounceError):
    pass


class MediaListMissingError(AnnounceError):
    pass


class DeliveryError(AnnounceError):
    pass


class SmtpConnectError(DeliveryError):
    pass


class SmtpTimeoutError(DeliveryError):
    pass


class SmtpAuthError(DeliveryError):
    pass


class SmtpRejectedError(DeliveryError):
    pass


# --- mirrors ---------------------------------------------------------------
class MirrorError(RepotoolError):
    exit_code = 11


class MirrorIntegrityError(MirrorError):
    pass


class MirrorTransportError(MirrorError):
    pass


# --- push to object storage -----------------------------------------------
class PushError(RepotoolError):
    exit_code = 12


class PushAccessError(PushError):
    pass


class PushTransportError(PushError):
    pass


class PushManifestError(PushError):
    pass
