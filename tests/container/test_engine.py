"""gsup as PID 1 of a real container, driven by the engine's own verbs.

``podman run --init=false`` makes gsup the container's PID 1; ``podman stop
-t N``, ``podman kill -s SIG`` and ``podman inspect`` are the engine's real
stop path, including its own SIGKILL at the deadline (podman warns on
stderr when it has to use it). The child reports through a FIFO in a
mounted directory, so each test waits on its events, never on a sleep.
"""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import pytest
from podman_engine import REPO, Container, Engine, EventPipe, report_exit

from gsup.units import parse_duration

pytestmark = pytest.mark.container

CHILD = str(REPO / "tests" / "container" / "child.py")

# The stop timeout given to `podman stop -t`, passed to gsup as its platform
# timeout: gsup's budget then keeps margin = max(1 s, 10 % of the deadline) =
# 1 s for itself and SIGKILLs at grace = 3 s - 1 s, before the engine does.
ENGINE_TIMEOUT = 3
GSUP_GRACE = ENGINE_TIMEOUT - max(1.0, 0.1 * ENGINE_TIMEOUT)
GSUP_BUDGET = ["--platform-timeout", str(ENGINE_TIMEOUT)]


def child(venv: Path, events: EventPipe, *args: str) -> list[str]:
    return [str(venv / "bin" / "python"), CHILD, str(events.path), *args]


def gsup(venv: Path, *options: str) -> list[str]:
    return [str(venv / "bin" / "gsup"), *options, "--"]


def start(c: Container, argv: list[str], events: EventPipe, options: Sequence[str] = ()) -> None:
    """Run *argv* as the container's PID 1, with the events FIFO's directory mounted."""
    c.run(argv, volumes=[events.path.parent], options=options)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("code", [0, 3, 77])
def test_container_exit_code_is_the_childs(
    engine: Engine, venv: Path, events: EventPipe, tmp_path: Path, code: int
) -> None:
    """A container whose PID 1 is gsup exits with its child's exit code, as the engine records it."""
    with engine.container(tmp_path / "rootfs") as c:
        start(c, [*gsup(venv), *child(venv, events, "exit", str(code))], events)
        events.expect("ready", 30)
        assert c.wait(timeout=30) == code
        assert c.exit_code() == code
        assert report_exit(c.logs()) == code


@pytest.mark.timeout(90)
@pytest.mark.parametrize("stop_signal", ["SIGTERM", "SIGINT", "SIGQUIT"])
def test_engine_stop_signal_reaches_the_child(
    engine: Engine, venv: Path, events: EventPipe, tmp_path: Path, stop_signal: str
) -> None:
    """`podman stop` sends the container's stop signal to gsup, gsup forwards it, the child exits
    on it, and the container's exit code is the child's, with no SIGKILL from the engine."""
    signo = signal.Signals[stop_signal]
    with engine.container(tmp_path / "rootfs") as c:
        argv = [*gsup(venv, *GSUP_BUDGET), *child(venv, events, "signals")]
        start(c, argv, events, options=["--stop-signal", stop_signal])
        events.expect("ready", 30)
        stopped = c.stop(timeout=ENGINE_TIMEOUT)
        events.expect(f"signal {stop_signal}", 5)
        logs = c.logs()
        assert stopped.returncode == 0, stopped.stderr
        assert not stopped.engine_killed, stopped.stderr
        assert stopped.seconds < GSUP_GRACE, "the child exits at once on its stop signal"
        assert c.exit_code() == 100 + signo  # the child's own code for this signal
        assert report_exit(logs) == 100 + signo
        assert f"received {stop_signal}" in logs


@pytest.mark.timeout(90)
def test_engine_kill_signals_reach_the_child(
    engine: Engine, venv: Path, events: EventPipe, tmp_path: Path
) -> None:
    """Every signal sent with `podman kill -s` to the container (HUP, USR1, USR2, WINCH) reaches
    the child through gsup, which keeps running."""
    with engine.container(tmp_path / "rootfs") as c:
        start(c, [*gsup(venv, *GSUP_BUDGET), *child(venv, events, "signals")], events)
        events.expect("ready", 30)
        for sig in ("SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH"):
            c.kill(sig)
            events.expect(f"signal {sig}", 10)
        assert c.status() == "running"
        stopped = c.stop(timeout=ENGINE_TIMEOUT)
        assert not stopped.engine_killed, stopped.stderr
        assert c.exit_code() == 100 + signal.SIGTERM


