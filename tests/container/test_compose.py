"""examples/compose/compose.yaml run by the real podman-compose: ``up -d``, then ``stop``.

The Compose file of the test is the example's, read with PyYAML, with only
what this machine needs instead of a registry and a network; each service's
command, stop_signal, stop_grace_period, init, depends_on and GSUP_*
environment stay the example's:

- ``build:`` becomes the image configured as Dockerfile.example is
  (conftest ``images``), with the host's directories mounted read-only, the
  app files where the Dockerfile copies them and the repository (gsup's venv);
- ``redis:7`` becomes the host's redis-server, in the empty image;
- every service uses the host's network (``network_mode: host``, no
  ``ports:``; no bridge, nothing published): REDIS_ADDR names Redis on the
  loopback, on a free port, and the app listens on a free loopback port;
- one service more, ``stubborn``: the app's settings with a child that
  ignores SIGTERM, and a 3 s stop_grace_period (GSUP_PLATFORM_TIMEOUT the
  same, as the example's rule says) so that its force-kill takes 2 s rather
  than the app's 27.

podman-compose passes stop_signal to ``podman run --stop-signal`` and
stop_grace_period to ``podman stop -t`` (its ``--verbose`` log shows each
command). It stops the services it is given all at once, so the stop is
``podman-compose stop app worker stubborn`` and then ``podman-compose stop
redis`` (examples/compose/README.md says why). The whole run happens once
(``run``); each test checks one thing.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from examplekit import EXAMPLES, yaml_documents
from podman_engine import (
    ENGINE_SIGKILL_WARNING,
    REPO,
    Engine,
    EventPipe,
    Images,
    Pid1,
    host_mounts,
    report_exit,
    unique_name,
)

from gsup.units import parse_duration

pytestmark = [pytest.mark.container, pytest.mark.timeout(180)]

EXAMPLE = EXAMPLES / "compose" / "compose.yaml"
CHILD = REPO / "tests" / "container" / "child.py"
STUBBORN_DEADLINE = 3  # seconds: stop_grace_period of the TERM-ignoring service
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def gsup_services(compose: dict[str, Any]) -> list[str]:
    """The example's services that run the image of Dockerfile.example (gsup as PID 1)."""
    return [
        name
        for name, svc in compose["services"].items()
        if (svc.get("build") or {}).get("dockerfile") == "Dockerfile.example"
    ]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def for_this_machine(
    example: dict[str, Any], project: str, images: Images, fifo: Path
) -> tuple[dict[str, Any], int]:
    """The example's Compose file as this machine can run it (see the module docstring)."""
    compose = copy.deepcopy(example)
    services = compose["services"]
    redis_port = free_port()
    host = [f"{d}:{d}:ro" for d in host_mounts()]
    app_files = [f"{src}:{dest}:ro" for src, dest in images.app_files]
    for name in gsup_services(example):
        svc = services[name]
        del svc["build"]
        svc.pop("ports", None)
        svc["image"] = images.example
        svc["network_mode"] = "host"
        svc["volumes"] = [*host, f"{REPO}:{REPO}", *app_files]
        svc["environment"]["REDIS_ADDR"] = f"127.0.0.1:{redis_port}"
        svc["environment"].update({"HOST": "127.0.0.1", "PORT": str(free_port())})
    redis = services["redis"]
    assert redis["image"].startswith("redis:") and redis["command"][0] == "redis-server", redis
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (Debian package redis-server)"
    redis["image"] = images.empty
    redis["command"] = [server, *redis["command"][1:], "--port", str(redis_port), "--bind", "127.0.0.1"]
    redis["network_mode"] = "host"
    redis["volumes"] = host
    stubborn = copy.deepcopy(services["app"])
    stubborn["command"] = ["python3", str(CHILD), str(fifo), "ignore-term"]
    stubborn["stop_grace_period"] = f"{STUBBORN_DEADLINE}s"
    stubborn["environment"]["GSUP_PLATFORM_TIMEOUT"] = f"{STUBBORN_DEADLINE}s"
    stubborn["volumes"].append(f"{fifo.parent}:{fifo.parent}")
    stubborn.pop("depends_on", None)
    services["stubborn"] = stubborn
    for name, svc in services.items():
        svc["container_name"] = f"{project}-{name}"  # ours alone, removed at the end
    return compose, redis_port


