"""Fixtures of the many-programs tests; the harness itself is in ``manykit``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gsupkit import Mode
from manykit import Fleet


@pytest.fixture
def fleet(mode: Mode, tmp_path: Path) -> Iterator[Fleet]:
    """Start gsup on a TOML config of programs in the current mode; kill all of it at the end."""
    f = Fleet(mode, tmp_path)
    yield f
    f.close()
