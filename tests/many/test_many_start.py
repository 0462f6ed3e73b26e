"""Start: dependency order, readiness of each kind, fail-fast (SPEC §5, issue 4).

Each test runs twice: gsup as a subreaper and as PID 1 of a PID namespace.
Programs log their own start and readiness times (CLOCK_MONOTONIC), so the
order is checked from what the programs saw, and gsup's JSON events are
checked against it.
"""

from __future__ import annotations

import pwd
import signal
from typing import Any

import pytest
from gsupkit import free_port
from manykit import Fleet

#: How long the server takes before it is ready.
READY_AFTER = 0.4


def _server(fleet: Fleet, kind: str) -> tuple[list[object], dict[str, Any]]:
    """The server's extra arguments and its ``ready`` table, for one kind of probe."""
    port = free_port()
    flag = str(fleet.tmp / "ready-flag")
    return {
        "tcp": (["--tcp", port], {"tcp": f"127.0.0.1:{port}"}),
        "http": (["--http", port], {"http": f"http://127.0.0.1:{port}/health"}),
        "file": (["--touch", flag], {"file": flag}),
        "command": (["--touch", flag], {"command": ["test", "-e", flag]}),
    }[kind]


@pytest.mark.timeout(40)
@pytest.mark.parametrize("kind", ["tcp", "http", "file", "command"])
def test_dependent_starts_once_its_dependency_is_ready(fleet: Fleet, kind: str) -> None:
    """A program starts only after its dependency passed its readiness probe (tcp, http, file, command)."""
    args, ready = _server(fleet, kind)
    run = fleet.start(
        {
            "server": {
                "command": fleet.prog("server", "--ready-after", READY_AFTER, *args),
                "ready": {**ready, "timeout": "20s", "interval": "50ms"},
            },
            "client": {"command": fleet.prog("client"), "depends_on": ["server"]},
        }
    )
    client_start = run.t("start", "client")
    server_start, server_ready = run.t("start", "server"), run.t("ready", "server")
    assert server_ready - server_start >= READY_AFTER
    assert client_start > server_ready, "the client started before the server was ready"

    ready_event, client_started = run.event("ready", "server"), run.event("started", "client")
    assert server_ready <= ready_event["ts"] <= client_started["ts"]
    assert ready_event["ts"] - server_ready < 1.0, "the probe saw readiness late (interval is 50ms)"
    assert len(run.processes()) == 2

    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.leftovers() == []


@pytest.mark.timeout(40)
def test_oneshot_must_exit_zero_before_dependents_and_independents_start_at_once(fleet: Fleet) -> None:
    """A oneshot's dependents start after it exited 0; programs without dependencies start at once."""
    flag = str(fleet.tmp / "db-ready")
    run = fleet.start(
        {
            "migrate": {"command": fleet.prog("migrate", "--exit-after", 0.4), "oneshot": True},
            "db": {
                "command": fleet.prog("db", "--ready-after", 0.3, "--touch", flag),
                "depends_on": ["migrate"],
                "ready": {"file": flag, "interval": "50ms"},
            },
            "web": {"command": fleet.prog("web"), "depends_on": ["db"]},
            "side": {"command": fleet.prog("side")},
        }
    )
    web_start = run.t("start", "web")
    migrate_exit, db_start, db_ready = run.t("exit", "migrate"), run.t("start", "db"), run.t("ready", "db")
    side_started = run.event("started", "side")["ts"]  # gsup's clock: when it spawned side
    assert side_started < run.event("program_exited", "migrate")["ts"], "side waited for an unrelated oneshot"
    assert db_start > migrate_exit, "db started before its oneshot dependency exited"
    assert web_start > db_ready, "web started before db was ready"
    assert run.events("stopping") == [], "a oneshot's exit 0 stopped the fleet"

    run.send(signal.SIGTERM)
    assert run.finish() == 0
    report = run.report()
    assert {p["name"]: p["status"] for p in report["programs"]} == {
        "migrate": "exited with 0",
        "db": "exited with 0",
        "web": "exited with 0",
        "side": "exited with 0",
    }
    assert run.leftovers() == []


