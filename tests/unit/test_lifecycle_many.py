"""The supervision machine (gsup.lifecycle) with many programs, on a fake clock, without processes.

The same machine runs a single command: tests/unit/test_lifecycle.py.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from gsup.lifecycle import (
    Kill,
    KillLeftovers,
    Lifecycle,
    Note,
    Phase,
    Probe,
    Send,
    SendLeftovers,
    Start,
    State,
)
from gsup.model import (
    ChildStatus,
    Condition,
    Dependency,
    ForwardTo,
    LivenessSpec,
    Plan,
    ProgramSpec,
    ReadySpec,
    Restart,
    RestartSpec,
)

T0 = 100.0
GRACE = 10.0


def prog(name: str, *deps: str, **kw: object) -> ProgramSpec:
    """A program that depends on *deps* in the array form (or ``"name=condition"``)."""
    depends = tuple(
        Dependency(d.split("=")[0], Condition(d.split("=")[1])) if "=" in d else Dependency(d) for d in deps
    )
    return ProgramSpec(argv=(b"true",), name=name, depends_on=depends, **kw)  # type: ignore[arg-type]


def fleet(*programs: ProgramSpec, stop_delay: float = 0.0, **plan: Any) -> Lifecycle:
    return Lifecycle(Plan(programs=programs, grace=GRACE, stop_delay=stop_delay, **plan), T0)


def starts(actions: list[Any]) -> list[str]:
    return [a.name for a in actions if isinstance(a, Start)]


def signals(actions: list[Any]) -> list[tuple[str, int]]:
    return [(a.name, a.sig) for a in actions if isinstance(a, Send)]


def kinds(actions: list[Any]) -> list[str]:
    return [a.kind for a in actions if isinstance(a, Note)]


def pids(f: Lifecycle) -> dict[str, int]:
    """Start every program the machine asks for, with made-up pids, until none is asked for."""
    started: dict[str, int] = {}
    pending = starts(f.begin(T0))
    while pending:
        name = pending.pop(0)
        started[name] = 10 + len(started)
        pending += starts(f.on_started(name, started[name], T0))
    return started


OK = ChildStatus(code=0)


def test_programs_start_after_their_dependencies_are_ready() -> None:
    """A program starts only once each dependency is ready (oneshots: exited 0)."""
    f = fleet(prog("migrate", oneshot=True), prog("web", "migrate"), prog("worker", "web"))
    assert starts(f.begin(T0)) == ["migrate"]
    assert starts(f.on_started("migrate", 10, T0)) == []
    assert starts(f.on_exit("migrate", OK, T0 + 1)) == ["web"]
    assert starts(f.on_started("web", 11, T0 + 1)) == ["worker"]


def test_a_failing_oneshot_blocks_its_dependents_and_sets_the_status() -> None:
    """A oneshot that exits 3 stops the fleet; its dependents never start; exit 3."""
    f = fleet(prog("migrate", oneshot=True), prog("web", "migrate"))
    f.begin(T0)
    f.on_started("migrate", 10, T0)
    actions = f.on_exit("migrate", ChildStatus(code=3), T0 + 1)
    assert starts(actions) == []
    assert f.stopping and f.done
    assert f.programs["web"].state is State.SKIPPED
    assert f.exit_code() == 3


def test_readiness_is_probed_until_ready_then_dependents_start() -> None:
    """Probes come every interval; a success makes the program ready and starts dependents."""
    ready = ReadySpec("tcp", "127.0.0.1:1", timeout=5.0, interval=0.5)
    f = fleet(prog("web", ready=ready), prog("worker", "web"))
    f.begin(T0)
    f.on_started("web", 10, T0)
    assert f.next_deadline() == T0
    (probe,) = f.on_deadline(T0)
    assert isinstance(probe, Probe)
    assert f.on_probe("web", False, T0 + 0.1, attempt=probe.attempt) == []
    assert f.next_deadline() == T0 + 0.6
    (probe,) = f.on_deadline(T0 + 0.6)
    assert isinstance(probe, Probe)
    assert starts(f.on_probe("web", True, T0 + 0.7, attempt=probe.attempt)) == ["worker"]


def probe_of(actions: list[object], name: str) -> Probe:
    """The one probe of *name* among *actions*."""
    (probe,) = [a for a in actions if isinstance(a, Probe) and a.name == name]
    return probe


def test_a_probe_result_of_an_earlier_start_is_ignored() -> None:
    """A probe that reports after its program was restarted neither readies nor re-probes the new start."""
    ready = ReadySpec("http", "http://127.0.0.1:1/", timeout=30.0, interval=0.5)
    always = RestartSpec(Restart.ALWAYS, backoff=0.5)
    f = fleet(prog("web", ready=ready, restart=always), prog("worker", "web"))
    f.begin(T0)
    f.on_started("web", 10, T0)
    old = probe_of(f.on_deadline(T0), "web")
    f.on_exit("web", ChildStatus(code=1), T0 + 0.2)  # dies while its probe still runs
    assert starts(f.on_deadline(T0 + 0.7)) == ["web"]
    f.on_started("web", 11, T0 + 0.7)
    new = probe_of(f.on_deadline(T0 + 0.7), "web")
    assert new.attempt != old.attempt

    assert f.on_probe("web", True, T0 + 0.8, attempt=old.attempt) == []
    assert f.programs["web"].state is State.STARTING, "a dead start's probe made the new one ready"
    assert f.on_probe("web", False, T0 + 0.8, attempt=old.attempt) == []
    assert f.programs["web"].next_probe is None, "a second probe while the current one runs"
    assert starts(f.on_probe("web", True, T0 + 0.9, attempt=new.attempt)) == ["worker"]


def test_a_probe_result_after_the_stop_began_is_ignored() -> None:
    """A probe still running when the stop begins: its result neither readies the program nor probes again."""
    ready = ReadySpec("tcp", "127.0.0.1:1", timeout=30.0, interval=0.5)
    f = fleet(prog("web", ready=ready), stop_delay=5.0)  # web keeps running through the drain
    f.begin(T0)
    f.on_started("web", 10, T0)
    probe = probe_of(f.on_deadline(T0), "web")
    f.on_signal(signal.SIGTERM, T0 + 0.1)
    assert f.on_probe("web", False, T0 + 1.0, attempt=probe.attempt) == []
    assert f.next_deadline() == T0 + 5.1, "a probe was scheduled during the stop"
    assert [a for a in f.on_deadline(T0 + 1.5) if isinstance(a, Probe)] == []
    assert f.on_probe("web", True, T0 + 1.6, attempt=probe.attempt) == []
    assert f.programs["web"].state is State.STARTING


def test_the_readiness_timeout_does_not_run_out_during_a_stop() -> None:
    """A program still starting when the stop begins is stopped, not reported as not ready in time."""
    ready = ReadySpec("tcp", "127.0.0.1:1", timeout=2.0, interval=0.5)
    f = fleet(prog("web", ready=ready), stop_delay=5.0)  # web keeps running through the drain
    f.begin(T0)
    f.on_started("web", 10, T0)
    f.on_signal(signal.SIGTERM, T0 + 0.1)
    notes = [a for a in f.on_deadline(T0 + 3.0) if getattr(a, "kind", None) == "failed"]
    assert notes == []
    assert f.programs["web"].failure is None
    f.on_exit("web", ChildStatus(signal=signal.SIGTERM), T0 + 5.2)
    assert f.exit_code() == 0


def test_a_readiness_timeout_fails_fast_with_status_1() -> None:
    """Not ready within the timeout: the fleet stops and the exit status is 1."""
    ready = ReadySpec("tcp", "127.0.0.1:1", timeout=2.0, interval=0.5)
    f = fleet(prog("web", ready=ready))
    f.begin(T0)
    f.on_started("web", 10, T0)
    actions = f.on_deadline(T0 + 2.0)
    assert signals(actions) == [("web", signal.SIGTERM)]
    assert f.exit_code() == 1


def test_stop_goes_in_reverse_dependency_order_and_in_parallel() -> None:
    """On TERM, programs nothing depends on stop first, together; a dependency after them."""
    f = fleet(prog("db"), prog("web", "db"), prog("side"))
    f.begin(T0)
    for pid, name in enumerate(["db", "web", "side"], 10):
        f.on_started(name, pid, T0)
    first = signals(f.on_signal(signal.SIGTERM, T0 + 1))
    assert sorted(first) == [("side", signal.SIGTERM), ("web", signal.SIGTERM)]
    assert signals(f.on_exit("web", OK, T0 + 2)) == [("db", signal.SIGTERM)]
    f.on_exit("side", OK, T0 + 2)
    f.on_exit("db", OK, T0 + 3)
    assert f.done and f.exit_code() == 0


def test_everything_left_is_killed_at_the_grace_and_the_status_is_137() -> None:
    """At the grace end gsup kills what is left; a force-killed program makes 137."""
    f = fleet(prog("a"), prog("b"))
    f.begin(T0)
    f.on_started("a", 10, T0)
    f.on_started("b", 11, T0)
    f.on_signal(signal.SIGTERM, T0)
    f.on_exit("b", OK, T0 + 1)
    assert f.next_deadline() == T0 + GRACE
    assert any(isinstance(a, Kill) for a in f.on_deadline(T0 + GRACE))
    f.on_exit("a", ChildStatus(signal=signal.SIGKILL), T0 + GRACE)
    assert f.exit_code() == 137


def test_a_crash_stops_the_others_and_its_status_wins() -> None:
    """A program that crashes on its own stops the fleet; gsup exits with its status."""
    f = fleet(prog("a"), prog("b"))
    f.begin(T0)
    f.on_started("a", 10, T0)
    f.on_started("b", 11, T0)
    assert signals(f.on_exit("a", ChildStatus(code=4), T0 + 1)) == [("b", signal.SIGTERM)]
    f.on_exit("b", ChildStatus(signal=signal.SIGTERM), T0 + 1.1)
    assert f.exit_code() == 4


def test_restart_backoff_doubles_and_gives_up() -> None:
    """on-failure restarts after 0.5, 1, 2 s; past max_restarts the container fails."""
    spec = prog("w", restart=RestartSpec(Restart.ON_FAILURE, max_restarts=3, backoff=0.5, backoff_max=30))
    f = fleet(spec)
    f.begin(T0)
    now = T0
    delays = []
    for pid in range(10, 13):
        f.on_started("w", pid, now)
        f.on_exit("w", ChildStatus(code=1), now)
        due = f.next_deadline()
        assert due is not None
        delays.append(due - now)
        now = due
        assert starts(f.on_deadline(now)) == ["w"]
    assert delays == [0.5, 1.0, 2.0]
    f.on_started("w", 13, now)
    f.on_exit("w", ChildStatus(code=1), now)
    assert f.done and f.exit_code() == 1
    assert f.programs["w"].failure == "w exited with 1 and gave up after 3 restart(s)"


def test_a_second_int_kills_everything_at_once() -> None:
    """A second SIGINT during the stop escalates to SIGKILL immediately."""
    f = fleet(prog("a"))
    f.begin(T0)
    f.on_started("a", 10, T0)
    f.on_signal(signal.SIGINT, T0)
    assert any(isinstance(a, Kill) for a in f.on_signal(signal.SIGINT, T0 + 0.1))


def test_other_signals_go_to_every_running_program() -> None:
    """A non-stop signal is forwarded to each running program, rewritten."""
    plan_programs = (prog("a"), prog("b"))
    plan = Plan(
        programs=plan_programs,
        grace=GRACE,
        rewrite=((signal.SIGHUP, signal.SIGUSR1),),
    )
    f = Lifecycle(plan, T0)
    f.begin(T0)
    f.on_started("a", 10, T0)
    f.on_started("b", 11, T0)
    assert sorted(signals(f.on_signal(signal.SIGHUP, T0))) == [("a", signal.SIGUSR1), ("b", signal.SIGUSR1)]


def test_idle_fleet_has_no_deadline() -> None:
    """With everything running and ready, there is nothing to wake up for (0 wakeups)."""
    f = fleet(prog("a"), prog("b", "a"))
    f.begin(T0)
    f.on_started("a", 10, T0)
    f.on_started("b", 11, T0)
    assert f.next_deadline() is None


# -- one core: what a single command does, every program does ---------------------------


def test_every_signal_is_forwarded_to_every_running_program_during_a_stop() -> None:
    """After the stop began with INT, a TERM, a QUIT or a HUP reaches every program still
    running, the ones waiting for their turn included; a repeated INT escalates."""
    f = fleet(prog("db"), prog("web", "db"))
    pids(f)
    first = signals(f.on_signal(signal.SIGINT, T0))
    assert first == [("web", signal.SIGINT)]  # db waits for web to exit
    for sig in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        assert sorted(signals(f.on_signal(sig, T0 + 1))) == [("db", sig), ("web", sig)]
    assert f.kill_all_at == T0 + GRACE
    assert any(isinstance(a, Kill) for a in f.on_signal(signal.SIGINT, T0 + 2))


def test_a_repeated_term_during_a_stop_is_not_forwarded() -> None:
    """A platform that sends TERM twice: the second TERM is logged, not sent to anyone."""
    f = fleet(prog("a"), prog("b"))
    pids(f)
    f.on_signal(signal.SIGTERM, T0)
    actions = f.on_signal(signal.SIGTERM, T0 + 1)
    assert signals(actions) == []
    assert "repeat_ignored" in kinds(actions)


def test_a_stop_signal_during_a_stop_for_a_failure_is_forwarded_and_a_second_int_kills() -> None:
    """While the programs are stopped because one failed, the first INT is forwarded (not a
    "second" Ctrl+C); another INT then force-kills."""
    f = fleet(prog("a"), prog("b"), prog("c"))
    pids(f)
    f.on_exit("a", ChildStatus(code=3), T0 + 1)
    assert f.stopping
    assert sorted(signals(f.on_signal(signal.SIGINT, T0 + 2))) == [("b", signal.SIGINT), ("c", signal.SIGINT)]
    assert any(isinstance(a, Kill) for a in f.on_signal(signal.SIGINT, T0 + 3))
    assert f.exit_code() == 3


def test_the_stop_signal_is_followed_by_sigcont() -> None:
    """Every program's stop signal asks for SIGCONT after it (a stopped program can then handle it)."""
    f = fleet(prog("a"), prog("b", stop_signal=signal.SIGQUIT))
    pids(f)
    sent = [a for a in f.on_signal(signal.SIGTERM, T0) if isinstance(a, Send)]
    assert sent == [Send(signal.SIGTERM, "a", True, cont=True), Send(signal.SIGQUIT, "b", True, cont=True)]


