"""Every global option means for each program of a TOML plan what it means for a single command.

Each test runs twice: gsup as a subreaper and as PID 1 of a PID namespace.
The single-command twins of these tests are in tests/budget (test_identity,
test_exit_mapping, test_stop_sequence) and tests/integration (test_stop,
test_forwarding).
"""

from __future__ import annotations

import os
import pwd
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from manykit import Fleet

CHILD = str(Path(__file__).resolve().parent.parent / "helpers" / "child.py")


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def ids(fleet: Fleet, name: str) -> list[str]:
    """A oneshot that prints its uid, gid and groups (id(1): the test interpreter may be unreadable)."""
    script = 'echo "uid=$(id -u) gid=$(id -g)"'
    return ["sh", "-c", script, f"{name}-{fleet.token}"]


def uid_line(run: Any, name: str) -> str:
    return str(run.wait_output(name, r"^uid="))


@needs_root
@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["flag", "env", "file"])
def test_user_runs_every_program_as_that_user(fleet: Fleet, where: str) -> None:
    """--user nobody (flag, GSUP_USER or [gsup] user) runs every program of the plan as uid 65534;
    a program's own ``user`` key wins over it."""
    try:
        nobody, daemon = pwd.getpwnam("nobody"), pwd.getpwnam("daemon")
    except KeyError:
        pytest.skip("needs the users nobody and daemon")
    programs = {
        "a": {"command": ids(fleet, "a"), "oneshot": True},
        "b": {"command": ids(fleet, "b"), "oneshot": True},
        "own": {"command": ids(fleet, "own"), "oneshot": True, "user": "daemon"},
    }
    args: list[str] = ["--log-format", "json"]
    env: dict[str, str] = {}
    table: dict[str, Any] = {}
    if where == "flag":
        args += ["--user", "nobody"]
    elif where == "env":
        env["GSUP_USER"] = "nobody"
    else:
        table["user"] = "nobody"
    run = fleet.start(programs, table, args=args, env=env)
    assert run.finish() == 0, run.stderr_text()
    for name in ("a", "b"):
        assert uid_line(run, name) == f"uid={nobody.pw_uid} gid={nobody.pw_gid}"
    assert uid_line(run, "own") == f"uid={daemon.pw_uid} gid={daemon.pw_gid}"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["flag", "program"])
def test_success_codes_count_for_each_program_stopped(fleet: Fleet, where: str) -> None:
    """--success-code 143 (or a program's success_codes) makes a program's 143 after the stop read as 0
    in the report; without it the program's 143 stays; the plan exits 0 either way (SPEC §6)."""
    codes: dict[str, Any] = {"success_codes": [0, 143]} if where == "program" else {}
    run = fleet.start(
        {
            "jvm": {"command": fleet.prog("jvm", "--term-code", 143), **codes},
            "other": {"command": fleet.prog("other", "--term-code", 143)},
        },
        args=["--log-format", "json", *(["--success-code", "143"] if where == "flag" else [])],
    )
    run.log("start", "jvm")
    run.log("start", "other")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.program_report("jvm")["code"] == 143
    assert run.program_report("jvm")["exit_code"] == 0
    assert run.program_report("other")["exit_code"] == (0 if where == "flag" else 143)


@pytest.mark.timeout(30)
def test_success_on_stop_counts_for_each_program(fleet: Fleet) -> None:
    """--success-on-stop: a program killed by the very SIGTERM gsup sent reads as 0; one that
    exits 1 after it does not."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", fleet.token]  # dies by SIGTERM
    run = fleet.start(
        {"dies": {"command": sleeper}, "fails": {"command": fleet.prog("fails", "--term-code", 1)}},
        args=["--log-format", "json", "--success-on-stop"],
    )
    run.log("start", "fails")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    dies, fails = run.program_report("dies"), run.program_report("fails")
    assert (dies["status"], dies["exit_code"]) == ("killed by SIGTERM", 0)
    assert (fails["code"], fails["exit_code"]) == (1, 1)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("forward_to", ["group", "child"])
def test_forward_to_decides_who_of_each_program_gets_a_signal(fleet: Fleet, forward_to: str) -> None:
    """--forward-to group sends a forwarded HUP to each program's whole group (a grandchild with the
    default HUP dies of it); --forward-to child to each program's process only (it survives, and is
    a leftover at the end: SIGTERM ignored, SIGKILL at the grace)."""
    child = [sys.executable, CHILD, "--grandchildren", "1", "--tag", fleet.token]
    run = fleet.start(
        {"c": {"command": child}}, {"grace": "1s"}, args=["--log-format", "json", "--forward-to", forward_to]
    )
    run.wait_output("c", r"^ready pid=")
    assert len(run.processes()) == 2  # the child and its grandchild (same group, ignores TERM)
    run.send(signal.SIGHUP)
    run.wait_output("c", r"^signal SIGHUP$")
    if forward_to == "group":
        run.out.wait_for(lambda: len(run.processes()) == 1, what="the grandchild dead of SIGHUP")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    report = run.report()
    if forward_to == "group":
        assert (report["leftovers_signalled"], report["leftovers_killed"]) == (0, 0)
    else:
        assert report["leftovers_killed"] == 1  # the grandchild outlived the child and ignored SIGTERM
    assert run.leftovers() == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["--stop-signal", "--rewrite"])
def test_stop_signal_and_rewrite_apply_to_every_program(fleet: Fleet, how: str) -> None:
    """--stop-signal QUIT (or --rewrite TERM:QUIT) makes a SIGTERM to gsup a SIGQUIT for every
    program; a program's own stop_signal wins over --stop-signal."""
    args = ["--stop-signal", "QUIT"] if how == "--stop-signal" else ["--rewrite", "TERM:QUIT"]
    run = fleet.start(
        {
            "a": {"command": fleet.prog("a")},
            "b": {"command": fleet.prog("b")},
            "own": {"command": fleet.prog("own"), "stop_signal": "INT"},
        },
        args=["--log-format", "json", *args],
    )
    for name in ("a", "b", "own"):
        run.log("start", name)
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.log("term", "a", timeout=0)["sig"] == "SIGQUIT"
    assert run.log("term", "b", timeout=0)["sig"] == "SIGQUIT"
    assert run.log("term", "own", timeout=0)["sig"] == "SIGINT"


