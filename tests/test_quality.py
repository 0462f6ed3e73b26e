"""The code checks that are part of the test command: ruff and mypy --strict."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=180
    )


@pytest.mark.timeout(200)
def test_ruff_check() -> None:
    """ruff finds nothing to complain about."""
    r = _tool("ruff", "check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.timeout(200)
def test_ruff_format() -> None:
    """The code is formatted by ruff format."""
    r = _tool("ruff", "format", "--check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.timeout(200)
def test_mypy_strict() -> None:
    """The package type-checks with mypy --strict."""
    r = _tool("mypy", "gsup")
    assert r.returncode == 0, r.stdout + r.stderr