def test_forward_to_child_applies_to_every_program() -> None:
    """--forward-to child: signals go to each program's process, not its group."""
    f = fleet(prog("a"), prog("b"), forward_to=ForwardTo.CHILD)
    pids(f)
    sent = [a for a in f.on_signal(signal.SIGHUP, T0) if isinstance(a, Send)]
    assert sorted(sent) == [Send(signal.SIGHUP, "a", False), Send(signal.SIGHUP, "b", False)]
    sent = [a for a in f.on_signal(signal.SIGTERM, T0) if isinstance(a, Send)]
    assert all(not a.group for a in sent) and len(sent) == 2


def test_success_codes_of_each_program_and_the_fleet_status() -> None:
    """A program stopped by gsup that exits with one of its success codes reads as 0 in the
    report; one that exits 143 without such a code reads 143, and the fleet still exits 0."""
    f = fleet(prog("jvm", success_codes=frozenset({143})), prog("plain"))
    pids(f)
    f.on_signal(signal.SIGTERM, T0)
    f.on_exit("jvm", ChildStatus(code=143), T0 + 1)
    f.on_exit("plain", ChildStatus(code=143), T0 + 1)
    assert (f.program_code("jvm"), f.program_code("plain")) == (0, 143)
    assert f.exit_code() == 0


