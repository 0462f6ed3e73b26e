"""A readiness probe that hangs does not hold up gsup's loop (each attempt is a process of its own).

Each test runs twice: gsup as a subreaper and as PID 1 of a PID namespace.
A server started by the test accepts gsup's HTTP probe and never answers,
so the attempt blocks for its whole timeout (1 s: the interval is longer);
each test acts while that connection is held open and expects gsup to
answer well inside that second.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from gsupkit import Stream
from manykit import Fleet, parse_event_line
from prockit import children_of as children
from prockit import cmdline, kill_pid, status_fields

from gsup.log import TextSink
from gsup.model import Plan, ProgramSpec, ReadySpec
from gsup.supervisor import supervise

MUTE_PATH = str(Path(__file__).resolve().parent / "progs" / "mute_server.py")
#: gsup's timeout for one attempt: min(1 s, interval).
ATTEMPT = 1.0
#: How long gsup may take to act during the attempt: clearly less than ATTEMPT.
WITHIN = 0.6


class Mute:
    """The server that never answers: its port and its ``@event`` lines."""

    def __init__(self) -> None:
        token = f"gsup-mute-{uuid.uuid4().hex}"  # not the fleet's: not one of the run's leftovers
        self.proc = subprocess.Popen(
            [sys.executable, MUTE_PATH, "--token", token], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        self.out = Stream(self.proc.stdout.fileno(), "the mute server's stdout", parse=parse_event_line)
        self.port = int(self.wait("listening", timeout=10)["port"])

    def wait(self, event: str, timeout: float = 15.0) -> dict[str, Any]:
        def found() -> Optional[dict[str, Any]]:
            return next((e for e in self.out.parsed if e["event"] == event), None)

        return self.out.wait_for(found, timeout, f"@{event}")

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def close(self) -> None:
        kill_pid(self.proc.pid)
        self.proc.wait(10)
        self.out.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def mute() -> Iterator[Mute]:
    server = Mute()
    try:
        yield server
    finally:
        server.close()


def _web(fleet: Fleet, mute: Mute, **extra: Any) -> dict[str, Any]:
    """A program whose readiness is the mute server: its first probe starts with it and hangs."""
    return {
        "command": fleet.prog("web"),
        "ready": {"http": mute.url(), "interval": "2s", "timeout": "30s"},
        **extra,
    }


@pytest.mark.timeout(30)
def test_a_stop_signal_is_acted_on_while_a_probe_hangs(fleet: Fleet, mute: Mute) -> None:
    """SIGTERM is received, acted on and gsup has exited while an HTTP probe still waits for its answer."""
    run = fleet.start({"web": _web(fleet, mute)})
    accepted = mute.wait("accepted")  # gsup's probe is connected and waits for an answer
    sent = run.send(signal.SIGTERM)

    received = run.event("signal_received", timeout=WITHIN)
    assert received["signal"] == "SIGTERM"
    run.event("stopping", timeout=WITHIN)
    run.event("program_exited", "web", timeout=WITHIN)
    assert run.wait(timeout=WITHIN) == 0, "gsup waited for the probe before it exited"
    closed = mute.wait("closed")  # gsup's exit closed the probe's connection
    assert received["ts"] - sent < WITHIN
    assert float(closed["t"]) - float(accepted["t"]) < ATTEMPT, "the attempt ran to its timeout first"
    assert received["ts"] < float(closed["t"]), "the signal waited for the connection to end"
    assert run.finish() == 0
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_output_keeps_flowing_while_a_probe_hangs(fleet: Fleet, mute: Mute) -> None:
    """Another program's lines reach gsup's stdout while an HTTP probe still waits for its answer."""
    run = fleet.start(
        {
            "ticker": fleet.up("ticker", "--tick", 0.05),
            "web": _web(fleet, mute, depends_on=["ticker"]),
        }
    )
    accepted = float(mute.wait("accepted")["t"])
    out = run.out
    assert out is not None

    def tick_after() -> Optional[dict[str, Any]]:
        return next((e for e in out.parsed if e["event"] == "tick" and float(e["t"]) > accepted), None)

    tick = out.wait_for(tick_after, WITHIN, "a tick written after the probe connected")
    with mute.out.cond:
        assert [e["event"] for e in mute.out.parsed] == ["listening", "accepted"], "the probe has ended"
    assert float(tick["t"]) - accepted < ATTEMPT

    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_a_supervision_in_process_leaves_no_descriptor_behind() -> None:
    """supervise() called as a library, with probes run beside the loop, closes what it opened."""

    def once() -> int:
        ready = ReadySpec("file", "/", timeout=5.0, interval=0.05)
        program = ProgramSpec(argv=(b"sleep", b"0.2"), name="a", ready=ready)
        plan = Plan(programs=(program,), grace=2.0)
        return supervise(plan, TextSink(io.StringIO())).exit_code

    assert once() == 0  # the first run imports what it needs
    before = sorted(os.listdir("/proc/self/fd"))
    assert [once() for _ in range(3)] == [0, 0, 0]
    assert sorted(os.listdir("/proc/self/fd")) == before


@pytest.mark.timeout(30)
def test_one_thread_while_a_probe_retries(fleet: Fleet, mute: Mute) -> None:
    """While a readiness probe is tried again and again, the supervising process has exactly one
    thread: each attempt is a child process of gsup (in a group of its own), not a thread."""
    run = fleet.start({"web": {**_web(fleet, mute), "ready": {"http": mute.url(), "interval": "50ms"}}})
    for n in (1, 2, 3):
        wait_for_accepted(mute, n)  # attempt n holds its connection open
        assert threads(run.pid) == 1
        attempts = [kid for kid in children(run.pid) if fleet.token.encode() not in cmdline(kid)]
        assert len(attempts) == 1, attempts
        assert os.getpgid(attempts[0]) == attempts[0]
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.leftovers() == []


def wait_for_accepted(mute: Mute, n: int) -> None:
    def found() -> Optional[dict[str, Any]]:
        return next((e for e in mute.out.parsed if e["event"] == "accepted" and e["n"] == str(n)), None)

    mute.out.wait_for(found, 10, f"@accepted n={n}")


def threads(pid: int) -> int:
    return int(status_fields(pid)["Threads"])
