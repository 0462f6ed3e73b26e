"""Harness of the reliability tests: run the real gsup, find what it started, clean up by pid.

Every test runs the installed ``gsup`` console script (the one next to the
interpreter running the tests; a PATH shim would add a shell), either as a
child subreaper or as PID 1 of a new PID namespace
(``unshare --pid --fork --mount-proc``). Its stdout and stderr are read by
threads that note every line, so tests wait for lines, not for time.

Every process a test starts carries a unique *tag* in its command line (the
helper programs take it as an argument and every fork keeps it), so the test
can find all of them in /proc whatever their parent, group or session, check
that none is left, and kill the stragglers by pid at teardown (never by
name).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import pytest
from prockit import first_child, wait_first_child

#: The console script next to the interpreter running the tests.
GSUP = os.path.join(os.path.dirname(sys.executable), "gsup")
PROGS = Path(__file__).resolve().parent / "progs"
PY = sys.executable
PID1_PREFIX = ("unshare", "--pid", "--fork", "--mount-proc")
#: Enough to find touch, sh, prlimit; the helpers are started by absolute path.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: The full soak/storm forms (marked slow) and the reduced CI forms (1/10).
SCALES = [
    pytest.param(10, id="reduced"),
    pytest.param(1, id="full", marks=pytest.mark.slow),
]


def prog(name: str, *args: str) -> list[str]:
    """The command line of a helper program in ``progs/``."""
    return [PY, str(PROGS / f"{name}.py"), *args]


def clean_env(**extra: str) -> dict[str, str]:
    """PATH and *extra*: no GSUP_ or platform variable unless a test sets one."""
    return {"PATH": PATH, **extra}


# -- processes, from /proc ------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    start: int


def stat(pid: int) -> Optional[Stat]:
    """The fields of /proc/PID/stat the tests need, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return Stat(pid, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def tagged(tag: str) -> list[Stat]:
    """Every live process (zombies excluded: they have no command line) carrying *tag*.

    gsup (before its handoff) and unshare carry the child's command line in
    theirs; they are not counted.
    """
    needle, launcher = tag.encode(), GSUP.encode() + b"\0"
    out = []
    for pid in all_pids():
        line = cmdline(pid)
        if needle in line and launcher not in line:
            st = stat(pid)
            if st is not None and st.state not in "ZX":
                out.append(st)
    return out


def children_of(pid: int) -> list[Stat]:
    """The direct children of *pid* now, zombies included."""
    out = []
    for p in all_pids():
        st = stat(p)
        if st is not None and st.ppid == pid:
            out.append(st)
    return out


def zombies_of(pid: int) -> list[Stat]:
    return [st for st in children_of(pid) if st.state == "Z"]


def fd_count(pid: Union[int, str] = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def status_field(pid: Union[int, str], name: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    raise KeyError(name)


def rss_kib(pid: Union[int, str]) -> int:
    return int(status_field(pid, "VmRSS").split()[0])


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_tagged(tag: str) -> None:
    """SIGKILL, by pid, every process carrying *tag*, until none is left."""
    for _ in range(100):
        left = tagged(tag)
        if not left:
            return
        for st in left:
            kill_pid(st.pid)


def wait_until(check: Any, timeout: float, what: str, step: float = 0.01) -> Any:
    """Poll *check* (for states no event announces, like a process count) until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout}s")
        time.sleep(step)


# -- modes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    name: str

    @property
    def pid1(self) -> bool:
        return self.name == "pid1"

    def command(self, args: Sequence[Union[str, bytes]]) -> list[Union[str, bytes]]:
        prefix: tuple[str, ...] = PID1_PREFIX if self.pid1 else ()
        return [*prefix, GSUP, *args]


_unshare_ok: Optional[bool] = None


def can_unshare() -> bool:
    global _unshare_ok
    if _unshare_ok is None:
        try:
            r = subprocess.run([*PID1_PREFIX, "true"], capture_output=True, timeout=30)
            _unshare_ok = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _unshare_ok = False
    return _unshare_ok


# -- output ---------------------------------------------------------------------------


class Stream:
    """Everything read from one pipe, and its lines, read by a thread."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name
        self.data = bytearray()
        self.lines: list[bytes] = []
        self.eof = False
        self._partial = b""
        self._cursor = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, name=f"read-{name}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    if self._partial:
                        self.lines.append(self._partial)
                    self.eof = True
                    self._cond.notify_all()
                    return
                self.data += chunk
                parts = (self._partial + chunk).split(b"\n")
                self._partial = parts.pop()
                self.lines.extend(parts)
                self._cond.notify_all()

    def text(self) -> str:
        with self._cond:
            return bytes(self.data).decode(errors="replace")

    def expect(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """Wait for the next line (after the last one expected) matching *pattern*."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._cursor < len(self.lines):
                    line = self.lines[self._cursor].decode(errors="replace")
                    self._cursor += 1
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    tail = b"\n".join(self.lines[-20:]).decode(errors="replace")
                    why = "end of output" if self.eof else f"{timeout}s"
                    raise AssertionError(f"no line matching {pattern!r} on {self.name} ({why}):\n{tail}")
                self._cond.wait(left)

    def count(self, pattern: str) -> int:
        rx = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self.lines if rx.search(line.decode(errors="replace")))

    def wait_eof(self, timeout: float = 15.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.eof, timeout)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


# -- one gsup -------------------------------------------------------------------------

PIPE = subprocess.PIPE


class Gsup:
    """One started ``gsup`` (through ``unshare`` as PID 1).

    ``out``/``err`` read its stdout/stderr when they are pipes (the default);
    pass a descriptor, ``subprocess.DEVNULL`` or ``None`` to set them up
    otherwise. ``tag`` is the tag of the processes it was given to run.
    """

    def __init__(
        self,
        mode: Mode,
        args: Sequence[Union[str, bytes]],
        *,
        tag: str = "",
        env: Optional[dict[str, str]] = None,
        stdin: Any = subprocess.DEVNULL,
        stdout: Any = PIPE,
        stderr: Any = PIPE,
        close_stderr: bool = False,
    ) -> None:
        self.mode, self.tag = mode, tag
        self.argv = mode.command(args)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=clean_env() if env is None else env,
            # Close stderr in the child only, after the fork: as a shell's 2>&- does.
            preexec_fn=(lambda: os.close(2)) if close_stderr else None,
        )
        self.out = Stream(self.proc.stdout.fileno(), "stdout") if self.proc.stdout else None
        self.err = Stream(self.proc.stderr.fileno(), "stderr") if self.proc.stderr else None
        self.exited_at: Optional[float] = None
        self._host: Optional[int] = None
        self._pidfd: Optional[int] = None
        self._exited = threading.Event()
        self._waiter = threading.Thread(target=self._wait, name="waitpid", daemon=True)
        self._waiter.start()

    def _wait(self) -> None:
        self.proc.wait()  # blocks in waitpid: wakes at the exit, no polling
        self.exited_at = time.monotonic()
        self._exited.set()

    @property
    def pid(self) -> int:
        """gsup's host pid (as PID 1: the child of unshare)."""
        if self._host is None:
            pid = self.proc.pid
            if self.mode.pid1:
                pid = wait_first_child(pid)
            self._host = pid
        return self._host

    def pidfd(self) -> int:
        if self._pidfd is None:
            self._pidfd = os.pidfd_open(self.pid)
        return self._pidfd

    def send(self, sig: int) -> float:
        """Signal gsup (through a pidfd: never a recycled pid); return the time before sending."""
        t = time.monotonic()
        signal.pidfd_send_signal(self.pidfd(), sig)
        return t

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for gsup (and unshare) to exit; return its exit status."""
        if not self._exited.wait(timeout):
            err = self.err.text()[-3000:] if self.err else ""
            raise AssertionError(f"gsup still running after {timeout}s; stderr:\n{err}")
        assert self.proc.returncode is not None
        return self.proc.returncode

    def exited(self) -> bool:
        return self._exited.is_set()

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the exit and the end of its output; return the exit status."""
        code = self.wait(timeout)
        for s in (self.out, self.err):
            if s is not None:
                assert s.wait_eof(timeout), f"{s.name} still open {timeout}s after gsup exited"
        return code

    # -- what it said (with --log-format json) --

    def events(self) -> list[dict[str, Any]]:
        assert self.err is not None
        out = []
        for line in self.err.text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def report(self) -> dict[str, Any]:
        """The final ``exit`` event."""
        exits = [e for e in self.events() if e["event"] == "exit"]
        assert len(exits) == 1, self.err.text()[-3000:] if self.err else ""
        return exits[0]

    # -- teardown --

    def _gsup_now(self) -> Optional[int]:
        """gsup's host pid if it is known or can be found at once (no waiting)."""
        if self._host is not None or not self.mode.pid1:
            return self.pid
        return first_child(self.proc.pid)

    def close(self) -> None:
        """Kill, by pid, everything this run started; reap it; close the pipes."""
        try:
            if not self._exited.is_set():
                if self.tag:
                    kill_tagged(self.tag)
                gsup = self._gsup_now()
                if gsup is not None:
                    kill_pid(gsup)  # as PID 1 this ends its whole namespace
                kill_pid(self.proc.pid)
            self._exited.wait(15)
            if self.tag:
                kill_tagged(self.tag)
        finally:
            for s in (self.out, self.err):
                if s is not None:
                    s.join(5)
            for f in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
                if f is not None:
                    try:
                        f.close()
                    except OSError:
                        pass
            if self._pidfd is not None:
                os.close(self._pidfd)


class Runner:
    """Starts gsup runs for one test and closes all of them at its end."""

    def __init__(self, mode: Mode, tag: str) -> None:
        self.mode, self.tag = mode, tag
        self.runs: list[Gsup] = []

    def __call__(self, args: Sequence[Union[str, bytes]], **kwargs: Any) -> Gsup:
        kwargs.setdefault("tag", self.tag)
        run = Gsup(self.mode, args, **kwargs)
        self.runs.append(run)
        return run

    def close(self) -> None:
        for run in self.runs:
            run.close()
        kill_tagged(self.tag)


def child(tag: str, *args: str) -> list[str]:
    """The helper child's command line, tagged."""
    return prog("child", "--tag", tag, *args)


def one_error_line(stderr: str) -> str:
    """The single ``gsup: error:`` line of *stderr*; fail if there is anything else."""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gsup: error: "), f"not one error line: {stderr!r}"
    return lines[0]


def all_gone(procs: Iterable[Stat]) -> list[Stat]:
    """Those of *procs* still running (same pid and start time, not a zombie)."""
    left = []
    for p in procs:
        st = stat(p.pid)
        if st is not None and st.start == p.start and st.state not in "ZX":
            left.append(st)
    return left
