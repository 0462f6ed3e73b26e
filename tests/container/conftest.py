"""Fixtures for the container-engine tests: podman, gsup installed where a container sees it.

Needs root, ``podman`` and ``runc`` (Debian packages ``podman``, ``runc``)
and, for the comparison, ``tini`` (and optionally ``dumb-init``,
``catatonit``). Without podman the tests are skipped, saying why.

gsup is installed (editable) into ``.venv-container/`` inside the
repository, which is mounted into every container at its own path: the
container runs the working tree's gsup with the host's Python.

``images`` makes, once per session, the two images that the Compose and
Kubernetes files name: an empty one, and one with ``Dockerfile.example``'s
config (its ENTRYPOINT ``["gsup", "--"]``, CMD, ENV, WORKDIR, STOPSIGNAL),
whose PATH finds that gsup; the app files the Dockerfile copies are mounted
where it copies them (``Images.app_files``).
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest
from podman_engine import REPO, Engine, EventPipe, Images

VENV = REPO / ".venv-container"
_COMPARISON: list[str] = []
_NOTES: list[str] = []


def _venv_ok() -> bool:
    python = VENV / "bin" / "python"
    if not (python.exists() and (VENV / "bin" / "gsup").exists()):
        return False
    probe = subprocess.run(
        [str(python), "-c", "import gsup, psutil, typer, rich; print(gsup.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return probe.returncode == 0 and probe.stdout.strip() == str(REPO / "gsup" / "__init__.py")


def ensure_container_venv() -> Path:
    """``.venv-container`` with this working tree's gsup installed (editable); reused when valid.

    ``--system-site-packages`` lets the venv use the dependencies already
    installed for the host's Python; pip fetches only what is missing.
    """
    key = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"gsup-container-venv-{key}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time per working tree
        if not _venv_ok():
            subprocess.run(
                [sys.executable, "-m", "venv", "--clear", "--system-site-packages", str(VENV)],
                check=True,
                timeout=300,
            )
            subprocess.run(
                [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", str(REPO)],
                check=True,
                timeout=600,
            )
            if not _venv_ok():
                raise AssertionError(f"gsup is not importable from {VENV} after installing it")
    return VENV


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The container engine, checked once; skips the suite when podman is absent."""
    reason = Engine.missing()
    if reason:
        pytest.skip(reason)
    eng = Engine(tmp_path_factory.mktemp("podman"))
    eng.check("version")  # installed but broken is a failure, not a skip
    return eng


@pytest.fixture(scope="session")
def venv() -> Path:
    """The virtual environment (inside the repository) that containers run gsup from."""
    return ensure_container_venv()


@pytest.fixture(scope="session")
def images(engine: Engine, venv: Path) -> Iterator[Images]:
    """An empty image and one configured as Dockerfile.example is, made once, removed at the end."""
    made = Images(engine, venv)
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture
def note(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Say what this podman could not show (an assertion skipped), now and in the summary."""

    def record(line: str) -> None:
        _NOTES.append(line)
        with capsys.disabled():
            print(f"\n    NOTE: {line}", flush=True)

    return record


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventPipe]:
    """A FIFO in the test's temporary directory (mounted into the container)."""
    pipe = EventPipe(tmp_path / "events")
    try:
        yield pipe
    finally:
        pipe.close()


@pytest.fixture
def comparison(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print a line of the init comparison now and in the session summary."""

    def record(line: str) -> None:
        _COMPARISON.append(line)
        with capsys.disabled():
            print(f"\n    {line}", flush=True)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _COMPARISON:
        terminalreporter.section("container engine: gsup vs other inits as PID 1")
        for line in _COMPARISON:
            terminalreporter.write_line(line)
    if _NOTES:
        terminalreporter.section("container engine: what this podman could not show (assertions skipped)")
        for line in dict.fromkeys(_NOTES):
            terminalreporter.write_line(line)
