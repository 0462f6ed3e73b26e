"""Faults inside and around gsup: an internal error, SIGKILL, closed and full output pipes.

Each runs as PID 1 of a PID namespace and as a child subreaper.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import termios
from pathlib import Path

import pytest
from gsupkit import clean_env

from .relkit import all_gone, child, prog, tagged, wait_until

GRACE = 1.0


def toml_config(tmp_path: Path, command: list[str], grace: float = GRACE) -> str:
    """A config file of one program, ``p``, running *command*."""
    path = tmp_path / "gsup.toml"
    path.write_text(f'[gsup]\ngrace = "{grace}s"\n\n[programs.p]\ncommand = {json.dumps(command)}\n')
    return str(path)


def _many_config(tmp_path: Path, tag: str, *args: str) -> str:
    """A config of one program, ``p``, running flood.py with *args*."""
    return toml_config(tmp_path, prog("flood", *args, "--tag", tag))


@pytest.mark.timeout(60)
def test_internal_error_kills_everything_and_exits_125(gsup, tag):
    """An exception inside gsup's loop kills the child and every descendant (other groups and sessions too),
    reaps them, and exits 125 with one error line."""
    run = gsup(
        ["--grace", "5s", "--", *child(tag, "--on-term", "log", "--grandchildren", "8")],
        fault=True,
    )
    run.out.expect(r"^ready pid=")
    run.out.expect(r"^grandchildren ready n=8$")
    procs = tagged(tag)
    assert len(procs) == 9 and len({p.session for p in procs}) > 1
    run.send(signal.SIGUSR1)
    assert run.finish(30) == 125, run.err.text()
    errors = [line for line in run.err.text().splitlines() if line.startswith("gsup: error:")]
    assert len(errors) == 1 and errors[0].startswith("gsup: error: internal error"), run.err.text()
    assert all_gone(procs) == []
    assert tagged(tag) == []


@pytest.mark.timeout(60)
def test_the_test_hook_is_out_of_reach_of_the_environment(gsup, tag):
    """The installed command ignores GSUP_TEST_FAULT=signal in its environment: a signal is forwarded and
    the child's status is gsup's, not an internal error."""
    run = gsup(
        ["--grace", "5s", "--", *child(tag, "--on-term", "exit", "--code", "0")],
        env=clean_env(GSUP_TEST_FAULT="signal"),
    )
    run.out.expect(r"^ready pid=")
    run.send(signal.SIGTERM)
    run.out.expect(r"^signal SIGTERM$")
    assert run.finish(30) == 0, run.err.text()
    assert "internal error" not in run.err.text()


@pytest.mark.timeout(60)
def test_sigkill_of_gsup(gsup, tag, mode):
    """gsup SIGKILLed as a subreaper: the child gets --parent-death-signal; as PID 1: the kernel ends every
    process of the namespace."""
    run = gsup(
        [
            "--grace",
            "5s",
            "--parent-death-signal",
            "TERM",
            "--",
            *child(tag, "--on-term", "exit", "--code", "3", "--grandchildren", "4"),
        ]
    )
    run.out.expect(r"^ready pid=")
    run.out.expect(r"^grandchildren ready n=4$")
    procs = tagged(tag)
    run.send(signal.SIGKILL)
    code = run.wait(30)
    if mode.pid1:
        assert code != 0  # unshare's own way of saying its child was killed (1 here)
        run.out.wait_eof(15)  # fails if something in the namespace still holds stdout
        assert all_gone(procs) == []
    else:
        assert code == -signal.SIGKILL
        run.out.expect(r"^signal SIGTERM$", timeout=10)
        run.out.expect(r"^exiting code=3$", timeout=10)
        # Only the child gets a parent-death signal: its grandchildren, which
        # ignore everything, are beyond what anyone can promise (README).


@pytest.mark.timeout(60)
@pytest.mark.parametrize("on_term, status", [("exit", 0), ("log", 137)])
def test_closed_stderr_single(gsup, tag, on_term, status):
    """With stderr closed (2>&-) gsup still forwards the stop and exits with the right status: 0 when the
    child exits, 137 at the grace."""
    run = gsup(
        ["--grace", f"{GRACE}s", "--", *child(tag, "--on-term", on_term)],
        stderr=None,
        close_stderr=True,
    )
    run.out.expect(r"^ready pid=")
    run.send(signal.SIGTERM)
    run.out.expect(r"^signal SIGTERM$")
    assert run.finish(GRACE + 10) == status
    assert tagged(tag) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("on_term, status", [("exit", 0), ("log", 137)])
def test_broken_stdout_single(gsup, tag, on_term, status):
    """With stdout a pipe nobody can read any more (EPIPE) gsup still forwards the stop and exits with the
    right status."""
    r, w = os.pipe()
    os.close(r)
    try:
        run = gsup(
            ["--grace", f"{GRACE}s", "--", *child(tag, "--on-term", on_term, "--log-fd", "2")],
            stdout=w,
        )
    finally:
        os.close(w)
    run.err.expect(r"^ready pid=")
    run.send(signal.SIGTERM)
    run.err.expect(r"^signal SIGTERM$")
    assert run.finish(GRACE + 10) == status
    assert tagged(tag) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("on_term, status", [("finish", 0), ("ignore", 137)])
def test_broken_stdout_many(gsup, tag, tmp_path, on_term, status):
    """Many programs: a program flooding stdout while gsup's stdout is broken (EPIPE) is still stopped, at
    the grace if need be, with the right status."""
    r, w = os.pipe()
    os.close(r)
    config = _many_config(tmp_path, tag, "--on-term", on_term)
    try:
        run = gsup(["--log-format", "json", "--config", config], stdout=w)
    finally:
        os.close(w)
    run.err.expect(r'"program": "p", "stream": "stderr", "line": "0 2 1 ')  # flooding, its TERM handler set
    run.send(signal.SIGTERM)
    assert run.finish(GRACE + 10) == status, run.err.text()[-3000:]
    assert tagged(tag) == []


class Unread:
    """A pipe whose read end the test holds and never reads: a stuck log collector."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()

    def filled(self) -> bool:
        """Much is queued. (Whether a write would block depends on the pipe's page
        slots, not on bytes: the tests also wait for the writer to be blocked.)"""
        size = fcntl.fcntl(self.r, 1032)  # F_GETPIPE_SZ
        queued = int.from_bytes(fcntl.ioctl(self.r, termios.FIONREAD, b"\0\0\0\0"), "little")
        return queued >= size // 2

    def close_write_end(self) -> None:
        """Once gsup has its copy: the test must not keep the pipe open for writing."""
        if self.w >= 0:
            os.close(self.w)
            self.w = -1

    def close_read_end(self) -> None:
        """The collector goes away: writers get EPIPE (and a stuck gsup wakes up)."""
        if self.r >= 0:
            os.close(self.r)
            self.r = -1

    def close(self) -> None:
        self.close_write_end()
        self.close_read_end()


