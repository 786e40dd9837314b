"""A name that comes from input is refused with a trailing newline too.

Python's ``$`` matches before a final newline, so ``re.match(r"^...$", "US\\n")``
passes: every validator anchors with ``\\Z`` instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from repotool.config import parse_config
from repotool.errors import ConfigError, MirrorError
from repotool.mirror.network import parse_mirrors

MIRROR = """
[[mirror]]
name = "m1"
url = "http://127.0.0.1:1/repo/"
region = "{region}"
contact = "ops@example.org"
"""


def test_a_mirror_region_with_a_newline_is_refused() -> None:
    assert parse_mirrors(MIRROR.format(region="US"), "mirrors.toml")[0].region == "US"
    with pytest.raises(MirrorError, match="two-letter country code"):
        parse_mirrors(MIRROR.format(region="US\\n"), "mirrors.toml")


def test_a_key_name_or_fingerprint_with_a_newline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="public_key_name"):
        parse_config('[key]\npublic_key_name = "RPM-GPG-KEY\\n"\n', root=tmp_path)
    with pytest.raises(ConfigError, match="not a 40-digit key fingerprint"):
        parse_config(
            '[key]\nmode = "production"\nfingerprint = "' + "A" * 40 + '\\n"\n', root=tmp_path
        )
