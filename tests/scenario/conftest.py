"""Fixtures for the lost-work scenario: a real Redis and a PID namespace to run PID 1 in.

Needs ``redis-server`` (Debian package ``redis-server``) and ``unshare``
(``util-linux``) with the right to create PID namespaces (root). Without
them the scenario tests are skipped, saying why; ``test_examples`` needs
neither. Each scenario run's numbers are printed at the end of the session.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Callable

import pytest
from lostwork import RedisServer

_RESULTS: list[str] = []


@pytest.fixture(scope="session")
def pid_namespaces() -> None:
    """Skip unless this process can run a command as PID 1 of a new PID namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", "test $$ = 1"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot create a PID namespace here (root needed): {probe.stderr!r}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The real redis-server on a free loopback port, no persistence, for the session."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def scenario_report(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print one run's numbers now (with -s) and again in the session summary."""

    def report(line: str) -> None:
        _RESULTS.append(line)
        with capsys.disabled():
            print(f"\n    {line}", flush=True)

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _RESULTS:
        terminalreporter.section("lost-work scenario (accepted vs counted)")
        for line in _RESULTS:
            terminalreporter.write_line(line)
