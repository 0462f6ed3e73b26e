"""The harness of the many-programs tests: real gsup, real programs, two modes.

``how`` runs each test twice: ``subreaper`` starts gsup directly; ``pid1``
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
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from prockit import wait_first_child

GSUP = os.path.join(os.path.dirname(sys.executable), "gsup")
PROG_PATH = str(Path(__file__).resolve().parent / "progs" / "prog.py")
UNSHARE = ("unshare", "--pid", "--fork", "--mount-proc")
EVENT_LINE = re.compile(r"^@(\w+)((?: \w+=\S*)*)$")


def _load_prog() -> Any:
    spec = importlib.util.spec_from_file_location("many_prog", PROG_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: prog.py itself, for the content it writes (``prog.data_line``, ``prog.block``, ``prog.long_line``).
prog = _load_prog()


# -- the two modes ------------------------------------------------------------------


@dataclass(frozen=True)
class How:
    name: str

    @property
    def pid1(self) -> bool:
        return self.name == "pid1"

    def command(self, *args: str) -> list[str]:
        return [*(UNSHARE if self.pid1 else ()), GSUP, *args]


_unshare_works: Optional[bool] = None


def can_unshare() -> bool:
    global _unshare_works
    if _unshare_works is None:
        try:
            r = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=30)
            _unshare_works = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _unshare_works = False
    return _unshare_works


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


@dataclass(frozen=True)
class Proc:
    """A host process: pid and start time (a pid alone can be reused)."""

    pid: int
    start: int

    @property
    def running(self) -> bool:
        st = _stat(self.pid)
        return st is not None and st[3] == self.start and st[0] not in "ZX"


def _stat(pid: int) -> Optional[tuple[str, int, int, int]]:
    """(state, ppid, pgrp, start time) of *pid*, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[19])


def _pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def with_token(token: str) -> list[Proc]:
    """Every live (not zombie) host process whose command line holds *token*."""
    out = []
    needle = token.encode()
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle not in f.read():
                    continue
        except OSError:
            continue
        st = _stat(pid)
        if st is not None and st[0] not in "ZX":
            out.append(Proc(pid, st[3]))
    return out


def descendants(root: int) -> list[int]:
    """Host pids below *root* in the process tree."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        st = _stat(pid)
        if st is not None:
            children.setdefault(st[1], []).append(pid)
    out, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            out.append(pid)
            todo.append(pid)
    return out


def rss_kib(pid: int) -> int:
    """VmRSS of *pid* in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- gsup's output ---------------------------------------------------------------------------


class Stream:
    """One of gsup's output pipes, read by a thread: raw bytes and lines with arrival times."""

    def __init__(
        self,
        fd: int,
        name: str,
        *,
        slow: bool = False,
        parse: Callable[[bytes], Optional[dict[str, Any]]] = lambda _: None,
    ) -> None:
        self.fd, self.name, self.slow, self.parse = fd, name, slow, parse
        self.data = bytearray()
        self.lines: list[bytes] = []
        #: What ``parse`` made of each line, in order (lines it returned None for left out).
        self.parsed: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.eof = False
        self._partial = b""
        self.cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, name=f"read-{name}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            if self.slow:  # a log shipper that lags: small uneven reads, a pause after each
                time.sleep(0.001)
            try:
                chunk = os.read(self.fd, 1000 + len(self.data) % 5000 if self.slow else 1 << 16)
            except OSError:
                chunk = b""
            t = time.monotonic()
            with self.cond:
                if not chunk:
                    if self._partial:
                        self._add([self._partial], t)
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                parts = (self._partial + chunk).split(b"\n")
                self._partial = parts.pop()
                self._add(parts, t)
                self.cond.notify_all()

    def _add(self, lines: list[bytes], t: float) -> None:
        self.lines += lines
        self.times += [t] * len(lines)
        for line in lines:
            parsed = self.parse(line)
            if parsed is not None:
                self.parsed.append(parsed)

    def wait_for(self, found: Callable[[], Any], timeout: float, what: str) -> Any:
        """Wait until ``found()`` (called under the lock) returns something true."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                result = found()
                if result:
                    return result
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    tail = b"\n".join(self.lines[-25:]).decode(errors="replace")
                    why = "end of output" if self.eof else f"{timeout}s"
                    raise AssertionError(f"{what} not on gsup's {self.name} ({why}); last lines:\n{tail}")
                self.cond.wait(left)

    def wait_eof(self, timeout: float) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.eof, timeout):
                raise AssertionError(f"gsup's {self.name} still open after {timeout}s")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


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


def _program_event(line: bytes) -> Optional[dict[str, Any]]:
    """A program's ``@event`` line (prefixed by gsup), or None."""
    _, sep, body = line.partition(b" | ")
    if not sep or not body.startswith(b"@"):
        return None
    return parse_event_line(body)


