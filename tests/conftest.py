"""Fixtures for running the real ``gsup`` command.

``mode`` runs every test that uses it twice: ``subreaper`` starts gsup
directly (it registers as child subreaper); ``pid1`` starts it as
``unshare --pid --fork --mount-proc gsup ...``, so gsup is PID 1 of a new
PID namespace. ``gsup`` is a factory for ``Run`` objects: one started gsup,
its output read by threads with the arrival time of every line, and at
teardown everything it started is killed by pid (never by name).

Nothing here sleeps where an event can be waited for: lines are awaited on a
condition variable, exits on a thread blocked in waitpid.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest
from prockit import wait_first_child

HELPERS = Path(__file__).resolve().parent / "helpers"
#: The versatile helper child; see its docstring for its flags and lines.
CHILD = (sys.executable, str(HELPERS / "child.py"))
#: Exec a command with ignored/blocked signals or a controlling terminal.
LAUNCH = (sys.executable, str(HELPERS / "launch.py"))
PID1_PREFIX = ("unshare", "--pid", "--fork", "--mount-proc")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def _find_gsup() -> str:
    """The installed console script of the interpreter running the tests.

    Preferred over PATH because a version manager's shim (pyenv) would add
    its own variables to the environment and a shell to every start.
    """
    beside = Path(sys.executable).parent / "gsup"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("gsup") or "gsup"  # not installed: each test says so when it runs


GSUP = _find_gsup()


# -- processes, read from /proc ---------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """A process identified by host pid and start time (a pid alone can be reused)."""

    pid: int
    start: int

    @property
    def running(self) -> bool:
        """Still there and not a zombie."""
        st = stat(self.pid)
        return st is not None and st.start == self.start and st.state not in "ZX"


@dataclass(frozen=True)
class Stat:
    pid: int
    state: str
    ppid: int
    pgrp: int
    start: int


def stat(pid: int) -> Optional[Stat]:
    """The fields of /proc/PID/stat the tests need, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return Stat(pid, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[19]))


def all_stats() -> list[Stat]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = stat(int(name))
            if st is not None:
                out.append(st)
    return out


def descendants(root: int) -> list[Stat]:
    """Every process below *root* in the (host) process tree, zombies included."""
    children: dict[int, list[Stat]] = {}
    for st in all_stats():
        children.setdefault(st.ppid, []).append(st)
    out, todo = [], [root]
    while todo:
        for st in children.get(todo.pop(), []):
            out.append(st)
            todo.append(st.pid)
    return out


