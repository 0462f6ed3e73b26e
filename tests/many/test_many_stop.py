"""Stop: reverse dependency order, independents in parallel, one grace, SIGKILL at its end (SPEC §4, §5).

Each test runs twice: gsup as a subreaper and as PID 1 of a PID namespace.
The programs log when the stop signal reached them and when they exited,
so the order is read from their side; gsup's JSON events give the deadline.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
from manykit import Fleet

#: How long each program takes to stop after SIGTERM.
TAKES = 0.25


@pytest.mark.timeout(30)
def test_stop_in_reverse_dependency_order_and_independents_in_parallel(fleet: Fleet) -> None:
    """On SIGTERM, c (after b) stops before b, b before a; independent programs are signalled together."""
    slow = ("--term-delay", TAKES)
    run = fleet.start(
        {
            "a": {"command": fleet.prog("a", *slow)},
            "b": {"command": fleet.prog("b", *slow), "depends_on": ["a"]},
            "c": {"command": fleet.prog("c", *slow), "depends_on": ["b"]},
            "x": {"command": fleet.prog("x", *slow)},
            "y": {"command": fleet.prog("y", *slow)},
        },
        {"grace": "4s"},
    )
    for name in "abcxy":
        run.log("start", name)
    assert len(run.processes()) == 5
    sent = run.send(signal.SIGTERM)
    assert run.finish() == 0
    term = {name: run.t("term", name, timeout=0) for name in "abcxy"}
    stopped = {name: run.t("stopped", name, timeout=0) for name in "abcxy"}

    assert stopped["c"] <= term["b"] and stopped["b"] <= term["a"], f"not c, b, a: {term}"
    assert term["b"] - stopped["c"] < 0.25 and term["a"] - stopped["b"] < 0.25, "a stage waited for nothing"
    first_stage = [term["c"], term["x"], term["y"]]
    assert max(first_stage) - min(first_stage) < 0.05, f"independent programs not stopped in parallel: {term}"
    assert min(first_stage) - sent < 0.5
    assert run.exited_at is not None and run.exited_at - sent < 4.0, "not within the grace"
    assert run.exited_at - sent >= 3 * TAKES  # the three stages, one after the other
    for p in run.report()["programs"]:
        assert (p["code"], p["force_killed"], p["stop_signal"]) == (0, False, "SIGTERM"), p
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_program_ignoring_term_is_killed_at_the_deadline_with_its_descendants(fleet: Fleet) -> None:
    """A program ignoring SIGTERM dies with its descendants at the grace end; the others stop cleanly; 137."""
    grace = 1.0
    run = fleet.start(
        {
            "stubborn": {"command": fleet.prog("stubborn", "--ignore-term", "--grandchild")},
            "good": {"command": fleet.prog("good", "--term-delay", 0.1)},
            "nice": {"command": fleet.prog("nice", "--term-delay", 0.1), "depends_on": ["good"]},
        },
        {"grace": "1s"},
    )
    run.log("grandchild", "stubborn")
    run.log("start", "good")
    run.log("start", "nice")
    assert len(run.processes()) == 4  # the programs and stubborn's grandchild (its own session)
    sent = run.send(signal.SIGTERM)

    assert run.finish() == 137
    stopping = run.event("stopping", timeout=0)["ts"]
    escalated = run.event("escalated", timeout=0)["ts"]
    killed = run.event("program_exited", "stubborn", timeout=0)
    assert abs(escalated - stopping - grace) <= 0.1, f"SIGKILL {escalated - stopping:.3f}s after the stop"
    assert killed["status"] == "killed by SIGKILL"
    assert grace <= killed["ts"] - stopping < grace + 1.0  # when gsup reaped it
    assert run.exited_at is not None and run.exited_at - sent < grace + 1.0

    stubborn = run.program_report("stubborn")
    assert stubborn["force_killed"] is True
    for name in ("good", "nice"):
        p = run.program_report(name)
        assert (p["code"], p["force_killed"]) == (0, False), p
        assert p["stop_seconds"] < 0.5
    assert run.t("stopped", "nice", timeout=0) <= run.t("term", "good", timeout=0)
    assert run.leftovers() == [], "the grandchild (or a program) outlived gsup"


@pytest.mark.timeout(30)
def test_per_program_grace_and_stop_signal(fleet: Fleet) -> None:
    """A program's own grace SIGKILLs it at its own (earlier) deadline; its stop_signal is the one sent."""
    run = fleet.start(
        {
            "quick": {"command": fleet.prog("quick", "--ignore-term"), "grace": "300ms"},
            "calm": {"command": fleet.prog("calm", "--term-delay", 0.6), "stop_signal": "INT"},
        },
        {"grace": "3s"},
    )
    run.log("start", "quick")
    run.log("start", "calm")
    run.processes()
    run.send(signal.SIGTERM)
    assert run.finish() == 137
    stopping = run.event("stopping", timeout=0)["ts"]
    escalated = run.event("escalated", "quick", timeout=0)["ts"]
    assert abs(escalated - stopping - 0.3) <= 0.1, f"SIGKILL {escalated - stopping:.3f}s after the stop"
    assert run.event("program_exited", "quick", timeout=0)["status"] == "killed by SIGKILL"
    calm = run.program_report("calm")
    assert (calm["code"], calm["force_killed"], calm["stop_signal"]) == (0, False, "SIGINT")
    assert run.log("term", "calm", timeout=0)["sig"] == "SIGINT", "its stop_signal was not used"
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_second_sigint_kills_at_once_and_a_term_between_is_forwarded(fleet: Fleet) -> None:
    """During a stop begun by SIGINT a SIGTERM is forwarded to what still runs, not an escalation;
    a second SIGINT SIGKILLs the rest at once: 137."""
    run = fleet.start(
        {
            "stubborn": {"command": fleet.prog("stubborn", "--ignore-term")},
            "good": {"command": fleet.prog("good", "--term-delay", 0.1)},
        },
        {"grace": "20s", "platform": "none"},
    )
    run.log("start", "stubborn")
    run.log("start", "good")
    run.processes()
    run.send(signal.SIGINT)
    run.log("stopped", "good")
    run.event("program_exited", "good")  # reaped by gsup, not only on its way out
    run.send(signal.SIGTERM)

    def forwarded_term() -> Any:
        forwarded = run._events_locked("signal_forwarded", None)
        return next((e for e in forwarded if e["signal"] == "SIGTERM" and not e.get("stop")), None)

    assert run.err is not None
    term = run.err.wait_for(forwarded_term, what="SIGTERM forwarded")
    assert term["programs"] == ["stubborn"]
    assert run.events("escalated") == [] and run.events("repeat_ignored") == []
    sent = run.send(signal.SIGINT)
    assert run.finish() == 137
    assert run.exited_at is not None and run.exited_at - sent < 2.0, "the second SIGINT did not kill at once"
    assert "second SIGINT" in run.event("escalated", timeout=0)["message"]
    assert run.program_report("stubborn")["force_killed"] is True
    assert run.program_report("good")["force_killed"] is False
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_a_repeated_term_is_not_forwarded_again(fleet: Fleet) -> None:
    """A platform that sends SIGTERM twice: the second one is logged and reaches no program."""
    run = fleet.start(
        {"stubborn": {"command": fleet.prog("stubborn", "--ignore-term")}},
        {"grace": "1s", "platform": "none"},
    )
    run.log("start", "stubborn")
    run.send(signal.SIGTERM)
    run.event("grace_started")
    run.send(signal.SIGTERM)
    assert run.event("repeat_ignored")["signal"] == "SIGTERM"
    assert run.finish() == 137
    terms = [e for e in run.events("signal_forwarded") if e["signal"] == "SIGTERM"]
    assert len(terms) == 1 and terms[0]["stop"] is True, terms
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_report_says_why_a_program_was_killed(fleet: Fleet) -> None:
    """The text report does not claim the grace ran out when a second SIGINT killed the program."""
    run = fleet.start(
        {"stubborn": {"command": fleet.prog("stubborn", "--ignore-term")}},
        {"grace": "20s", "platform": "none"},
        args=(),
    )
    run.log("start", "stubborn")
    run.send(signal.SIGINT)
    run.err.wait_for(lambda: b"sent SIGINT" in run.err.data, 10, "the stop")
    run.send(signal.SIGINT)
    assert run.finish() == 137
    row = next(line for line in run.stderr_text().splitlines() if line.startswith("gsup: stubborn "))
    assert "force-killed" in row and "grace ran out" not in row, row