def test_a_programs_group_that_outlives_it_gets_its_stop_signal_then_sigkill() -> None:
    """A oneshot that exits 0 leaving members of its process group: they get its stop signal now,
    SIGKILL after a grace, while the other programs run on."""
    f = fleet(prog("setup", oneshot=True), prog("web", "setup"))
    started = pids(f)
    actions = f.on_exit("setup", OK, T0 + 1, group_left=True, anything_left=True)
    assert starts(actions) == ["web"]
    assert [a for a in actions if isinstance(a, SendLeftovers)] == [
        SendLeftovers(signal.SIGTERM, started["setup"])
    ]
    assert f.lingering == {started["setup"]: T0 + 1 + GRACE}
    f.on_started("web", 20, T0 + 1)
    assert f.next_deadline() == T0 + 1 + GRACE
    assert [a for a in f.on_deadline(T0 + 1 + GRACE) if isinstance(a, KillLeftovers)] == [
        KillLeftovers(started["setup"])
    ]
    assert f.phase is Phase.RUNNING and f.next_deadline() is None


def test_a_programs_group_that_is_gone_in_time_is_not_killed() -> None:
    """Leftovers of a program's group that exit within the grace are never sent SIGKILL."""
    f = fleet(prog("setup", oneshot=True), prog("web", "setup"))
    started = pids(f)
    f.on_exit("setup", OK, T0 + 1, group_left=True, anything_left=True)
    f.on_group_gone(started["setup"], T0 + 2)
    assert f.lingering == {}
    assert not any(isinstance(a, KillLeftovers) for a in f.on_deadline(T0 + 1 + GRACE))


