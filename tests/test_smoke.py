"""A quick end-to-end pass through the installed command, run on every Python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

GSUP = os.path.join(os.path.dirname(sys.executable), "gsup")


def run(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GSUP, *args], capture_output=True, text=True, timeout=20, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.mark.timeout(30)
def test_exit_code_passes_through() -> None:
    """The child's exit code is gsup's, and the report says so."""
    r = run("--", sys.executable, "-c", "raise SystemExit(7)")
    assert r.returncode == 7
    assert "exit        7" in r.stderr or "exit  7" in r.stderr.replace("   ", " ")


@pytest.mark.timeout(30)
def test_stop_is_forwarded_and_reported() -> None:
    """A SIGTERM to gsup reaches the child, which exits by it: 143."""
    p = subprocess.Popen(
        [GSUP, "--", sys.executable, "-c", "import sys,time; print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
        assert p.returncode == 143, err
        assert "stopped by  SIGTERM" in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.timeout(30)
def test_bad_option_is_one_line_and_exit_2() -> None:
    """An invalid duration gives exit 2 and one error line, no traceback."""
    r = run("--grace", "abc", "--", "true")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("gsup: error: ")
    assert "Traceback" not in r.stderr


@pytest.mark.timeout(30)
def test_python_m_gsup() -> None:
    """``python -m gsup`` is the same command."""
    r = subprocess.run(
        [sys.executable, "-m", "gsup", "-q", "--", "sh", "-c", "exit 3"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert r.returncode == 3
