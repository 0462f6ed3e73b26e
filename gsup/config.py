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
import re
import shlex
import signal
import sys
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple, Optional, Sequence

from gsup import budget
from gsup.errors import UsageError
from gsup.model import (
    Condition,
    Dependency,
    ForwardTo,
    LivenessSpec,
    Plan,
    ProgramSpec,
    ReadySpec,
    Restart,
    RestartSpec,
)
from gsup.units import UNCATCHABLE, format_duration, parse_duration, parse_signal, parse_stop_signal, quote


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
    "timestamps": False,
    "health": None,
    "ready": None,
    "pre_stop": None,
    "pre_stop_timeout": "5s",
}


#: GSUP_* variables that are no option but mean something to gsup.
OTHER_VARIABLES = ("GSUP_CONFIG", "GSUP_NO_HANDOFF")


def closest(name: str, candidates: Sequence[str]) -> Optional[str]:
    """The candidate *name* is most likely a typo of, if one is close enough (``--grac``: ``--grace``)."""
    import difflib

    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
    return found[0] if found else None


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per ``GSUP_*`` variable that gsup does not know (a typo is otherwise silent)."""
    known = [env_name(n) for n in OPTIONS] + list(OTHER_VARIABLES)
    warnings = []
    for var in sorted(v for v in environ if v.startswith("GSUP_") and v not in known):
        near = closest(var, known)
        hint = f": did you mean {near}?" if near else f" (gsup's variables: GSUP_<OPTION>, e.g. {known[0]})"
        warnings.append(f"{quote(var)[1:-1]} is not a gsup variable and is ignored{hint}")
    return warnings


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return "GSUP_" + name.upper()


class Setting(NamedTuple):
    value: object
    source: Source


class Resolved(NamedTuple):
    """The plan, its budget, and where every setting came from."""

    plan: Plan
    budget: budget.Budget
    settings: Mapping[str, Setting]
    log_format: str
    quiet: bool
    verbose: bool
    config_path: Optional[str] = None
    #: How the platform was detected ("" when it was given).
    evidence: str = ""


def load_file(path: str) -> dict[str, Any]:
    """Read a TOML config file; syntax errors name the file, line and column."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 in CI
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise UsageError(f"{path}: cannot read config file: {e.strerror}") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise UsageError(
            f"{path}: not UTF-8 text (TOML is): byte 0x{raw[e.start]:02x} at offset {e.start}"
            f" (line {line}, column {column})"
        ) from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        if "(at line " not in message:
            # "at end of document": point at the end, as the line and column
            # of the last character.
            lines = text.split("\n")
            message = message.replace("(at end of document)", "").strip()
            message += f" (at line {len(lines)}, column {len(lines[-1]) + 1}: end of document)"
        raise UsageError(f"{path}: invalid TOML: {message}") from None
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
            raise UsageError(f"{path}: [gsup] unknown key {key!r} (valid: {', '.join(sorted(OPTIONS))})")
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
    data = load_file(config_path) if config_path else {}
    from_file = file_settings(config_path, data) if config_path else {}
    settings = merge(given, from_file)

    def value(name: str, parse: Callable[[Any], Any], *, kinds: tuple[type, ...] = (str,)) -> Any:
        s = settings[name]
        if s.value is None:
            return None
        if not isinstance(s.value, kinds) or (isinstance(s.value, bool) and bool not in kinds):
            raise UsageError(
                f"{_where(name, s, config_path)}: expected {kinds[0].__name__}, got {_shown(s.value)}"
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
    evidence = ""
    if platform_setting.value is None:
        platform, evidence = budget.detection(environ, exists)
        settings["platform"] = Setting(platform.value, Source.PLATFORM)
    else:
        platform = value("platform", budget.parse_platform)
    grace = value("grace", duration, kinds=(str, int, float))
    auto_delay = str(settings["stop_delay"].value).strip().lower() == "auto"
    stop_delay = None if auto_delay else value("stop_delay", duration, kinds=(str, int, float))
    health = value("health", _health)
    if auto_delay and health is None:
        raise UsageError(
            f"{_where('stop_delay', settings['stop_delay'], config_path)} auto: needs --health "
            "(the drain ends when the health endpoint has been polled)"
        )
    pre_stop = value("pre_stop", _command, kinds=(str, list))
    tables = data.get("programs") if config_path else None
    any_pre_stop = bool(pre_stop) or (
        isinstance(tables, dict) and any(isinstance(t, dict) and "pre_stop" in t for t in tables.values())
    )
    pre_stop_slot = value("pre_stop_timeout", duration, kinds=(str, int, float)) if any_pre_stop else 0.0
    the_budget = budget.resolve(
        platform,
        platform_timeout=value("platform_timeout", duration, kinds=(str, int, float)),
        grace=grace,
        stop_delay=stop_delay or 0.0,
        timeout_origin=_where("platform_timeout", settings["platform_timeout"], config_path),
        pre_stop=pre_stop_slot or 0.0,
        auto_delay=auto_delay,
    )
    if grace is None:
        settings["grace"] = Setting(
            the_budget.grace, Source.PLATFORM if the_budget.deadline is not None else Source.DEFAULT
        )
    forward_to = value("forward_to", _forward_to)
    log_format = value("log_format", _log_format)
    # The options that concern a program are every program's default:
    # a program's own key in the file beats them.
    if command and not command[0]:
        raise UsageError("empty command: the first word after -- names the program to run")
    defaults = ProgramSpec(
        argv=tuple(command),
        user=value("user", str),
        stop_signal=value("stop_signal", _stop_signal, kinds=(str, int)),
        success_codes=frozenset(items("success_code", _exit_code)),
        timestamps=value("timestamps", bool, kinds=(bool,)),
    )
    ready = value("ready", _single_ready)
    if config_path and "programs" in data:
        if command:
            raise UsageError(
                f"{config_path} has [programs]: give either a command after -- or programs, not both"
            )
        if ready is not None:
            raise UsageError(
                f"{_where('ready', settings['ready'], config_path)}: the programs of {config_path} "
                "say when they are ready in their own ready tables"
            )
        single = False
        programs = programs_from(config_path, data, the_budget.grace, defaults)
        if not programs:
            raise UsageError(f"{config_path}: [programs] is empty")
    else:
        single = True
        if defaults.timestamps:
            where = _where("timestamps", settings["timestamps"], config_path)
            raise UsageError(
                f"{where}: only for the programs of a config file (a single command's output is its own)"
            )
        programs = (defaults._replace(prefix=None, ready=ready),)  # a single command: its stdio is gsup's
    plan = Plan(
        programs=programs,
        single=single,
        grace=the_budget.grace,
        stop_delay=the_budget.stop_delay,
        rewrite=_one_target_each(
            items("rewrite", _rewrite), _where("rewrite", settings["rewrite"], config_path)
        ),
        forward_to=forward_to,
        success_on_stop=value("success_on_stop", bool, kinds=(bool,)),
        parent_death_signal=value("parent_death_signal", _signal, kinds=(str, int)),
        json_lines=log_format == "json" and not single,
        health=health,
        stop_delay_auto=auto_delay,
        pre_stop=pre_stop or (),
        pre_stop_slot=the_budget.pre_stop,
    )
    quiet, verbose = value("quiet", bool, kinds=(bool,)), value("verbose", bool, kinds=(bool,))
    if quiet and verbose:
        q, v = settings["quiet"], settings["verbose"]
        if q.source is v.source is Source.FILE:
            both = f"{config_path}: [gsup] quiet and verbose"
        else:
            both = f"{_where('quiet', q, config_path)} and {_where('verbose', v, config_path)}"
        raise UsageError(f"{both} cannot both be on")
    check_users(plan, lambda p: _user_where(p, settings["user"], config_path, data))
    return Resolved(
        plan=plan,
        budget=the_budget,
        settings=settings,
        log_format=log_format,
        quiet=quiet,
        verbose=verbose,
        config_path=config_path,
        evidence=evidence,
    )


def _signal(v: object) -> signal.Signals:
    return parse_signal(str(v))


def _stop_signal(v: object) -> signal.Signals:
    return parse_stop_signal(str(v))


def _shown(v: object) -> str:
    """A value for a message: text as the user typed it (``quote``), anything else as TOML holds it."""
    return quote(v) if isinstance(v, str) else repr(v)


def _forward_to(v: str) -> ForwardTo:
    try:
        return ForwardTo(v.lower())
    except ValueError:
        raise UsageError(f"{quote(v)} is not one of group, child") from None


def _log_format(v: str) -> str:
    if v not in ("text", "json"):
        raise UsageError(f"{quote(v)} is not one of text, json")
    return v


def _health(v: str) -> str:
    from gsup.health import Address  # only when given: it imports socket

    return str(Address.parse(v))


def _command(v: object) -> tuple[bytes, ...]:
    """A command given as one string (split like a shell would) or as a list of strings."""
    if isinstance(v, str):
        try:
            parts = shlex.split(v)
        except ValueError as e:
            raise UsageError(f"cannot split {v!r}: {e}") from None
    elif isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        parts = list(v)
    else:
        raise UsageError(f"expected a command, got {_shown(v)}")
    if not parts or not parts[0]:
        raise UsageError("empty command")
    if any("\0" in p for p in parts):
        raise UsageError("an argument holds a NUL character, which no command line can carry")
    return tuple(os.fsencode(p) for p in parts)


def _single_ready(v: str) -> ReadySpec:
    """``--ready``: a single command is probed until it is ready, and never fails for it."""
    from gsup.readiness import Probe

    probe = Probe.parse(v, log=True)
    return ReadySpec(probe.kind, probe.target, (), timeout=None, interval=0.25)


def _rewrite(text: object) -> tuple[signal.Signals, signal.Signals]:
    src, sep, dst = str(text).partition(":")
    if not sep:
        raise UsageError(f"{_shown(text)} is not FROM:TO (e.g. TERM:QUIT)")
    pair = parse_signal(src), parse_signal(dst)
    if pair[0] in UNCATCHABLE:
        raise UsageError(f"{pair[0].name} cannot be caught, so it cannot be rewritten")
    return pair


def _one_target_each(
    pairs: tuple[tuple[signal.Signals, signal.Signals], ...], where: str
) -> tuple[tuple[signal.Signals, signal.Signals], ...]:
    """``--rewrite`` pairs, refused when one signal is to become two different ones."""
    targets: dict[signal.Signals, signal.Signals] = {}
    for src, dst in pairs:
        if targets.setdefault(src, dst) != dst:
            raise UsageError(
                f"{where}: {src.name} is rewritten twice, to {targets[src].name} and to {dst.name}:"
                " give one target"
            )
    return pairs


def check_users(plan: Plan, where: Callable[[ProgramSpec], str]) -> None:
    """Refuse a program's ``user`` that its start would refuse (the start's own rule, ``spawn.resolve_user``).

    So ``gsup check`` says what the start would say; *where* names the
    setting of each program in the message.
    """
    users = [p for p in plan.programs if p.user is not None]
    if not users:
        return
    from gsup.spawn import resolve_user  # reads the account database; only when a user is set

    for p in users:
        assert p.user is not None  # filtered above
        resolve_user(p.user, where=where(p))


def _user_where(p: ProgramSpec, given: Setting, path: Optional[str], data: Mapping[str, Any]) -> str:
    """Where program *p*'s ``user`` came from, for messages: its own key, or the global option."""
    own = data.get("programs", {}).get(p.name) if isinstance(data.get("programs"), dict) else None
    if isinstance(own, dict) and own.get("user"):
        return f"{path}: [programs.{p.name}] user"
    return _where("user", given, path)


def _exit_code(v: object) -> int:
    try:
        n = int(str(v))
    except ValueError:
        raise UsageError(f"{_shown(v)} is not an exit code (0-255)") from None
    if not 0 <= n <= 255:
        raise UsageError(f"{n} is not an exit code (0-255)")
    return n


# -- [programs.NAME] tables (many-programs mode) -----------------------------

_PROGRAM_KEYS = {
    "command",
    "shell",
    "env",
    "cwd",
    "user",
    "stop_signal",
    "grace",
    "depends_on",
    "oneshot",
    "ready",
    "restart",
    "max_restarts",
    "backoff",
    "backoff_max",
    "prefix",
    "timestamps",
    "success_codes",
    "min_uptime",
    "required",
    "liveness",
    "pre_stop",
}
_READY_KEYS = {"tcp", "http", "file", "command", "log", "timeout", "interval"}
_LIVENESS_KEYS = {"tcp", "http", "command", "timeout", "interval", "failures"}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class _Table:
    """Typed access to one TOML table, with errors naming the file and key."""

    def __init__(self, path: str, where: str, table: Mapping[str, Any], keys: set[str]) -> None:
        self.path, self.where, self.table = path, where, table
        for key in table:
            if key not in keys:
                raise UsageError(f"{path}: {where} unknown key {key!r} (valid: {', '.join(sorted(keys))})")

    def fail(self, key: str, message: str) -> UsageError:
        return UsageError(f"{self.path}: {self.where} {key}: {message}")

    def get(self, key: str, kinds: tuple[type, ...], what: str, default: Any = None) -> Any:
        if key not in self.table:
            return default
        v = self.table[key]
        if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
            raise self.fail(key, f"expected {what}, got {v!r}")
        return v

    def duration(self, key: str, default: Optional[float] = None) -> Optional[float]:
        v = self.get(key, (str, int, float), "a duration like 30s", None)
        if v is None:
            return default
        try:
            return parse_duration(str(v))
        except UsageError as e:
            raise self.fail(key, e.message) from None

    def strings(self, key: str) -> list[str]:
        v = self.get(key, (list,), "a list of strings", [])
        if not all(isinstance(x, str) for x in v):
            raise self.fail(key, f"expected a list of strings, got {v!r}")
        return list(v)


def _argv(t: _Table, key: str, *, shell: bool) -> tuple[bytes, ...]:
    v = t.get(key, (str, list), "a list of strings or a string", None)
    if v is None:
        raise t.fail(key, "missing (the program's command)")
    if isinstance(v, str):
        if shell:
            return (b"/bin/sh", b"-c", os.fsencode(v))
        try:
            parts = shlex.split(v)
        except ValueError as e:
            raise t.fail(key, f"cannot split {v!r}: {e}") from None
    else:
        if shell:
            raise t.fail("shell", "shell = true needs command as a string")
        parts = t.strings(key)
    if not parts or not parts[0]:
        raise t.fail(key, "empty command")
    if any("\0" in p for p in parts):
        raise t.fail(key, "an argument holds a NUL character, which no command line can carry")
    return tuple(os.fsencode(p) for p in parts)


def _environment(t: _Table) -> dict[bytes, bytes]:
    """A program's ``env`` table as the bytes its start passes on; what execve cannot take is refused."""
    table = t.get("env", (dict,), "a table of strings", {})
    env: dict[bytes, bytes] = {}
    for k, v in table.items():
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise t.fail("env", f"{k}: expected a string, got {v!r}")
        if not k or "=" in k or "\0" in k:
            raise t.fail("env", f"{_shown(k)} is not a variable name (not empty, no '=' or NUL)")
        if "\0" in str(v):
            raise t.fail("env", f"{k}: the value holds a NUL character, which no environment can carry")
        env[os.fsencode(k)] = os.fsencode(str(v))
    return env


def _check(path: str, name: str, key: str, raw: Any, kinds: tuple[str, ...], keys: set[str]) -> _Table:
    """The table of a program's ``ready`` or ``liveness`` check, with exactly one of *kinds*."""
    if not isinstance(raw, dict):
        example = '{ tcp = "127.0.0.1:8000" }'
        raise UsageError(f"{path}: [programs.{name}] {key}: expected a table like {example}")
    t = _Table(path, f"[programs.{name}.{key}]", raw, keys)
    if len([k for k in kinds if k in raw]) != 1:
        raise UsageError(f"{path}: [programs.{name}.{key}] needs exactly one of {', '.join(kinds)}")
    return t


def _target(t: _Table, kinds: tuple[str, ...]) -> tuple[str, str, tuple[bytes, ...]]:
    """A check's kind, its target as text, and for a command its argv."""
    kind = next(k for k in kinds if k in t.table)
    if kind == "command":
        argv = _argv(t, "command", shell=False)
        return kind, " ".join(os.fsdecode(a) for a in argv), argv
    from gsup.readiness import Probe  # only for configs that probe: it imports socket

    target = t.get(kind, (str,), "a string", None)
    try:
        probe = Probe.parse(f"{kind}={target}", log=True)
    except UsageError as e:
        raise t.fail(kind, e.message.split(": ", 1)[-1]) from None
    return probe.kind, probe.target, ()


def _interval(t: _Table, default: float) -> float:
    from gsup.readiness import MIN_INTERVAL

    interval = t.duration("interval", default)
    assert interval is not None  # a default is given
    if interval < MIN_INTERVAL:
        raise t.fail(
            "interval", f"{format_duration(interval)} is too short: at least {format_duration(MIN_INTERVAL)}"
        )
    return interval


def _ready(path: str, name: str, raw: Any) -> ReadySpec:
    kinds = ("tcp", "http", "file", "command", "log")
    t = _check(path, name, "ready", raw, kinds, _READY_KEYS)
    timeout = t.duration("timeout", 30.0)
    assert timeout is not None  # a default is given
    kind, target, argv = _target(t, kinds)
    return ReadySpec(kind, target, argv, timeout, _interval(t, 0.25))


def _liveness(path: str, name: str, raw: Any) -> LivenessSpec:
    kinds = ("http", "tcp", "command")
    t = _check(path, name, "liveness", raw, kinds, _LIVENESS_KEYS)
    timeout = t.duration("timeout", 2.0)
    assert timeout is not None  # a default is given
    if timeout <= 0:
        raise t.fail("timeout", "must be more than 0")
    failures = t.get("failures", (int,), "a whole number of failures in a row", 3)
    if failures < 1:
        raise t.fail("failures", "must be at least 1")
    kind, target, argv = _target(t, kinds)
    return LivenessSpec(kind, target, argv, _interval(t, 10.0), timeout, failures)


def _depends_on(t: _Table) -> tuple[Dependency, ...]:
    """``depends_on``: an array of names, or a table of name = condition."""
    raw = t.get("depends_on", (list, dict), 'a list of names or a table like { db = "ready" }', [])
    if isinstance(raw, list):
        return tuple(Dependency(n) for n in t.strings("depends_on"))
    out = []
    for dep, cond in raw.items():
        try:
            out.append(Dependency(dep, Condition(cond)))
        except ValueError:
            conditions = ", ".join(c.value for c in Condition)
            raise t.fail("depends_on", f"{dep} = {cond!r}: the condition is one of {conditions}") from None
    return tuple(out)


def programs_from(
    path: str, data: Mapping[str, Any], grace: float, defaults: Optional[ProgramSpec] = None
) -> tuple[ProgramSpec, ...]:
    """The validated programs of a config file, in start (dependency) order.

    *defaults*: what the global options set for every program (``--user``,
    ``--stop-signal``, ``--success-code``); a program's own key beats them.
    """
    defaults = defaults or ProgramSpec(argv=())
    tables = data.get("programs", {})
    if not isinstance(tables, dict):
        raise UsageError(f"{path}: programs must be tables: [programs.NAME]")
    specs: dict[str, ProgramSpec] = {}
    for name, raw in tables.items():
        if not _NAME.fullmatch(name):
            raise UsageError(f"{path}: [programs.{name}] is not a valid name (letters, digits, _ . -)")
        if not isinstance(raw, dict):
            raise UsageError(f"{path}: [programs.{name}] must be a table")
        t = _Table(path, f"[programs.{name}]", raw, _PROGRAM_KEYS)
        shell = t.get("shell", (bool,), "true or false", False)
        env = _environment(t)
        stop_raw = t.get("stop_signal", (str, int), "a signal like TERM", None)
        try:
            stop_signal = parse_stop_signal(str(stop_raw)) if stop_raw is not None else defaults.stop_signal
        except UsageError as e:
            raise t.fail("stop_signal", e.message) from None
        codes_raw = t.get("success_codes", (list,), "a list of exit codes like [0, 143]", None)
        if codes_raw is None:
            success_codes = defaults.success_codes
        else:
            if not all(isinstance(c, int) and not isinstance(c, bool) for c in codes_raw):
                raise t.fail(
                    "success_codes", f"expected a list of exit codes like [0, 143], got {codes_raw!r}"
                )
            try:
                success_codes = frozenset(_exit_code(c) for c in codes_raw)
            except UsageError as e:
                raise t.fail("success_codes", e.message) from None
        program_grace = t.duration("grace")
        if program_grace is not None and program_grace > grace:
            raise t.fail(
                "grace",
                f"{program_grace:g}s is over the budget's grace of {grace:g}s "
                "(every program stops within the one grace)",
            )
        restart_raw = t.get("restart", (str,), "never, on-failure or always", "never")
        try:
            policy = Restart(restart_raw)
        except ValueError:
            raise t.fail("restart", f"{restart_raw!r} is not one of never, on-failure, always") from None
        max_restarts = t.get("max_restarts", (int,), "an integer", 5)
        if max_restarts < 0:
            raise t.fail("max_restarts", "must not be negative")
        prefix_raw = t.get("prefix", (str, bool), "a string or false", True)
        prefix = name if prefix_raw is True else "" if prefix_raw is False else prefix_raw
        oneshot = t.get("oneshot", (bool,), "true or false", False)
        if oneshot and policy is Restart.ALWAYS:
            raise t.fail("restart", "a oneshot cannot restart always")
        if oneshot and "liveness" in raw:
            raise t.fail("liveness", "a oneshot is not checked for liveness (it is meant to exit)")
        specs[name] = ProgramSpec(
            argv=_argv(t, "command", shell=shell),
            name=name,
            env=env,
            cwd=t.get("cwd", (str,), "a path", None),
            user=t.get("user", (str,), "USER[:GROUP]", None) or defaults.user,
            stop_signal=stop_signal,
            success_codes=success_codes,
            grace=program_grace,
            depends_on=_depends_on(t),
            oneshot=oneshot,
            ready=_ready(path, name, raw["ready"]) if "ready" in raw else None,
            liveness=_liveness(path, name, raw["liveness"]) if "liveness" in raw else None,
            restart=RestartSpec(
                policy=policy,
                max_restarts=max_restarts,
                backoff=t.duration("backoff", 0.5) or 0.0,
                backoff_max=t.duration("backoff_max", 30.0) or 0.0,
                min_uptime=t.duration("min_uptime", 10.0) or 0.0,
            ),
            required=t.get("required", (bool,), "true or false", True),
            pre_stop=_argv(t, "pre_stop", shell=False) if "pre_stop" in raw else (),
            prefix=prefix,
            timestamps=t.get("timestamps", (bool,), "true or false", defaults.timestamps),
        )
    for name, spec in specs.items():
        for dep in spec.needs:
            if dep not in specs:
                raise UsageError(f"{path}: [programs.{name}] depends_on: unknown program {dep!r}")
            if dep == name:
                raise UsageError(f"{path}: [programs.{name}] depends_on: a program cannot depend on itself")
    return tuple(specs[n] for n in start_order(path, specs))


def start_order(path: str, specs: Mapping[str, ProgramSpec]) -> list[str]:
    """Dependencies first, file order otherwise; a cycle is an error naming it."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: visiting, 2: done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*trail[trail.index(name) :], name]
            raise UsageError(f"{path}: dependency cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for dep in specs[name].needs:
            visit(dep, [*trail, name])
        state[name] = 2
        order.append(name)

    for name in specs:
        visit(name, [])
    return order
