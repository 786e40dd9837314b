"""A no-op ``repotool release`` is decided from the stamp, before any heavy import.

Every test works on a copy of the session's release.  A copy's first release
takes the full path (the stamp names the original's folder) and stamps the copy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from repotool.config import Config, parse_config
from repotool.repo.input_digest import STAMP_FORMAT, STAMP_NAME, project_files
from repotool.repo.inputs import (
    _key_expiry,
    _stamp_holds,
    noop_result,
)

#: none of these may be imported when the stamp says nothing changed
HEAVY = (
    "pydantic",
    "fastapi",
    "starlette",
    "createrepo_c",
    "jinja2",
    "gnupg",
    "repotool.site",
    "repotool.records.models",
    "repotool.release",
    "repotool.build.rpmbuild",
)

#: `repotool release` as the console script runs it, then the modules it imported
_RUN = (
    "import json, sys\n"
    "from repotool.cli import main\n"
    "rc = main(['release', '--json', '--quiet', *sys.argv[1:]])\n"
    "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n"
    "sys.exit(rc)\n"
)


@dataclass
class Run:
    result: dict[str, object]
    heavy: list[str]
    stderr: str
    returncode: int

    @property
    def fast(self) -> bool:
        return not self.heavy


def release(project: Path, *args: str, check: bool = True) -> Run:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    assert done.returncode == 0 or not check, done.stderr
    head, _, modules = done.stderr.rpartition("\nMODULES ")
    loaded = json.loads(modules)
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    return Run(json.loads(done.stdout), heavy, head, done.returncode)


def fast_release(project: Path) -> Run:
    """The next release, which must be the fast no-op.  Other agents edit repotool's
    own sources in this working tree, and a changed source rightly sends a run down
    the full path (which stamps again): a few tries."""
    for _ in range(3):
        run = release(project)
        if run.fast:
            return run
    return run


def stamped_copy(release_copy: Path) -> Run:
    """The copy's first release: the full path, a no-op, and it writes the stamp."""
    first = release(release_copy)
    assert not first.fast, "the copied stamp names the original's folder"
    assert str(first.result["summary"]).startswith("Nothing changed"), first.result
    assert (release_copy / ".repotool" / STAMP_NAME).is_file()
    return first


def test_second_release_is_a_fast_noop_with_the_full_paths_output(release_copy: Path) -> None:
    stamped_copy(release_copy)  # the copy's site is exported once more (paths changed)
    (release_copy / ".repotool" / STAMP_NAME).unlink()
    full = release(release_copy)  # what the full path prints when nothing changed
    assert not full.fast
    fast = fast_release(release_copy)
    assert fast.heavy == []
    assert fast.result["summary"] == "Nothing changed: 2 repositories already current."
    assert list(fast.result) == list(full.result)  # same keys, same order
    same = {k: v for k, v in full.result.items() if k != "seconds"}
    assert {k: v for k, v in fast.result.items() if k != "seconds"} == same
    # the development key's warning is still given on every run
    assert "USING A DEVELOPMENT SIGNING KEY" in fast.stderr


def test_human_output_of_the_fast_noop(release_copy: Path) -> None:
    stamped_copy(release_copy)
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-m", "repotool", "release"],
            cwd=release_copy,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if "nothing changed since the last release" in done.stderr:
            break
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Nothing changed: 2 repositories already current.\n"
    assert "nothing changed since the last release" in done.stderr


def _edit_spec(p: Path) -> None:
    spec = p / "specs" / "perfsonar-toolkit-sysctl" / "perfsonar-toolkit-sysctl.spec"
    spec.write_text(spec.read_text() + "\n# reviewed\n")


def _edit_content(p: Path) -> None:
    page = p / "web" / "content" / "news" / "about.md"
    page.write_text(page.read_text() + "\nOne more paragraph.\n")


def _edit_template(p: Path) -> None:
    base = p / "web" / "templates" / "base.html"
    base.write_text(base.read_text() + "<!-- edited -->\n")


def _edit_config(p: Path) -> None:
    toml = p / "repotool.toml"
    toml.write_text(toml.read_text().replace("[site]\n", '[site]\ntitle = "Edited"\n', 1))


def _delete_signature(p: Path) -> None:
    (p / "public" / "repo" / "el7" / "x86_64" / "repodata" / "repomd.xml.asc").unlink()


def _set_fingerprint(p: Path) -> None:
    toml = p / "repotool.toml"
    text = toml.read_text()
    fpr = "0123456789ABCDEF0123456789ABCDEF01234567"
    toml.write_text(text.replace("[key]\n", f'[key]\nfingerprint = "{fpr}"\n', 1))


