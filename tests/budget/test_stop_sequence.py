"""The stop sequence: the drain holds the signal, a second Ctrl+C skips it, signals are chosen as asked."""

from __future__ import annotations

import json
import re
import signal
from typing import Callable

import pytest

from .conftest import CHILD, Run

#: No platform detection in the way: these tests are about the sequence.
NONE = ["--platform", "none"]


def signal_time(run: Run, name: str, timeout: float = 10.0) -> float:
    """When the child saw *name* (its own CLOCK_MONOTONIC stamp)."""
    return float(run.out.expect(rf"^signal {name} t=([\d.]+)", timeout).match.group(1))


@pytest.mark.timeout(30)
def test_stop_delay_holds_the_signal_while_the_child_serves(gsup_run: Callable[..., Run]) -> None:
    """With --stop-delay 1 the child gets SIGTERM 1 s (±0.15) after gsup does, and keeps working meanwhile."""
    run = gsup_run([*NONE, "--stop-delay", "1", "--", *CHILD, "--tick", "0.05", "--on", "TERM=exit:0"])
    run.ready()
    run.out.expect(r"^tick 1 ")
    sent = run.send(signal.SIGTERM)
    got = signal_time(run, "SIGTERM")
    assert 0.85 <= got - sent <= 1.15, f"SIGTERM reached the child {got - sent:.3f}s after gsup's"
    ticks = [float(m.group(1)) for m in map(re.compile(r"^tick \d+ t=([\d.]+)").match, run.out.all()) if m]
    during = [t for t in ticks if sent < t < got]
    assert len(during) >= 10, f"only {len(during)} ticks during the 1s drain: the child did not keep serving"
    assert run.finish() == 0
    assert "draining for 1s before sending SIGTERM" in run.err.text()


@pytest.mark.timeout(30)
def test_second_int_during_the_drain_skips_the_rest(gsup_run: Callable[..., Run]) -> None:
    """A second SIGINT during a 5 s drain makes gsup send the stop signal at once, and nothing is killed."""
    run = gsup_run([*NONE, "--stop-delay", "5", "--grace", "5", "--", *CHILD, "--on", "INT=exit:0"])
    run.ready()
    run.send(signal.SIGINT)
    run.err.expect(r"draining for 5s before sending SIGINT")
    second = run.send(signal.SIGINT)
    got = signal_time(run, "SIGINT", timeout=3)
    assert got - second < 0.3, f"the child got SIGINT {got - second:.3f}s after the second one"
    assert run.finish() == 0
    err = run.err.text()
    assert "force-killed" not in err and "SIGKILL" not in err, err
    assert "exited within the grace" in err
    assert len([line for line in run.out.all() if line.startswith("signal ")]) == 1


@pytest.mark.timeout(30)
def test_repeated_term_does_not_skip_the_drain(gsup_run: Callable[..., Run]) -> None:
    """A second SIGTERM during the drain is only logged: the child still gets it at the drain's end."""
    run = gsup_run([*NONE, "--stop-delay", "1", "--", *CHILD, "--on", "TERM=exit:0"])
    run.ready()
    sent = run.send(signal.SIGTERM)
    run.err.expect(r"draining for 1s")
    run.send(signal.SIGTERM)
    run.err.expect(r"already stopping: SIGTERM ignored")
    got = signal_time(run, "SIGTERM")
    assert 0.85 <= got - sent <= 1.15, f"SIGTERM reached the child {got - sent:.3f}s after gsup's"
    assert run.finish() == 0


@pytest.mark.timeout(30)
def test_rewrite_term_to_quit(gsup_run: Callable[..., Run]) -> None:
    """With --rewrite TERM:QUIT, a SIGTERM to gsup reaches the child as SIGQUIT, and only so."""
    run = gsup_run([*NONE, "--rewrite", "TERM:QUIT", "--", *CHILD, "--on", "QUIT=exit:0", "--on", "TERM=log"])
    run.ready()
    run.send(signal.SIGTERM)
    signal_time(run, "SIGQUIT")
    assert run.finish() == 0
    assert [line.split()[1] for line in run.out.all() if line.startswith("signal ")] == ["SIGQUIT"]


@pytest.mark.timeout(30)
def test_stop_signal_int(gsup_run: Callable[..., Run]) -> None:
    """With --stop-signal INT, a SIGTERM to gsup reaches the child as SIGINT, and only so."""
    run = gsup_run([*NONE, "--stop-signal", "INT", "--", *CHILD, "--on", "INT=exit:0", "--on", "TERM=log"])
    run.ready()
    run.send(signal.SIGTERM)
    signal_time(run, "SIGINT")
    assert run.finish() == 0
    assert [line.split()[1] for line in run.out.all() if line.startswith("signal ")] == ["SIGINT"]


@pytest.mark.timeout(30)
def test_the_report_counts_the_drain_apart_from_the_grace(gsup_run: Callable[..., Run]) -> None:
    """A 1 s drain then a 1 s grace that runs out: the report says "drain 1.0..s, then SIGTERM sent, took
    1.0..s of a 1s grace", not 2 s of a 1 s grace."""
    run = gsup_run([*NONE, "--stop-delay", "1", "--grace", "1", "--", *CHILD, "--on", "TERM=log"])
    run.ready()
    run.send(signal.SIGTERM)
    assert run.finish() == 137
    m = re.search(
        r"^gsup: stop\s+drain (\d\.\d+)s, then SIGTERM sent, took (\d\.\d+)s of a 1s grace",
        run.err.text(),
        re.M,
    )
    assert m, run.err.text()
    assert 0.95 <= float(m.group(1)) <= 1.2 and 0.95 <= float(m.group(2)) <= 1.2, m.group(0)


@pytest.mark.timeout(30)
def test_a_megabyte_command_line_is_shortened_in_the_log_and_whole_in_json(
    gsup_run: Callable[..., Run],
) -> None:
    """A 1 MB argv is not printed twice in text (each line stays short), and JSON carries it whole."""
    big = ["x" * 100_000 for _ in range(10)]
    text = gsup_run([*NONE, "--", "true", *big])
    assert text.finish() == 0
    assert len(text.err.text()) < 2_000, f"{len(text.err.text())} bytes of log"
    assert "(11 arguments, 1000014 bytes)" in text.err.text()
    js = gsup_run([*NONE, "--log-format", "json", "--", "true", *big])
    assert js.finish() == 0
    events = [json.loads(line) for line in js.err.text().splitlines()]
    started = next(e for e in events if e["event"] == "started")
    assert started["command"] == " ".join(["true", *big])
    assert len(started["message"]) < 300