def test_leftovers_of_the_job_get_the_stop_signal_once_every_program_ended() -> None:
    """When the last program has exited and processes remain (a daemon that called setsid),
    they get the stop signal and the rest of the grace, then SIGKILL: never SIGKILL at once."""
    f = fleet(prog("daemonizer"), prog("web"))
    started = pids(f)
    f.on_exit("daemonizer", OK, T0 + 1, anything_left=True)  # the container is whole or not at all
    assert f.stopping
    actions = f.on_exit("web", ChildStatus(signal=signal.SIGTERM), T0 + 2, anything_left=True)
    assert f.phase is Phase.LINGERING
    # web's group got the stop signal from gsup: its members are skipped.
    assert [a for a in actions if isinstance(a, SendLeftovers)] == [
        SendLeftovers(signal.SIGTERM, None, (started["web"],))
    ]
    assert not any(isinstance(a, Kill) for a in actions)
    assert f.next_deadline() == T0 + 1 + GRACE  # the rest of the stop's grace
    f.on_all_gone(T0 + 3)
    assert f.done and f.exit_code() == 0


# -- dependency conditions --------------------------------------------------------------


def test_each_condition_starts_the_dependent_at_its_moment() -> None:
    """started: once the dependency runs; ready: once it is ready; completed: once it exited, any
    status; succeeded: once it exited 0."""
    ready = ReadySpec("file", "/x", timeout=30.0, interval=0.5)
    f = fleet(
        prog("db", ready=ready),
        prog("seed", oneshot=True),
        prog("cache_user", "db=started"),
        prog("web", "db=ready"),
        prog("after_seed", "seed=completed"),
        prog("report", "seed=succeeded"),
    )
    assert starts(f.begin(T0)) == ["db", "seed"]
    assert starts(f.on_started("db", 10, T0)) == ["cache_user"]  # started, not ready yet
    assert starts(f.on_started("seed", 11, T0)) == []
    probe = probe_of(f.on_deadline(T0), "db")
    assert starts(f.on_probe("db", True, T0 + 0.1, attempt=probe.attempt)) == ["web"]
    assert sorted(starts(f.on_exit("seed", OK, T0 + 1))) == ["after_seed", "report"]


