"""The README's `docker run` / `docker stop` / `docker logs` lines, run with podman's equivalents.

The lines are read from the README ("Use it in your image") and run as they
are, with podman: the image is the one configured as Dockerfile.example is
(conftest ``images``; ``docker build`` needs python:3.12-slim, which no
registry here serves), the host's directories and the app files are
mounted, and the one address that names another machine, REDIS_ADDR, points
at a Redis container whose network the app's container joins (no bridge,
nothing published: the two share a loopback of their own). gsup is told
nothing about its deadline: it detects podman (10 s) from the container
itself.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from examplekit import REPO
from podman_engine import ENGINE_SIGKILL_WARNING, Engine, Images, host_mounts, report_exit, unique_name

from gsup.units import parse_duration

pytestmark = [pytest.mark.container, pytest.mark.timeout(90)]


def readme_docker_lines() -> dict[str, list[str]]:
    """The README's `docker VERB ...` lines (comments cut), split like a shell, by verb."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Use it in your image") :]
    section = section[: section.index("\n## ", 1)]
    lines: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line.startswith("docker "):
            for command in line.split("#")[0].split("&&"):
                words = shlex.split(command)
                lines[words[1]] = words
    return lines


@dataclass(frozen=True)
class DockerRun:
    """`docker run -d --name NAME -e K=V ... IMAGE`."""

    name: str
    env: dict[str, str]
    image: str


def parse_run(words: list[str]) -> DockerRun:
    assert words[:3] == ["docker", "run", "-d"], words
    name, env, rest = "", {}, words[3:]
    while rest[0].startswith("-"):
        flag, value, rest = rest[0], rest[1], rest[2:]
        if flag == "--name":
            name = value
        elif flag == "-e":
            key, _, val = value.partition("=")
            env[key] = val
        else:
            raise AssertionError(f"the test does not know `docker run {flag}`: add it here")
    (image,) = rest
    return DockerRun(name, env, image)


@pytest.fixture
def redis(engine: Engine, images: Images) -> Iterator[str]:
    """A Redis container (the host's redis-server, no network but its own loopback)."""
    name = unique_name("gsup-test-redis")
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (Debian package redis-server)"
    mounts = [arg for d in host_mounts() for arg in ("-v", f"{d}:{d}:ro")]
    try:
        engine.check(
            "run", "-d", "--name", name, "--network", "none", *mounts, images.empty, server, "--save", ""
        )
        yield name
    finally:
        engine.podman("rm", "--force", "--time", "0", name)


def test_readme_docker_run_and_stop(engine: Engine, images: Images, redis: str) -> None:
    """The README's `docker run -d` starts gsup as PID 1 with the app, `docker stop -t 10` ends it
    inside gsup's grace (the detected 10 s less its 1 s margin) with exit 0 and no SIGKILL from
    the engine, and `docker logs` shows gsup's report."""
    lines = readme_docker_lines()
    assert set(lines) == {"build", "run", "stop", "logs"}, lines
    build = lines["build"]
    assert build[build.index("-f") + 1] == "Dockerfile.example"
    run = parse_run(lines["run"])
    assert build[build.index("-t") + 1] == run.image
    assert lines["stop"][:3] == ["docker", "stop", "-t"] and lines["stop"][4:] == [run.name]
    assert lines["logs"] == ["docker", "logs", run.name]
    timeout = int(lines["stop"][3])

    name = unique_name()
    env = {**run.env, "REDIS_ADDR": "127.0.0.1:6379"}  # the README's Redis is another machine's
    mounts = [arg for d in host_mounts() for arg in ("-v", f"{d}:{d}:ro")]
    mounts += ["-v", f"{REPO}:{REPO}"]
    mounts += [arg for src, dest in images.app_files for arg in ("-v", f"{src}:{dest}:ro")]
    args = ["run", "-d", "--name", name, *(a for k, v in env.items() for a in ("-e", f"{k}={v}"))]
    try:
        engine.check(*args, "--network", f"container:{redis}", *mounts, images.example)
        with engine.follow(name) as logs:
            logs.wait_for("counter_app: ready", 30)
        pid1 = engine.pid1(name)
        assert pid1.pid_in_container == 1 and pid1.is_gsup, pid1
        done = engine.podman("stop", "-t", str(timeout), name, timeout=timeout + 60)
        code = int(engine.check("inspect", "--format", "{{.State.ExitCode}}", name))
        out = engine.podman("logs", name)
    finally:
        engine.podman("rm", "--force", "--time", "0", name)
    text = out.stdout + out.stderr
    assert done.returncode == 0 and ENGINE_SIGKILL_WARNING not in done.stderr, done.stderr
    assert code == 0, text
    assert report_exit(text) == 0 and "exited within the grace" in text, text
    grace = re.search(r"of a (\S+) grace", text)
    assert grace and parse_duration(grace[1]) == timeout - max(1.0, 0.1 * timeout), text
