"""Per-program policies: dependency conditions, restarts that forgive, required = false,
success codes of a program's own exit, liveness (SPEC §5).

Each test runs twice: gsup as a subreaper and as PID 1 of a PID namespace.
The programs log what happens to them (``@start``, ``@exit``, ``@term``)
on the monotonic clock of gsup's JSON events.
"""

from __future__ import annotations

import signal

import pytest
from gsupkit import free_port
from manykit import Fleet

NONE = {"platform": "none"}


@pytest.mark.timeout(30)
def test_each_dependency_condition_starts_its_dependent_at_its_moment(fleet: Fleet) -> None:
    """started: as soon as the dependency runs; ready: once its readiness check passed; completed:
    once it exited, whatever its status (a oneshot exiting 3, not required)."""
    up = str(fleet.tmp / "cache.up")
    run = fleet.start(
        {
            "cache": {
                "command": fleet.prog("cache", "--ready-after", 0.5, "--touch", up),
                "ready": {"file": up, "interval": "20ms"},
            },
            "early": {"command": fleet.prog("early"), "depends_on": {"cache": "started"}},
            "web": {"command": fleet.prog("web"), "depends_on": {"cache": "ready"}},
            "seed": {
                "command": fleet.prog("seed", "--exit-after", 0.3, "--code", 3),
                "oneshot": True,
                "required": False,
            },
            "after_seed": {"command": fleet.prog("after_seed"), "depends_on": {"seed": "completed"}},
        },
        NONE,
    )
    for name in ("early", "web", "after_seed"):
        run.log("start", name)
    cache_ready = run.t("ready", "cache", timeout=0)
    assert run.t("start", "early", timeout=0) < cache_ready, "started waited for ready"
    assert run.event("started", "web", timeout=0)["ts"] >= run.event("ready", "cache", timeout=0)["ts"]
    assert run.t("start", "after_seed", timeout=0) > run.t("exit", "seed", timeout=0)
    assert run.events("stopping") == []
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.program_report("seed")["code"] == 3
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_a_condition_that_can_no_longer_be_met_fails_the_start_fast(fleet: Fleet) -> None:
    """A program that needs a oneshot to have succeeded, which exited 3: it never starts, one line
    names both programs, everything stops, gsup exits 1."""
    run = fleet.start(
        {
            "seed": {
                "command": fleet.prog("seed", "--exit-after", 0, "--code", 3),
                "oneshot": True,
                "required": False,
            },
            "report": {"command": fleet.prog("report"), "depends_on": {"seed": "succeeded"}},
            "web": {"command": fleet.prog("web")},
        },
        NONE,
    )
    assert run.finish() == 1
    failed = run.event("failed", "report", timeout=0)
    assert "report cannot start: it needs seed to have succeeded" in failed["message"], failed
    assert "seed exited with 3" in failed["message"]
    assert run.program_report("report")["started"] is False
    assert run.logs("start", "report") == []
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_a_oneshot_that_exits_with_one_of_its_success_codes_has_succeeded(fleet: Fleet) -> None:
    """success_codes = [0, 3]: a oneshot exiting 3 lets its dependents start, and fails nothing."""
    run = fleet.start(
        {
            "migrate": {
                "command": fleet.prog("migrate", "--exit-after", 0, "--code", 3),
                "oneshot": True,
                "success_codes": [0, 3],
            },
            "web": {"command": fleet.prog("web"), "depends_on": ["migrate"]},
        },
        NONE,
    )
    run.log("start", "web")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.program_report("migrate")["failure"] is None


@pytest.mark.timeout(40)
def test_a_crash_after_min_uptime_is_forgiven_and_restarted_again(fleet: Fleet) -> None:
    """max_restarts = 1, min_uptime = 300ms: a program that fails after 0.5 s each time is restarted
    again and again (each run forgives the last), with the first backoff every time."""
    runs = fleet.tmp / "runs"
    run = fleet.start(
        {
            "weekly": {
                "command": fleet.prog("weekly", "--runs", runs, "--exit-after", 0.5, "--code", 1),
                "restart": "on-failure",
                "max_restarts": 1,
                "backoff": "50ms",
                "min_uptime": "300ms",
            },
            "steady": {"command": fleet.prog("steady")},
        },
        NONE,
    )
    assert run.log("start", "weekly", n=4, timeout=20)["run"] == "4"
    scheduled = run.events("restart_scheduled", "weekly")
    assert [e["failed_runs"] for e in scheduled][:3] == [1, 1, 1], scheduled
    assert [e["delay"] for e in scheduled][:3] == [0.05, 0.05, 0.05]
    assert run.events("stopping") == [] and run.events("failed") == []
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.program_report("weekly")["restarts"] >= 3
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_a_quick_crash_loop_gives_up_after_max_restarts_with_its_last_status(fleet: Fleet) -> None:
    """The same program failing at once (shorter than min_uptime): max_restarts = 2 restarts, then
    gsup gives up with the program's last status, 7."""
    run = fleet.start(
        {
            "loop": {
                "command": fleet.prog("loop", "--exit-after", 0, "--code", 7),
                "restart": "on-failure",
                "max_restarts": 2,
                "backoff": "20ms",
            },
            "steady": {"command": fleet.prog("steady")},
        },
        NONE,
    )
    assert run.finish() == 7
    report = run.program_report("loop")
    assert report["restarts"] == 2 and len(run.logs("start", "loop")) == 3
    assert report["failure"] == "loop exited with 7 and gave up after 2 restart(s)"
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_always_restarts_a_clean_exit_forever_without_failing(fleet: Fleet) -> None:
    """restart = always, max_restarts = 1: a program that keeps exiting 0 is restarted five times and
    more, and nothing fails."""
    runs = fleet.tmp / "runs"
    run = fleet.start(
        {
            "cron": {
                "command": fleet.prog("cron", "--runs", runs, "--exit-after", 0, "--code", 0),
                "restart": "always",
                "max_restarts": 1,
                "backoff": "20ms",
            },
            "steady": {"command": fleet.prog("steady")},
        },
        NONE,
    )
    assert run.log("start", "cron", n=6)["run"] == "6"
    assert run.events("failed") == [] and run.events("stopping") == []
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.program_report("cron")["restarts"] >= 5
    assert run.program_report("cron")["failure"] is None