def test_completed_does_not_care_about_the_status_and_succeeded_counts_success_codes() -> None:
    """A oneshot that exits 3: "completed" starts its dependent; with success_codes = [3] it has
    also "succeeded"."""
    f = fleet(
        prog("seed", oneshot=True, success_codes=frozenset({3})),
        prog("a", "seed=completed"),
        prog("b", "seed"),
    )
    pids(f)
    assert sorted(starts(f.on_exit("seed", ChildStatus(code=3), T0 + 1))) == ["a", "b"]
    assert not f.stopping and f.first_failure is None


def test_a_condition_that_can_no_longer_be_met_fails_the_start_naming_both() -> None:
    """A dependent of a oneshot that must succeed, which failed (not required, so nothing else
    stops it), fails at once with a line naming both programs; gsup exits 1."""
    f = fleet(prog("seed", oneshot=True, required=False), prog("web", "seed=succeeded"), prog("side"))
    pids(f)
    actions = f.on_exit("seed", ChildStatus(code=3), T0 + 1)
    failed = [a for a in actions if isinstance(a, Note) and a.kind == "failed"]
    assert any("web cannot start: it needs seed to have succeeded" in n.message for n in failed), failed
    assert any("seed exited with 3" in n.message for n in failed)
    assert f.programs["web"].state is State.SKIPPED
    assert f.stopping  # web is required: the container fails fast
    assert f.exit_code() == 1


