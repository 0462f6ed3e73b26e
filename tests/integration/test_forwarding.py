"""Signals that reach gsup reach the child: every one, in order, promptly."""

from __future__ import annotations

import json
import os
import signal

import pytest
from prockit import stat

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


# -- during a stop: every signal is forwarded, but an exact repeat and a second INT ------------


@pytest.mark.timeout(30)
def test_int_then_term_both_reach_the_child_and_it_exits_on_term(gsup):
    """A child that treats INT as nothing learns of the TERM that follows it: it records both and
    exits on the TERM, exit 0, nothing force-killed."""
    run = gsup(["--grace", "10s", "--log-format", "json"], child=["--ignore", "INT", "--stop-code", "0"])
    run.out.expect(r"^ready pid=")
    run.send(signal.SIGINT)
    run.out.expect(r"^signal SIGINT$")
    run.send(signal.SIGTERM)
    run.out.expect(r"^signal SIGTERM$")
    run.out.expect(r"^exiting code=0$")
    assert run.finish() == 0
    assert run.out.matching(r"^signal ") == ["signal SIGINT", "signal SIGTERM"]
    report = json.loads(run.err.text().splitlines()[-1])
    assert (report["exit_code"], report["force_killed"], report["escalation"]) == (0, False, None)


@pytest.mark.timeout(30)
def test_every_signal_reaches_the_child_once_in_order_through_a_stop(gsup):
    """HUP, USR1, INT, USR2, QUIT, WINCH, CONT, USR1, HUP, TERM sent one after the other each reach
    the child once, in order: the INT begins the stop, the QUIT and TERM after it are forwarded."""
    run = gsup(["--grace", "10s"], child=["--ignore", "INT", "--ignore", "QUIT", "--stop-code", "4"])
    run.out.expect(r"^ready pid=")
    sent = ["HUP", "USR1", "INT", "USR2", "QUIT", "WINCH", "CONT", "USR1", "HUP", "TERM"]
    for name in sent:
        run.send(signal.Signals["SIG" + name])
        run.out.expect(rf"^signal SIG{name}$", timeout=5)
    run.out.expect(r"^exiting code=4$")
    assert run.finish() == 4
    assert run.out.matching(r"^signal ") == [f"signal SIG{name}" for name in sent]
    assert "escalated" not in run.err.text() and "SIGKILL sent" not in run.err.text()


@pytest.mark.timeout(30)
def test_a_burst_of_six_different_signals_all_arrive(gsup):
    """Six different signals sent at once all reach the child, once each (none is lost or doubled)."""
    run = gsup([], child=["--stop-code", "0"])
    run.out.expect(r"^ready pid=")
    burst = ["HUP", "USR1", "USR2", "WINCH", "ALRM", "URG"]
    pid = run.pid
    for name in burst:
        os.kill(pid, signal.Signals["SIG" + name])
    run.out.wait_for(lambda: len(run.out.matching(r"^signal ")) >= len(burst), what="six signal lines")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    got = run.out.matching(r"^signal ")
    assert sorted(got[:-1]) == sorted(f"signal SIG{name}" for name in burst), got
    assert got[-1] == "signal SIGTERM"


@pytest.mark.timeout(30)
def test_a_repeated_term_is_not_forwarded_twice(gsup):
    """A second SIGTERM during the stop (a platform that sends it twice) is logged, not sent again."""
    run = gsup(["--grace", "1s"], child=["--ignore", "TERM"])
    run.out.expect(r"^ready pid=")
    run.send(signal.SIGTERM)
    run.out.expect(r"^signal SIGTERM$")
    run.send(signal.SIGTERM)
    run.err.expect(r"^gsup: already stopping: SIGTERM ignored")
    # gsup acts on signals in order: once the child has a USR1 sent after the second TERM,
    # a TERM gsup would have forwarded would have reached it first.
    run.send(signal.SIGUSR1)
    run.out.expect(r"^signal SIGUSR1$")
    assert run.finish() == 137  # the grace ran out: the child ignores TERM
    assert run.out.matching(r"^signal ") == ["signal SIGTERM", "signal SIGUSR1"]


@pytest.mark.timeout(30)
def test_int_then_int_force_kills_at_once(gsup):
    """A second SIGINT after a SIGINT (the second Ctrl+C, sent by kill here) kills at once: 137."""
    run = gsup(["--grace", "20s"], child=["--ignore", "INT"])
    run.out.expect(r"^ready pid=")
    run.send(signal.SIGINT)
    run.out.expect(r"^signal SIGINT$")
    sent = run.send(signal.SIGINT)
    assert run.finish() == 137
    assert run.exited_at is not None and run.exited_at - sent < 2.0
    assert run.out.matching(r"^signal ") == ["signal SIGINT"]
    assert "second SIGINT" in run.err.text()


@pytest.mark.timeout(30)
def test_a_self_stopped_child_handles_its_sigterm(gsup):
    """A child that stopped itself (SIGSTOP, as Ctrl+Z would) gets SIGCONT after its stop signal,
    handles the SIGTERM and exits with its own code inside the grace, not force-killed."""
    run = gsup(["--grace", "10s"], child=["--stop-self", "--stop-code", "6"])
    ready = run.out.expect(r"^ready pid=(\d+)")
    child = run.learn(int(ready[1]))
    run.out.wait_for(lambda: stat_state(child.pid) in ("T", "t"), what="the child stopped")
    sent = run.send(signal.SIGTERM)
    run.out.expect(r"^signal SIGTERM$")
    run.out.expect(r"^exiting code=6$")
    assert run.finish() == 6
    assert run.exited_at is not None and run.exited_at - sent < 5.0


def stat_state(pid: int) -> str:
    st = stat(pid)
    return "gone" if st is None else st.state
