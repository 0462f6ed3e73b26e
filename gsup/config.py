"""Options, environment and TOML -> one validated, frozen plan.

Owns: the precedence of SPEC §2 (command line > ``GSUP_<NAME>`` environment
> config file > platform default), the record of where each setting came
from (``gsup check`` prints it), the validation of the ``[gsup]`` table and
the construction of the ``Plan``. Pure apart from reading the config file
when asked; no typer, no rich. TOML is loaded (tomllib, or tomli before
Python 3.11) only when a file is given.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from gsup import budget
from gsup.errors import UsageError
from gsup.model import ForwardTo, Plan, ProgramSpec
from gsup.units import UNCATCHABLE, parse_duration, parse_signal


class Source(str, enum.Enum):
    """Where a setting's value came from, strongest first."""

    FLAG = "flag"
    ENV = "env"
    FILE = "file"
    PLATFORM = "platform"
    DEFAULT = "default"


#: Every option of SPEC §2 that a plan is made of, with its default. The
#: ``[gsup]`` table of a config file takes the same names.
OPTIONS: dict[str, object] = {
    "grace": None,
    "platform": None,
    "platform_timeout": None,
    "stop_delay": "0",
    "stop_signal": None,
    "rewrite": (),
    "forward_to": "group",
    "success_code": (),
    "success_on_stop": False,
    "user": None,
    "parent_death_signal": None,
    "log_format": "text",
    "quiet": False,
    "verbose": False,
}


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return "GSUP_" + name.upper()


@dataclass(frozen=True)
class Setting:
    value: object
    source: Source


@dataclass(frozen=True)
class Resolved:
    """The plan, its budget, and where every setting came from."""

    plan: Plan
    budget: budget.Budget
    settings: Mapping[str, Setting]
    log_format: str
    quiet: bool
    verbose: bool


