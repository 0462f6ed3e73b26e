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
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import pytest
from gsupkit import GSUP, Arg, GsupRun, Mode, clean_env
from prockit import Stat, all_stats, carrying, kill_carrying, stat

from gsup.signals import TEST_FAULT

PROGS = Path(__file__).resolve().parent / "progs"
PY = sys.executable
#: gsup (before its handoff) and unshare carry the child's command line in theirs.
LAUNCHER = GSUP.encode() + b"\0"

#: The full soak/storm forms (marked slow) and the reduced CI forms (1/10).
SCALES = [
    pytest.param(10, id="reduced"),
    pytest.param(1, id="full", marks=pytest.mark.slow),
]


def prog(name: str, *args: str) -> list[str]:
    """The command line of a helper program in ``progs/``."""
    return [PY, str(PROGS / f"{name}.py"), *args]


# -- processes, from /proc ------------------------------------------------------------


def tagged(tag: str) -> list[Stat]:
    """Every live process (zombies excluded: they have no command line) carrying *tag*.

    gsup (before its handoff) and unshare carry the child's command line in
    theirs; they are not counted.
    """
    return carrying(tag, unless=LAUNCHER)


def kill_tagged(tag: str) -> None:
    """SIGKILL, by pid, every process carrying *tag*, until none is left."""
    kill_carrying(tag, unless=LAUNCHER)


def zombies_of(pid: int) -> list[Stat]:
    """The direct children of *pid* that are zombies now."""
    return [st for st in all_stats() if st.ppid == pid and st.state == "Z"]


def fd_count(pid: Union[int, str] = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


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


# -- one gsup -------------------------------------------------------------------------

PIPE = subprocess.PIPE


class Gsup(GsupRun):
    """One started ``gsup`` (through ``unshare`` as PID 1).

    ``out``/``err`` read its stdout/stderr when they are pipes (the default);
    pass a descriptor, ``subprocess.DEVNULL`` or ``None`` to set them up
    otherwise. ``tag`` is the tag of the processes it was given to run.
    *fault*: with gsup's one test hook on, an inbox that raises at the first
    signal (``gsup.signals.open_inbox``).
    """

    EXPECT = 15.0

    def __init__(
        self,
        mode: Mode,
        args: Sequence[Arg],
        *,
        tag: str = "",
        env: Optional[dict[str, str]] = None,
        stdin: Any = subprocess.DEVNULL,
        stdout: Any = PIPE,
        stderr: Any = PIPE,
        close_stderr: bool = False,
        fault: bool = False,
    ) -> None:
        self.mode, self.tag = mode, tag
        argv = mode.command(*args)
        if fault:  # the installed script, run by an interpreter with the test hook's option
            argv[len(mode.prefix) : len(mode.prefix)] = [PY, "-X", f"{TEST_FAULT}=signal"]
        super().__init__(
            argv,
            env=clean_env() if env is None else env,
            pid1=mode.pid1,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            # Close stderr in the child only, after the fork: as a shell's 2>&- does.
            preexec_fn=(lambda: os.close(2)) if close_stderr else None,
        )

    # -- what it said (with --log-format json) --

    def events(self) -> list[dict[str, Any]]:
        """gsup's own JSON events (not the programs' lines, JSON objects too)."""
        assert self.err is not None
        out = []
        for line in self.err.text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if "event" in record:
                    out.append(record)
        return out

    def report(self) -> dict[str, Any]:
        """The final ``exit`` event."""
        exits = [e for e in self.events() if e["event"] == "exit"]
        assert len(exits) == 1, self.err.text()[-3000:] if self.err else ""
        return exits[0]

    def kill_strays(self) -> None:
        if self.tag:
            kill_tagged(self.tag)


class Runner:
    """Starts gsup runs for one test and closes all of them at its end."""

    def __init__(self, mode: Mode, tag: str) -> None:
        self.mode, self.tag = mode, tag
        self.runs: list[Gsup] = []

    def __call__(self, args: Sequence[Arg], **kwargs: Any) -> Gsup:
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
