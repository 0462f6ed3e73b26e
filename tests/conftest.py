"""Fixtures for running the real ``gsup`` command.

``mode`` runs every test that uses it twice: ``subreaper`` starts gsup
directly (it registers as child subreaper); ``pid1`` starts it as
``unshare --pid --fork --mount-proc gsup ...``, so gsup is PID 1 of a new
PID namespace. ``gsup`` is a factory for ``Run`` objects: one started gsup,
its output read by threads with the arrival time of every line, and at
teardown everything it started is killed by pid (never by name).

The machinery (``Mode``, ``Stream``, ``GsupRun``) is shared with the other
suites in ``gsupkit``, the /proc look-ups in ``prockit``. Nothing sleeps
where an event can be waited for: lines are awaited on a condition
variable, exits on a thread blocked in waitpid.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Callable, Optional

import pytest
from gsupkit import GsupRun, Mode, Stream, can_unshare, quiet_platform
from prockit import Proc, Stat, cpu_ticks, descendants, kill_pid, stat, status_fields

HELPERS = Path(__file__).resolve().parent / "helpers"
PR_SET_CHILD_SUBREAPER = 36
#: The versatile helper child; see its docstring for its flags and lines.
CHILD = (sys.executable, str(HELPERS / "child.py"))
#: Exec a command with ignored/blocked signals or a controlling terminal.
LAUNCH = (sys.executable, str(HELPERS / "launch.py"))


@pytest.fixture(params=["subreaper", "pid1"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """How gsup runs: as a child subreaper, or as PID 1 of a new PID namespace."""
    if request.param == "pid1" and not can_unshare():
        pytest.skip("needs root and unshare(1) for a PID namespace")
    return Mode(request.param)


class Run(GsupRun):
    """One started ``gsup`` (through ``unshare`` in pid1 mode).

    ``out`` and ``err`` are its stdout and stderr (the same stream with a
    tty). Pids printed by the helper are pids in gsup's namespace;
    ``learn`` turns them into host processes that can be checked later.
    """

    out: Stream
    err: Stream

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
        if child is not None:
            args = [*args, "--", *CHILD, *child]
        wrapper = [*LAUNCH, *launch, "--ctty" if tty else "", "--"] if (launch or tty) else []
        self.learned: list[Proc] = []
        super().__init__(
            [a for a in wrapper if a] + mode.command(*args),
            env=quiet_platform() if env is None else env,
            pid1=mode.pid1,
            stdin=stdin,
            tty=tty,
        )

    def type(self, data: bytes) -> None:
        """Write *data* to the terminal, as if typed (``tty=True`` only)."""
        assert self._master is not None, "not started with tty=True"
        os.write(self._master, data)

    # -- processes below it --

    def learn(self, pid: int) -> Proc:
        """The host process of a pid as seen inside gsup's namespace."""
        host = self.host_pid(pid)
        st = stat(host)
        assert st is not None, f"pid {pid} (host {host}) is gone"
        self.learned.append(st.proc)
        return st.proc

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

    def kill_strays(self) -> None:
        for proc in self.learned:
            if proc.running:
                kill_pid(proc.pid)


@pytest.fixture
def subreaper() -> Iterator[None]:
    """The test process is a child subreaper: gsup's orphans come to it, to be waited for."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) failed")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


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
