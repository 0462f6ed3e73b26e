"""Fixtures of the many-programs tests; the harness itself is in ``manykit``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from manykit import Fleet, How, can_unshare


@pytest.fixture(params=["subreaper", "pid1"])
def how(request: pytest.FixtureRequest) -> How:
    """How gsup runs: as a child subreaper, or as PID 1 of a new PID namespace."""
    if request.param == "pid1" and not can_unshare():
        pytest.skip("needs root and unshare(1) for a PID namespace")
    return How(request.param)


@pytest.fixture
def fleet(how: How, tmp_path: Path) -> Iterator[Fleet]:
    """Start gsup on a TOML config of programs in the current mode; kill all of it at the end."""
    f = Fleet(how, tmp_path)
    yield f
    f.close()
