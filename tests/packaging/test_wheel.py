"""gsup's distributions: an sdist and a wheel that build, pass ``twine check`` and install alone.

``python -m build`` makes the sdist and then the wheel from that sdist (so
the sdist carries everything the wheel needs), from a copy of the working
tree; ``twine check --strict`` reads their metadata as the index would. The
wheel that ``Dockerfile.example``'s first stage builds (its own ``RUN pip
wheel`` line, run on a copy of exactly what that stage ``COPY``s) is
installed into a fresh virtual environment with nothing else in it: pip
fetches gsup's dependencies from the configured index, as it does in the
image. gsup then runs from that environment, outside the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from examplekit import DOCKERFILE, REPO, copy_sources, stages

pytestmark = pytest.mark.timeout(300)  # the first test also builds (fixtures count)

#: What the working-tree copy leaves out: caches, environments, earlier builds.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis", "results"
)


def run(argv: list[str], *, timeout: float = 240, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a build or install step that must succeed; its output."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done  # type: ignore[no-any-return]


def source_version() -> str:
    """``gsup.__version__`` as the source spells it (what setuptools reads)."""
    m = re.search(r'^__version__ = "([^"]+)"', (REPO / "gsup" / "__init__.py").read_text(), re.M)
    assert m, "no __version__ in gsup/__init__.py"
    return m[1]


def project_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: the console scripts the wheel must declare."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    with open(REPO / "pyproject.toml", "rb") as f:
        scripts: dict[str, str] = tomllib.load(f)["project"]["scripts"]
    assert "gsup" in scripts, scripts
    return scripts


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """``python -m build`` (sdist, then the wheel from it) on a copy of the working tree."""
    tree = tmp_path_factory.mktemp("tree") / "gsup"
    shutil.copytree(REPO, tree, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(tree)])
    (sdist,) = out.glob("gsup-*.tar.gz")
    (wheel,) = out.glob("gsup-*.whl")
    return Dists(sdist, wheel)


@pytest.fixture(scope="module")
def dockerfile_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of Dockerfile.example's first stage: its RUN line on a copy of what it COPYs."""
    build = stages(DOCKERFILE)[0]
    context = tmp_path_factory.mktemp("context")
    for args in build.all("COPY"):
        _, sources, dest = copy_sources(args)
        for src in sources:  # as COPY does: a directory's contents; a file into a dir/ or as dest
            if (REPO / src).is_dir():
                shutil.copytree(REPO / src, context / dest, ignore=NOT_SOURCE, dirs_exist_ok=True)
            elif dest.endswith("/"):
                (context / dest).mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / src, context / dest / Path(src).name)
            else:
                shutil.copy2(REPO / src, context / dest)
    (line,) = build.all("RUN")
    argv = line.split()
    assert argv[:2] == ["pip", "wheel"], line
    wheels = tmp_path_factory.mktemp("wheels")
    argv[argv.index("--wheel-dir") + 1] = str(wheels)  # the image's /wheels
    run([sys.executable, "-m", *argv], cwd=context)
    (wheel,) = wheels.glob("gsup-*.whl")
    return wheel


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, dockerfile_wheel: Path) -> Path:
    """A fresh virtual environment (no system site packages) with only that wheel installed."""
    env = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", str(env)])
    pip = [str(env / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "install", "--quiet", str(dockerfile_wheel)], timeout=280)
    return env


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def test_sdist_and_wheel_pass_twine_check(dists: Dists) -> None:
    """twine, the index's own checker, accepts both distributions' metadata and long description."""
    done = run([sys.executable, "-m", "twine", "check", "--strict", str(dists.sdist), str(dists.wheel)])
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_wheel_holds_the_package_and_nothing_else(dists: Dists) -> None:
    """The wheel holds every module of gsup/ and its py.typed marker, the console script that
    pyproject.toml declares, and nothing from tests/ (or any other top-level directory)."""
    names = wheel_names(dists.wheel)
    assert "gsup/py.typed" in names
    modules = {f"gsup/{p.name}" for p in (REPO / "gsup").glob("*.py")}
    assert modules <= names, f"missing: {modules - names}"
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    version = source_version()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"gsup", f"gsup-{version}.dist-info"}, tops
    with zipfile.ZipFile(dists.wheel) as z:
        scripts = z.read(f"gsup-{version}.dist-info/entry_points.txt").decode()
    for name, target in project_scripts().items():
        assert re.search(rf"^{re.escape(name)} = {re.escape(target)}$", scripts, re.M), scripts


def test_dockerfile_stage_builds_the_same_wheel(dists: Dists, dockerfile_wheel: Path) -> None:
    """What Dockerfile.example's first stage copies is enough to build the same wheel as the
    full source tree (same file name, same files)."""
    assert dockerfile_wheel.name == dists.wheel.name
    assert wheel_names(dockerfile_wheel) == wheel_names(dists.wheel)


def gsup_env(tmp_path: Path) -> dict[str, str]:
    """A plain environment: no platform to detect, the venv's tools first on PATH."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}


def test_installed_wheel_runs_outside_the_repository(venv: Path, tmp_path: Path) -> None:
    """From a fresh environment with only the wheel (and the dependencies pip fetched), gsup
    imports from that environment, reports the source's version, and `gsup check` and
    `gsup -- true` succeed."""
    env = gsup_env(tmp_path)
    where = run([str(venv / "bin" / "python"), "-c", "import gsup; print(gsup.__file__)"], cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    gsup = str(venv / "bin" / "gsup")
    version = run([gsup, "--version"], cwd=tmp_path, env=env)
    assert source_version() in version.stdout + version.stderr
    check = run([gsup, "check", "--", "true"], cwd=tmp_path, env=env)
    assert re.search(r"^\s+--grace\s+\S+", check.stdout, re.M), check.stdout
    true = run([gsup, "--", "true"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)
    assert re.search(r"^gsup: exit\s+0$", true.stderr, re.M), true.stderr


@pytest.fixture
def started(venv: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The installed gsup supervising a child that prints 'ready' and then sleeps; killed by pid."""
    child = "import time; print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen(
        [str(venv / "bin" / "gsup"), "--", sys.executable, "-c", child],
        cwd=tmp_path,
        env=gsup_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            import psutil

            for p in psutil.Process(proc.pid).children(recursive=True):
                p.kill()
            proc.kill()
        proc.communicate(timeout=10)


def test_installed_wheel_forwards_sigterm(started: subprocess.Popen[str]) -> None:
    """The installed gsup (past its hand-over to the lean supervisor) forwards a SIGTERM to its
    child, which dies of it: exit 143 and a report that says so."""
    assert started.stdout is not None
    assert started.stdout.readline().strip() == "ready"
    started.send_signal(signal.SIGTERM)
    _, err = started.communicate(timeout=30)
    assert started.returncode == 143, err
    assert "stopped by  SIGTERM" in err, err
    assert re.search(r"^gsup: exit\s+143$", err, re.M), err
