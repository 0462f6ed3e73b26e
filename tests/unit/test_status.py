"""The exit-status rules of SPEC §6, row by row (gsup/status.py)."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gsup import errors
from gsup.model import ChildStatus
from gsup.status import EXIT_FORCE_KILLED, exit_status

_codes = st.integers(min_value=0, max_value=255)
_signals = st.sampled_from(sorted(int(s) for s in signal.valid_signals()))
_statuses = st.one_of(
    _codes.map(lambda c: ChildStatus(code=c)), _signals.map(lambda s: ChildStatus(signal=s))
)


@given(_codes)
def test_exit_code_passes_through(code: int) -> None:
    """A child that exits with N on its own makes gsup exit with N, for every N in 0-255."""
    assert exit_status(ChildStatus(code=code), force_killed=False, stop_requested=False) == code


@given(_codes, st.sets(_codes))
def test_exit_code_passes_through_without_a_stop(code: int, success: set[int]) -> None:
    """--success-code and --success-on-stop change nothing when gsup was not asked to stop."""
    status = ChildStatus(code=code)
    got = exit_status(
        status,
        force_killed=False,
        stop_requested=False,
        stop_signals=[signal.SIGTERM],
        success_codes=success,
        success_on_stop=True,
    )
    assert got == code


@given(_signals)
def test_killed_by_signal_is_128_plus_s(sig: int) -> None:
    """A child killed by signal S (not by gsup's SIGKILL) makes gsup exit with 128+S."""
    assert exit_status(ChildStatus(signal=sig), force_killed=False, stop_requested=False) == (128 + sig)


def test_sigterm_is_143() -> None:
    """A child killed by SIGTERM gives 143."""
    status = ChildStatus(signal=signal.SIGTERM)
    assert exit_status(status, force_killed=False, stop_requested=True) == 143


def test_sigkill_from_someone_else_is_137() -> None:
    """A child killed by another's SIGKILL (the OOM killer) gives 137 like any 128+S."""
    status = ChildStatus(signal=signal.SIGKILL)
    assert exit_status(status, force_killed=False, stop_requested=False) == 137


@given(_codes, st.sets(_codes, max_size=5))
def test_success_code_after_a_requested_stop(code: int, others: set[int]) -> None:
    """After a requested stop, an exit code listed by --success-code becomes 0."""
    got = exit_status(
        ChildStatus(code=code),
        force_killed=False,
        stop_requested=True,
        success_codes=others | {code},
    )
    assert got == 0


@given(_codes, st.sets(_codes, max_size=5))
def test_unlisted_code_after_a_requested_stop(code: int, others: set[int]) -> None:
    """After a requested stop, an exit code not listed by --success-code passes through."""
    got = exit_status(
        ChildStatus(code=code),
        force_killed=False,
        stop_requested=True,
        success_codes=others - {code},
    )
    assert got == code


def test_success_code_matches_128_plus_s() -> None:
    """--success-code 143 also covers a child killed by SIGTERM (its shell status is 143)."""
    status = ChildStatus(signal=signal.SIGTERM)
    assert exit_status(status, force_killed=False, stop_requested=True, success_codes={143}) == 0


@pytest.mark.parametrize(
    "status", [ChildStatus(signal=signal.SIGTERM), ChildStatus(code=143)], ids=["killed", "143"]
)
def test_success_on_stop_by_that_very_signal(status: ChildStatus) -> None:
    """--success-on-stop: ended by the stop signal (killed by it, or exit 128+it) gives 0."""
    got = exit_status(
        status,
        force_killed=False,
        stop_requested=True,
        stop_signals=[signal.SIGTERM],
        success_on_stop=True,
    )
    assert got == 0


@pytest.mark.parametrize("which", ["received", "sent"])
def test_success_on_stop_accepts_either_signal(which: str) -> None:
    """With --rewrite TERM:QUIT, ending by QUIT (sent) or TERM (received) both count."""
    received, sent = signal.SIGTERM, signal.SIGQUIT
    status = ChildStatus(signal=received if which == "received" else sent)
    got = exit_status(
        status,
        force_killed=False,
        stop_requested=True,
        stop_signals=[received, sent],
        success_on_stop=True,
    )
    assert got == 0


@given(_statuses)
def test_success_on_stop_other_endings_pass_through(status: ChildStatus) -> None:
    """--success-on-stop does not hide any ending other than by the stop signal itself."""
    got = exit_status(
        status,
        force_killed=False,
        stop_requested=True,
        stop_signals=[signal.SIGTERM],
        success_on_stop=True,
    )
    if status.shell_code == 128 + signal.SIGTERM:
        assert got == 0
    else:
        assert got == status.shell_code


def test_success_on_stop_needs_a_requested_stop() -> None:
    """--success-on-stop does not apply when gsup was not asked to stop."""
    status = ChildStatus(signal=signal.SIGTERM)
    got = exit_status(
        status,
        force_killed=False,
        stop_requested=False,
        stop_signals=[signal.SIGTERM],
        success_on_stop=True,
    )
    assert got == 143


@given(_statuses, st.booleans(), st.booleans(), st.sets(_codes, max_size=5))
def test_force_killed_is_137(
    status: ChildStatus, stop_requested: bool, success_on_stop: bool, success: set[int]
) -> None:
    """When gsup sent SIGKILL (grace ran out or 2nd Ctrl+C) the status is 137, whatever else."""
    got = exit_status(
        status,
        force_killed=True,
        stop_requested=stop_requested,
        stop_signals=[signal.SIGTERM, signal.SIGKILL],
        success_codes=success | {137},
        success_on_stop=success_on_stop,
    )
    assert got == EXIT_FORCE_KILLED == 137


@given(_statuses, st.booleans(), st.booleans(), st.booleans())
def test_status_is_a_valid_exit_code(
    status: ChildStatus, force_killed: bool, stop_requested: bool, success_on_stop: bool
) -> None:
    """Whatever happened, the result is an exit status the shell can represent (0-255)."""
    got = exit_status(
        status,
        force_killed=force_killed,
        stop_requested=stop_requested,
        stop_signals=[signal.SIGTERM],
        success_on_stop=success_on_stop,
    )
    assert 0 <= got <= 255


def test_error_codes() -> None:
    """Not found 127, not executable 126, usage 2, internal 125, as the SPEC §6 table says."""
    assert errors.CommandNotFound("x").exit_code == 127
    assert errors.CommandNotExecutable("x").exit_code == 126
    assert errors.UsageError("x").exit_code == 2
    assert errors.GsupError("x").exit_code == 125