CHANGES: dict[str, Callable[[Path], None]] = {
    "spec": _edit_spec,
    "content": _edit_content,
    "template": _edit_template,
    "config": _edit_config,
    "deleted repomd.xml.asc": _delete_signature,
    "key fingerprint setting": _set_fingerprint,
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_input_takes_the_full_path(release_copy: Path, change: str) -> None:
    stamped_copy(release_copy)
    CHANGES[change](release_copy)
    changed = release(release_copy)
    assert not changed.fast, f"after a {change} change the release took the fast path"
    assert "repotool.site" in changed.heavy
    if change == "spec":
        assert changed.result["built"] == [
            "perfsonar-toolkit-sysctl/el6",
            "perfsonar-toolkit-sysctl/el7",
        ]
    if change == "deleted repomd.xml.asc":  # repaired, not declared current
        assert (
            release_copy / "public" / "repo" / "el7" / "x86_64" / "repodata" / "repomd.xml.asc"
        ).is_file()
    if change in ("content", "template"):
        site = changed.result["site"]
        assert isinstance(site, dict) and site["written"], site
    # the full run stamped the new state: the next one is fast again
    assert fast_release(release_copy).fast


def test_an_expired_stamp_takes_the_full_path(release_copy: Path) -> None:
    stamped_copy(release_copy)
    path = release_copy / ".repotool" / STAMP_NAME
    stamp = json.loads(path.read_text())
    stamp["valid_until"] = stamp["written"] + 1  # the metadata is due for signing again
    path.write_text(json.dumps(stamp))
    assert not release(release_copy).fast


def test_a_flag_that_changes_the_release_takes_the_full_path(release_copy: Path) -> None:
    stamped_copy(release_copy)
    fast_release(release_copy)  # the stamp holds
    # a respin the release record does not list: refused, by the full path
    respin = release(release_copy, "--respin", "99", check=False)
    assert not respin.fast
    assert respin.returncode != 0 and "lists no respin 3.3.2-99" in respin.stderr


def test_no_media_is_a_fast_noop_without_the_media_entry(release_copy: Path) -> None:
    full = stamped_copy(release_copy)
    for _ in range(3):
        run = release(release_copy, "--no-media")
        if run.fast:
            break
    assert run.fast
    assert "media" in full.result and "media" not in run.result


def test_the_stamp_reads_the_settings_with_the_configs_defaults(tmp_path: Path) -> None:
    """The fast path reads repotool.toml with tomllib: its defaults are the config's."""
    toml = tmp_path / "repotool.toml"
    for text in ("", 'state_dir = "st"\n[publish]\npublic_dir = "/srv/pub"\n'):
        toml.write_text(text)
        import tomllib

        files = project_files(tomllib.loads(text), toml, text.encode(), home=tmp_path)
        cfg: Config = parse_config(text, root=tmp_path)
        assert files.state == cfg.state
        assert files.public == cfg.public_dir
        assert files.source_dirs == (
            cfg.path(cfg.build.specs_dir),
            cfg.path(cfg.site.content_dir),
            cfg.path(cfg.site.templates_dir),
            cfg.path(cfg.site.static_dir),
        )
        assert files.mirrors_file == cfg.path(cfg.mirror.mirrors_file)
        assert files.version == cfg.version
        assert files.media_enabled == cfg.media.enabled
        assert files.gnupghome == cfg.state / "gnupg"


def test_sources_named_in_the_tests_exist() -> None:
    """The files the change tests edit are the project's (a rename must not make
    those tests pass by editing nothing)."""
    root = Path(__file__).resolve().parent.parent
    for path in (
        "specs/perfsonar-toolkit-sysctl/perfsonar-toolkit-sysctl.spec",
        "web/content/news/about.md",
        "web/templates/base.html",
    ):
        assert (root / path).is_file(), path
    text = (root / "repotool.toml").read_text()
    assert re.search(r"^\[site\]\n", text, re.M) and re.search(r"^\[key\]\n", text, re.M)


def test_a_stamp_holds_only_for_its_digest_and_its_time() -> None:
    stamp = {
        "format": STAMP_FORMAT,
        "written": 1000.0,
        "valid_until": 1000.0 + 3 * 24 * 3600,
        "digest": "d1",
        "warnings": [],
        "noop": {},
        "media": None,
    }
    assert _stamp_holds(stamp, "d1", 2000.0)
    assert not _stamp_holds(stamp, "d2", 2000.0)  # something changed
    assert not _stamp_holds(stamp, "d1", 999.0)  # the clock went back
    valid_until = stamp["valid_until"]
    assert isinstance(valid_until, float | int)
    assert not _stamp_holds(stamp, "d1", valid_until - 1)  # nearly due
    assert not _stamp_holds({**stamp, "format": STAMP_FORMAT + 1}, "d1", 2000.0)
    assert not _stamp_holds({**stamp, "warnings": [1]}, "d1", 2000.0)
    assert not _stamp_holds([stamp], "d1", 2000.0)


def test_no_stamp_when_the_noop_output_cannot_be_told(tmp_path: Path) -> None:
    """Some components built and some cached: the order a no-op would list them
    in is the build's, not known here, so the next release takes the full path."""
    cfg = parse_config("", root=tmp_path)
    site = {"public_dir": str(cfg.public_dir), "files": 3}
    mixed = {"built": ["a/el7"], "cached": ["b/el7"], "site": site}
    assert noop_result(cfg, mixed) is None
    planned = noop_result(cfg, {"built": ["a/el7", "b/el7"], "cached": [], "site": site})
    assert planned is not None
    body, media = planned
    assert body["cached"] == ["a/el7", "b/el7"] and body["built"] == []
    assert body["unchanged"] == ["el7/x86_64"]
    assert media is None  # no media published for the version: a release builds them


def test_the_stamp_expires_with_the_signing_key(tmp_path: Path) -> None:
    """gpg's own listing gives the earliest expiry of the key and its subkeys."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home), "--passphrase", ""]
    try:
        for uid, expire in (("Expiring <e@localhost>", "2d"), ("Lasting <l@localhost>", "never")):
            subprocess.run(
                [*gpg, "--quick-gen-key", uid, "ed25519", "sign", expire],
                check=True,
                capture_output=True,
                timeout=120,
            )
        listed = subprocess.run(
            [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
        ).stdout
        fprs = [line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")]
        expiring, lasting = fprs[0], fprs[1]
        now = time.time()
        assert abs(_key_expiry(home, expiring) - (now + 2 * 86400)) < 600  # type: ignore[operator]
        assert _key_expiry(home, lasting) == float("inf")
        assert _key_expiry(home, "0" * 40) is None  # no such key: no stamp
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
