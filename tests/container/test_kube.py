"""examples/kubernetes/*.yaml played by the real ``podman kube play``, stopped by ``podman pod stop``.

The manifest of the test is the example's Deployment, read with PyYAML; the
pod's terminationGracePeriodSeconds, the container's args, env, lifecycle
and readinessProbe stay the example's. What changes, and why:

- ``metadata.name``: ``gsup-test-<random>``, so the pod is this test's own;
- ``replicas``: 1 (podman plays every replica as a pod of its own, here);
- the image: the one configured as Dockerfile.example is (conftest
  ``images``), with hostPath volumes for the host's directories (read-only),
  the app files where the Dockerfile copies them and the repository;
- ``ports``: dropped, with ``--network none``: podman 4.3 publishes each
  containerPort on the host (the kubelet does not), and the pod needs no
  network beyond its own loopback;
- Redis: a second container in the pod (the host's redis-server in the
  empty image) on the pod's loopback, and a hosts file that names it
  ``redis``, so the example's ``REDIS_ADDR=redis:6379`` stands as it is.

Then: gsup is PID 1 with the environment the manifest sets, and
``podman pod stop -t N`` (N = terminationGracePeriodSeconds) ends the app
inside gsup's grace with exit 0. What this podman lacks is said (``note``)
and only that assertion is skipped: copying terminationGracePeriodSeconds
into the container's stop timeout (podman >= 4.7), running the preStop
hook and the readiness probe (the kubelet's work).
"""

from __future__ import annotations

import copy
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from examplekit import EXAMPLES, REPO, yaml_documents
from podman_engine import ENGINE_SIGKILL_WARNING, Engine, Images, Pid1, host_mounts, report_exit, unique_name

from gsup.units import parse_duration

pytestmark = [pytest.mark.container, pytest.mark.timeout(120)]

MANIFESTS = ["deployment.yaml", "deployment-prestop.yaml"]
STOP_TIMEOUT_FROM_GRACE = (4, 7)  # podman copies terminationGracePeriodSeconds from this version on


def prestop_seconds(container: dict[str, Any]) -> float:
    """The preStop hook's sleep (0 without one): the part of the grace before SIGTERM."""
    hook = (container.get("lifecycle") or {}).get("preStop")
    if not hook:
        return 0.0
    argv = hook["exec"]["command"]
    assert argv[0] == "sleep" and len(argv) == 2, argv
    return parse_duration(argv[1])


