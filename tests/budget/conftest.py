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
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Callable, Optional

import pytest
from gsupkit import GSUP, GsupRun, Line, Stream, clean_env, run_to_end

PROGS = Path(__file__).resolve().parent / "progs"
CHILD = (sys.executable, str(PROGS / "child.py"))
HTTP_SERVER = (sys.executable, str(PROGS / "http_server.py"))


# -- processes --------------------------------------------------------------------------


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


class Run(GsupRun):
    """One started gsup; ``watches`` are the processes it started that the test watches die."""

    WAIT = 15.0

    out: Stream
    err: Stream

    def __init__(self, args: Sequence[str], *, env: dict[str, str]) -> None:
        self.watches: list[Watch] = []
        # stdin is /dev/null, no terminal: gsup puts the child in its own group
        super().__init__([GSUP, *args], env=env)

    def ready(self, timeout: float = 10.0) -> Line:
        """Wait for the child's ``ready`` line and start watching the child."""
        line = self.out.expect(r"^ready pid=(\d+)", timeout)
        self.watch(int(line.match.group(1)))
        return line

    def watch(self, pid: int) -> Watch:
        w = Watch(pid)
        self.watches.append(w)
        return w

    def kill_strays(self) -> None:
        for w in self.watches:
            w.kill()

    def close(self) -> None:
        try:
            super().close()
        finally:
            for w in self.watches:
                w.close()


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
    stamps: dict[str, float] = {}
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
    return run_to_end([GSUP, *args], env=clean_env() if env is None else env, timeout=timeout)