class Run:
    """One started gsup (through unshare in pid1 mode)."""

    def __init__(
        self,
        how: How,
        args: Sequence[str],
        *,
        token: str,
        env: Optional[Mapping[str, str]] = None,
        read_stdout: bool = True,
        slow_stderr: bool = False,
    ) -> None:
        self.how, self.token = how, token
        environ = {k: v for k, v in os.environ.items() if not k.startswith("GSUP_")}
        environ.update(env or {})
        self.argv = how.command(*args)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environ,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.stdout_fd = self.proc.stdout.fileno()
        self.out = Stream(self.stdout_fd, "stdout", parse=_program_event) if read_stdout else None
        self.err = Stream(self.proc.stderr.fileno(), "stderr", slow=slow_stderr, parse=_gsup_event)
        self.learned: list[Proc] = []
        self._gsup: Optional[Proc] = None
        self.exited_at: Optional[float] = None
        self._exited = threading.Event()
        threading.Thread(target=self._wait, name="waitpid", daemon=True).start()

    def _wait(self) -> None:
        self.proc.wait()  # a blocking waitpid: wakes at the exit
        self.exited_at = time.monotonic()
        self._exited.set()

    # -- gsup --

    @property
    def gsup(self) -> Proc:
        """gsup's host process (in pid1 mode, the child of unshare)."""
        if self._gsup is None:
            pid = self.proc.pid
            if self.how.pid1:
                pid = wait_first_child(pid)
            st = _stat(pid)
            assert st is not None, "gsup is not running"
            self._gsup = Proc(pid, st[3])
        return self._gsup

    def send(self, sig: int = signal.SIGTERM) -> float:
        """Signal gsup; return the time just before."""
        pid = self.gsup.pid
        t = time.monotonic()
        os.kill(pid, sig)
        return t

    def wait(self, timeout: float = 30.0) -> int:
        if not self._exited.wait(timeout):
            raise AssertionError(
                f"gsup still running after {timeout}s; stderr:\n{self.stderr_text()[-3000:]}"
            )
        assert self.proc.returncode is not None
        return self.proc.returncode

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for gsup's exit and the end of its output; return its status."""
        code = self.wait(timeout)
        if self.out is not None:
            self.out.wait_eof(timeout)
        self.err.wait_eof(timeout)
        return code

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

        return self.err.wait_for(found, timeout, what)  # type: ignore[no-any-return]

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
        with self.err.cond:
            return bytes(self.err.data).decode(errors="replace")

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

        return self.out.wait_for(found, timeout, f"@{event} of {name}")  # type: ignore[no-any-return]

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

    # -- teardown --

    def close(self) -> None:
        """Kill, by pid, everything this run started; reap it; close the pipes."""
        try:
            if not self._exited.is_set():
                top = self.proc.pid
                for _ in range(50):  # below gsup first, while it still holds the tree
                    live = [pid for pid in descendants(top) if (_stat(pid) or "Z")[0] not in "ZX"]
                    if not live:
                        break
                    for pid in reversed(live):
                        _kill(pid)
                _kill(top)
            for p in self.leftovers():
                _kill(p.pid)
            self._exited.wait(15)
        finally:
            for stream in (self.out, self.err):
                if stream is not None:
                    stream.join(5)
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()


class Fleet:
    """Starts gsup on a config of programs, in one mode, for one test."""

    def __init__(self, how: How, tmp_path: Path) -> None:
        self.how, self.tmp = how, tmp_path
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
        r = Run(self.how, args, token=self.token, **kwargs)
        self.runs.append(r)
        return r

    def close(self) -> None:
        for r in self.runs:
            r.close()
        for p in with_token(self.token):  # even what escaped every run
            _kill(p.pid)


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]
