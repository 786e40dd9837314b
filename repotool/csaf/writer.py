"""Thin shell: sign the CSAF documents and swap the tree into public/ at once.

``public/.well-known/csaf`` is a symlink to a generation folder
``public/.well-known/.csaf-<digest>`` (the digest of every planned file and of
the published key).  A new generation is written and signed in a staging
folder on the same file system, renamed, and the link is replaced with one
``os.replace``: a reader or a mirror sees the whole old tree or the whole new
one, never a document whose ``.asc`` or ``.sha512`` belongs to another version.
The previous generation stays (a download in flight still finds its files);
older ones are removed.

Every new signature is made by the release key and checked with gpgv against
the published key (``public/keys/<public_key_name>``) before it is published;
an unchanged document keeps its signature when that still verifies.  When the
records and the published key are unchanged, nothing is signed and no key is
opened.

Nothing is written when the release key on this machine is not the published
one (a site built before any release, or on a machine without the key): the
documents must verify against the published key, so the writer says so and
leaves the tree as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.csaf.layout import WELL_KNOWN, settings_from_config
from repotool.csaf.provider import ProviderTree, plan_tree
from repotool.errors import BadSignatureError, SiteExportError
from repotool.evr import NEVRA
from repotool.process import SubprocessRunner
from repotool.records.advisories import read_repo_packages
from repotool.records.loading import load_records
from repotool.report import Reporter
from repotool.signing.signer import Signer

GENERATION_PREFIX = ".csaf-"
STAGING_PREFIX = ".csaf-staging-"
#: the file open_signer leaves beside a development key (repotool.signing.release_key)
DEV_KEY_MARKER = "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION"


@dataclass(frozen=True)
class CsafResult:
    #: public/.well-known/csaf
    folder: Path
    #: the documents' paths under folder
    documents: tuple[str, ...] = ()
    #: documents signed in this run (the others kept their signature)
    signed: tuple[str, ...] = ()
    unchanged: bool = False
    #: why nothing was written, when nothing was
    skipped: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def configured_fingerprint(cfg: Config) -> str | None:
    """The release key's fingerprint as the configuration names it, without opening it.

    None in development mode before the development key was made (nothing was
    released from this folder yet).
    """
    if cfg.key.mode == "development":
        try:
            return (cfg.state / "gnupg" / DEV_KEY_MARKER).read_text().split()[0].upper()
        except (OSError, IndexError):
            return None
    return cfg.key.fingerprint.replace(" ", "").upper() or None


def published_nevras(cfg: Config) -> dict[str, set[NEVRA]]:
    """Each configured target whose repository is published -> the NEVRAs it holds."""
    out: dict[str, set[NEVRA]] = {}
    for target in cfg.targets:
        for arch in target.arches:
            repo = cfg.public_dir / "repo" / target.name / arch
            if (repo / "repodata" / "repomd.xml").is_file():
                out.setdefault(target.name, set()).update(read_repo_packages(repo))
    return out


def tree_digest(tree: ProviderTree, key: bytes) -> str:
    h = hashlib.sha256()
    for rel, data in sorted(tree.all_files().items()):
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    h.update(b"key\0" + hashlib.sha256(key).digest())
    return h.hexdigest()[:16]


def publish_csaf(
    cfg: Config,
    reporter: Reporter,
    public: Path | None = None,
    *,
    open_key: Callable[[], Signer] | None = None,
) -> CsafResult:
    """Write the CSAF provider tree of every security advisory into ``public``.

    The repositories and the published key are read from ``cfg.public_dir``;
    ``public`` (default the same) is where the tree goes.  Raises
    CsafInvalidError (nothing written) when an advisory would make an invalid
    document, BadSignatureError when the release key is not the published one.
    """
    public = public if public is not None else cfg.public_dir
    link = public / WELL_KNOWN
    key_path = cfg.public_dir / "keys" / cfg.key.public_key_name
    fingerprint = configured_fingerprint(cfg)
    if not key_path.is_file() or fingerprint is None:
        why = (
            f"the release key is not published yet ({key_path})"
            if not key_path.is_file()
            else "no release key was made in this project yet"
        )
        reporter.info(f"CSAF documents not written: {why}; 'repotool release' writes them")
        return CsafResult(link, skipped=why)
    key = key_path.read_bytes()
    records = load_records(cfg.path(cfg.site.content_dir))
    tree = plan_tree(
        records.advisories, published_nevras(cfg), settings_from_config(cfg, fingerprint)
    )
    paths = tuple(d.path for d in tree.documents)
    generation = GENERATION_PREFIX + tree_digest(tree, key)
    parent = link.parent
    current = parent / os.readlink(link) if link.is_symlink() else None
    if (
        current is not None
        and current.name == generation
        and all((current / (p + ".asc")).is_file() for p in paths)
    ):
        return CsafResult(link, paths, unchanged=True)

    signer = (open_key or (lambda: _open_signer(cfg, reporter)))()
    if signer.public_key_armored().encode() != key:
        raise BadSignatureError(
            f"the release key {signer.fingerprint} is not the published key, so CSAF "
            "signatures made with it would not verify",
            where=str(key_path),
            hint="publish the key with 'repotool release', or configure the key that is published",
        )
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent))
    except OSError as e:
        raise SiteExportError(
            f"cannot create the CSAF folder: {e.strerror}",
            where=str(parent),
            hint="check the permissions of the publish folder",
        ) from e
    try:
        signed = _stage(tree, staging, current, signer)
        _swap(staging, parent / generation, link)
    except OSError as e:
        raise SiteExportError(
            f"cannot write the CSAF documents: {e.strerror}",
            where=str(getattr(e, "filename", None) or parent),
            hint="check free space and permissions of the publish folder",
        ) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(parent, keep={generation, current.name if current is not None else generation})
    reporter.info(
        f"CSAF: {len(paths)} document(s) in {link}, {len(signed)} newly signed "
        f"by {signer.fingerprint}"
    )
    return CsafResult(link, paths, tuple(signed))


def _open_signer(cfg: Config, reporter: Reporter) -> Signer:
    from repotool.signing.release_key import open_signer

    return open_signer(cfg, SubprocessRunner(), reporter)


def _stage(tree: ProviderTree, staging: Path, current: Path | None, signer: Signer) -> list[str]:
    """Write every file and a verified signature per document; returns those signed anew."""
    os.chmod(staging, 0o755)
    for rel, data in sorted(tree.all_files().items()):
        write_atomic(staging / rel, data)
    signed: list[str] = []
    for doc in tree.documents:
        signature = _reusable_signature(current, doc.path, doc.data, signer)
        if signature is None:
            signature = signer.detach_sign(doc.data)
            signer.verify_detached(doc.data, signature)
            signed.append(doc.path)
        write_atomic(staging / (doc.path + ".asc"), signature)
    for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
        os.chmod(folder, 0o755)
    return signed


def _reusable_signature(
    current: Path | None, rel: str, data: bytes, signer: Signer
) -> bytes | None:
    """The published signature of an unchanged document, if it verifies with this key."""
    if current is None:
        return None
    try:
        if (current / rel).read_bytes() != data:
            return None
        signature = (current / (rel + ".asc")).read_bytes()
    except OSError:
        return None
    try:
        signer.verify_detached(data, signature)
    except BadSignatureError:
        return None
    return signature


def _swap(staging: Path, generation: Path, link: Path) -> None:
    """Rename the staged folder to its generation, then point the link at it in one step."""
    aside = None
    if generation.exists():
        # the same content, repaired (a signature was missing): keep the old one
        # whole until the new one has its name
        aside = generation.with_name(f"{generation.name}-replaced-{os.getpid()}")
        os.replace(generation, aside)
    os.replace(staging, generation)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    tmp_link = link.parent / f".csaf-link-{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(generation.name, tmp_link)
    if link.is_dir() and not link.is_symlink():
        # a real folder (written by hand or an older tool): move it aside first
        aside = link.parent / f"{GENERATION_PREFIX}replaced-{os.getpid()}"
        os.replace(link, aside)
    os.replace(tmp_link, link)
    dir_fd = os.open(link.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _prune(parent: Path, keep: set[str]) -> None:
    for entry in parent.iterdir():
        if (
            entry.name.startswith(GENERATION_PREFIX)
            and not entry.name.startswith(STAGING_PREFIX)
            and entry.name not in keep
            and entry.is_dir()
            and not entry.is_symlink()
        ):
            shutil.rmtree(entry, ignore_errors=True)