def test_ready_on_a_program_that_exited_for_good_can_no_longer_be_met() -> None:
    """A dependency that must be ready but exited (not required, not restarted) fails its dependent."""
    ready = ReadySpec("file", "/x", timeout=30.0, interval=0.5)
    f = fleet(prog("db", ready=ready, required=False), prog("web", "db"))
    pids(f)
    f.on_exit("db", ChildStatus(code=0), T0 + 1)
    assert f.programs["web"].failure is not None and "to be ready" in f.programs["web"].failure


# -- restarts that forgive ------------------------------------------------------------------


def crash(f: Lifecycle, name: str, pid: int, started: float, ran: float) -> float:
    """Start *name* at *started*, let it fail after *ran* seconds; return when the next start is due."""
    f.on_started(name, pid, started)
    f.on_exit(name, ChildStatus(code=1), started + ran)
    due = f.next_deadline()
    assert due is not None
    return due


def test_a_run_longer_than_min_uptime_resets_the_count_and_the_backoff() -> None:
    """Two quick failures back off 0.5 then 1 s; a failure after a long run starts again at 0.5 s,
    and max_restarts counts from there."""
    spec = prog("w", restart=RestartSpec(Restart.ON_FAILURE, max_restarts=2, backoff=0.5, min_uptime=10.0))
    f = fleet(spec)
    f.begin(T0)
    due = crash(f, "w", 10, T0, 0.1)
    assert due == pytest.approx(T0 + 0.1 + 0.5)
    f.on_deadline(due)
    due2 = crash(f, "w", 11, due, 0.1)
    assert due2 == pytest.approx(due + 0.1 + 1.0)
    f.on_deadline(due2)
    due3 = crash(f, "w", 12, due2, 60.0)  # ran a minute: forgiven
    assert due3 == pytest.approx(due2 + 60.0 + 0.5)
    assert f.programs["w"].failed_runs == 1
    assert not f.stopping and f.programs["w"].restarts == 2


