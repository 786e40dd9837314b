"""Start-up of the command line: building the parser (every ``repotool`` command,
``--help`` included) imports no area's heavy dependencies; handlers import them."""

from __future__ import annotations

import json
import subprocess
import sys

#: imported only by the handlers that need them
HEAVY = (
    "pydantic",
    "createrepo_c",
    "requests",
    "urllib3",
    "yaml",
    "jinja2",
    "fastapi",
    "starlette",
    "uvicorn",
    "gnupg",
    "markdown",
    "repotool.records.models",
    "repotool.records.loading",
    "repotool.records.advisories",
    "repotool.announce",
    "repotool.mirror",
    "repotool.media",
    "repotool.site",
    "repotool.signing.signer",
)


def test_building_the_parser_imports_no_heavy_module() -> None:
    code = (
        "import json, sys\nfrom repotool.cli import build_parser\nbuild_parser()\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []
