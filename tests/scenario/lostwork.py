"""Real parts for the lost-work scenario: Redis, a PID 1, steady load, the platform's stop.

- ``RedisServer``: the real ``redis-server`` on a free loopback port, no
  persistence, stopped by pid.
- ``Pid1``: a command run as PID 1 of a fresh PID namespace (``unshare --pid
  --fork --mount-proc``), which is what a container's entrypoint is; its
  ``stop_like_platform`` does what an orchestrator does: SIGTERM to PID 1,
  and SIGKILL (which takes the whole namespace down) if it is still there at
  the deadline.
- ``SteadyLoad``: requests on loopback at a fixed rate, counting the 200s
  and what the others got (a status, or the error of a connection).
- ``no_exec_shell``: a command behind ``sh -c`` that stays PID 1.
- ``Lines``: a process's output, collected by a thread, to wait on.

Nothing here sleeps to wait for something: waits are on lines, events and
process exits, each with a timeout.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Callable, Optional

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def load_example_module(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"gsup_examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


resp = load_example_module("resp")


def no_exec_shell(command: list[str]) -> list[str]:
    """``sh -c 'CMD'`` where the shell stays PID 1 and CMD its child.

    Some shells ``exec`` the last command of ``-c`` themselves (bash, some
    dash builds); the trailing ``exit $?`` keeps every shell waiting, which
    is what entrypoint scripts that do setup first look like.
    """
    return ["sh", "-c", f"{shlex.join(command)}; exit $?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lines:
    """Every line a process writes to a pipe, collected by a thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                with self._cond:
                    self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_for(self, match: Callable[[str], bool], timeout: float, what: str) -> str:
        """The first line that matches; fails when the stream ends or time runs out."""

        def found() -> Optional[str]:
            return next((line for line in self.lines if match(line)), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self.closed, timeout)
            line = found()
        if line is None:
            raise AssertionError(f"no {what} within {timeout}s; output:\n" + self.text())
        return line

    def wait_count(self, match: Callable[[str], bool], n: int, timeout: float, what: str) -> None:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: sum(1 for line in self.lines if match(line)) >= n or self.closed, timeout
            )
            count = sum(1 for line in self.lines if match(line))
        if not ok or count < n:
            raise AssertionError(f"only {count} of {n} {what} within {timeout}s:\n" + self.text())

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


def _end(proc: subprocess.Popen[bytes], pids: tuple[int, ...] = ()) -> None:
    """SIGKILL *pids* and *proc* (by pid) if still running, and reap *proc*."""
    if proc.poll() is None:
        for pid in (*pids, proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait(timeout=10)


def terminate(proc: subprocess.Popen[bytes], log: threading.Thread) -> None:
    """A server's end: SIGTERM, up to 10 s to exit, SIGKILL after; then its log reader's end."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    _end(proc)
    log.join()


class RedisServer:
    """``redis-server`` on a free loopback port, without persistence."""

    def __init__(self, workdir: Path) -> None:
        for _attempt in range(3):  # another process may take the free port first
            self.port = free_port()
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(workdir),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            assert self.proc.stdout is not None
            self.log = Lines(self.proc.stdout)
            try:
                self.log.wait_for(lambda s: "Ready to accept connections" in s, 15, "Redis ready")
                return
            except AssertionError:
                _end(self.proc)
        raise AssertionError("redis-server did not start:\n" + self.log.text())

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self, *args: object) -> object:
        with resp.Redis("127.0.0.1", self.port) as r:
            return r.command(*args)

    def stop(self) -> None:
        terminate(self.proc, self.log)


@dataclass(frozen=True)
class Stop:
    seconds: float  # from the platform's SIGTERM to the end of PID 1
    platform_killed: bool  # the deadline passed and the platform sent SIGKILL
    returncode: int  # unshare's: PID 1's exit status (negative: killed by that signal)


class Pid1:
    """*argv* as PID 1 of a new PID namespace, stdout to ``out``, stderr to a file."""

    def __init__(
        self,
        argv: list[str],
        *,
        stderr_path: Path,
        cwd: Path = REPO,
        env: Optional[dict[str, str]] = None,
    ) -> None:
        self.argv = argv
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount-proc", *argv],
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=cwd,
                env=env,
                start_new_session=True,  # nothing typed in the test's terminal reaches it
            )
        assert self.proc.stdout is not None
        self.out = Lines(self.proc.stdout)

    def init_pid(self) -> int:
        """PID 1's pid as seen from here (unshare's only child)."""
        import psutil

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            children = psutil.Process(self.proc.pid).children()
            if children:
                return children[0].pid
            if self.proc.poll() is not None:
                break
            select_wait(0.01)
        raise AssertionError("the namespace's PID 1 did not appear")

    def stop_like_platform(self, deadline: float, sig: int = signal.SIGTERM) -> Stop:
        """*sig* to PID 1; SIGKILL at *deadline* seconds if it is still running."""
        init = self.init_pid()
        start = time.monotonic()
        os.kill(init, sig)
        try:
            rc = self.proc.wait(timeout=deadline)
            killed = False
        except subprocess.TimeoutExpired:
            os.kill(init, signal.SIGKILL)  # PID 1 dies: the kernel kills the whole namespace
            rc = self.proc.wait(timeout=10)
            killed = True
        seconds = time.monotonic() - start
        self.out.join()
        return Stop(seconds=seconds, platform_killed=killed, returncode=rc)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        """Kill whatever is left, by pid: PID 1 (its namespace with it), then unshare."""
        pids: tuple[int, ...] = ()
        if self.proc.poll() is None:
            try:
                pids = (self.init_pid(),)
            except AssertionError:
                pass
        _end(self.proc, pids)
        self.out.join()


def select_wait(seconds: float) -> None:
    """A bounded pause inside a wait-until loop (never a fixed sleep standing in for an event)."""
    threading.Event().wait(seconds)


class SteadyLoad(threading.Thread):
    """*total* GET requests to ``/``, one every *interval* seconds, each on a new connection.

    ``accepted`` counts complete ``200 accepted`` answers; ``outcomes`` counts
    every request by what it got (``"200"``, ``"503"``, ``"ConnectionResetError"``);
    ``marked`` is set once *mark_at* requests have been sent (the middle of the load).
    """

    def __init__(self, port: int, *, total: int, interval: float, mark_at: int) -> None:
        super().__init__(daemon=True)
        self.port, self.total, self.interval, self.mark_at = port, total, interval, mark_at
        self.accepted = self.failed = self.sent = 0
        self.outcomes: Counter[str] = Counter()
        self.marked = threading.Event()
        self._abort = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        start = time.monotonic()
        requests: list[threading.Thread] = []
        for i in range(self.total):
            if self._abort.wait(max(0.0, start + i * self.interval - time.monotonic())):
                break
            t = threading.Thread(target=self._one, daemon=True)
            t.start()
            requests.append(t)
            self.sent += 1
            if self.sent == self.mark_at:
                self.marked.set()
        for t in requests:
            t.join()

    def _one(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/")
            answer = conn.getresponse()
            ok = answer.status == 200 and answer.read() == b"accepted\n"
            outcome = str(answer.status)
        except (OSError, http.client.HTTPException) as e:
            ok = False
            outcome = type(e).__name__
        finally:
            conn.close()
        with self._lock:
            self.outcomes[outcome] += 1
            if ok:
                self.accepted += 1
            else:
                self.failed += 1

    def abort(self) -> None:
        self._abort.set()
