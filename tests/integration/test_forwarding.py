"""Signals that reach gsup reach the child: every one, in order, promptly."""

from __future__ import annotations

import os
import signal

import pytest

#: Forwarded without starting a stop.
FORWARDED = ["HUP", "USR1", "USR2", "WINCH", "CONT", "ALRM"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("stop", ["INT", "QUIT", "TERM"])
def test_signals_reach_the_child_in_order(gsup, stop):
    """Each signal sent to gsup reaches the child once, in the order sent; the stop signal last."""
    run = gsup([], child=["--stop-code", "3"])
    run.out.expect(r"^ready pid=")
    sent = [*FORWARDED, stop]
    for name in sent:
        run.send(signal.Signals["SIG" + name])
        run.out.expect(rf"^signal SIG{name}$", timeout=5)
    run.out.expect(r"^exiting code=3$")
    assert run.finish() == 3
    assert run.out.matching(r"^signal ") == [f"signal SIG{name}" for name in sent]


@pytest.mark.timeout(60)
def test_a_burst_of_signals_does_not_delay_the_stop(gsup):
    """A burst of 1,000 SIGUSR1 neither crashes gsup nor delays the SIGTERM sent after it."""
    run = gsup([], child=["--stop-code", "0"])
    run.out.expect(r"^ready pid=")
    pid = run.pid
    for _ in range(1000):
        os.kill(pid, signal.SIGUSR1)
    sent = run.send(signal.SIGTERM)
    term = run.out.expect(r"^signal SIGTERM$", timeout=10)
    assert run.finish() == 0
    assert term.t - sent < 1.0
    assert run.exited_at is not None and run.exited_at - sent < 1.5
    # Standard signals coalesce, so fewer than 1,000 arrive; but some did, and no other kind.
    assert run.out.matching(r"^signal SIGUSR1$")
    assert set(run.out.matching(r"^signal ")) == {"signal SIGUSR1", "signal SIGTERM"}
    assert run.err.matching(r"^gsup: received SIGUSR1")
    assert "Traceback" not in run.err.text()