def test_a_crash_loop_gives_up_after_max_restarts_with_its_last_status() -> None:
    """Quick failures past max_restarts give up: the program's last status is gsup's, and the
    report counts the restarts that happened."""
    spec = prog("w", restart=RestartSpec(Restart.ON_FAILURE, max_restarts=2, backoff=0.5))
    f = fleet(spec, prog("other"))
    pids(f)
    now = T0
    for pid in (20, 21):
        f.on_exit("w", ChildStatus(code=7), now)
        now = f.next_deadline() or now
        assert starts(f.on_deadline(now)) == ["w"]
        f.on_started("w", pid, now)
    f.on_exit("w", ChildStatus(code=7), now + 0.1)
    assert f.stopping and f.exit_code() == 7
    assert f.programs["w"].restarts == 2
    assert f.programs["w"].failure == "w exited with 7 and gave up after 2 restart(s)"


def test_always_restarts_a_clean_exit_forever_without_failing() -> None:
    """restart = "always" with max_restarts = 1: a program that keeps exiting 0 is restarted again
    and again, and never counts as failed."""
    spec = prog("w", restart=RestartSpec(Restart.ALWAYS, max_restarts=1, backoff=0.5))
    f = fleet(spec, prog("other"))
    pids(f)
    now = T0
    for pid in range(30, 40):
        f.on_exit("w", OK, now)
        assert f.programs["w"].state is State.BACKOFF
        now = f.next_deadline() or now
        assert starts(f.on_deadline(now)) == ["w"]
        f.on_started("w", pid, now)
    assert not f.stopping and f.first_failure is None
    assert f.programs["w"].restarts == 10


def test_a_restart_that_a_stop_prevents_is_not_counted() -> None:
    """A stop during the backoff: the restart never happens, and the report does not count it."""
    spec = prog("w", restart=RestartSpec(Restart.ON_FAILURE, backoff=5.0))
    f = fleet(spec, prog("other"))
    pids(f)
    f.on_exit("w", ChildStatus(code=1), T0 + 1)
    f.on_signal(signal.SIGTERM, T0 + 2)
    assert f.programs["w"].restarts == 0


# -- required = false -----------------------------------------------------------------------


def test_a_program_that_is_not_required_ends_alone() -> None:
    """required = false: its crash stops nothing and is not gsup's status; the report shows it."""
    f = fleet(prog("shipper", required=False), prog("web"))
    pids(f)
    actions = f.on_exit("shipper", ChildStatus(code=9), T0 + 1)
    assert not f.stopping and signals(actions) == []
    assert f.programs["shipper"].failure == "program shipper exited with 9"
    f.on_signal(signal.SIGTERM, T0 + 2)
    f.on_exit("web", ChildStatus(signal=signal.SIGTERM), T0 + 3)
    assert f.done and f.exit_code() == 0


def test_a_clean_exit_of_a_program_that_is_not_required_stops_nothing() -> None:
    """required = false and exit 0: the others run on."""
    f = fleet(prog("once", required=False), prog("web"))
    pids(f)
    assert "program_ended" in kinds(f.on_exit("once", OK, T0 + 1))
    assert not f.stopping


def test_success_codes_make_an_own_exit_a_success() -> None:
    """A program whose success_codes hold 3 and that exits 3 on its own is not restarted on-failure
    and does not fail the container."""
    spec = prog("w", success_codes=frozenset({3}), restart=RestartSpec(Restart.ON_FAILURE))
    f = fleet(spec, prog("other"))
    pids(f)
    f.on_exit("w", ChildStatus(code=3), T0 + 1)
    assert f.programs["w"].state is State.DONE and f.first_failure is None
    assert f.stopping  # a long-running program ended: the container is whole or not at all


