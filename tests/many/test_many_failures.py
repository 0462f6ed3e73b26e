"""A program that exits on its own: the fleet stops, or it is restarted with backoff (SPEC §5, §6).

Each test runs twice: gsup as a subreaper and as PID 1 of a PID namespace.
"""

from __future__ import annotations

import signal

import pytest
from manykit import Fleet, gaps


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("crash", "code"), [(["--code", 3], 3), (["--die-by", "USR1"], 128 + 10)])
def test_crash_stops_the_others_and_gsup_exits_with_its_code(
    fleet: Fleet, crash: list[object], code: int
) -> None:
    """One program crashing stops the others (dependents first) within the grace; gsup exits with its code."""
    run = fleet.start(
        {
            "base": fleet.up("base", "--term-delay", 0.2),
            "top": {**fleet.up("top", "--term-delay", 0.2), "depends_on": ["base"]},
            # after the others are up (so they are surely there to be stopped)
            "crasher": {"command": fleet.prog("crasher", "--exit-after", 0.3, *crash), "depends_on": ["top"]},
        },
        {"grace": "3s"},
    )
    run.log("start", "crasher")
    run.processes()
    crashed = run.t("exit", "crasher")

    assert run.finish() == code
    assert run.event("failed", timeout=0)["program"] == "crasher"
    top_term, base_term = run.t("term", "top"), run.t("term", "base")
    assert crashed < top_term < run.t("stopped", "top") <= base_term, "not stopped dependents first"
    assert run.exited_at is not None and run.exited_at - crashed < 3.0, "not stopped within the grace"

    report = run.report()
    assert report["exit_code"] == code
    crasher = run.program_report("crasher")
    assert crasher["code"] == code and crasher["failure"] and crasher["stop_signal"] is None
    for name in ("base", "top"):
        p = run.program_report(name)
        assert (p["code"], p["stop_signal"], p["force_killed"]) == (0, "SIGTERM", False), p
    assert run.leftovers() == []


#: Fails its first three runs at once, then runs until stopped. A shell, not Python:
#: its start costs a millisecond, so the spacing of its starts is the backoff.
#: Its times are CLOCK_REALTIME (``date``): only compared with each other.
FLAKY = """
n=$(( $(cat "$RUNS" 2>/dev/null || echo 0) + 1 )); echo $n > "$RUNS"
echo "@start name=flaky t=$(date +%s.%N) run=$n"
[ $n -le 3 ] && echo "@exit name=flaky t=$(date +%s.%N) code=1" && exit 1
sleep 120 & wait $!
"""
#: Late a restart may be (scheduling on shared cores), and still tell 200/400/800 ms
#: from a constant, linear or off-by-one (400/800/1600 ms) backoff.
LATE = 0.19


def _restart_three_times(fleet: Fleet, attempt: int) -> list[str]:
    """One fleet whose program fails 3 times; every guarantee checked; the timing errors returned."""
    run = fleet.start(
        {
            "flaky": {
                "command": ["sh", "-c", FLAKY, "flaky", fleet.token],
                "env": {"RUNS": str(fleet.tmp / f"runs-{attempt}")},
                "restart": "on-failure",
                "backoff": "200ms",
            },
            "steady": {"command": fleet.prog("steady")},
        }
    )
    run.log("start", "flaky", n=4)
    starts = [float(e["t"]) for e in run.logs("start", "flaky")]
    exits = [float(e["t"]) for e in run.logs("exit", "flaky")]
    expected = [0.2, 0.4, 0.8]
    assert [e["delay"] for e in run.events("restart_scheduled", "flaky")] == expected
    assert len(run.logs("start", "steady")) == 1, "a neighbour's restart disturbed another program"
    assert run.events("stopping") == []
    spacing = [round(g, 3) for g in gaps(starts)]
    downtime = [round(b - a, 3) for a, b in zip(exits, starts[1:])]
    # gsup's own clock: from the exit it reaped to the restart it made.
    reaped = [e["ts"] for e in run.events("program_exited", "flaky")]
    restarted = [e["ts"] for e in run.events("started", "flaky")][1:]
    by_gsup = [round(b - a, 3) for a, b in zip(reaped, restarted)]
    for measured in (spacing, downtime, by_gsup):
        assert all(m >= d - 0.005 for m, d in zip(measured, expected)), f"restarted early: {measured}"

    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.program_report("flaky")["restarts"] == 3
    assert run.leftovers() == []
    errors = []
    for what, measured, slack in (
        ("from each exit to the next start", downtime, LATE),
        ("from start to start", spacing, LATE + 0.1),  # the failed run's own time included
        ("by gsup's clock", by_gsup, LATE),
    ):
        if any(m > d + slack for m, d in zip(measured, expected)):
            errors.append(f"{what}: {measured}, not ~{expected}")
    return errors


@pytest.mark.timeout(40)
def test_on_failure_restarts_with_exponential_backoff(fleet: Fleet) -> None:
    """restart = on-failure with backoff 200ms: restarts 200, 400, 800 ms after each failure, then it runs."""
    errors = _restart_three_times(fleet, 1)
    if errors:  # late, not early: a burst of load on shared cores; a real fault shows twice
        errors = _restart_three_times(fleet, 2)
    assert errors == []


@pytest.mark.timeout(30)
def test_always_restarts_even_after_exit_zero(fleet: Fleet) -> None:
    """restart = always restarts a program that exited 0 instead of stopping the fleet."""
    runs = fleet.tmp / "runs"
    run = fleet.start(
        {
            "cron": {
                "command": fleet.prog("cron", "--runs", runs, "--fail-runs", 2, "--code", 0),
                "restart": "always",
                "backoff": "100ms",
            },
            "steady": {"command": fleet.prog("steady")},
        }
    )
    assert run.log("start", "cron", n=3)["run"] == "3"
    assert [e["code"] for e in run.logs("exit", "cron")] == ["0", "0"]
    assert run.events("stopping") == [], "an exit 0 under restart = always stopped the fleet"
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.program_report("cron")["restarts"] == 2
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_gives_up_after_max_restarts_and_fails_with_the_program_code(fleet: Fleet) -> None:
    """A program that keeps failing is restarted max_restarts times, then fails the fleet with its code."""
    run = fleet.start(
        {
            "broken": {
                "command": fleet.prog("broken", "--exit-after", 0, "--code", 5),
                "restart": "on-failure",
                "max_restarts": 2,
                "backoff": "50ms",
                "depends_on": ["steady"],
            },
            "steady": fleet.up("steady", "--term-delay", 0.05),
        }
    )
    run.log("start", "broken")
    run.processes()
    assert run.finish() == 5
    assert len(run.logs("start", "broken")) == 3, "not 1 start + max_restarts restarts"
    broken = run.program_report("broken")
    assert broken["restarts"] == 2 and "gave up" in (broken["failure"] or ""), broken
    assert run.event("failed", timeout=0)["program"] == "broken"
    assert run.program_report("steady")["stop_signal"] == "SIGTERM"
    assert run.log("stopped", "steady", timeout=0)
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_never_restart_exit_zero_stops_the_fleet_with_zero(fleet: Fleet) -> None:
    """A long-running program that exits 0 without restart stops the others; nobody failed, so exit 0."""
    run = fleet.start(
        {
            "finisher": {"command": fleet.prog("finisher", "--exit-after", 0.3), "depends_on": ["steady"]},
            "steady": fleet.up("steady"),
        }
    )
    run.log("start", "finisher")
    run.processes()
    assert run.finish() == 0
    assert run.log("term", "steady", timeout=0)
    assert run.program_report("finisher")["failure"] is None
    assert run.leftovers() == []
