"""Running the real ``gsup`` for the shutdown-budget tests.

``gsup_run`` starts ``gsup ARGS`` with an explicit environment (only PATH
and what the test adds: this machine has /.dockerenv, so the environment is
what decides between kubernetes, cloudrun... and the generic docker) and
reads its stdout and stderr on threads, noting when each line arrived.
Tests wait for lines, not for time. ``watch`` opens a pidfd on a process
so that the moment it dies (SIGKILL included) is known to the millisecond.
At teardown every process a test started or watched is killed by pid
(through its pidfd where one is open), never by name.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest
from prockit import children_of

#: The console script next to the interpreter (a PATH shim would add a shell).
GSUP = os.path.join(os.path.dirname(sys.executable), "gsup")
PROGS = Path(__file__).resolve().parent / "progs"
CHILD = (sys.executable, str(PROGS / "child.py"))
HTTP_SERVER = (sys.executable, str(PROGS / "http_server.py"))
#: Enough to find sleep, id, setpriv; the helpers are started by absolute path.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def clean_env(**extra: str) -> dict[str, str]:
    """PATH and *extra*: no platform variable unless the test sets one."""
    return {"PATH": PATH, **extra}


# -- processes --------------------------------------------------------------------------


def proc_state(pid: int) -> Optional[str]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(b")") + 2 :].split()[0].decode()


def alive(pid: int) -> bool:
    """Running, and not a zombie."""
    return proc_state(pid) not in (None, "Z", "X")


def tree(pid: int) -> list[int]:
    """Every descendant of *pid*, parents before children."""
    out, todo = [], [pid]
    while todo:
        for kid in children_of(todo.pop(0)):
            out.append(kid)
            todo.append(kid)
    return out


class Watch:
    """A process seen through a pidfd: when did it die? (it need not be our child)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = os.pidfd_open(pid)
        self.died_at: Optional[float] = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._wait, name=f"pidfd-{pid}", daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.poll()  # readable when the process exits (zombie or reaped)
        self.died_at = time.monotonic()
        self._done.set()

    def wait(self, timeout: float) -> float:
        """The moment it died; fails if it is still running after *timeout*."""
        if not self._done.wait(timeout):
            raise AssertionError(f"pid {self.pid} still running after {timeout}s")
        assert self.died_at is not None
        return self.died_at

    @property
    def dead(self) -> bool:
        return self._done.is_set()

    def kill(self) -> None:
        if not self._done.is_set():
            try:
                signal.pidfd_send_signal(self.fd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        self.kill()
        self._done.wait(5)
        os.close(self.fd)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- output ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    text: str
    t: float  # time.monotonic() when the line was read
    match: re.Match[str]


class Stream:
    """Lines of one pipe, each with the time it arrived."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name
        self.lines: list[tuple[str, float]] = []
        self.eof = False
        self._cursor = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        partial = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            now = time.monotonic()
            with self._cond:
                if not chunk:
                    if partial:
                        self.lines.append((partial.decode(errors="replace"), now))
                    self.eof = True
                    self._cond.notify_all()
                    return
                *whole, partial = (partial + chunk).split(b"\n")
                self.lines += [(w.decode(errors="replace"), now) for w in whole]
                self._cond.notify_all()

    def expect(self, pattern: str, timeout: float = 10.0) -> Line:
        """The next line (after the last one expected) matching *pattern*."""
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
                    why = "end of output" if self.eof else f"{timeout}s"
                    raise AssertionError(
                        f"no line matching {pattern!r} on {self.name} ({why}):\n{self.text()[-3000:]}"
                    )
                self._cond.wait(left)

    def text(self) -> str:
        with self._cond:
            return "\n".join(text for text, _ in self.lines)

    def all(self) -> list[str]:
        with self._cond:
            return [text for text, _ in self.lines]

    def wait_eof(self, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.eof, timeout):
                raise AssertionError(f"{self.name} still open after {timeout}s")


# -- one gsup -----------------------------------------------------------------------------


class Run:
    """One started gsup (or a wrapper around it: ``prefix``)."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str],
        prefix: Sequence[str] = (),
        cwd: Optional[str] = None,
    ) -> None:
        self.argv = [*prefix, GSUP, *args]
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,  # no terminal: gsup puts the child in its own group
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = Stream(self.proc.stdout.fileno(), "stdout")
        self.err = Stream(self.proc.stderr.fileno(), "stderr")
        self.watches: list[Watch] = []
        self._exited = threading.Event()
        self.exited_at: Optional[float] = None
        threading.Thread(target=self._wait, name="waitpid", daemon=True).start()

    def _wait(self) -> None:
        self.proc.wait()
        self.exited_at = time.monotonic()
        self._exited.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, sig: int) -> float:
        """Signal gsup; return the time just before the signal was sent."""
        t = time.monotonic()
        os.kill(self.proc.pid, sig)
        return t

    def ready(self, timeout: float = 10.0) -> Line:
        """Wait for the child's ``ready`` line and start watching the child."""
        line = self.out.expect(r"^ready pid=(\d+)", timeout)
        self.watch(int(line.match.group(1)))
        return line

    def watch(self, pid: int) -> Watch:
        w = Watch(pid)
        self.watches.append(w)
        return w

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for gsup's exit (its output may stay open in survivors); the exit status."""
        if not self._exited.wait(timeout):
            raise AssertionError(f"gsup still running after {timeout}s:\n{self.err.text()[-3000:]}")
        assert self.proc.returncode is not None
        return self.proc.returncode

    def finish(self, timeout: float = 15.0) -> int:
        """Wait for gsup's exit and the end of its output; the exit status."""
        self.wait(timeout)
        self.out.wait_eof(timeout)
        self.err.wait_eof(timeout)
        assert self.proc.returncode is not None
        return self.proc.returncode

    def close(self) -> None:
        """Kill by pid whatever is left of this run, deepest first; reap gsup."""
        if not self._exited.is_set():
            for _ in range(20):
                below = [p for p in tree(self.proc.pid) if alive(p)]
                if not below:
                    break
                for pid in reversed(below):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        for w in self.watches:
            w.close()
        self._exited.wait(15)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


