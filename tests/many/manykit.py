"""The harness of the many-programs tests: real gsup, real programs, two modes.

``mode`` runs each test twice: ``subreaper`` starts gsup directly; ``pid1``
starts it as ``unshare --pid --fork --mount-proc gsup ...``, PID 1 of a new
PID namespace (signals then go to gsup's host pid, the child of unshare).

``fleet(programs, ...)`` writes a TOML config and starts ``gsup --config``
with JSON events; the returned ``Run`` reads gsup's stdout and stderr in
threads, so tests wait on a condition variable for a program's event line
(``run.log("ready", "db")``) or a gsup event (``run.event("stopping")``),
never on a sleep. Every program command carries a token unique to the test,
so every process of the run, grandchildren included, can be found in /proc
(``run.processes()``) and, at teardown, killed by pid.

Clocks: programs, gsup's JSON ``ts`` and the test all read CLOCK_MONOTONIC,
which a PID namespace does not change, so their times compare directly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Optional

import prockit
from gsupkit import GsupRun, Mode, Stream
from prockit import Proc, carrying, kill_pid

PROG_PATH = str(Path(__file__).resolve().parent / "progs" / "prog.py")
EVENT_LINE = re.compile(r"^@(\w+)((?: \w+=\S*)*)$")


def _load_prog() -> Any:
    spec = importlib.util.spec_from_file_location("many_prog", PROG_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: prog.py itself, for the content it writes (``prog.data_line``, ``prog.block``, ``prog.long_line``).
prog = _load_prog()


# -- TOML -----------------------------------------------------------------------------


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def toml(gsup: Mapping[str, Any], programs: Mapping[str, Mapping[str, Any]]) -> str:
    """A config file: the ``[gsup]`` table and one ``[programs.NAME]`` table each."""
    out = ["[gsup]", *(f"{_key(k)} = {_value(v)}" for k, v in gsup.items()), ""]
    for name, table in programs.items():
        out.append(f"[programs.{_key(name)}]")
        out += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
        out.append("")
    return "\n".join(out)


# -- processes ---------------------------------------------------------------------------


def with_token(token: str) -> list[Proc]:
    """Every live (not zombie) host process whose command line holds *token*."""
    return [st.proc for st in carrying(token)]


def rss_kib(pid: int) -> int:
    """VmRSS of *pid* in KiB (0 once it is gone)."""
    try:
        return prockit.rss_kib(pid)
    except (OSError, KeyError):
        return 0


# -- gsup's output ---------------------------------------------------------------------------


def split_prefixed(line: bytes) -> tuple[str, bytes]:
    """``b"web  | text"`` -> ("web", b"text")."""
    head, sep, body = line.partition(b" | ")
    assert sep, f"not a prefixed line: {line[:200]!r}"
    return head.decode().rstrip(), body


def parse_event_line(body: bytes) -> Optional[dict[str, str]]:
    """A program's ``@event k=v ...`` line as a dict (``event`` included)."""
    m = EVENT_LINE.match(body.decode(errors="replace"))
    if not m:
        return None
    fields = dict(kv.split("=", 1) for kv in m.group(2).split())
    fields["event"] = m.group(1)
    return fields


def _gsup_event(line: bytes) -> Optional[dict[str, Any]]:
    """One of gsup's JSON event lines, or None."""
    if not line.startswith(b"{"):
        return None
    try:
        e = json.loads(line)
    except ValueError:
        return None  # not gsup's (or a broken one: the tests of whole lines see it)
    return e if isinstance(e, dict) and "event" in e else None