@pytest.mark.timeout(30)
def test_a_program_that_is_not_required_dies_and_the_others_run_on(fleet: Fleet) -> None:
    """required = false: a sidecar that crashes with 9 stops nothing; the others are stopped later
    by SIGTERM and gsup exits 0; the report still shows the sidecar's end."""
    run = fleet.start(
        {
            "shipper": {
                "command": fleet.prog("shipper", "--exit-after", 0.2, "--code", 9),
                "required": False,
            },
            "web": {"command": fleet.prog("web", "--tick", 0.05)},
        },
        NONE,
    )
    run.log("exit", "shipper")
    run.event("program_exited", "shipper")
    ticks = len(run.logs("tick", "web"))
    run.log("tick", "web", n=ticks + 3)  # web keeps running after the sidecar's death
    assert run.events("stopping") == []
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    shipper = run.program_report("shipper")
    assert (shipper["code"], shipper["failure"]) == (9, "program shipper exited with 9")
    assert run.leftovers() == []


@pytest.mark.timeout(40)
def test_a_hung_program_that_holds_its_port_is_restarted_by_its_liveness_check(fleet: Fleet) -> None:
    """A program that listens on its port and never answers: its HTTP liveness check times out three
    times in a row, gsup stops it with its stop signal and restarts it (on-failure), run 2."""
    port = free_port()
    runs = fleet.tmp / "runs"
    run = fleet.start(
        {
            "hung": {
                "command": fleet.prog("hung", "--runs", runs, "--tcp", port),
                "liveness": {
                    "http": f"http://127.0.0.1:{port}/live",
                    "interval": "100ms",
                    "timeout": "200ms",
                    "failures": 3,
                },
                "restart": "on-failure",
                "backoff": "50ms",
            },
            "steady": {"command": fleet.prog("steady")},
        },
        NONE,
    )
    assert run.log("start", "hung", n=2, timeout=20)["run"] == "2"
    failures = run.events("liveness_failed", "hung")
    assert [e["failures"] for e in failures][:2] == [1, 2]
    assert failures[0]["saw"] == "timed out"
    stopped = run.event("check_failed", "hung", timeout=0)
    assert "failed its liveness check 3 times in a row" in stopped["message"]
    assert run.log("term", "hung", timeout=0)["sig"] == "SIGTERM"
    assert run.events("stopping") == []
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.program_report("hung")["restarts"] >= 1
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_readyz_is_503_until_every_program_is_ready_and_a_log_line_makes_one_ready(fleet: Fleet) -> None:
    """With many programs /readyz is 200 only once each long-running program is ready: one by
    its readiness file, one by a line of its own output (ready = { log = ... })."""
    port = free_port()
    up = str(fleet.tmp / "slow.up")
    run = fleet.start(
        {
            "slow": {
                "command": fleet.prog("slow", "--ready-after", 0.5, "--touch", up),
                "ready": {"file": up, "interval": "20ms"},
            },
            "talker": {
                "command": fleet.prog("talker", "--ready-after", 0.3, "--lines", 1),
                "ready": {"log": "^talker-0-"},
            },
        },
        {**NONE, "health": f"127.0.0.1:{port}"},
    )
    run.log("start", "slow")
    first = readyz(port)
    assert first[0] == 503, first
    run.event("ready", "talker")
    run.event("ready", "slow")
    code, body = readyz(port)
    assert code == 200 and {p["state"] for p in body["programs"]} == {"ready"}, body
    run.send(signal.SIGTERM)
    assert run.finish() == 0


def readyz(port: int) -> tuple[int, dict[str, object]]:
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/readyz")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.timeout(30)
def test_a_programs_pre_stop_runs_before_its_stop_signal_shown_like_a_program(fleet: Fleet) -> None:
    """pre_stop = [...] of a program runs at the stop request, its output prefixed as its own, and the
    program gets its stop signal only after it ended; its end is in the report."""
    run = fleet.start(
        {
            "web": {
                "command": fleet.prog("web"),
                "pre_stop": ["sh", "-c", "echo deregistered; sleep 0.2", fleet.token],
            },
        },
        NONE,
        args=("--log-format", "text"),
    )
    run.log("start", "web")
    sent = run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.out is not None
    said = [t for line, t in zip(run.out.lines, run.out.times) if line == b"web:pre-stop | deregistered"]
    assert said, run.out.text()
    term = run.t("term", "web", timeout=0)
    assert said[0] < term and term - sent >= 0.2
    assert "web:pre-stop  exited with 0" in run.err.text()
