"""--log-format json: one JSON object per line, every event of a stop, in order; --quiet and --verbose."""

from __future__ import annotations

import json
import signal
from typing import Any, Callable

import pytest

from .conftest import CHILD, Run

NONE = ["--platform", "none"]


def records(run: Run) -> list[dict[str, Any]]:
    """Every line gsup wrote to stderr, each parsed as one JSON object."""
    out = []
    for line in run.err.all():
        if not line:
            continue
        record = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(record, dict), line
        assert isinstance(record["ts"], float) and isinstance(record["gsup_pid"], int), line
        out.append(record)
    return out


def kinds_in_order(events: list[dict[str, Any]], wanted: list[str]) -> list[str]:
    """The kinds of *events* that are in *wanted*, in the order they came."""
    return [e["event"] for e in events if e["event"] in wanted]


@pytest.mark.timeout(30)
def test_stop_with_escalation_logs_every_event_in_order(gsup_run: Callable[..., Run]) -> None:
    """A stop that ends in SIGKILL logs started, signal_received, signal_forwarded, grace_started,
    escalated, program_exited and exit (137, force_killed) in that order, with rising timestamps."""
    run = gsup_run([*NONE, "--grace", "0.3", "--log-format", "json", "--", *CHILD, "--on", "TERM=log"])
    run.ready()
    run.send(signal.SIGTERM)
    assert run.finish() == 137
    events = records(run)
    wanted = [
        "started",
        "signal_received",
        "signal_forwarded",
        "grace_started",
        "escalated",
        "program_exited",
        "exit",
    ]
    assert kinds_in_order(events, wanted) == wanted, [e["event"] for e in events]
    assert events[-1]["event"] == "exit"
    exit_event = events[-1]
    assert exit_event["exit_code"] == 137 and exit_event["force_killed"] is True, exit_event
    assert exit_event["escalation"] == "grace ran out"
    ts = [e["ts"] for e in events]
    assert ts == sorted(ts)
    by_kind = {e["event"]: e for e in events}
    assert by_kind["signal_received"]["signal"] == "SIGTERM"
    assert by_kind["signal_forwarded"]["signal"] == "SIGTERM"
    assert by_kind["program_exited"]["code"] == 137
    assert 0.25 <= by_kind["escalated"]["ts"] - by_kind["grace_started"]["ts"] <= 0.4
    assert len({e["gsup_pid"] for e in events}) == 1


@pytest.mark.timeout(30)
def test_stop_delay_adds_drain_events(gsup_run: Callable[..., Run]) -> None:
    """With --stop-delay, drain_started and drain_ended come between signal_received and signal_forwarded."""
    run = gsup_run(
        [*NONE, "--stop-delay", "0.3", "--log-format", "json", "--", *CHILD, "--on", "TERM=exit:0"]
    )
    run.ready()
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    events = records(run)
    wanted = [
        "started",
        "signal_received",
        "drain_started",
        "drain_ended",
        "signal_forwarded",
        "grace_started",
        "program_exited",
        "exit",
    ]
    assert kinds_in_order(events, wanted) == wanted, [e["event"] for e in events]
    by_kind = {e["event"]: e for e in events}
    assert 0.25 <= by_kind["drain_ended"]["ts"] - by_kind["drain_started"]["ts"] <= 0.45
    assert by_kind["exit"]["exit_code"] == 0 and by_kind["exit"]["force_killed"] is False


@pytest.mark.timeout(30)
def test_quiet_leaves_only_the_report(gsup_run: Callable[..., Run]) -> None:
    """With --quiet, the only line on stderr is the final report: the JSON exit event."""
    run = gsup_run([*NONE, "--quiet", "--log-format", "json", "--", *CHILD, "--on", "TERM=exit:0"])
    run.ready()
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    events = records(run)
    assert [e["event"] for e in events] == ["exit"], events
    assert events[0]["stop_signal_received"] == "SIGTERM"


@pytest.mark.parametrize("verbose", [True, False], ids=["verbose", "default"])
@pytest.mark.timeout(30)
def test_verbose_adds_reaped_orphans(gsup_run: Callable[..., Run], verbose: bool) -> None:
    """With --verbose each reaped orphan is an orphan_reaped event with its pid; without, only the count."""
    args = [*NONE, "--log-format", "json", *(["--verbose"] if verbose else [])]
    child = [*CHILD, "--orphans", "2", "--orphan-linger", "0.1", "--exit-after", "0.6"]
    run = gsup_run([*args, "--", *child])
    orphans = {int(run.out.expect(r"^orphan pid=(\d+)").match.group(1)) for _ in range(2)}
    assert run.finish() == 0
    events = records(run)
    reaped = {e["pid"] for e in events if e["event"] == "orphan_reaped"}
    assert reaped == (orphans if verbose else set()), events
    assert events[-1]["event"] == "exit" and events[-1]["orphans_reaped"] == 2, events[-1]