def load_file(path: str) -> dict[str, Any]:
    """Read a TOML config file; syntax errors name the file, line and column."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 in CI
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            data: dict[str, Any] = tomllib.load(f)
    except OSError as e:
        raise UsageError(f"{path}: cannot read config file: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: invalid TOML: {e}") from None
    return data


def file_settings(path: str, data: Mapping[str, Any]) -> dict[str, object]:
    """The ``[gsup]`` table, checked for unknown keys."""
    unknown_top = sorted(set(data) - {"gsup", "programs"})
    if unknown_top:
        raise UsageError(
            f"{path}: unknown table or key {unknown_top[0]!r} (expected [gsup], [programs.NAME])"
        )
    table = data.get("gsup", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [gsup] must be a table")
    for key in table:
        if key not in OPTIONS:
            raise UsageError(
                f"{path}: [gsup] unknown key {key!r} (valid: {', '.join(sorted(OPTIONS))})"
            )
    return dict(table)


def merge(given: Mapping[str, Setting], from_file: Mapping[str, object]) -> dict[str, Setting]:
    """Apply the precedence: *given* (flags and environment) over the file over defaults."""
    out: dict[str, Setting] = {}
    for name, default in OPTIONS.items():
        if name in given:
            out[name] = given[name]
        elif name in from_file:
            out[name] = Setting(from_file[name], Source.FILE)
        else:
            out[name] = Setting(default, Source.DEFAULT)
    return out


def _where(name: str, s: Setting, path: Optional[str]) -> str:
    if s.source is Source.ENV:
        return env_name(name)
    if s.source is Source.FILE:
        return f"{path}: [gsup] {name}"
    return option_flag(name)


def resolve(
    given: Mapping[str, Setting],
    command: Sequence[bytes],
    *,
    config_path: Optional[str] = None,
    environ: Mapping[str, str],
    exists: Callable[[str], bool] = os.path.exists,
) -> Resolved:
    """Build the plan for *command* from flags/env (*given*) and the config file."""
    from_file = file_settings(config_path, load_file(config_path)) if config_path else {}
    settings = merge(given, from_file)

    def value(name: str, parse: Callable[[Any], Any], *, kinds: tuple[type, ...] = (str,)) -> Any:
        s = settings[name]
        if s.value is None:
            return None
        if not isinstance(s.value, kinds) or (isinstance(s.value, bool) and bool not in kinds):
            raise UsageError(
                f"{_where(name, s, config_path)}: expected {kinds[0].__name__}, got {s.value!r}"
            )
        try:
            return parse(s.value)
        except UsageError as e:
            raise UsageError(f"{_where(name, s, config_path)}: {e.message}") from None

    def duration(v: object) -> float:
        return parse_duration(str(v))

    def items(name: str, parse: Callable[[Any], Any]) -> tuple[Any, ...]:
        s = settings[name]
        raw = s.value
        seq = raw.split() if isinstance(raw, str) else raw
        if not isinstance(seq, (list, tuple)):
            seq = [seq]
        try:
            return tuple(parse(x) for x in seq)
        except UsageError as e:
            raise UsageError(f"{_where(name, s, config_path)}: {e.message}") from None

    platform_setting = settings["platform"]
    if platform_setting.value is None:
        platform = budget.detect(environ, exists)
        settings["platform"] = Setting(platform.value, Source.PLATFORM)
    else:
        platform = value("platform", budget.parse_platform)
    grace = value("grace", duration, kinds=(str, int, float))
    stop_delay = value("stop_delay", duration, kinds=(str, int, float))
    the_budget = budget.resolve(
        platform,
        platform_timeout=value("platform_timeout", duration, kinds=(str, int, float)),
        grace=grace,
        stop_delay=stop_delay or 0.0,
    )
    if grace is None:
        settings["grace"] = Setting(
            the_budget.grace, Source.PLATFORM if the_budget.deadline is not None else Source.DEFAULT
        )
    forward_to = value("forward_to", _forward_to)
    log_format = value("log_format", _log_format)
    plan = Plan(
        program=ProgramSpec(argv=tuple(command), user=value("user", str)),
        grace=the_budget.grace,
        stop_delay=the_budget.stop_delay,
        stop_signal=value("stop_signal", _signal, kinds=(str, int)),
        rewrite=items("rewrite", _rewrite),
        forward_to=forward_to,
        success_codes=frozenset(items("success_code", _exit_code)),
        success_on_stop=value("success_on_stop", bool, kinds=(bool,)),
        parent_death_signal=value("parent_death_signal", _signal, kinds=(str, int)),
    )
    return Resolved(
        plan=plan,
        budget=the_budget,
        settings=settings,
        log_format=log_format,
        quiet=value("quiet", bool, kinds=(bool,)),
        verbose=value("verbose", bool, kinds=(bool,)),
    )


def _signal(v: object) -> signal.Signals:
    return parse_signal(str(v))


def _forward_to(v: str) -> ForwardTo:
    try:
        return ForwardTo(v.lower())
    except ValueError:
        raise UsageError(f"{v!r} is not one of group, child") from None


def _log_format(v: str) -> str:
    if v not in ("text", "json"):
        raise UsageError(f"{v!r} is not one of text, json")
    return v


def _rewrite(text: object) -> tuple[signal.Signals, signal.Signals]:
    src, sep, dst = str(text).partition(":")
    if not sep:
        raise UsageError(f"{text!r} is not FROM:TO (e.g. TERM:QUIT)")
    pair = parse_signal(src), parse_signal(dst)
    if pair[0] in UNCATCHABLE:
        raise UsageError(f"{pair[0].name} cannot be caught, so it cannot be rewritten")
    return pair


def _exit_code(v: object) -> int:
    try:
        n = int(str(v))
    except ValueError:
        raise UsageError(f"{v!r} is not an exit code (0-255)") from None
    if not 0 <= n <= 255:
        raise UsageError(f"{n} is not an exit code (0-255)")
    return n
