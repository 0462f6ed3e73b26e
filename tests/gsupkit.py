"""Running the real ``gsup`` command in a test (standard library only).

Shared by the suites that start gsup: where the console script is, the two
ways to run it (``Mode``), a thread that reads one of its pipes (``Stream``)
and one started gsup (``GsupRun``), which each suite extends with what its
tests ask of a run.

``subreaper`` starts gsup directly (it registers as child subreaper);
``pid1`` starts it as ``unshare --pid --fork --mount-proc gsup ...``, so gsup
is PID 1 of a new PID namespace and signals go to its host pid, the child of
unshare.

Nothing here sleeps where an event can be waited for: lines are awaited on a
condition variable, exits on a thread blocked in waitpid. At the end of a
run everything it started is killed by pid, never by name.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Optional, TypeVar, Union, overload

from prockit import Proc, kill_below, kill_pid, stat, wait_first_child

PID1_PREFIX = ("unshare", "--pid", "--fork", "--mount-proc")
#: Enough to find sleep, sh, setpriv, prlimit...; helpers are started by absolute path.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")

Arg = Union[str, bytes]
T = TypeVar("T")


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


def clean_env(**extra: str) -> dict[str, str]:
    """PATH and *extra*: no GSUP_ or platform variable unless the test sets one."""
    return {"PATH": PATH, **extra}


def quiet_platform() -> dict[str, str]:
    """The test's environment, with gsup's platform detection switched off.

    Detection (a /.dockerenv file, KUBERNETES_SERVICE_HOST...) would tie the
    allowed grace to wherever the tests happen to run; tests about
    supervision run gsup as if on no platform.
    """
    return {**os.environ, "GSUP_PLATFORM": "none"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_to_end(
    argv: Sequence[Arg], *, env: Mapping[str, str], timeout: float = 30.0, stdin: Any = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    """*argv* to its end (for runs that end by themselves): code, stdout, stderr as text.

    On a timeout everything below it is killed by pid before it, and the
    test fails.
    """
    with subprocess.Popen(
        argv,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_below(proc.pid)
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"{argv} still running after {timeout}s:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


# -- the two modes ----------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """How gsup runs: ``subreaper`` or ``pid1`` (see the module's docstring)."""

    name: str

    @property
    def pid1(self) -> bool:
        return self.name == "pid1"

    @property
    def prefix(self) -> tuple[str, ...]:
        """What goes before the gsup command in this mode."""
        return PID1_PREFIX if self.pid1 else ()

    @overload
    def command(self, *args: str) -> list[str]: ...

    @overload
    def command(self, *args: Arg) -> list[Arg]: ...

    def command(self, *args: Arg) -> list[Any]:
        """``gsup ARGS`` as this mode runs it."""
        return [*self.prefix, GSUP, *args]

    @property
    def env(self) -> dict[str, str]:
        """The environment the integration tests give gsup (see ``quiet_platform``)."""
        return quiet_platform()

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """``gsup ARGS`` to its end, output captured (for runs that end by themselves)."""
        return run_to_end(self.command(*args), env=self.env, timeout=timeout, stdin=None)


_pid_namespaces: Optional[bool] = None


def can_unshare() -> bool:
    """Whether this process may run a command as PID 1 of a new PID namespace (asked once)."""
    global _pid_namespaces
    if _pid_namespaces is None:
        try:
            r = subprocess.run([*PID1_PREFIX, "true"], capture_output=True, timeout=30)
            _pid_namespaces = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _pid_namespaces = False
    return _pid_namespaces


# -- output ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A line a test waited for: its text, when it had arrived, what the pattern matched."""

    text: str
    t: float  # time.monotonic() when the line had arrived
    match: re.Match[str]

    def __getitem__(self, group: int | str) -> str:
        return self.match[group]


class Stream:
    """Everything read from one pipe (or pty master) by a thread, and its lines with arrival times.

    ``data`` is every byte, ``lines`` every whole line (without its newline;
    on a tty split at CR too, escape sequences and empty lines left out),
    ``times`` when each arrived, ``parsed`` what *parse* made of each line
    (lines it returned None for left out). A *slow* stream reads like a log
    shipper that lags: small uneven reads, a pause after each.

    ``wait_for`` waits on ``cond`` for any state of the output; ``expect``
    for the next line matching a pattern.
    """

    def __init__(
        self,
        fd: int,
        name: str,
        *,
        tty: bool = False,
        slow: bool = False,
        parse: Optional[Callable[[bytes], Optional[dict[str, Any]]]] = None,
        patience: float = 10.0,
    ) -> None:
        self.fd, self.name, self.tty, self.slow, self.parse = fd, name, tty, slow, parse
        #: Default seconds for ``expect``, ``wait_for`` and ``wait_eof``.
        self.patience = patience
        self.data = bytearray()
        self.lines: list[bytes] = []
        self.times: list[float] = []
        self.parsed: list[dict[str, Any]] = []
        self.eof = False
        #: More to show when a wait fails (the other stream's tail).
        self.context: Callable[[], str] = str
        self.cond = threading.Condition()
        self._partial = b""
        self._cursor = 0
        self._thread = threading.Thread(target=self._pump, name=f"read-{name}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        sep = re.compile(rb"[\r\n]") if self.tty else None
        while True:
            if self.slow:
                time.sleep(0.001)
            try:
                chunk = os.read(self.fd, 1000 + len(self.data) % 5000 if self.slow else 1 << 16)
            except OSError:  # EIO: every holder of the pty's slave side is gone
                chunk = b""
            now = time.monotonic()
            with self.cond:
                if not chunk:
                    if self._partial:
                        self._add([self._partial], now)
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                buf = self._partial + chunk
                parts = sep.split(buf) if sep else buf.split(b"\n")
                self._partial = parts.pop()
                self._add(parts, now)
                self.cond.notify_all()

    def _add(self, lines: list[bytes], t: float) -> None:
        if self.tty:
            lines = [line for line in (ANSI.sub(b"", raw) for raw in lines) if line]
        self.lines += lines
        self.times += [t] * len(lines)
        if self.parse is not None:
            for line in lines:
                parsed = self.parse(line)
                if parsed is not None:
                    self.parsed.append(parsed)

    def _tail(self, n: int = 3000) -> str:
        raw = bytes(self.data[-n:])
        return (ANSI.sub(b"", raw) if self.tty else raw).decode(errors="replace")

    def wait_for(
        self, found: Callable[[], Optional[T]], timeout: Optional[float] = None, what: str = ""
    ) -> T:
        """Wait until ``found()`` (called under the lock) returns something true; return that."""
        timeout = self.patience if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                result = found()
                if result:
                    return result
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    why = "end of output" if self.eof else f"{timeout}s"
                    raise AssertionError(
                        f"{what or 'it'} not on {self.name} ({why}); last output:\n"
                        f"{self._tail()}\n{self.context()}"
                    )
                self.cond.wait(left)

    def expect(self, pattern: str, timeout: Optional[float] = None) -> Line:
        """Wait for the next line (after the last one expected) matching *pattern*."""
        rx = re.compile(pattern)

        def found() -> Optional[Line]:
            while self._cursor < len(self.lines):
                i = self._cursor
                self._cursor += 1
                text = self.lines[i].decode(errors="replace")
                m = rx.search(text)
                if m:
                    return Line(text, self.times[i], m)
            return None

        return self.wait_for(found, timeout, f"a line matching {pattern!r}")

    def wait_text(self, pattern: str, timeout: Optional[float] = None) -> re.Match[str]:
        """Wait until the whole output so far (lines or not) contains *pattern*."""
        rx = re.compile(pattern)
        return self.wait_for(lambda: rx.search(self.text()), timeout, repr(pattern))

    def text(self) -> str:
        """All output so far as text (escape sequences removed on a tty)."""
        with self.cond:
            raw = bytes(self.data)
        return (ANSI.sub(b"", raw) if self.tty else raw).decode(errors="replace")

    def all(self) -> list[str]:
        """Every line so far, as text."""
        with self.cond:
            return [line.decode(errors="replace") for line in self.lines]

    def matching(self, pattern: str) -> list[str]:
        """Every line so far that matches *pattern*."""
        rx = re.compile(pattern)
        return [text for text in self.all() if rx.search(text)]

    def wait_eof(self, timeout: Optional[float] = None) -> None:
        """Wait for the end of the output (every holder of the pipe's other end is gone)."""
        timeout = self.patience if timeout is None else timeout
        with self.cond:
            if not self.cond.wait_for(lambda: self.eof, timeout):
                raise AssertionError(f"{self.name} still open after {timeout}s")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


# -- one run of gsup --------------------------------------------------------------------


class GsupRun:
    """One started ``gsup`` (through ``unshare`` when *pid1*), the base of each suite's run.

    ``out`` and ``err`` read its stdout and stderr when they are pipes (the
    same stream on a tty; None for one given elsewhere or left unread: see
    ``reader``). ``gsup`` is its host process; ``send`` signals it through a
    pidfd; ``wait`` and ``finish`` wait for the exit on a thread blocked in
    waitpid; ``close`` kills, by pid, everything it started.
    """

    #: Default seconds for ``wait`` and ``finish``.
    WAIT = 30.0
    #: Default seconds for a stream's ``expect``.
    EXPECT = 10.0

    out: Optional[Stream]
    err: Optional[Stream]

    def __init__(
        self,
        argv: Sequence[Arg],
        *,
        env: Mapping[str, str],
        pid1: bool = False,
        stdin: Any = subprocess.DEVNULL,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        tty: bool = False,
        preexec_fn: Optional[Callable[[], None]] = None,
    ) -> None:
        self.argv, self.pid1 = list(argv), pid1
        self._gsup: Optional[Proc] = None
        self._pidfd: Optional[int] = None
        self._master: Optional[int] = None
        if tty:
            master, slave = os.openpty()
            # A terminal window has a size (a pty starts at 0x0): 24 rows of 80 columns.
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            self._master = master
            try:
                self.proc = subprocess.Popen(self.argv, stdin=slave, stdout=slave, stderr=slave, env=env)
            finally:
                os.close(slave)
            self.out = self.err = Stream(master, "tty", tty=True, patience=self.EXPECT)
        else:
            self.proc = subprocess.Popen(
                self.argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, preexec_fn=preexec_fn
            )
            self.out = self.reader(self.proc.stdout, "stdout")
            self.err = self.reader(self.proc.stderr, "stderr")
            out, err = self.out, self.err
            if out is not None and err is not None:
                out.context = lambda: "stderr:\n" + err.text()[-2000:]
                err.context = lambda: "stdout:\n" + out.text()[-2000:]
        self.started_at = time.monotonic()
        self.exited_at: Optional[float] = None
        self._exited = threading.Event()
        self._waiter = threading.Thread(target=self._wait, name="waitpid", daemon=True)
        self._waiter.start()

    def reader(self, pipe: Optional[IO[bytes]], name: str) -> Optional[Stream]:
        """The reader of gsup's *name* pipe, if it is one (a suite may read it otherwise)."""
        return None if pipe is None else Stream(pipe.fileno(), name, patience=self.EXPECT)

    def _wait(self) -> None:
        self.proc.wait()  # a blocking waitpid: wakes at the exit, not on a poll tick
        self.exited_at = time.monotonic()
        self._exited.set()

    # -- gsup itself --

    @property
    def gsup(self) -> Proc:
        """gsup's host process (as PID 1, the child of unshare)."""
        if self._gsup is None:
            pid = wait_first_child(self.proc.pid) if self.pid1 else self.proc.pid
            st = stat(pid)
            assert st is not None, "gsup is not running"
            self._gsup = st.proc
        return self._gsup

    @property
    def pid(self) -> int:
        """gsup's host pid."""
        return self.gsup.pid

    def send(self, sig: int = signal.SIGTERM) -> float:
        """Signal gsup (through a pidfd: never a recycled pid); return the time just before sending."""
        if self._pidfd is None:
            self._pidfd = os.pidfd_open(self.pid)
        t = time.monotonic()
        signal.pidfd_send_signal(self._pidfd, sig)
        return t

    def exited(self) -> bool:
        return self._exited.is_set()

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for gsup (and unshare) to exit (its output may stay open in survivors); the status."""
        timeout = self.WAIT if timeout is None else timeout
        if not self._exited.wait(timeout):
            err = self.err.text()[-3000:] if self.err is not None else ""
            raise AssertionError(f"gsup still running after {timeout}s; stderr:\n{err}")
        assert self.proc.returncode is not None
        return self.proc.returncode

    def finish(self, timeout: Optional[float] = None) -> int:
        """Wait for the exit and for the end of its output; return the exit status."""
        code = self.wait(timeout)
        for stream in (self.out, self.err):
            if stream is not None:
                stream.wait_eof(self.WAIT if timeout is None else timeout)
        return code

    # -- teardown --

    def kill_strays(self) -> None:
        """Kill, by pid, what this run started that is no longer below it (a suite's own record)."""

    def close(self) -> None:
        """Kill, by pid, everything this run started; reap it; close what it holds."""
        try:
            if not self._exited.is_set():
                kill_below(self.proc.pid)
                if not self._exited.is_set():
                    kill_pid(self.proc.pid)
            self.kill_strays()
            self._exited.wait(15)
            self.kill_strays()
        finally:
            for stream in {id(s): s for s in (self.out, self.err) if s is not None}.values():
                stream.join(5)
            if self._master is not None:
                os.close(self._master)
            for f in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
                if f is not None:
                    try:
                        f.close()
                    except OSError:
                        pass
            if self._pidfd is not None:
                os.close(self._pidfd)