@pytest.mark.timeout(90)
@pytest.mark.parametrize("init", ["gsup", "none"])
def test_orphans_reaped_as_container_pid1(
    engine: Engine,
    venv: Path,
    events: EventPipe,
    tmp_path: Path,
    init: str,
    comparison: Callable[[str], None],
) -> None:
    """As PID 1 of a container gsup reaps every orphan re-parented to it, while a plain
    process as PID 1 leaves them as zombies."""
    n = 50
    front = gsup(venv) if init == "gsup" else []
    with engine.container(tmp_path / "rootfs") as c:
        start(c, [*front, *child(venv, events, "orphans", str(n))], events)
        line = events.expect("orphans", 30)
        assert c.wait(timeout=30) == 0
    m = re.match(r"orphans (\d+) reaped (\d+) zombies (\d+) after ([\d.]+)", line)
    assert m, line
    reaped, zombies, seconds = int(m[2]), int(m[3]), float(m[4])
    comparison(
        f"orphans under {'gsup' if init == 'gsup' else 'the app itself':<14} as PID 1: "
        f"{n} orphans, {reaped} reaped, {zombies} zombies left after {seconds:.2f}s"
    )
    if init == "gsup":
        assert (reaped, zombies) == (n, 0), line
    else:
        assert zombies == n, f"without an init the orphans should stay zombies: {line}"


@pytest.mark.timeout(90)
def test_gsup_kills_a_term_ignoring_child_before_the_engine_does(
    engine: Engine,
    venv: Path,
    events: EventPipe,
    tmp_path: Path,
    comparison: Callable[[str], None],
) -> None:
    """With its grace inside the engine's stop timeout, gsup SIGKILLs a child that ignores
    SIGTERM itself, so the engine never resorts to SIGKILL; exit 137 and the report say so."""
    with engine.container(tmp_path / "rootfs") as c:
        start(c, [*gsup(venv, *GSUP_BUDGET), *child(venv, events, "ignore-term")], events)
        events.expect("ready", 30)
        stopped = c.stop(timeout=ENGINE_TIMEOUT)
        logs = c.logs()
        code = c.exit_code()
    comparison(
        f"podman stop -t {ENGINE_TIMEOUT}, child ignores SIGTERM, PID 1 = {'gsup':<9}: "
        f"stopped in {stopped.seconds:.2f}s, exit {code}, killed by "
        + (
            "the engine (podman: resorting to SIGKILL)"
            if stopped.engine_killed
            else f"gsup at the end of its {GSUP_GRACE:g}s grace (podman: no SIGKILL needed)"
        )
    )
    assert not stopped.engine_killed, f"podman had to SIGKILL:\n{stopped.stderr}"
    assert GSUP_GRACE <= stopped.seconds < ENGINE_TIMEOUT
    assert code == 137
    assert report_exit(logs) == 137
    assert "force-killed" in logs
    grace = re.search(r"of a (\S+) grace", logs)
    assert grace and parse_duration(grace[1]) == GSUP_GRACE, "gsup derived its grace: " + logs


INITS = {
    "tini": ["/usr/bin/tini", "--"],
    "dumb-init": ["/usr/bin/dumb-init"],
    "catatonit": ["/usr/bin/catatonit", "--"],
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("init", list(INITS))
def test_other_inits_leave_the_kill_to_the_engine(
    engine: Engine,
    venv: Path,
    events: EventPipe,
    tmp_path: Path,
    init: str,
    comparison: Callable[[str], None],
) -> None:
    """Under tini (or dumb-init, catatonit) a child that ignores SIGTERM is killed by the engine's
    own SIGKILL at the stop timeout: the init has no grace of its own."""
    argv = INITS[init]
    if not shutil.which(argv[0]):
        if init == "tini":
            pytest.fail("tini is required for the comparison (Debian package tini)")
        pytest.skip(f"{init} is not installed")
    with engine.container(tmp_path / "rootfs") as c:
        start(c, [*argv, *child(venv, events, "ignore-term")], events)
        events.expect("ready", 30)
        stopped = c.stop(timeout=ENGINE_TIMEOUT)
        code = c.exit_code()
    comparison(
        f"podman stop -t {ENGINE_TIMEOUT}, child ignores SIGTERM, PID 1 = {init:<9}: "
        f"stopped in {stopped.seconds:.2f}s, exit {code}, killed by "
        + ("the engine (podman: resorting to SIGKILL)" if stopped.engine_killed else init)
    )
    assert stopped.engine_killed, f"expected podman's own SIGKILL:\n{stopped.stderr}"
    assert stopped.seconds >= ENGINE_TIMEOUT
    assert code == 137