def status_fields(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def cpu_ticks(pid: int) -> int:
    """utime + stime of *pid*, in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def quiet_platform() -> dict[str, str]:
    """The test's environment, with gsup's platform detection switched off.

    Detection (a /.dockerenv file, KUBERNETES_SERVICE_HOST...) would tie the
    allowed grace to wherever the tests happen to run; these tests are about
    supervision, so they run gsup as if on no platform.
    """
    return {**os.environ, "GSUP_PLATFORM": "none"}


# -- the two modes ----------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    name: str
    prefix: tuple[str, ...]

    @property
    def pid1(self) -> bool:
        return self.name == "pid1"

    def command(self, *args: str) -> list[str]:
        """``gsup ARGS`` as this mode runs it."""
        return [*self.prefix, GSUP, *args]

    @property
    def env(self) -> dict[str, str]:
        """The environment tests give gsup (see ``quiet_platform``)."""
        return quiet_platform()

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """``gsup ARGS`` to its end, output captured (for runs that end by themselves)."""
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout, env=self.env
        )


_pid_namespaces: Optional[bool] = None


def _can_unshare() -> bool:
    global _pid_namespaces
    if _pid_namespaces is None:
        try:
            r = subprocess.run([*PID1_PREFIX, "true"], capture_output=True, timeout=30)
            _pid_namespaces = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _pid_namespaces = False
    return _pid_namespaces


@pytest.fixture(params=["subreaper", "pid1"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """How gsup runs: as a child subreaper, or as PID 1 of a new PID namespace."""
    if request.param == "pid1":
        if not _can_unshare():
            pytest.skip("needs root and unshare(1) for a PID namespace")
        return Mode("pid1", PID1_PREFIX)
    return Mode("subreaper", ())


# -- output ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    text: str
    t: float  # time.monotonic() when the line had arrived
    match: re.Match[str]

    def __getitem__(self, group: int | str) -> str:
        return self.match[group]


class Stream:
    """Everything read from one pipe (or pty master), and its lines with arrival times."""

    def __init__(self, fd: int, name: str, *, tty: bool = False) -> None:
        self.fd, self.name, self.tty = fd, name, tty
        self.data = bytearray()
        self.lines: list[tuple[str, float]] = []
        self.eof = False
        self._partial = bytearray()
        self._cursor = 0
        #: More to show when an expectation fails (the other stream's tail).
        self.context: Callable[[], str] = str
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, name=f"read-{name}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        sep = re.compile(rb"[\r\n]" if self.tty else rb"\n")
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:  # EIO: every holder of the pty's slave side is gone
                chunk = b""
            now = time.monotonic()
            with self._cond:
                if not chunk:
                    if self._partial:
                        self._add_line(bytes(self._partial), now)
                    self.eof = True
                    self._cond.notify_all()
                    return
                self.data += chunk
                self._partial += chunk
                parts = sep.split(bytes(self._partial))
                self._partial = bytearray(parts.pop())
                for part in parts:
                    self._add_line(part, now)
                self._cond.notify_all()

    def _add_line(self, raw: bytes, t: float) -> None:
        if self.tty:
            raw = ANSI.sub(b"", raw)
            if not raw:
                return
        self.lines.append((raw.decode(errors="replace"), t))

    def text(self) -> str:
        """All output so far as text (escape sequences removed on a tty)."""
        with self._cond:
            raw = bytes(self.data)
        return (ANSI.sub(b"", raw) if self.tty else raw).decode(errors="replace")

    def expect(self, pattern: str, timeout: float = 10.0) -> Line:
        """Wait for the next line (after the last one expected) matching *pattern*."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._cursor < len(self.lines):
                    text, t = self.lines[self._cursor]
                    self._cursor += 1
                    m = rx.search(text)
                    if m:
                        return Line(text, t, m)
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    tail = "\n".join(text for text, _ in self.lines[-30:])
                    why = "end of output" if self.eof else f"{timeout}s"
                    raise AssertionError(
                        f"no line matching {pattern!r} on {self.name} ({why}); last lines:\n"
                        f"{tail}\n{self.context()}"
                    )
                self._cond.wait(left)

    def wait_text(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until the whole output so far (lines or not) contains *pattern*."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self.text())
                if m:
                    return m
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    raise AssertionError(f"{pattern!r} not in {self.name}:\n{self.text()[-2000:]}")
                self._cond.wait(left)

    def matching(self, pattern: str) -> list[str]:
        """Every line so far that matches *pattern*."""
        rx = re.compile(pattern)
        with self._cond:
            return [text for text, _ in self.lines if rx.search(text)]

    def wait_eof(self, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.eof, timeout):
                raise AssertionError(f"{self.name} still open after {timeout}s")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


# -- one run of gsup --------------------------------------------------------------------


class Run:
    """One started ``gsup`` (through ``unshare`` in pid1 mode).

    ``out`` and ``err`` are its stdout and stderr (the same stream with a
    tty). Pids printed by the helper are pids in gsup's namespace;
    ``learn`` turns them into host processes that can be checked later.
    """

    def __init__(
        self,
        mode: Mode,
        args: Sequence[str],
        *,
        child: Optional[Sequence[str]] = None,
        stdin: int | None = subprocess.DEVNULL,
        env: Optional[dict[str, str]] = None,
        launch: Sequence[str] = (),
        tty: bool = False,
    ) -> None:
        self.mode = mode
        if env is None:
            env = quiet_platform()
        if child is not None:
            args = [*args, "--", *CHILD, *child]
        wrapper = [*LAUNCH, *launch, "--ctty" if tty else "", "--"] if (launch or tty) else []
        self.argv = [a for a in wrapper if a] + mode.command(*args)
        self.learned: list[Proc] = []
        self._gsup: Optional[Proc] = None
        self._master: Optional[int] = None
        if tty:
            master, slave = os.openpty()
            self._master = master
            try:
                self.proc = subprocess.Popen(self.argv, stdin=slave, stdout=slave, stderr=slave, env=env)
            finally:
                os.close(slave)
            self.out = self.err = Stream(master, "tty", tty=True)
        else:
            self.proc = subprocess.Popen(
                self.argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )
            assert self.proc.stdout is not None and self.proc.stderr is not None
            self.out = Stream(self.proc.stdout.fileno(), "stdout")
            self.err = Stream(self.proc.stderr.fileno(), "stderr")
            self.out.context = lambda: "stderr:\n" + self.err.text()[-2000:]
            self.err.context = lambda: "stdout:\n" + self.out.text()[-2000:]
        self.started_at = time.monotonic()
        self.exited_at: Optional[float] = None
        self._exited = threading.Event()
        self._waiter = threading.Thread(target=self._wait, name="waitpid", daemon=True)
        self._waiter.start()

    def _wait(self) -> None:
        self.proc.wait()  # a blocking waitpid: wakes at the exit, not on a poll tick
        self.exited_at = time.monotonic()
        self._exited.set()

    # -- gsup itself --

    @property
    def gsup(self) -> Proc:
        """gsup's host process (in pid1 mode, the child of unshare)."""
        if self._gsup is None:
            pid = self.proc.pid
            if self.mode.pid1:
                pid = wait_first_child(pid)
            st = stat(pid)
            assert st is not None, "gsup is not running"
            self._gsup = Proc(pid, st.start)
        return self._gsup

    @property
    def pid(self) -> int:
        return self.gsup.pid

    def type(self, data: bytes) -> None:
        """Write *data* to the terminal, as if typed (``tty=True`` only)."""
        assert self._master is not None, "not started with tty=True"
        os.write(self._master, data)

    def send(self, sig: int) -> float:
        """Signal gsup; return the time just before sending."""
        t = time.monotonic()
        os.kill(self.pid, sig)
        return t

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for gsup (and unshare) to exit; return the exit status."""
        if not self._exited.wait(timeout):
            raise AssertionError(f"gsup still running after {timeout}s; stderr:\n{self.err.text()[-3000:]}")
        assert self.proc.returncode is not None
        return self.proc.returncode

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the exit and for the end of its output; return the exit status."""
        code = self.wait(timeout)
        self.out.wait_eof(timeout)
        self.err.wait_eof(timeout)
        return code

    # -- processes below it --

    def learn(self, pid: int) -> Proc:
        """The host process of a pid as seen inside gsup's namespace."""
        host = self.host_pid(pid)
        st = stat(host)
        assert st is not None, f"pid {pid} (host {host}) is gone"
        proc = Proc(host, st.start)
        self.learned.append(proc)
        return proc

    def host_pid(self, pid: int) -> int:
        if not self.mode.pid1:
            return pid
        ns = os.readlink(f"/proc/{self.pid}/ns/pid")
        for st in [stat(self.pid), *descendants(self.pid)]:
            if st is None:
                continue
            try:
                nspid = status_fields(st.pid)["NSpid"].split()
                if int(nspid[-1]) == pid and os.readlink(f"/proc/{st.pid}/ns/pid") == ns:
                    return st.pid
            except (FileNotFoundError, ProcessLookupError, KeyError):
                continue
        raise AssertionError(f"no process with pid {pid} in gsup's namespace")

    def descendants(self) -> list[Stat]:
        """gsup's descendants now (host pids), zombies included."""
        gsup = self.gsup
        if not gsup.running:
            return []
        return descendants(gsup.pid)

    def zombies(self) -> list[Stat]:
        """gsup's descendants that are zombies now."""
        return [st for st in self.descendants() if st.state == "Z"]

    def status(self, proc: Optional[Proc] = None) -> dict[str, str]:
        """/proc/PID/status of gsup (or of *proc*)."""
        return status_fields((proc or self.gsup).pid)

    def cpu_ticks(self) -> int:
        """gsup's utime + stime so far, in clock ticks."""
        return cpu_ticks(self.pid)

    def state(self) -> str:
        """gsup's scheduler state (R, S, D, Z...)."""
        st = stat(self.pid)
        return "gone" if st is None else st.state

    # -- teardown --

    def close(self) -> None:
        """Kill, by pid, everything this run started; reap it; close the streams."""
        try:
            if not self._exited.is_set():
                self._kill_tree()
            for proc in self.learned:
                if proc.running:
                    _kill(proc.pid)
            self._exited.wait(15)
        finally:
            for stream in {id(s): s for s in (self.out, self.err)}.values():
                stream.join(5)
            if self._master is not None:
                os.close(self._master)
            for f in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
                if f is not None:
                    f.close()

    def _kill_tree(self) -> None:
        top = self.proc.pid
        # Below gsup first, while gsup still holds the tree together: once it
        # is dead its orphans would move to another reaper, out of sight.
        for _ in range(50):
            live = [st for st in descendants(top) if st.state not in "ZX"]
            if not live:
                break
            for st in reversed(live):
                _kill(st.pid)
        if self._gsup is not None and self._gsup.running:
            _kill(self._gsup.pid)
        if not self._exited.is_set():
            _kill(top)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def helper() -> Callable[[str], str]:
    """The path of a program in tests/helpers: ``helper("exit_sweep.py")``."""
    return lambda name: str(HELPERS / name)


@pytest.fixture
def gsup(mode: Mode) -> Iterator[Callable[..., Run]]:
    """Start gsup in the current mode.

    ``gsup(["--grace", "1s"], child=["--ignore", "TERM"])`` runs
    ``gsup --grace 1s -- python tests/helpers/child.py --ignore TERM``;
    ``gsup(["--", "env"])`` runs any command.
    """
    runs: list[Run] = []

    def start(args: Sequence[str], **kwargs: object) -> Run:
        run = Run(mode, args, **kwargs)  # type: ignore[arg-type]
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()
