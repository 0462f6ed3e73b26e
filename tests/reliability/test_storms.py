"""Storms: signals, orphans, grandchildren and a fork loop, as PID 1 and as a subreaper.

Each storm has a full form (marked slow: 100,000 signals, 10,000 orphans)
and a reduced one (1/10) that runs in CI.
"""

from __future__ import annotations

import errno
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .relkit import (
    PIPE,
    PROGS,
    PY,
    SCALES,
    Gsup,
    all_gone,
    child,
    kill_tagged,
    prog,
    tagged,
    zombies_of,
)

SENDERS = 4
STORM_SIGNALS = "USR1,HUP,WINCH,CONT,TERM"


def storm(target: Gsup, total: int) -> list[int]:
    """Send *total* mixed signals to gsup from SENDERS processes at once; return what each sent."""
    senders = [
        subprocess.Popen(
            prog("storm", str(target.pid), str(total // SENDERS), STORM_SIGNALS),
            stdin=PIPE,
            stdout=PIPE,
        )
        for _ in range(SENDERS)
    ]
    try:
        for s in senders:
            assert s.stdout is not None and s.stdout.readline() == b"armed\n"
        for s in senders:  # go, all together
            assert s.stdin is not None
            s.stdin.write(b"go\n")
            s.stdin.close()
        sent = []
        for s in senders:
            assert s.stdout is not None
            line = s.stdout.readline().decode()
            assert line.startswith("sent n="), line
            sent.append(int(line.split("=")[1]))
            assert s.wait(120) == 0
        return sent
    finally:
        for s in senders:
            if s.poll() is None:
                s.kill()
                s.wait()
            for f in (s.stdin, s.stdout):
                if f is not None and not f.closed:
                    f.close()


def stop_requests(run: Gsup) -> int:
    return sum(1 for e in run.events() if e["event"] == "grace_started")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scale", SCALES)
def test_signal_storm_cooperative_child(gsup, tag, scale):
    """Under 100,000 mixed signals from 4 senders gsup stays responsive, turns the repeated TERMs into one
    stop request, and exits 0 when the child does."""
    total = 100_000 // scale
    run = gsup(
        [
            "--platform",
            "none",
            "--grace",
            "60s",
            "--log-format",
            "json",
            "--",
            *child(tag, "--on-term", "log", "--exit-on-stdin"),
        ],
        stdin=PIPE,
    )
    run.out.expect(r"^ready pid=")
    sent = storm(run, total)
    assert not run.exited(), run.err.text()[-3000:]
    # Still responsive after the storm: a new signal is forwarded at once.
    run.send(signal.SIGUSR2)
    run.out.expect(r"^signal SIGUSR2$", timeout=15)
    run.proc.stdin.write(b"exit\n")  # the child finishes its work and exits 0
    run.proc.stdin.close()
    assert run.finish(60) == 0, run.err.text()[-3000:]
    assert sum(sent) == total
    assert len(run.out.matching(r"^signal SIGTERM$")) == 1, "the child got the stop signal once"
    assert stop_requests(run) == 1
    assert "Traceback" not in run.err.text()
    report = run.report()
    assert report["exit_code"] == 0
    assert report["stop_signal_received"] == "SIGTERM"
    assert report["force_killed"] is False


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scale", SCALES)
def test_signal_storm_stubborn_child(gsup, tag, scale):
    """Under 100,000 mixed signals a child that ignores the stop still gets one TERM and is force-killed at
    the grace: exit 137."""
    total = 100_000 // scale
    grace = 2.0
    run = gsup(["--grace", f"{grace}s", "--log-format", "json", "--", *child(tag, "--on-term", "log")])
    run.out.expect(r"^ready pid=")
    storm(run, total)
    assert run.finish(60) == 137, run.err.text()[-3000:]
    assert len(run.out.matching(r"^signal SIGTERM$")) == 1
    assert stop_requests(run) == 1
    assert "Traceback" not in run.err.text()
    report = run.report()
    assert report["force_killed"] is True
    assert report["escalation"] == "grace ran out"
    # The grace was kept, storm or not: SIGKILL came at the deadline, not much later.
    assert grace - 0.05 <= report["stop_seconds"] <= grace + 1.5, report
    assert tagged(tag) == []


@pytest.mark.timeout(600)
@pytest.mark.parametrize("scale", SCALES)
def test_orphan_storm_leaves_no_zombie(gsup, tag, scale):
    """10,000 orphans exiting at once are all reaped: no zombie 100 ms later, and gsup still forwards at
    once."""
    n = 10_000 // scale
    run = gsup(["--grace", "5s", "--log-format", "json", "--", *child(tag, "--orphans", str(n))])
    run.out.expect(r"^ready pid=")
    run.out.expect(rf"^orphans exited n={n}$", timeout=300)
    time.sleep(0.1)  # the guarantee under test: no zombie outlives 100 ms
    assert zombies_of(run.pid) == []
    run.send(signal.SIGUSR1)
    run.out.expect(r"^signal SIGUSR1$", timeout=5)
    run.send(signal.SIGTERM)
    assert run.finish(60) == 0, run.err.text()[-3000:]
    assert run.report()["orphans_reaped"] == n


@pytest.mark.timeout(120)
def test_grandchildren_in_groups_and_sessions_are_all_killed(gsup, tag):
    """200 grandchildren in several process groups and sessions that ignore SIGTERM are all killed at the
    grace, none is left or a zombie, and the report counts them: exit 137."""
    n = 200
    run = gsup(
        [
            "--grace",
            "1s",
            "--log-format",
            "json",
            "--",
            *child(tag, "--on-term", "log", "--grandchildren", str(n)),
        ]
    )
    run.out.expect(r"^ready pid=")
    run.out.expect(rf"^grandchildren ready n={n}$", timeout=60)
    procs = tagged(tag)
    assert len(procs) == n + 1
    assert len({p.pgrp for p in procs}) > 3 and len({p.session for p in procs}) > 3
    run.send(signal.SIGTERM)
    assert run.finish(60) == 137, run.err.text()[-3000:]  # stdout at EOF: no holder left
    assert all_gone(procs) == []
    assert tagged(tag) == []
    report = run.report()
    assert report["force_killed"] is True
    assert report["leftovers_killed"] >= n, report
    assert report["leftovers_surviving"] == 0
    assert not [e for e in run.events() if e["event"] == "gave_up"]


# -- a fork loop held down by a pids limit ---------------------------------------------------

FORKLOOP = (PROGS / "forkloop.py").read_text()
LIMIT = 48


def _pids_cgroup_root() -> Path | None:
    v1 = Path("/sys/fs/cgroup/pids")
    if (v1 / "cgroup.procs").exists():
        return v1
    v2 = Path("/sys/fs/cgroup")
    try:
        if "pids" in (v2 / "cgroup.subtree_control").read_text().split():
            return v2
    except OSError:
        pass
    return None


@pytest.fixture
def pids_cgroup(tag) -> Iterator[Path]:
    """A pids cgroup with pids.max = LIMIT, removed at the end."""
    root = _pids_cgroup_root()
    if root is None:
        pytest.skip("no pids cgroup controller")
    path = root / tag
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(LIMIT))
    except OSError as e:
        pytest.skip(f"cannot create a pids cgroup: {e}")
    yield path
    kill_tagged(tag)
    deadline = time.monotonic() + 10
    while True:
        try:
            path.rmdir()
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # the last members are still being torn down


def _unprivileged_python() -> str | None:
    """A Python that the user nobody can run (this one may live in a home directory nobody cannot enter)."""
    for candidate in (PY, shutil.which("python3"), "/usr/bin/python3"):
        if not candidate:
            continue
        try:
            r = subprocess.run(
                [candidate, "-c", "pass"], capture_output=True, user=65534, group=65534, extra_groups=[]
            )
        except PermissionError:
            continue
        if r.returncode == 0:
            return candidate
    return None


@pytest.fixture(params=["cgroup", "prlimit"])
def fork_loop(request, tag) -> tuple[list[str], list[str]]:
    """(gsup options, command) of a fork loop held down by a pids cgroup or by RLIMIT_NPROC."""
    if request.param == "cgroup":
        cg = request.getfixturevalue("pids_cgroup")
        return [], [PY, "-c", FORKLOOP, tag, str(cg)]
    if not shutil.which("prlimit"):
        pytest.skip("needs prlimit")
    py = _unprivileged_python()
    if py is None:
        pytest.skip("no Python that an unprivileged user can run")
    # RLIMIT_NPROC does not bind root: run the loop as nobody.
    return ["--user", "nobody"], ["prlimit", f"--nproc={LIMIT}", "--", py, "-c", FORKLOOP, tag]


@pytest.mark.timeout(120)
def test_fork_loop_under_a_pids_limit_is_killed(gsup, tag, fork_loop):
    """A fork loop that ignores SIGTERM and churns at its pids limit is still force-killed at the grace, and
    nothing is left: exit 137."""
    options, command = fork_loop
    run = gsup(["--grace", "1s", "--log-format", "json", *options, "--", *command])
    run.out.expect(r"^ready$")
    run.out.expect(r"^limit reached$", timeout=60)
    run.send(signal.SIGTERM)
    assert run.finish(60) == 137, run.err.text()[-3000:]
    assert tagged(tag) == []
    report = run.report()
    assert report["force_killed"] is True and report["escalation"] == "grace ran out"
    assert report["leftovers_killed"] > 0 and report["leftovers_surviving"] == 0, report
    assert report["stop_seconds"] <= 1.0 + 2.0, report
