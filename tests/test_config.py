"""repotool.toml: what is refused, and how the refusal reads (file, table, key, fix)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from repotool.config import CONFIG_NAME, Config, KeyConfig, load_config, parse_config
from repotool.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _refusal(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, root=Path("/x"))
    return str(info.value)


def test_the_embedded_default_reads_back_as_written() -> None:
    cfg = load_config(REPO_ROOT / CONFIG_NAME)
    assert cfg.root == REPO_ROOT
    assert [(t.name, t.releasever, t.dist) for t in cfg.targets] == [
        ("el6", "6", ".el6"),
        ("el7", "7", ".el7"),
    ]
    assert cfg.publish.keep_versions == 3 and cfg.key.mode == "development"
    assert cfg.public_dir == REPO_ROOT / "public" and cfg.state == REPO_ROOT / ".repotool"
    assert cfg.path(Path("specs")) == REPO_ROOT / "specs"


def test_values_come_typed() -> None:
    cfg = parse_config(
        'version = "3.3.3"\n[[targets]]\nname = "el6"\narches = ["x86_64", "i386"]\n'
        '[media]\ntarget = "el6"\n[key]\ngnupghome = ""\npassphrase_file = "pw"\n'
        "[announce]\nsmtp_timeout = 5\n",
        root=Path("/x"),
    )
    assert cfg.version == "3.3.3" and [t.name for t in cfg.targets] == ["el6"]
    assert cfg.targets[0].arches == ("x86_64", "i386")
    assert cfg.public_dir == Path("/x/public")
    assert cfg.key.gnupghome is None  # empty means "not set"
    assert cfg.key.passphrase_file == Path("pw")
    assert cfg.announce.smtp_timeout == 5.0 and isinstance(cfg.announce.smtp_timeout, float)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[publish]\nkep = 1\n",
            "repotool.toml [publish]: unknown setting(s): kep\n"
            "  hint: known settings here: public_dir, keep_versions,",
        ),
        ("colour = 1\n", "repotool.toml: unknown setting(s): colour\n  hint: top-level settings:"),
        ('root = "/"\n', "repotool.toml: unknown setting(s): root"),
        (
            '[[targets]]\nname = "el7"\ndsit = ".el7"\n',
            "repotool.toml [[targets]] #1: unknown setting(s): dsit",
        ),
        (
            '[build]\njobs = "two"\n',
            'repotool.toml [build].jobs: expected a whole number, not "two"\n'
            "  hint: write e.g. jobs = 4 (no quotes)",
        ),
        ("[build]\njobs = 2.5\n", "[build].jobs: expected a whole number, not 2.5"),
        ("[publish]\nmetalink = 1\n", "[publish].metalink: expected true or false, not 1"),
        (
            '[mirror]\ntimeout_seconds = "3"\n',
            '[mirror].timeout_seconds: expected a number, not "3"',
        ),
        ("[site]\ntitle = 3\n", "[site].title: expected a string, not 3"),
        ('[media]\npackages = "x"\n', '[media].packages: expected a list, not "x"'),
        ('[media]\nkernel_modules = ["a", 3]\n', "[media].kernel_modules[1]: expected a string"),
        ("publish = 3\n", "repotool.toml [publish]: expected a table, not 3"),
        ("[site]\ntitle = 1979-05-27\n", "[site].title: expected a string"),
        ("targets = []\n", "repotool.toml [[targets]]: needs at least one entry"),
        (
            '[[targets]]\nname = "el7"\nmetadata_compression = "bz2"\n',
            "repotool.toml [[targets]] #1.metadata_compression: must be 'gz', 'xz' or 'zstd', "
            'not "bz2"\n  hint: choose one of',
        ),
        (
            '[key]\nmode = "prod"\n',
            "[key].mode: must be 'development' or 'production', not \"prod\"",
        ),
        ('[media]\nbase = "centos"\n', "[media].base: must be 'debian', 'busybox' or 'repos'"),
        (
            '[media]\nsquashfs_compression = "lz4"\n',
            "[media].squashfs_compression: must be 'zstd', 'xz'",
        ),
        (
            '[key]\nmode = "production"\n',
            "repotool.toml [key].fingerprint: production mode needs the signing key's fingerprint",
        ),
        (
            '[key]\nmode = "production"\nfingerprint = "ABCD"\n',
            "[key].fingerprint: 'ABCD' is not a 40-digit key fingerprint",
        ),
        ('[key]\nallow_weak_key = "yes"\n', "[key].allow_weak_key: expected true or false"),
        (
            '[[targets]]\nname = "el7"\n[[targets]]\nname = "el7"\n',
            "repotool.toml [[targets]] name: two [[targets]] share the name el7",
        ),
        ("[publish\n", "not valid TOML"),
    ],
)
def test_refusals_name_file_table_and_key(text: str, message: str) -> None:
    assert message in _refusal(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[publish]\nkeep_versions = 0\n", "[publish].keep_versions: must be 1 or more, not 0"),
        ("[publish]\nkeep_generations_seconds = -1\n", "must be 0 or more, not -1"),
        ("[publish]\nrefresh_after_seconds = -1\n", "must be 0 or more, not -1"),
        ("[mirror]\nkeep_previous_seconds = -1\n", "must be 0 or more, not -1"),
        ("[build]\njobs = -1\n", "[build].jobs: must be 0 or more, not -1"),
        ('[key]\npublic_key_name = "../../x"\n', "must be a plain file name"),
        ('[publish]\nrepo_id = ".hidden"\n', "must be a plain file name"),
        ('[media]\ntarget = "el9"\n', "the media target el9/x86_64 is not a configured target"),
        ('state_dir = "public/.state"\n', "must not contain each other"),
        ('[publish]\npublic_dir = "."\n', "must not contain each other"),
    ],
)
def test_config_refuses_values_that_would_do_damage(text: str, message: str) -> None:
    assert re.search(re.escape(message), _refusal(text))


def test_every_problem_is_named_at_once() -> None:
    text = _refusal('[build]\njobs = "x"\nbogus = 1\n[site]\ntitle = 3\n')
    assert text.startswith("repotool.toml: 3 problems in the settings:\n")
    assert "repotool.toml [build]: unknown setting(s): bogus\n    fix: known settings here" in text
    assert '[build].jobs: expected a whole number, not "x"\n    fix: write e.g. jobs = 4' in text
    assert "[site].title: expected a string, not 3\n    fix:" in text


def test_built_in_code_the_same_rules_hold() -> None:
    """The classes check themselves when built or replaced in code, not only from TOML."""
    cfg = Config()
    with pytest.raises(ValueError, match="production mode needs"):
        dataclasses.replace(cfg.key, mode="production")
    assert KeyConfig(mode="production", fingerprint="AB" * 20).fingerprint == "AB" * 20


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / CONFIG_NAME
    bad.write_bytes(b"version = '\xff'\n")
    with pytest.raises(ConfigError, match="cannot read the config file: it is not UTF-8 text"):
        load_config(bad)
    with pytest.raises(ConfigError, match="No such file or directory"):
        load_config(tmp_path / "nope.toml")