@pytest.mark.timeout(40)
def test_readiness_timeout_fails_fast_and_leaves_nothing(fleet: Fleet) -> None:
    """A program not ready within its timeout stops everything at once: exit 1, the report names it."""
    never = str(fleet.tmp / "never-created")
    run = fleet.start(
        {
            "slow": {
                "command": fleet.prog("slow", "--grandchild"),
                "ready": {"file": never, "timeout": "1s", "interval": "50ms"},
            },
            "other": {"command": fleet.prog("other")},
            "dep": {"command": fleet.prog("dep"), "depends_on": ["slow"]},
        },
        {"grace": "5s"},
    )
    run.log("grandchild", "slow")
    run.log("start", "other")
    assert len(run.processes()) == 3  # slow, its grandchild, other

    assert run.finish() == 1
    failed = run.event("failed", timeout=0)
    assert failed["program"] == "slow" and "not ready within" in failed["message"]
    assert failed["message"].endswith("the last attempt saw: no such file)"), failed["message"]
    stopping = run.event("stopping", timeout=0)
    slow_started = run.event("started", "slow", timeout=0)
    assert 0.99 <= stopping["ts"] - slow_started["ts"] < 1.5, "the timeout did not fail fast"
    # slow's grandchild (its own session, ignoring TERM) is a leftover of the job: it gets
    # the stop signal once every program has ended, the rest of the 5 s grace, then SIGKILL.
    assert run.exited_at is not None and 4.9 < run.exited_at - stopping["ts"] < 6.0
    report = run.report()
    assert (report["leftovers_signalled"], report["leftovers_killed"]) == (1, 1)

    slow, dep = run.program_report("slow"), run.program_report("dep")
    assert "not ready within" in (slow["failure"] or "")
    assert dep["started"] is False and dep["pid"] is None
    assert run.logs("start", "dep") == []
    assert run.program_report("other")["stop_signal"] == "SIGTERM"
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_failing_oneshot_blocks_dependents_and_sets_the_exit_code(fleet: Fleet) -> None:
    """A oneshot that exits non-zero: its dependents never start and gsup exits with its code."""
    run = fleet.start(
        {
            "side": fleet.up("side", "--term-delay", 0.1),
            "migrate": {
                "command": fleet.prog("migrate", "--exit-after", 0.1, "--code", 4),
                "oneshot": True,
                "depends_on": ["side"],  # so that side is surely up when the fleet stops
            },
            "web": {"command": fleet.prog("web"), "depends_on": ["migrate"]},
            "worker": {"command": fleet.prog("worker"), "depends_on": ["web"]},
        },
        args=(),  # the text report, for people
    )
    run.log("start", "migrate")
    run.processes()
    assert run.finish() == 4
    assert run.logs("start", "web") == [] and run.logs("start", "worker") == []
    assert run.log("stopped", "side", timeout=0)["code"] == "0"

    report = [line for line in run.stderr_text().splitlines() if line.startswith("gsup: ")]
    text = "\n".join(report)
    assert any("migrate" in line and "exited with 4" in line and "FAILED" in line for line in report), text
    assert any(line.split()[1:3] == ["web", "never"] for line in report), text
    assert any(line.split()[1:3] == ["worker", "never"] for line in report), text
    assert report[-1].split() == ["gsup:", "exit", "4"], text
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_program_that_cannot_start_fails_fast_with_127(fleet: Fleet) -> None:
    """A program whose command does not exist stops the others and gsup exits 127, naming it."""
    run = fleet.start(
        {
            "ok": {"command": fleet.prog("ok")},
            "ghost": {"command": ["/nonexistent/ghost-binary"], "depends_on": ["ok"]},
        }
    )
    assert run.finish() == 127
    ghost = run.program_report("ghost")
    assert "ghost-binary" in (ghost["failure"] or "") and ghost["started"] is False
    assert run.program_report("ok")["stop_signal"] == "SIGTERM"
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_only_oneshots_exit_zero_when_all_are_done(fleet: Fleet) -> None:
    """A config of oneshots only (jobs) ends with exit 0 once every one of them exited 0."""
    run = fleet.start(
        {
            "first": {"command": fleet.prog("first", "--exit-after", 0), "oneshot": True},
            "second": {"command": fleet.prog("second", "--exit-after", 0), "oneshot": True},
        }
    )
    run.log("exit", "first")
    run.log("exit", "second")
    assert run.wait(timeout=2) == 0


@pytest.mark.timeout(30)
def test_program_exiting_zero_before_it_is_ready_fails_the_start(fleet: Fleet) -> None:
    """A program that ends (even with 0) before it became ready is a failed start: gsup exits non-zero."""
    run = fleet.start(
        {
            "web": {
                "command": fleet.prog("web", "--exit-after", 0.2),
                "ready": {"file": str(fleet.tmp / "never"), "timeout": "10s"},
            },
            "worker": {"command": fleet.prog("worker"), "depends_on": ["web"]},
        }
    )
    code = run.finish()
    assert run.logs("start", "worker") == []
    assert run.program_report("web")["failure"], "the report does not say web failed"
    assert code != 0, "the container reported success though web never became ready"


@pytest.mark.timeout(30)
def test_command_forms_env_cwd_and_user(fleet: Fleet) -> None:
    """A string command is split into words, not expanded; shell = true uses sh; env, cwd, user apply."""
    workdir = fleet.tmp / "work dir"
    workdir.mkdir()
    run = fleet.start(
        {
            "split": {"command": "printf '%s|%s\\n' 'two words' \"and $HOME\"", "oneshot": True},
            "shelled": {
                "command": 'echo "$GREETING from $(pwd)"',
                "shell": True,
                "env": {"GREETING": "hello"},
                "cwd": str(workdir),
                "oneshot": True,
            },
            "nobody": {"command": ["id", "-u"], "user": "nobody", "oneshot": True},
            "keeper": {"command": fleet.prog("keeper")},
        }
    )
    run.log("start", "keeper")
    for name in ("split", "shelled", "nobody"):
        run.event("program_exited", name)
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.output("split") == ["two words|and $HOME"], "not split like a shell, or expanded"
    assert run.output("shelled") == [f"hello from {workdir}"]
    assert run.output("nobody") == [str(pwd.getpwnam("nobody").pw_uid)]