@pytest.fixture
def gsup_run() -> Iterator[Callable[..., Run]]:
    """Start gsup: ``gsup_run(["--grace", "1", "--", *CHILD], env=clean_env())``."""
    runs: list[Run] = []

    def start(args: Sequence[str], **kwargs: object) -> Run:
        kwargs.setdefault("env", clean_env())
        run = Run(args, **kwargs)  # type: ignore[arg-type]
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def kill_timing(run: Run, sent: float, died: float) -> str:
    """Where the time went between the SIGTERM to gsup and the child's death (JSON logs only).

    For failure messages: a late ``signal received`` or a late ``escalated``
    is gsup (or the machine's load) waking late; a late death after
    ``escalated`` is gsup's kill itself.
    """
    stamps = {}
    for line in run.err.all():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") in ("signal_received", "escalated"):
            stamps.setdefault(record["event"], record["ts"])
    parts = [f"{kind} +{ts - sent:.3f}s" for kind, ts in stamps.items()]
    parts.append(f"child died +{died - sent:.3f}s")
    try:
        with open("/proc/loadavg") as f:
            parts.append(f"load average {f.read().split()[0]}")
    except OSError:
        pass
    return ", ".join(parts)


def gsup_once(
    args: Sequence[str], *, env: Optional[dict[str, str]] = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """``gsup ARGS`` to the end (check, drill, refusals): code, stdout, stderr.

    On a timeout everything below gsup is killed by pid before gsup itself.
    """
    argv = [GSUP, *args]
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env() if env is None else env,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in reversed(tree(proc.pid)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"{argv} still running after {timeout}s:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
