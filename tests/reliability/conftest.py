"""Fixtures of the reliability tests; the harness itself is in ``relkit``.

``mode`` (a fixture of the whole test suite) runs a test twice: gsup as a
child subreaper, and as PID 1 of a new PID namespace. ``tag`` is a token
unique to the test, put in the command line of every process it starts; at
teardown every process still carrying it is killed by pid. ``gsup`` starts
runs of the real command.

The full soak and storm forms are marked ``slow`` and run only when asked
for (``python3 -m pytest -m slow tests/reliability``, or with
GSUP_RELIABILITY_FULL=1); the reduced forms (1/10 the counts) always run.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from gsupkit import Mode, can_unshare

from .relkit import Runner, kill_tagged

HERE = Path(__file__).resolve().parent

# When a property fails, hypothesis imports its patch writer, which imports
# libcst, which trips a DeprecationWarning in mypy_extensions; with
# filterwarnings = error that turns the failure report into an INTERNALERROR
# that ends the session. Import it here, once, with the warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass


def _full_forms_wanted(config: pytest.Config) -> bool:
    if os.environ.get("GSUP_RELIABILITY_FULL") == "1":
        return True
    expr = config.getoption("markexpr", "") or ""
    return "slow" in expr and "not slow" not in expr


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _full_forms_wanted(config):
        return
    skip = pytest.mark.skip(reason="full form: python3 -m pytest -m slow tests/reliability")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents and item.get_closest_marker("slow"):
            item.add_marker(skip)


@pytest.fixture
def pid1() -> Mode:
    """gsup as PID 1 of a new PID namespace (the soak runs only so)."""
    if not can_unshare():
        pytest.skip("needs root and unshare(1) for a PID namespace")
    return Mode("pid1")


@pytest.fixture
def tag() -> Iterator[str]:
    """A token unique to this test; every process still carrying it is killed at the end."""
    token = f"gsuprel-{uuid.uuid4().hex[:12]}"
    yield token
    kill_tagged(token)


@pytest.fixture
def gsup(mode: Mode, tag: str) -> Iterator[Runner]:
    """Start gsup in the current mode: ``gsup(["--grace", "1s", "--", *cmd])``."""
    runner = Runner(mode, tag)
    yield runner
    runner.close()
