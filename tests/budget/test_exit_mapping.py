"""--success-on-stop and --success-code turn a requested stop into exit 0, and nothing else."""

from __future__ import annotations

import signal
from typing import Callable, Optional

import pytest

from .conftest import CHILD, Run

NONE = ["--platform", "none"]


def stopped(run: Run, sig: Optional[int] = signal.SIGTERM) -> int:
    """Stop gsup with *sig* once the child is ready (None: let the child end on its own)."""
    run.ready()
    if sig is not None:
        run.send(sig)
    return run.finish()


@pytest.mark.timeout(30)
def test_without_the_flag_a_stopped_child_gives_143(gsup_run: Callable[..., Run]) -> None:
    """A child killed by the forwarded SIGTERM makes gsup exit 143 by default."""
    assert stopped(gsup_run([*NONE, "--", *CHILD])) == 143


@pytest.mark.timeout(30)
def test_success_on_stop_turns_143_into_0(gsup_run: Callable[..., Run]) -> None:
    """With --success-on-stop, a child killed by the SIGTERM gsup was asked to deliver gives exit 0."""
    run = gsup_run([*NONE, "--success-on-stop", "--", *CHILD])
    assert stopped(run) == 0
    assert "killed by SIGTERM" in run.err.text()


@pytest.mark.timeout(30)
def test_success_on_stop_leaves_a_crash_alone(gsup_run: Callable[..., Run]) -> None:
    """With --success-on-stop, a child that exits 1 on its own still makes gsup exit 1."""
    run = gsup_run([*NONE, "--success-on-stop", "--", *CHILD, "--exit-after", "0.1", "--code", "1"])
    assert stopped(run, None) == 1


@pytest.mark.timeout(30)
def test_success_on_stop_leaves_a_failed_stop_alone(gsup_run: Callable[..., Run]) -> None:
    """With --success-on-stop, a child that answers SIGTERM with exit 1 still makes gsup exit 1."""
    run = gsup_run([*NONE, "--success-on-stop", "--", *CHILD, "--on", "TERM=exit:1"])
    assert stopped(run) == 1


@pytest.mark.timeout(30)
def test_success_code_after_a_stop_is_0(gsup_run: Callable[..., Run]) -> None:
    """With --success-code 3, a child that exits 3 after gsup stopped it gives exit 0."""
    run = gsup_run([*NONE, "--success-code", "3", "--", *CHILD, "--on", "TERM=exit:3"])
    assert stopped(run) == 0


@pytest.mark.timeout(30)
def test_success_code_without_a_stop_is_kept(gsup_run: Callable[..., Run]) -> None:
    """With --success-code 3, a child that exits 3 on its own (no stop requested) gives exit 3."""
    run = gsup_run([*NONE, "--success-code", "3", "--", *CHILD, "--exit-after", "0.1", "--code", "3"])
    assert stopped(run, None) == 3
