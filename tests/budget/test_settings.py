"""Where settings come from (flag > GSUP_ variable > config file > platform) and the budget refusal."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Callable, Optional

import pytest
from gsupkit import clean_env

from .conftest import CHILD, Run, gsup_once, kill_timing

K8S = ["--platform", "kubernetes"]


def grace_row(stdout: str) -> tuple[str, str]:
    """(value, origin) of the --grace row of ``gsup check``."""
    m = re.search(r"^\s*--grace\s+(\S+)\s+\((.*)\)\s*$", stdout, re.M)
    assert m, stdout
    return m.group(1), m.group(2)


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "gsup.toml"
    path.write_text('[gsup]\ngrace = "4s"\n')
    return str(path)


@pytest.mark.timeout(30)
def test_refusal_shows_the_sum() -> None:
    """Stop delay 1 s + grace 28 s + margin 3 s > kubernetes' 30 s is refused: exit 2, showing the sum."""
    r = gsup_once([*K8S, "--grace", "28", "--stop-delay", "1", "--", "sh", "-c", "echo started"])
    assert r.returncode == 2, r.stderr
    assert r.stdout == "", "the command ran"
    assert "stop delay 1s + grace 28s + margin 3s = 32s exceeds the kubernetes deadline of 30s" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.timeout(30)
def test_refusal_counts_values_from_the_environment() -> None:
    """The same sum is refused when its parts come from GSUP_GRACE and GSUP_STOP_DELAY."""
    r = gsup_once([*K8S, "--", "true"], env=clean_env(GSUP_GRACE="28", GSUP_STOP_DELAY="1"))
    assert r.returncode == 2, r.stderr
    assert "= 32s exceeds the kubernetes deadline of 30s" in r.stderr


@pytest.mark.parametrize(
    ("flag", "variable", "in_file", "value", "origin"),
    [
        pytest.param(None, None, False, "27s", "platform default", id="platform"),
        pytest.param(None, None, True, "4s", "{file} [gsup]", id="file"),
        pytest.param(None, "1", False, "1s", "GSUP_GRACE", id="env"),
        pytest.param(None, "1", True, "1s", "GSUP_GRACE", id="env-beats-file"),
        pytest.param("2", "1", False, "2s", "--grace", id="flag-beats-env"),
        pytest.param("2", "1", True, "2s", "--grace", id="flag-beats-env-and-file"),
    ],
)
@pytest.mark.timeout(30)
def test_check_shows_which_source_won(
    config: str,
    flag: Optional[str],
    variable: Optional[str],
    in_file: bool,
    value: str,
    origin: str,
) -> None:
    """gsup check shows the grace that wins (flag > GSUP_GRACE > file [gsup] > platform) and its origin."""
    args = [*K8S, *(["--config", config] if in_file else []), *(["--grace", flag] if flag else [])]
    env = clean_env(**({"GSUP_GRACE": variable} if variable else {}))
    r = gsup_once(["check", *args], env=env)
    assert r.returncode == 0, r.stderr
    assert grace_row(r.stdout) == (value, origin.format(file=config))
    shown = value.rstrip("s")
    assert f"grace {shown}s" in r.stdout, r.stdout  # and the timeline uses it


@pytest.mark.timeout(30)
def test_check_names_other_variables() -> None:
    """GSUP_PLATFORM, GSUP_STOP_DELAY and GSUP_SUCCESS_ON_STOP are taken, and shown as their origin."""
    env = clean_env(GSUP_PLATFORM="cloudrun", GSUP_STOP_DELAY="2s", GSUP_SUCCESS_ON_STOP="1")
    r = gsup_once(["check"], env=env)
    assert r.returncode == 0, r.stderr
    assert re.search(r"--platform\s+cloudrun\s+\(GSUP_PLATFORM\)", r.stdout), r.stdout
    assert re.search(r"--stop-delay\s+2s\s+\(GSUP_STOP_DELAY\)", r.stdout), r.stdout
    assert re.search(r"--success-on-stop\s+True\s+\(GSUP_SUCCESS_ON_STOP\)", r.stdout), r.stdout
    assert re.search(r"--grace\s+7s\s+\(platform default\)", r.stdout), r.stdout


@pytest.mark.timeout(30)
def test_bad_variable_is_named_in_the_error() -> None:
    """An invalid GSUP_GRACE is refused with exit 2 and a message naming the variable."""
    r = gsup_once(["check"], env=clean_env(GSUP_GRACE="soon"))
    assert r.returncode == 2
    assert "GSUP_GRACE: invalid duration 'soon'" in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("flag", "variable", "in_file", "expected"),
    [
        pytest.param(None, "1", False, 1.0, id="env"),
        pytest.param("0.5", "20", False, 0.5, id="flag-beats-env"),
        pytest.param(None, "0.5", True, 0.5, id="env-beats-file"),
    ],
)
@pytest.mark.timeout(30)
def test_the_winning_grace_is_the_one_applied(
    gsup_run: Callable[..., Run],
    config: str,
    flag: Optional[str],
    variable: str,
    in_file: bool,
    expected: float,
) -> None:
    """A child ignoring SIGTERM is SIGKILLed after the grace that wins the precedence (±0.1 s)."""
    args = ["--platform", "none", "--log-format", "json", *(["--config", config] if in_file else [])]
    args += ["--grace", flag] if flag else []
    run = gsup_run([*args, "--", *CHILD, "--on", "TERM=log"], env=clean_env(GSUP_GRACE=variable))
    run.ready()
    sent = run.send(signal.SIGTERM)
    died = run.watches[0].wait(expected + 5)
    run.wait()
    timing = kill_timing(run, sent, died)
    assert expected - 0.1 <= died - sent <= expected + 0.1, f"SIGKILL after {died - sent:.3f}s: {timing}"
    assert run.finish() == 137
