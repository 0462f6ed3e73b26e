"""An idle gsup sleeps in one blocking wait: no wake-ups, no CPU."""

from __future__ import annotations

import signal
import time

import pytest

IDLE = 3.0


def wakeups(run) -> tuple[int, int, int]:
    st = run.status()
    return (
        int(st["voluntary_ctxt_switches"]),
        int(st["nonvoluntary_ctxt_switches"]),
        run.cpu_ticks(),
    )


@pytest.mark.timeout(30)
def test_idle_gsup_never_wakes_up(gsup):
    """While nothing happens gsup has no context switch and uses no CPU tick over 3 s."""
    run = gsup(["--grace", "1s"], child=["--grandchildren", "3"])
    run.out.expect(r"^ready pid=")
    run.err.expect(r"^gsup: started pid ")
    # The child's readiness comes long after gsup entered its wait; still,
    # make sure it is asleep (there is no event for "entered poll").
    deadline = time.monotonic() + 5
    while run.state() != "S" and time.monotonic() < deadline:
        time.sleep(0.01)
    before = wakeups(run)
    time.sleep(IDLE)  # the measurement: a stretch of time in which nothing happens
    after = wakeups(run)
    assert after == before, f"(voluntary, involuntary, ticks) {before} -> {after}"
    run.send(signal.SIGTERM)
    assert run.finish() == 0


@pytest.mark.timeout(30)
def test_the_supervising_process_is_the_lean_one(gsup):
    """After the handover gsup is a ``-S`` interpreter named gsup that never loaded ctypes
    (its signalfd came across the exec)."""
    run = gsup(["--grace", "1s"], child=[])
    run.out.expect(r"^ready pid=")
    pid = run.status()["Pid"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the handover: the exec comes after the child started
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        name = run.status()["Name"]  # set once the lean process is about to supervise
        if any(a.endswith(b"lean.py") for a in argv) and name == "gsup":
            break
        time.sleep(0.01)
    assert b"-S" in argv and any(a.endswith(b"lean.py") for a in argv), argv
    assert name == "gsup"
    with open(f"/proc/{pid}/maps") as f:
        loaded = {line.split()[-1].rsplit("/", 1)[-1] for line in f if "/" in line}
    assert not [so for so in loaded if so.startswith("_ctypes")], sorted(loaded)
    run.send(signal.SIGTERM)
    assert run.finish() == 0