def for_this_machine(example: dict[str, Any], name: str, images: Images, hosts: Path) -> dict[str, Any]:
    """The example's Deployment as podman here can play it (see the module docstring)."""
    doc = copy.deepcopy(example)
    doc["metadata"]["name"] = name
    doc["spec"]["replicas"] = 1
    pod = doc["spec"]["template"]["spec"]
    (app,) = pod["containers"]
    app["image"] = images.example
    app.pop("ports", None)
    volumes: list[dict[str, Any]] = []
    host: list[dict[str, Any]] = []

    def mount(path: Path | str, at: str, kind: str, read_only: bool = True) -> dict[str, Any]:
        vname = f"v{len(volumes)}"
        volumes.append({"name": vname, "hostPath": {"path": str(path), "type": kind}})
        return {"name": vname, "mountPath": at, "readOnly": read_only}

    host = [mount(d, d, "Directory") for d in host_mounts()]
    host.append(mount(hosts, "/etc/hosts", "File"))
    app["volumeMounts"] = [
        *host,
        mount(REPO, str(REPO), "Directory", read_only=False),
        *(mount(src, dest, "File") for src, dest in images.app_files),
    ]
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (Debian package redis-server)"
    redis = [server, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", "6379"]
    pod["containers"].append(
        {"name": "redis", "image": images.empty, "command": redis, "volumeMounts": list(host)}
    )
    pod["volumes"] = volumes
    return doc


@dataclass
class Played:
    """One manifest played, its app ready, then stopped."""

    example: dict[str, Any]
    container: str
    pid1: Pid1
    ready: str
    stop_timeout: int
    probe: tuple[str, int, int]
    version: tuple[int, ...]
    stop_seconds: float
    stop_stderr: str
    stop_code: int
    exit_code: int
    logs: str


def container_probe(engine: Engine, container: str, example: dict[str, Any]) -> tuple[str, int, int]:
    """The readinessProbe's GET, sent from inside the pod (podman does not probe): path, port, status."""
    (spec,) = example["spec"]["template"]["spec"]["containers"]
    probe = spec["readinessProbe"]["httpGet"]
    port = {p.get("name"): p["containerPort"] for p in spec["ports"]}.get(probe["port"], probe["port"])
    code = (
        "import urllib.request, sys; "
        f"print(urllib.request.urlopen('http://127.0.0.1:{port}{probe['path']}', timeout=5).status)"
    )
    status = engine.check("exec", container, "python3", "-c", code).strip()
    return probe["path"], int(port), int(status)


@pytest.fixture(scope="module", params=MANIFESTS)
def played(
    request: pytest.FixtureRequest, engine: Engine, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Played]:
    """`podman kube play` of one example manifest, the app ready, `podman pod stop -t GRACE`."""
    (example,) = [d for d in yaml_documents(EXAMPLES / "kubernetes" / request.param) if d]
    name = unique_name()
    workdir = tmp_path_factory.mktemp("kube")
    hosts = workdir / "hosts"
    hosts.write_text("127.0.0.1 localhost redis\n")
    manifest = workdir / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(for_this_machine(example, name, images, hosts), sort_keys=False))
    period = int(example["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])
    pods: list[str] = []
    try:
        engine.check("kube", "play", "--network", "none", str(manifest), timeout=120)
        pods = engine.check("pod", "ps", "--filter", f"name={name}", "--format", "{{.Name}}").split()
        (pod,) = pods
        container = f"{pod}-app"
        with engine.follow(container) as logs:
            ready = logs.wait_for("counter_app: ready", 30)
        pid1 = engine.pid1(container)
        stop_timeout = int(engine.check("inspect", "--format", "{{.Config.StopTimeout}}", container))
        probe = container_probe(engine, container, example)
        start = time.monotonic()
        stop = engine.podman("pod", "stop", "-t", str(period), pod, timeout=period + 60)
        seconds = time.monotonic() - start
        code = int(engine.check("inspect", "--format", "{{.State.ExitCode}}", container))
        out = engine.podman("logs", container)
        yield Played(
            example,
            container,
            pid1,
            ready,
            stop_timeout,
            probe,
            engine.version(),
            seconds,
            stop.stderr,
            stop.returncode,
            code,
            out.stdout + out.stderr,
        )
    finally:
        engine.podman("kube", "down", str(manifest), timeout=120)
        for pod in pods:  # whatever `kube down` left, by our own name
            engine.podman("pod", "rm", "--force", "--time", "0", pod, timeout=60)


def app_spec(played: Played) -> tuple[int, dict[str, Any]]:
    pod = played.example["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return int(pod["terminationGracePeriodSeconds"]), container


def test_gsup_is_pid1_with_the_manifests_environment(played: Played) -> None:
    """In the played pod gsup is PID 1 (the image's ENTRYPOINT, the manifest's args after it), the
    app is its child, and gsup has every variable the manifest sets, GSUP_PLATFORM_TIMEOUT being
    terminationGracePeriodSeconds less the preStop hook."""
    period, container = app_spec(played)
    assert played.pid1.pid_in_container == 1 and played.pid1.is_gsup, played.pid1
    m = re.search(r"pid=(\d+)", played.ready)
    assert m and int(m[1]) != 1, played.ready
    for var in container["env"]:
        assert played.pid1.environ.get(var["name"]) == str(var["value"]), (var, played.pid1.environ)
    timeout = parse_duration(played.pid1.environ["GSUP_PLATFORM_TIMEOUT"])
    assert timeout + prestop_seconds(container) == period


def test_pod_stop_ends_the_app_inside_gsups_grace(played: Played, note: Callable[[str], None]) -> None:
    """`podman pod stop -t terminationGracePeriodSeconds`: gsup drains for GSUP_STOP_DELAY, forwards
    SIGTERM, the app exits 0 inside the grace gsup derived (deadline - delay - max(1 s, 10 %)),
    and the engine never sends its SIGKILL."""
    period, container = app_spec(played)
    env = {e["name"]: str(e["value"]) for e in container["env"]}
    deadline = parse_duration(env["GSUP_PLATFORM_TIMEOUT"])
    delay = parse_duration(env.get("GSUP_STOP_DELAY", "0"))
    logs = played.logs
    assert played.stop_code == 0, played.stop_stderr
    assert ENGINE_SIGKILL_WARNING not in played.stop_stderr, played.stop_stderr
    assert played.exit_code == 0, logs
    assert report_exit(logs) == 0, logs
    assert "received SIGTERM" in logs and "exited within the grace" in logs, logs
    grace = re.search(r"of a (\S+) grace", logs)
    assert grace and parse_duration(grace[1]) == deadline - delay - max(1.0, 0.1 * deadline), logs
    assert delay <= played.stop_seconds < delay + parse_duration(grace[1]) < period
    if prestop_seconds(container):
        assert "draining" not in logs, "drain once: preStop or GSUP_STOP_DELAY, not both"
        note(
            "podman kube play does not run lifecycle.preStop hooks (the kubelet does): SIGTERM came "
            "at once, not after the hook's sleep; that time is budgeted in tests/scenario/test_examples.py"
        )


def test_stop_timeout_is_terminationGracePeriodSeconds(played: Played, note: Callable[[str], None]) -> None:
    """The container's stop timeout is the pod's terminationGracePeriodSeconds (podman >= 4.7),
    so a plain `podman pod stop` gives gsup the same deadline as the kubelet."""
    period, _ = app_spec(played)
    version = ".".join(map(str, played.version))
    if played.version < STOP_TIMEOUT_FROM_GRACE:
        why = (
            f"podman {version} < 4.7 does not copy terminationGracePeriodSeconds ({period}) into the "
            f"stop timeout (it is {played.stop_timeout}): the test stops the pod with -t {period}"
        )
        note(why)
        pytest.skip(why)
    assert played.stop_timeout == period


def test_readiness_probe_endpoint_answers(played: Played, note: Callable[[str], None]) -> None:
    """The readiness probe the manifest declares (httpGet on the named port) answers 200 from
    inside the pod while the app serves."""
    _, container = app_spec(played)
    probe = container["readinessProbe"]["httpGet"]
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    assert played.probe == (probe["path"], ports.get(probe["port"], probe["port"]), 200), played.probe
    note(
        f"podman {'.'.join(map(str, played.version))} does not run readiness probes itself (the kubelet does)"
    )