# -- liveness ---------------------------------------------------------------------------------


def test_three_failed_liveness_checks_stop_the_program_and_it_is_restarted() -> None:
    """Liveness starts once ready; after 3 failures in a row the program gets its stop signal and
    its grace, and when it exits (even with 0) it is restarted like a failed run."""
    live = LivenessSpec("tcp", "127.0.0.1:1", interval=1.0, timeout=0.5, failures=3)
    spec = prog("web", liveness=live, restart=RestartSpec(Restart.ON_FAILURE, backoff=0.5))
    f = fleet(spec, prog("other"))
    pids(f)
    now = T0
    for _ in range(3):
        due = f.next_deadline()
        assert due == pytest.approx(now + 1.0)  # an interval after the last result (or the start)
        now = due
        (probe,) = [a for a in f.on_deadline(now) if isinstance(a, Probe)]
        assert probe.live
        actions = f.on_probe("web", False, now + 0.1, attempt=probe.attempt, detail="connection refused")
        now += 0.1
    assert signals(actions) == [("web", signal.SIGTERM)]
    assert "check_failed" in kinds(actions)
    assert f.programs["web"].kill_at == pytest.approx(now + GRACE)
    f.on_exit("web", OK, now + 0.2)
    assert f.programs["web"].state is State.BACKOFF and not f.stopping


def test_a_passing_liveness_check_resets_the_count() -> None:
    """Two failures, then a success: the count starts again; no stop."""
    live = LivenessSpec("tcp", "127.0.0.1:1", interval=1.0, failures=3)
    f = fleet(prog("web", liveness=live))
    pids(f)
    now = T0
    for ok in (False, False, True, False, False):
        now = f.next_deadline() or now
        (probe,) = [a for a in f.on_deadline(now) if isinstance(a, Probe)]
        assert signals(f.on_probe("web", ok, now, attempt=probe.attempt)) == []
    assert f.programs["web"].live_failures == 2


def test_liveness_with_restart_never_is_a_failure() -> None:
    """restart = "never": a program stopped for failing its liveness check fails the container."""
    live = LivenessSpec("tcp", "127.0.0.1:1", interval=1.0, failures=1)
    f = fleet(prog("web", liveness=live), prog("other"))
    pids(f)
    now = f.next_deadline() or T0
    (probe,) = [a for a in f.on_deadline(now) if isinstance(a, Probe)]
    f.on_probe("web", False, now, attempt=probe.attempt, detail="timed out")
    f.on_exit("web", ChildStatus(signal=signal.SIGTERM), now + 0.5)
    assert f.stopping and f.exit_code() == 143
    assert "failed its liveness check" in (f.programs["web"].failure or "")


def test_started_on_a_oneshot_starts_the_dependent_while_it_runs() -> None:
    """A program that needs a oneshot only "started" starts alongside it, not after it."""
    f = fleet(prog("setup", oneshot=True), prog("tail", "setup=started"))
    assert starts(f.begin(T0)) == ["setup"]
    assert starts(f.on_started("setup", 10, T0)) == ["tail"]


def test_the_backoff_stays_at_its_maximum_after_a_thousand_restarts() -> None:
    """After 1,100 failed runs in a row the delay is still backoff_max (2**1100 does not fit a float)."""
    spec = prog(
        "w", restart=RestartSpec(Restart.ON_FAILURE, max_restarts=2000, backoff=0.01, backoff_max=1.0)
    )
    f = fleet(spec)
    f.begin(T0)
    now = T0
    for pid in range(10, 1110):
        f.on_started("w", pid, now)
        f.on_exit("w", ChildStatus(code=1), now)
        due = f.next_deadline()
        assert due is not None
        now = due
        f.on_deadline(now)
    f.on_started("w", 2000, now)
    f.on_exit("w", ChildStatus(code=1), now)
    assert f.next_deadline() == now + 1.0