def stuck_writing(tag: str) -> bool:
    """Every process carrying *tag* is blocked writing to a full pipe."""
    procs = tagged(tag)
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/wchan") as f:
                if "pipe_write" not in f.read():
                    return False
        except OSError:
            return False
    return bool(procs)


@pytest.fixture
def unread():
    pipe = Unread()
    yield pipe
    pipe.close()


@pytest.mark.timeout(60)
def test_full_log_pipe_single(gsup, tag, unread):
    """With stdout and stderr one pipe nobody reads (2>&1 | stuck reader), filled by the child, gsup still
    kills a stubborn child at the grace: exit 137."""
    run = gsup(
        ["--grace", f"{GRACE}s", "--", *prog("flood", "--on-term", "ignore", "--tag", tag)],
        stdout=unread.w,
        stderr=unread.w,
    )
    unread.close_write_end()
    wait_until(lambda: unread.filled() and stuck_writing(tag), 30, "the child is held up")
    t = run.send(signal.SIGTERM)
    try:
        code = run.wait(GRACE + 2.5)
    finally:
        unread.close_read_end()  # unblock a stuck gsup so that teardown is quick
    assert code == 137
    assert run.exited_at is not None and run.exited_at - t < GRACE + 2


@pytest.mark.timeout(60)
def test_full_stderr_from_gsups_own_messages(gsup, tag, unread):
    """A stderr pipe nobody reads, filled by gsup's own messages about forwarded signals, does not stop gsup
    from killing a stubborn child at the grace."""
    run = gsup(["--grace", f"{GRACE}s", "--", *child(tag, "--on-term", "log")], stderr=unread.w)
    unread.close_write_end()
    run.out.expect(r"^ready pid=")
    for _ in range(20_000):  # two lines of gsup's per forwarded signal, until it cannot write
        run.send(signal.SIGUSR1)
        try:
            run.out.expect(r"^signal SIGUSR1$", timeout=2)
        except AssertionError:
            break  # gsup is stuck writing its message about this signal
    assert unread.filled()
    t = run.send(signal.SIGTERM)
    try:
        code = run.wait(GRACE + 2.5)
    finally:
        unread.close_read_end()
    assert code == 137
    assert run.exited_at is not None and run.exited_at - t < GRACE + 2


@pytest.mark.timeout(60)
def test_full_log_pipe_many(gsup, tag, tmp_path, unread):
    """Many programs, stdout and stderr one pipe nobody reads: a stubborn program flooding it is killed at
    the grace, and gsup exits 137 within the budget's margin."""
    config = _many_config(tmp_path, tag, "--on-term", "ignore")
    run = gsup(["--config", config], stdout=unread.w, stderr=unread.w)
    unread.close_write_end()
    wait_until(lambda: unread.filled() and stuck_writing(tag), 30, "the program is held up")
    t = run.send(signal.SIGTERM)
    try:
        code = run.wait(GRACE + 2.5)
    finally:
        unread.close_read_end()
    assert code == 137
    assert run.exited_at is not None and run.exited_at - t < GRACE + 1.0 + 0.5


@pytest.mark.timeout(60)
def test_full_stdout_many_still_stops(gsup, tag, tmp_path, unread):
    """Many programs, stdout a pipe nobody reads (stderr fine): a stubborn program flooding it is killed at
    the grace and gsup exits 137."""
    config = _many_config(tmp_path, tag, "--on-term", "ignore")
    run = gsup(["--log-format", "json", "--config", config], stdout=unread.w)
    unread.close_write_end()
    run.err.expect(r'"event": "started"')
    wait_until(lambda: unread.filled() and stuck_writing(tag), 30, "the program is held up")
    run.send(signal.SIGTERM)
    try:
        code = run.wait(GRACE + 10)
    finally:
        unread.close_read_end()
    assert code == 137
    run.finish(10)
    report = run.report()
    assert report["programs"][0]["force_killed"] is True
    assert tagged(tag) == []


@pytest.mark.timeout(60)
def test_closed_stderr_many(gsup, tag, tmp_path):
    """Many programs with gsup's stderr closed (2>&-): a program's output to stderr is dropped, its stdout
    keeps flowing, and the stop ends gsup at once."""
    config = toml_config(tmp_path, prog("noisy", "40000", tag))
    run = gsup(["--config", config], stderr=None, close_stderr=True)
    run.out.expect(r"^p \| stderr done$", timeout=5)
    t = run.send(signal.SIGTERM)
    assert run.finish(30) == 0
    assert run.exited_at is not None and run.exited_at - t < 1.0