@pytest.mark.timeout(30)
def test_stop_delay_drains_before_any_program_is_signalled(fleet: Fleet) -> None:
    """--stop-delay 0.5: no program gets its stop signal until 0.5 s after gsup got SIGTERM."""
    run = fleet.start(
        {"a": {"command": fleet.prog("a")}, "b": {"command": fleet.prog("b")}},
        args=["--log-format", "json", "--stop-delay", "0.5"],
    )
    run.log("start", "a")
    run.log("start", "b")
    sent = run.send(signal.SIGTERM)
    assert run.finish() == 0
    for name in ("a", "b"):
        assert 0.45 <= run.t("term", name, timeout=0) - sent < 1.5
    assert run.events("drain_started") and run.events("drain_ended")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["subreaper"], indirect=True)  # as PID 1 the kernel ends them all
def test_parent_death_signal_reaches_every_program(fleet: Fleet, subreaper: None) -> None:
    """--parent-death-signal TERM: when gsup (not PID 1) is SIGKILLed, every program dies by SIGTERM."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", fleet.token]  # dies by SIGTERM
    run = fleet.start(
        {"a": {"command": sleeper}, "b": {"command": sleeper}},
        {"platform": "none"},
        args=["--log-format", "json", "--parent-death-signal", "TERM"],
    )
    run.event("started", "a")
    run.event("started", "b")
    programs = [p.pid for p in run.processes()]
    assert len(programs) == 2
    run.send(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    for pid in programs:  # reparented to this process: waited for here
        got, status = os.waitpid(pid, 0)
        assert got == pid and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status


# -- leftovers: a program's descendants are part of its job, in every mode -------------------


@pytest.mark.timeout(30)
def test_a_setsid_leftover_gets_sigterm_and_exits_by_itself_inside_the_grace(fleet: Fleet) -> None:
    """A program that exits leaving a daemon in a session of its own: once every program has ended
    the daemon gets SIGTERM and the rest of the grace, and exits by itself (not SIGKILLed)."""
    run = fleet.start(
        {
            "spawner": {"command": fleet.prog("spawner", "--daemon", "--exit-after", 0.2)},
            "web": {"command": fleet.prog("web")},
        },
        {"grace": "10s", "platform": "none"},
    )
    helper = run.log("helper", "spawner")
    assert helper["where"] == "session"
    run.log("exit", "spawner")  # the container is whole or not at all: web is stopped
    term = run.log("helper_term", "spawner")
    assert term["sig"] == "SIGTERM"
    assert run.finish() == 0
    assert run.exited_at is not None and run.exited_at - float(term["t"]) < 2.0
    report = run.report()
    assert (report["leftovers_signalled"], report["leftovers_killed"]) == (1, 0)
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_a_programs_group_leftover_is_stopped_while_the_others_run(fleet: Fleet) -> None:
    """A oneshot that exits 0 leaving a process in its group: that process gets the oneshot's stop
    signal right away, while the program that depended on the oneshot runs on."""
    run = fleet.start(
        {
            "setup": {"command": fleet.prog("setup", "--group-child", "--exit-after", 0.1), "oneshot": True},
            "web": {"command": fleet.prog("web"), "depends_on": ["setup"]},
        },
        {"grace": "10s", "platform": "none"},
    )
    assert run.log("helper", "setup")["where"] == "group"
    run.log("start", "web")
    assert run.log("helper_term", "setup")["sig"] == "SIGTERM"
    assert run.events("stopping") == [], "the helper's stop stopped everything"
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.program_report("setup")["leftovers_signalled"] == 1
    assert run.leftovers() == []