@dataclass
class Run:
    """Everything one `up -d` / `stop` of the stack showed."""

    example: dict[str, Any]
    compose: dict[str, Any]
    names: dict[str, str]
    pid1: dict[str, Pid1]
    ready: dict[str, str]
    stop: subprocess.CompletedProcess[str]
    stop_started: float
    finished: dict[str, float]
    exit_codes: dict[str, int]
    logs: dict[str, str]
    version: str


class PodmanCompose:
    """The real podman-compose (this Python's module), on this engine, for one project."""

    def __init__(self, engine: Engine, project: str, file: Path) -> None:
        self.engine, self.project, self.file = engine, project, file

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "podman_compose", "--podman-path", str(self.engine.wrapper)]
        argv += ["--in-pod", "false", "-p", self.project, "-f", str(self.file), *args]
        return subprocess.run(
            argv,
            cwd=self.file.parent,
            env=self.engine.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def check(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = self(*args, timeout=timeout)
        assert done.returncode == 0, f"podman-compose {' '.join(args)}: {done.returncode}\n{done.stderr}"
        return done


@pytest.fixture(scope="module")
def run(engine: Engine, images: Images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """`podman-compose up -d`, each service ready, `podman-compose stop`; all removed at the end."""
    (example,) = yaml_documents(EXAMPLE)
    project = unique_name()
    workdir = tmp_path_factory.mktemp("compose")
    fifo = EventPipe(workdir / "events")
    compose, _ = for_this_machine(example, project, images, fifo.path)
    file = workdir / "compose.yaml"
    file.write_text(yaml.safe_dump(compose, sort_keys=False))
    pc = PodmanCompose(engine, project, file)
    names = {name: svc["container_name"] for name, svc in compose["services"].items()}
    try:
        version = pc.check("version").stdout.strip()
        pc.check("up", "-d")
        ready: dict[str, str] = {}
        with engine.follow(names["app"]) as app, engine.follow(names["worker"]) as worker:
            ready["app"] = app.wait_for("counter_app: ready", 30)
            ready["worker"] = worker.wait_for("queue_worker: ready", 30)
        ready["stubborn"] = fifo.expect("ready", 30)
        pid1 = {name: engine.pid1(names[name]) for name in [*gsup_services(example), "stubborn"]}
        started = time.time()
        # The services first, then what they depend on: podman-compose (1.6) stops every service
        # it is given at once, not in reverse dependency order as `docker compose stop` does, and
        # a worker whose Redis is gone mid-stop fails (exit 1).
        apps = [name for name in compose["services"] if name != "redis"]
        stop = pc("--verbose", "stop", *apps, timeout=180)
        stop_redis = pc("--verbose", "stop", "redis", timeout=180)
        stop = subprocess.CompletedProcess(
            stop.args, stop.returncode or stop_redis.returncode, stop.stdout, stop.stderr + stop_redis.stderr
        )
        finished = {
            name: int(engine.check("inspect", "--format", "{{.State.FinishedAt.UnixNano}}", c)) / 1e9
            for name, c in names.items()
        }
        codes = {
            name: int(engine.check("inspect", "--format", "{{.State.ExitCode}}", c))
            for name, c in names.items()
        }
        logs = {
            name: ANSI.sub("", (d := pc.check("logs", "--no-log-prefix", name)).stdout + d.stderr)
            for name in compose["services"]
        }
        yield Run(example, compose, names, pid1, ready, stop, started, finished, codes, logs, version)
    finally:
        pc("down", "-t", "0")
        for name in names.values():  # whatever `down` left, by our own names
            engine.podman("rm", "--force", "--time", "0", name)
        fifo.close()


def test_podman_compose_version(run: Run, comparison: Callable[[str], None]) -> None:
    """The podman-compose that ran is a real release, reported with the engine under it."""
    assert re.search(r"podman-compose version\s+\d+\.\d+", run.version), run.version
    comparison(" / ".join(line for line in run.version.splitlines() if "version" in line))


def test_gsup_is_pid1_of_every_gsup_service(run: Run) -> None:
    """In each service built from Dockerfile.example gsup is PID 1, the app its child, and gsup
    has the environment the Compose file gives it (GSUP_PLATFORM_TIMEOUT = stop_grace_period)."""
    for name, pid1 in run.pid1.items():
        assert pid1.pid_in_container == 1 and pid1.is_gsup, (name, pid1)
        m = re.search(r"pid=(\d+)", run.ready[name])
        assert m and int(m[1]) != 1, f"{name}: the app must be gsup's child, not PID 1: {run.ready[name]}"
        svc = run.compose["services"][name]
        for key, value in svc["environment"].items():
            assert pid1.environ.get(key) == str(value), (name, key, pid1.environ.get(key))
        assert parse_duration(pid1.environ["GSUP_PLATFORM_TIMEOUT"]) == parse_duration(
            str(svc["stop_grace_period"])
        )


def test_stop_passes_each_stop_grace_period_to_podman_stop(run: Run) -> None:
    """`podman-compose stop` runs `podman stop -t N` with each service's stop_grace_period."""
    for name, svc in run.compose["services"].items():
        seconds = int(parse_duration(str(svc.get("stop_grace_period", "10s"))))
        assert re.search(rf" stop -t {seconds} {re.escape(run.names[name])}\b", run.stop.stderr), (
            name,
            run.stop.stderr,
        )
    assert run.stop.returncode == 0, run.stop.stderr


def test_app_and_worker_stop_inside_their_grace(run: Run) -> None:
    """The example's app and worker get SIGTERM from `podman-compose stop` through gsup, exit 0
    long before their stop_grace_period, and gsup's report (in `podman-compose logs`) says so
    with the grace it derived from it (deadline minus max(1 s, 10 %))."""
    for name in gsup_services(run.example):
        deadline = parse_duration(str(run.example["services"][name]["stop_grace_period"]))
        logs = run.logs[name]
        assert run.exit_codes[name] == 0, logs
        assert report_exit(logs) == 0, logs
        assert "received SIGTERM" in logs and "exited within the grace" in logs, logs
        grace = re.search(r"of a (\S+) grace", logs)
        assert grace and parse_duration(grace[1]) == deadline - max(1.0, 0.1 * deadline), logs
        assert run.finished[name] - run.stop_started < deadline
    assert ENGINE_SIGKILL_WARNING not in run.stop.stderr, run.stop.stderr


def test_term_ignoring_service_is_killed_by_gsup_before_the_engine(
    run: Run, comparison: Callable[[str], None]
) -> None:
    """A service whose child ignores SIGTERM is force-killed by gsup at its grace (2 s of a 3 s
    stop_grace_period): exit 137 in `podman inspect`, gsup's report in `podman-compose logs`,
    and podman never resorts to its own SIGKILL."""
    logs = run.logs["stubborn"]
    took = run.finished["stubborn"] - run.stop_started
    comparison(
        f"podman-compose stop, stop_grace_period {STUBBORN_DEADLINE}s, child ignores SIGTERM: "
        f"ended {took:.2f}s after the stop began, exit {run.exit_codes['stubborn']}, killed by "
        + ("the engine" if ENGINE_SIGKILL_WARNING in run.stop.stderr else "gsup")
    )
    assert ENGINE_SIGKILL_WARNING not in run.stop.stderr, run.stop.stderr
    assert run.exit_codes["stubborn"] == 137
    assert report_exit(logs) == 137, logs
    assert "force-killed" in logs, logs
    grace = STUBBORN_DEADLINE - 1.0
    found = re.search(r"of a (\S+) grace", logs)
    assert found and parse_duration(found[1]) == grace, logs
    # gsup's own count, from the SIGTERM it got; the engine's SIGKILL was due a second later.
    spent = re.search(r"took ([\d.]+)s of a", logs)
    assert spent and grace <= float(spent[1]) < STUBBORN_DEADLINE, logs
    assert took >= grace, f"ended {took:.2f}s after the stop began, before gsup's grace ran out"


def test_redis_service_ran_from_the_host(run: Run) -> None:
    """The example's Redis service ran (the apps connected to it at start) and stopped on the
    SIGTERM of `podman-compose stop`."""
    assert "Ready to accept connections" in run.logs["redis"], run.logs["redis"]
    assert run.exit_codes["redis"] == 0, run.logs["redis"]
