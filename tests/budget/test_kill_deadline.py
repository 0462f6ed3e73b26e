"""gsup's own SIGKILL lands where the budget puts it: deadline - margin after the stop request."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Callable

import pytest
from gsupkit import clean_env

from .conftest import CHILD, PROGS, Run, kill_timing

K8S = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}


def ignored_term_killed_after(run: Run, *, limit: float) -> tuple[float, str]:
    """SIGTERM gsup once its child is ready: seconds until the child died, and where they went."""
    run.ready()
    sent = run.send(signal.SIGTERM)
    run.out.expect(r"^signal SIGTERM", timeout=5)  # forwarded, and ignored
    died = run.watches[0].wait(limit)
    run.wait()
    return died - sent, kill_timing(run, sent, died)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_kubernetes_by_its_variable_alone_kills_at_27s(gsup_run: Callable[..., Run]) -> None:
    """With only KUBERNETES_SERVICE_HOST set, a child ignoring SIGTERM is SIGKILLed 27 s (±0.2) after it."""
    run = gsup_run(["--", *CHILD, "--on", "TERM=log"], env=clean_env(**K8S))
    took, _ = ignored_term_killed_after(run, limit=40)
    assert 26.8 <= took <= 27.2, f"SIGKILL {took:.3f}s after SIGTERM"
    assert run.finish() == 137
    report = run.err.text()
    assert "of a 27s grace; force-killed: SIGKILL sent (grace ran out)" in report, report
    assert "killed by SIGKILL" in report


@pytest.mark.timeout(30)
def test_platform_timeout_scales_the_budget(gsup_run: Callable[..., Run]) -> None:
    """Kubernetes with --platform-timeout 2 (margin 1 s): an ignoring child is SIGKILLed 1 s (±0.1) after."""
    args = ["--platform-timeout", "2", "--log-format", "json"]
    run = gsup_run([*args, "--", *CHILD, "--on", "TERM=log"], env=clean_env(**K8S))
    took, timing = ignored_term_killed_after(run, limit=10)
    assert 0.9 <= took <= 1.1, f"SIGKILL {took:.3f}s after SIGTERM: {timing}"
    assert run.finish() == 137
    assert '"grace": 1.0' in run.err.text()


@pytest.mark.timeout(30)
def test_cloudrun_variable_gives_a_9s_grace_in_the_report(gsup_run: Callable[..., Run]) -> None:
    """K_SERVICE alone selects cloudrun (10 s deadline): a child stopping at once reports a 9 s grace."""
    run = gsup_run(["--", *CHILD, "--on", "TERM=exit:0"], env=clean_env(K_SERVICE="svc"))
    run.ready()
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert "of a 9s grace; exited within the grace" in run.err.text()


#: Zombies added to the process table: a /proc scan over them takes 0.15 s or more, which a
#: SIGKILL sent after such a scan (as gsup did until 75e3a36) would be late by.
CROWD = 5000


@pytest.fixture
def crowd() -> Iterator[int]:
    """CROWD more processes (unreaped zombies of one helper) on the machine during the test."""
    with subprocess.Popen(
        [sys.executable, str(PROGS / "crowd.py"), str(CROWD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline() == f"crowd n={CROWD}\n".encode()
            yield CROWD
        finally:
            proc.stdin.close()  # EOF: it reaps its zombies and exits
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow  # forking the crowd takes seconds on a loaded machine
@pytest.mark.timeout(90)
def test_sigkill_is_not_delayed_by_a_crowded_process_table(gsup_run: Callable[..., Run], crowd: int) -> None:
    """With 5,000 more processes on the machine, the child still dies within 0.1 s of the escalation."""
    run = gsup_run(
        ["--platform", "none", "--grace", "0.5", "--log-format", "json", "--", *CHILD, "--on", "TERM=log"]
    )
    run.ready()
    run.send(signal.SIGTERM)
    died = run.watches[0].wait(15)
    assert run.finish() == 137
    events = {e["event"]: e for e in map(json.loads, run.err.all())}
    escalated = events["escalated"]["ts"]
    assert died - escalated <= 0.1, f"SIGKILL landed {died - escalated:.3f}s after the escalation"
