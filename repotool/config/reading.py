"""Reading repotool.toml: find the project, parse the TOML, validate, explain.

pydantic checks the text against the settings' types (:mod:`repotool.config.settings`);
every problem it finds becomes part of one :class:`~repotool.errors.ConfigError`
naming the file, the table, the key and the fix.  The project root is the
nearest folder at or above the working folder holding repotool.toml, found the
way git finds its repository.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repotool.config.settings import (
    CONFIG_NAME,
    AnnounceConfig,
    BuildConfig,
    Config,
    KeyConfig,
    MediaConfig,
    MirrorConfig,
    PublishConfig,
    SettingProblem,
    SiteConfig,
    TargetConfig,
)
from repotool.errors import ConfigError, ProjectNotFoundError

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails

#: the class of each table, by its name in repotool.toml
_TABLES: dict[str, type[Any]] = {
    "key": KeyConfig,
    "build": BuildConfig,
    "publish": PublishConfig,
    "site": SiteConfig,
    "media": MediaConfig,
    "announce": AnnounceConfig,
    "mirror": MirrorConfig,
}
_TOP_LEVEL_HINT = "top-level settings: product, version, state_dir, [[targets]], " + ", ".join(
    f"[{s}]" for s in _TABLES
)

#: what a failed type or bound check means, and what to write instead
_MESSAGES: dict[str, tuple[str, str]] = {
    "int_type": ("expected a whole number, not {shown}", "write e.g. {key} = 4 (no quotes)"),
    "bool_type": ("expected true or false, not {shown}", "write {key} = true or {key} = false"),
    "float_type": ("expected a number, not {shown}", "write e.g. {key} = 30"),
    "string_type": ("expected a string, not {shown}", 'write it in quotes: {key} = "..."'),
    "tuple_type": ("expected a list, not {shown}", 'write e.g. {key} = ["a", "b"]'),
    "dataclass_type": ("expected a table, not {shown}", "write it as a table of key = value"),
    "literal_error": ("must be {expected}, not {shown}", "choose one of {expected}"),
    "greater_than_equal": ("must be {ge} or more, not {shown}", "set {key} to {ge} or more"),
    "too_short": ("needs at least one entry", "list at least one"),
}


@functools.cache
def _validator() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(Config)


def _label(loc: tuple[int | str, ...]) -> str:
    """Pure: where a setting is, as a reader of repotool.toml finds it."""
    if not loc:
        return ""
    head, rest = loc[0], loc[1:]
    if head == "targets":
        table = "[[targets]]"
        if rest and isinstance(rest[0], int):
            table, rest = f"[[targets]] #{rest[0] + 1}", rest[1:]
    elif head in _TABLES:
        table = f"[{head}]"
    else:
        table, rest = str(head), rest
        return table + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest)
    if not rest:
        return table
    first, *more = rest
    return f"{table}.{first}" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in more)


def _known_settings(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return _TOP_LEVEL_HINT
    cls = TargetConfig if loc[0] == "targets" else _TABLES[str(loc[0])]
    return "known settings here: " + ", ".join(f.name for f in dataclasses.fields(cls))


def _problem(err: ErrorDetails, source: str) -> tuple[str, str, str]:
    """Pure: one pydantic error as (where, what, hint)."""
    loc = tuple(err["loc"])
    problem = (err.get("ctx") or {}).get("error")
    if isinstance(problem, SettingProblem):
        label = ".".join(p for p in (_label(loc), problem.key) if p)
        return f"{source} {label}".rstrip(), problem.what, problem.hint
    key = str(next((p for p in reversed(loc) if isinstance(p, str)), ""))
    words = {"shown": json.dumps(err.get("input")), "key": key, **(err.get("ctx") or {})}
    what, hint = _MESSAGES.get(err["type"], (err["msg"], "see repotool/config.py"))
    return f"{source} {_label(loc)}", what.format(**words), hint.format(**words)


def _has_inner_error(err: ErrorDetails, errors: list[ErrorDetails]) -> bool:
    n = len(err["loc"])
    return any(len(o["loc"]) > n and o["loc"][:n] == err["loc"] for o in errors)


def _config_error(e: ValidationError, source: str) -> ConfigError:
    """Pure: every problem pydantic found, as one error naming file, table and key."""
    unknown: dict[tuple[int | str, ...], list[str]] = {}
    problems: list[tuple[str, str, str]] = []
    errors = e.errors()
    for err in errors:
        if err["type"] == "too_short" and _has_inner_error(err, errors):
            continue  # a list whose entries were refused is not also "empty"
        if err["type"] == "unexpected_keyword_argument":
            unknown.setdefault(tuple(err["loc"][:-1]), []).append(str(err["loc"][-1]))
        else:
            problems.append(_problem(err, source))
    for loc, keys in unknown.items():
        where = f"{source} {_label(loc)}".rstrip()
        problems.insert(
            0, (where, f"unknown setting(s): {', '.join(sorted(keys))}", _known_settings(loc))
        )
    if len(problems) == 1:
        where, what, hint = problems[0]
        return ConfigError(what, where=where, hint=hint)
    lines = "\n  ".join(f"{w}: {what}\n    fix: {hint}" for w, what, hint in problems)
    return ConfigError(
        f"{len(problems)} problems in the settings:\n  {lines}",
        where=source,
        hint="fix each setting as its 'fix:' line says",
    )


def parse_config(text: str, *, root: Path, source: str = CONFIG_NAME) -> Config:
    """Pure: TOML text in, validated Config out."""
    from pydantic import ValidationError

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"not valid TOML: {e}", where=source, hint="fix the syntax at the line named"
        ) from e
    if "root" in data:
        raise ConfigError(
            "unknown setting(s): root",
            where=source,
            hint="the project root is the folder holding repotool.toml; " + _TOP_LEVEL_HINT,
        )
    # TOML dates and times are no setting's type: they reach pydantic as a table
    as_json = json.dumps({**data, "root": str(root)}, default=lambda v: {"date": str(v)})
    try:
        cfg: Config = _validator().validate_json(as_json)
    except ValidationError as e:
        raise _config_error(e, source) from None
    return cfg


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding repotool.toml (as git finds .git)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise ProjectNotFoundError(
        f"no {CONFIG_NAME} here or in any folder above",
        where=str(start),
        hint=f"run repotool inside a project (a folder holding {CONFIG_NAME}, or below it), "
        "or name the file with --config",
    )


def load_config(
    path: Path | None = None, *, start: Path | None = None, project: bool = True
) -> Config:
    """Read repotool.toml: the given file, else the project's (found from ``start``,
    default the working folder).  Outside a project: an error, or the defaults when
    ``project`` is False (commands that need no project, such as mirror sync)."""
    if path is None:
        try:
            path = find_project_root(start or Path.cwd()) / CONFIG_NAME
        except ProjectNotFoundError:
            if project:
                raise
            return Config(root=(start or Path.cwd()).resolve())
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
        raise ConfigError(
            f"cannot read the config file: {reason}",
            where=str(path),
            hint="pass --config with the path of repotool.toml",
        ) from e
    return parse_config(text, root=path.resolve().parent, source=str(path))
