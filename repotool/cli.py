"""The ``repotool`` command line.

Each area registers its own subcommands from ``repotool.commands.<area>``.  A
handler takes the parsed arguments and a :class:`Context` and returns a
JSON-able dict; this module prints it (``--json``: as JSON on stdout) and is
the only place that turns errors into exit codes.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repotool import __version__
from repotool.errors import RepotoolError
from repotool.process import Runner, SubprocessRunner
from repotool.report import ConsoleReporter, Reporter

if TYPE_CHECKING:  # the config (and its validation) is loaded when a command needs it
    from repotool.config import Config

Handler = Callable[[argparse.Namespace, "Context"], dict[str, Any]]

#: the modules under repotool.commands that register subcommands, in --help order
COMMAND_MODULES = (
    "release",
    "build",
    "sign",
    "publish",
    "advisory",
    "media",
    "site",
    "announce",
    "mirror",
    "push",
    "serve",
    "key",
)

#: what a mirror operator runs on a host that holds no project: outside one, the
#: defaults apply (inside one, its repotool.toml does)
RUN_ANYWHERE = frozenset({("mirror", "sync"), ("mirror", "media")})


@dataclass
class Context:
    """What every command gets: the config, the process runner, the reporter.

    Without ``config_path`` the config is the project's: the nearest repotool.toml
    at or above the working folder.  Outside a project that is an error, unless
    ``needs_project`` is False.
    """

    config_path: Path | None
    needs_project: bool = True
    runner: Runner = field(default_factory=SubprocessRunner)
    reporter: Reporter = field(default_factory=ConsoleReporter)
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from repotool.config import load_config

            self._config = load_config(self.config_path, project=self.needs_project)
        return self._config


EPILOG = """\
A release in one command:
  repotool release            build, sign, publish, site, media for the config
  repotool serve              serve public/ and the site on http://127.0.0.1:8080

Every command takes --json to print a machine-readable result on stdout, and
--config FILE to use another repotool.toml (default: the project's, found in the
working folder or the nearest folder above it that holds one, as git finds its
repository).  Exit status: 0 ok, 2 config, 3 outside tool, 4 build,
5 signing, 6 publish, 7 advisory, 8 media, 9 site, 10 announce, 11 mirror,
12 push.
"""


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="repotool",
        description="Release toolchain of the pS-Performance Toolkit: builds and signs the "
        "RPMs, publishes the signed yum repository with errata, makes the live media, "
        "renders the site and sends the announcements.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"repotool {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="path of repotool.toml")
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"repotool.commands.{name}")
        module.register(sub, common)
    return parser


def _print_human(result: dict[str, Any]) -> None:
    summary = result.get("summary")
    if isinstance(summary, str):
        print(summary)
        return
    for key, value in result.items():
        print(f"{key}: {value}")


def disk_full_error(e: OSError, config: Config | None) -> RepotoolError:
    """A full disk met where no stage named it: the file (when the OS says), the
    folders repotool fills, and what can be deleted."""
    # a copy names its source first and the file it was writing second
    where = (
        e.filename2 or e.filename or (f"{config.state} or {config.public_dir}" if config else None)
    )
    hint = "free space on that disk, then run the command again"
    if config is not None:
        hint = (
            f"free space on the disk holding {config.state} and {config.public_dir} "
            f"(e.g. delete {config.state / 'build-cache'} and {config.state / 'media-cache'}: "
            "they are made again when needed), then run the command again"
        )
    return RepotoolError(
        f"no space left on the disk: {e.strerror or e}",
        where=str(where) if where else None,
        hint=hint,
    )


def run_command(handler: Handler, args: argparse.Namespace, ctx: Context) -> int:
    """Run one handler; print its result or its error; the exit status."""
    try:
        result = handler(args, ctx)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        return _print_error(disk_full_error(e, ctx._config), as_json=args.json)
    except RepotoolError as e:
        return _print_error(e, as_json=args.json)
    except KeyboardInterrupt:
        print("repotool: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps({"ok": True, **result}, indent=2, default=str))
    else:
        _print_human(result)
    return 0


def _print_error(e: RepotoolError, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"ok": False, **e.to_json()}, indent=2))
    print(f"repotool: error: {e}", file=sys.stderr)
    return e.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    action = getattr(args, f"{args.command}_command", None)
    ctx = Context(
        config_path=args.config,
        needs_project=(args.command, action) not in RUN_ANYWHERE,
        reporter=ConsoleReporter(quiet=args.quiet or False),
    )
    return run_command(handler, args, ctx)