def program_record(line: bytes) -> Optional[dict[str, Any]]:
    """A program's output line as gsup writes it with ``--log-format json``, or None."""
    if not line.startswith(b"{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "program" in record and "line" in record else None


def _program_event(line: bytes) -> Optional[dict[str, Any]]:
    """A program's ``@event`` line (prefixed by gsup, or one of its JSON lines), or None."""
    record = program_record(line)
    if record is not None:
        body = str(record["line"]).encode()
    else:
        _, sep, body = line.partition(b" | ")
        if not sep:
            return None
    if not body.startswith(b"@"):
        return None
    return parse_event_line(body)


class Run(GsupRun):
    """One started gsup (through unshare in pid1 mode).

    Its stderr is parsed for gsup's JSON events, its stdout (unless
    *read_stdout* is false: the test reads ``stdout_fd`` itself) for the
    programs' ``@event`` lines.
    """

    err: Stream

    def __init__(
        self,
        mode: Mode,
        args: Sequence[str],
        *,
        token: str,
        env: Optional[Mapping[str, str]] = None,
        read_stdout: bool = True,
        slow_stderr: bool = False,
    ) -> None:
        self.mode, self.token = mode, token
        self._read_stdout, self._slow_stderr = read_stdout, slow_stderr
        self.learned: list[Proc] = []
        environ = {k: v for k, v in os.environ.items() if not k.startswith("GSUP_")}
        environ.update(env or {})
        super().__init__(mode.command(*args), env=environ, pid1=mode.pid1)
        assert self.proc.stdout is not None
        self.stdout_fd = self.proc.stdout.fileno()

    def reader(self, pipe: Optional[IO[bytes]], name: str) -> Optional[Stream]:
        assert pipe is not None
        if name == "stdout":
            return Stream(pipe.fileno(), "gsup's stdout", parse=_program_event) if self._read_stdout else None
        return Stream(pipe.fileno(), "gsup's stderr", slow=self._slow_stderr, parse=_gsup_event)

    # -- gsup's events (JSON lines on stderr) --

    def events(self, kind: Optional[str] = None, program: Optional[str] = None) -> list[dict[str, Any]]:
        """gsup's JSON events so far, of *kind* (for *program*)."""
        with self.err.cond:
            return self._events_locked(kind, program)

    def event(
        self, kind: str, program: Optional[str] = None, timeout: float = 15.0, n: int = 1
    ) -> dict[str, Any]:
        """Wait for the *n*-th JSON event of *kind* (for *program*); return it."""
        what = f"event {kind!r}" + (f" of {program}" if program else "")

        def found() -> Optional[dict[str, Any]]:
            es = self._events_locked(kind, program)
            return es[n - 1] if len(es) >= n else None

        return self.err.wait_for(found, timeout, what)

    def _events_locked(self, kind: Optional[str], program: Optional[str]) -> list[dict[str, Any]]:
        return [
            e
            for e in self.err.parsed
            if (kind is None or e.get("event") == kind) and (program is None or e.get("program") == program)
        ]

    def report(self) -> dict[str, Any]:
        """The final ``exit`` event (gsup has exited)."""
        exits = self.events("exit")
        assert len(exits) == 1, f"expected one exit report; stderr:\n{self.stderr_text()[-3000:]}"
        return exits[0]

    def program_report(self, name: str) -> dict[str, Any]:
        return next(p for p in self.report()["programs"] if p["name"] == name)

    def stderr_text(self) -> str:
        return self.err.text()

    # -- the programs' output lines (JSON with --log-format json) --

    def output(self, name: str, stream: str = "stdout") -> list[str]:
        """Program *name*'s lines on *stream* so far, from gsup's JSON lines."""
        s = self.out if stream == "stdout" else self.err
        assert s is not None
        with s.cond:
            lines = list(s.lines)
        records = [r for r in map(program_record, lines) if r is not None]
        return [str(r["line"]) for r in records if r["program"] == name and r["stream"] == stream]

    def wait_output(self, name: str, pattern: str, timeout: float = 15.0) -> str:
        """Wait for a line of program *name* on stdout matching *pattern*; return it."""
        assert self.out is not None
        rx = re.compile(pattern)
        return self.out.wait_for(
            lambda: next((line for line in self.output(name) if rx.search(line)), None),
            timeout,
            f"a line of {name} matching {pattern!r}",
        )

    # -- the programs' own event lines (on stdout) --

    def logs(self, event: Optional[str] = None, name: Optional[str] = None) -> list[dict[str, str]]:
        assert self.out is not None
        with self.out.cond:
            return self._logs_locked(event, name)

    def _logs_locked(self, event: Optional[str], name: Optional[str]) -> list[dict[str, str]]:
        assert self.out is not None
        return [
            e
            for e in self.out.parsed
            if (event is None or e["event"] == event) and (name is None or e["name"] == name)
        ]

    def log(self, event: str, name: str, timeout: float = 15.0, n: int = 1) -> dict[str, str]:
        """Wait for the *n*-th ``@event`` line of program *name*; return its fields."""
        assert self.out is not None

        def found() -> Optional[dict[str, str]]:
            es = self._logs_locked(event, name)
            return es[n - 1] if len(es) >= n else None

        return self.out.wait_for(found, timeout, f"@{event} of {name}")

    def t(self, event: str, name: str, n: int = 1, timeout: float = 15.0) -> float:
        """The time a program logged for its *n*-th *event* (waited for)."""
        return float(self.log(event, name, timeout=timeout, n=n)["t"])

    # -- processes --

    def processes(self) -> list[Proc]:
        """Every live process of this run's programs (host pids); remembered for the end."""
        procs = with_token(self.token)
        self.learned += [p for p in procs if p not in self.learned]
        return procs

    def leftovers(self) -> list[Proc]:
        """What is still running of every process learned, or carrying the token."""
        return sorted({p for p in [*self.learned, *with_token(self.token)] if p.running}, key=lambda p: p.pid)

    def kill_strays(self) -> None:
        for p in self.leftovers():
            kill_pid(p.pid)


class Fleet:
    """Starts gsup on a config of programs, in one mode, for one test."""

    def __init__(self, mode: Mode, tmp_path: Path) -> None:
        self.mode, self.tmp = mode, tmp_path
        self.token = f"gsup-many-{uuid.uuid4().hex}"
        self.runs: list[Run] = []
        self.config_path = tmp_path / "gsup.toml"

    def prog(self, name: str, *args: object) -> list[str]:
        """The command of a tests/many/progs/prog.py program (with this test's token)."""
        return [sys.executable, PROG_PATH, name, "--token", self.token, *map(str, args)]

    def up(self, name: str, *args: object) -> dict[str, Any]:
        """A program table: prog *name* that is ready once it has logged ``@start`` (its handlers set).

        A program that depends on it starts only then, so a test can stop
        the fleet without racing the programs' own start.
        """
        flag = str(self.tmp / f"{name}.up")
        return {
            "command": self.prog(name, *args, "--touch", flag),
            "ready": {"file": flag, "interval": "20ms"},
        }

    def write(
        self, programs: Mapping[str, Mapping[str, Any]], gsup: Optional[Mapping[str, Any]] = None
    ) -> Path:
        table = {"grace": "3s", **(gsup or {})}
        self.config_path.write_text(toml(table, programs))
        return self.config_path

    def start(
        self,
        programs: Mapping[str, Mapping[str, Any]],
        gsup: Optional[Mapping[str, Any]] = None,
        *,
        args: Sequence[str] = ("--log-format", "json"),
        **kwargs: Any,
    ) -> Run:
        """``gsup --config FILE ARGS`` on *programs* (``[gsup] grace`` defaults to 3s).

        *kwargs* go to ``Run``: ``env``, ``read_stdout``, ``slow_stderr``.
        """
        path = self.write(programs, gsup)
        return self.run(["--config", str(path), *args], **kwargs)

    def run(self, args: Sequence[str], **kwargs: Any) -> Run:
        r = Run(self.mode, args, token=self.token, **kwargs)
        self.runs.append(r)
        return r

    def close(self) -> None:
        for r in self.runs:
            r.close()
        for p in with_token(self.token):  # even what escaped every run
            kill_pid(p.pid)


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]
