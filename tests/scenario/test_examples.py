"""The deployable examples parse, and the numbers they carry agree with gsup's shutdown budget.

For each platform file: the deadline it gives the platform equals the one it
tells gsup (``GSUP_PLATFORM_TIMEOUT``), and gsup's budget, margin = max(1 s,
10 % of the deadline), grace = deadline - stop delay - margin, puts gsup's
SIGKILL before the platform's. The numbers are computed here from that rule,
compared with ``gsup.budget.resolve``, and with what the real ``gsup check``
prints for the example's environment (which also proves gsup accepts every
``GSUP_*`` value in it). Fast, no marker: no container, no Redis.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import miniyaml
import pytest

from gsup.budget import Platform, resolve
from gsup.units import parse_duration, parse_signal

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


# -- the budget rule, and gsup's own view of it --------------------------------------------


def spec_budget(deadline: float, stop_delay: float = 0.0) -> tuple[float, float]:
    """(grace, margin) by SPEC §4's arithmetic."""
    margin = max(1.0, 0.1 * deadline)
    return deadline - stop_delay - margin, margin


def gsup_check(env: dict[str, str], command: list[str], tmp_path: Path) -> dict[str, str]:
    """Run the real ``gsup check`` with only *env* (plus PATH); its settings rows."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env}
    done = subprocess.run(
        [sys.executable, "-m", "gsup", "check", "--", *command],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"gsup check refused {env}:\n{done.stdout}{done.stderr}"
    rows = dict(re.findall(r"^\s+(--[a-z-]+)\s+(\S+)", done.stdout, re.M))
    assert "--grace" in rows, f"no --grace row in gsup check's output:\n{done.stdout}"
    return rows


def assert_budget(
    *,
    platform: Platform,
    platform_deadline: float,
    signal_after: float,
    gsup_env: dict[str, str],
    detect_env: dict[str, str],
    command: list[str],
    tmp_path: Path,
) -> float:
    """The example's gsup settings fit the platform's deadline; returns gsup's grace.

    *platform_deadline*: seconds from the platform's first move (stop request)
    to its SIGKILL. *signal_after*: when, in those seconds, the stop signal
    reaches gsup (after a preStop hook). *gsup_env*: the example's GSUP_*
    variables; *detect_env*: what makes gsup detect the platform.
    """
    timeout = parse_duration(gsup_env["GSUP_PLATFORM_TIMEOUT"])
    assert timeout == platform_deadline - signal_after, (
        f"GSUP_PLATFORM_TIMEOUT={gsup_env['GSUP_PLATFORM_TIMEOUT']} but the platform kills "
        f"{platform_deadline - signal_after:g}s after gsup gets its signal"
    )
    stop_delay = parse_duration(gsup_env.get("GSUP_STOP_DELAY", "0"))
    grace, margin = spec_budget(timeout, stop_delay)
    assert grace > 0, f"no grace left: {timeout} - {stop_delay} - {margin}"
    gsup_kills_at = signal_after + stop_delay + grace
    assert gsup_kills_at + margin <= platform_deadline + 1e-9
    assert gsup_kills_at < platform_deadline

    budget = resolve(platform, platform_timeout=timeout, stop_delay=stop_delay)
    assert math.isclose(budget.grace, grace, abs_tol=1e-6), (budget, grace)
    assert math.isclose(budget.margin, margin)

    rows = gsup_check({**detect_env, **gsup_env}, command, tmp_path)
    assert rows["--platform"] == platform.value, rows
    assert math.isclose(parse_duration(rows["--grace"]), grace, abs_tol=0.05), rows
    return grace


def yaml_documents(path: Path) -> list[Any]:
    """The documents of a YAML example; PyYAML, when installed, must read them alike."""
    text = path.read_text()
    docs = miniyaml.load_all(text)
    try:
        import yaml
    except ImportError:
        return docs
    assert list(yaml.safe_load_all(text)) == docs, f"{path}: the parsers disagree"
    return docs


def env_list(entries: list[dict[str, str]]) -> dict[str, str]:
    """Kubernetes/ECS ``[{name, value}]`` -> dict."""
    return {e["name"]: str(e["value"]) for e in entries}


def gsup_vars(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("GSUP_")}


def assert_app_command(command: list[str]) -> None:
    """The command an example gives the image names an app that exists in examples/."""
    assert command[0] == "python3", command
    assert (EXAMPLES / command[1]).is_file(), f"{command[1]} is not in examples/"


# -- Kubernetes ---------------------------------------------------------------------------


def _prestop_seconds(container: dict[str, Any]) -> float:
    pre = (container.get("lifecycle") or {}).get("preStop")
    if not pre:
        return 0.0
    if "sleep" in pre:
        return float(pre["sleep"]["seconds"])
    argv = pre["exec"]["command"]
    assert os.path.basename(argv[0]) == "sleep" and len(argv) == 2, f"preStop: {argv}"
    return parse_duration(argv[1])


@pytest.mark.parametrize("name", ["deployment.yaml", "deployment-prestop.yaml"])
def test_kubernetes_deployment(name: str, tmp_path: Path) -> None:
    """The Kubernetes example tells gsup terminationGracePeriodSeconds (less any preStop
    hook), so gsup's SIGKILL comes before the kubelet's."""
    (deployment,) = [d for d in yaml_documents(EXAMPLES / "kubernetes" / name) if d]
    assert deployment["kind"] == "Deployment"
    pod = deployment["spec"]["template"]["spec"]
    period = pod["terminationGracePeriodSeconds"]
    assert isinstance(period, int) and period > 0
    (container,) = pod["containers"]
    assert "command" not in container, "`command` would replace the image's ENTRYPOINT (gsup)"
    assert_app_command(container["args"])
    env = env_list(container["env"])
    prestop = _prestop_seconds(container)
    if prestop:
        assert "GSUP_STOP_DELAY" not in env, "drain once: preStop or GSUP_STOP_DELAY, not both"
    grace = assert_budget(
        platform=Platform.KUBERNETES,
        platform_deadline=period,
        signal_after=prestop,
        gsup_env=gsup_vars(env),
        detect_env={"KUBERNETES_SERVICE_HOST": "10.0.0.1"},
        command=container["args"],
        tmp_path=tmp_path,
    )
    assert grace > 0
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    ports = {p.get("name") for p in container["ports"]} | {p["containerPort"] for p in container["ports"]}
    assert probe["port"] in ports


# -- Compose ------------------------------------------------------------------------------


def test_compose_file(tmp_path: Path) -> None:
    """Each gsup service in the Compose example tells gsup its stop_grace_period, and runs
    gsup as the only init."""
    (compose,) = yaml_documents(EXAMPLES / "compose" / "compose.yaml")
    gsup_services = {
        name: svc
        for name, svc in compose["services"].items()
        if svc.get("build", {}).get("dockerfile") == "Dockerfile.example"
    }
    assert gsup_services, "no service runs the gsup image"
    for name, svc in gsup_services.items():
        build = svc["build"]
        assert (EXAMPLES / "compose" / build["context"] / build["dockerfile"]).resolve().is_file()
        assert svc.get("init") is not True, f"{name}: init: true puts docker-init before gsup"
        parse_signal(svc.get("stop_signal", "SIGTERM"))
        assert_app_command(svc["command"])
        env = {k: str(v) for k, v in svc["environment"].items()}
        assert_budget(
            platform=Platform.COMPOSE,
            platform_deadline=parse_duration(str(svc["stop_grace_period"])),
            signal_after=0.0,
            gsup_env=gsup_vars(env),
            detect_env={},
            command=svc["command"],
            tmp_path=tmp_path,
        )


# -- ECS ----------------------------------------------------------------------------------


def test_ecs_task_definition(tmp_path: Path) -> None:
    """The ECS example tells gsup its stopTimeout (within Fargate's 120 s) and keeps gsup
    as the entry point and the only init."""
    task = json.loads((EXAMPLES / "ecs" / "task-definition.json").read_text())
    (container,) = task["containerDefinitions"]
    stop_timeout = container["stopTimeout"]
    assert isinstance(stop_timeout, int) and 0 < stop_timeout <= 120
    assert container.get("entryPoint", ["gsup", "--"]) == ["gsup", "--"]
    assert not container.get("linuxParameters", {}).get("initProcessEnabled")
    assert_app_command(container["command"])
    assert_budget(
        platform=Platform.ECS,
        platform_deadline=stop_timeout,
        signal_after=0.0,
        gsup_env=gsup_vars(env_list(container["environment"])),
        detect_env={"ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/x"},
        command=container["command"],
        tmp_path=tmp_path,
    )


# -- systemd ------------------------------------------------------------------------------


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit: section -> key -> every value (keys like Environment= repeat)."""
    units: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = units.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not Key=Value: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return units


def test_systemd_unit(tmp_path: Path) -> None:
    """The systemd example signals only gsup first (KillMode=mixed) and tells gsup its
    TimeoutStopSec."""
    service = read_unit(EXAMPLES / "systemd" / "counter-app.service")["Service"]
    assert service["KillMode"] == ["mixed"]
    assert parse_signal(service["KillSignal"][0]) == signal.SIGTERM
    env = dict(v.split("=", 1) for v in service["Environment"])
    argv = shlex.split(service["ExecStart"][0])
    assert os.path.basename(argv[0]) == "gsup" and "--" in argv, argv
    app = argv[argv.index("--") + 1 :]
    assert os.path.basename(app[1]) == "counter_app.py"
    assert_budget(
        platform=Platform.SYSTEMD,
        platform_deadline=parse_duration(service["TimeoutStopSec"][0]),
        signal_after=0.0,
        gsup_env=gsup_vars(env),
        detect_env={"INVOCATION_ID": "0123456789abcdef0123456789abcdef"},
        command=app,
        tmp_path=tmp_path,
    )


# -- Dockerfiles --------------------------------------------------------------------------


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, args = pending.strip().partition(" ")
        out.append((word.upper(), args.strip()))
        pending = ""
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), args
    return value


def only(instructions: list[tuple[str, str]], word: str) -> str:
    found = [a for w, a in instructions if w == word]
    assert len(found) == 1, f"{word}: expected exactly one, found {found}"
    return found[0]


def test_dockerfile_example(tmp_path: Path) -> None:
    """Dockerfile.example builds a slim Python image that installs gsup with pip, runs as a
    non-root user, and makes gsup PID 1 with SIGTERM as the stop signal."""
    ins = dockerfile(REPO / "Dockerfile.example")
    assert re.fullmatch(r"python:3(\.\d+)*-slim(-\w+)?", only(ins, "FROM")), only(ins, "FROM")
    assert any(w == "RUN" and re.search(r"pip install .*\bgsup\b", a) for w, a in ins)
    users = [a for w, a in ins if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as root"
    assert parse_signal(only(ins, "STOPSIGNAL")) == signal.SIGTERM
    assert exec_form(only(ins, "ENTRYPOINT")) == ["gsup", "--"]
    assert_app_command(exec_form(only(ins, "CMD")))
    for w, a in ins:
        if w == "COPY":
            sources = [s for s in a.split() if not s.startswith("--")][:-1]
            for src in sources:
                assert (REPO / src).exists(), f"COPY source {src} does not exist"
    # As the image runs it under docker (detected, 10 s), gsup accepts it.
    gsup_check({"container": "docker"}, exec_form(only(ins, "CMD")), tmp_path)


def test_nginx_dockerfile_rewrites_term_to_quit(tmp_path: Path) -> None:
    """The nginx example's entrypoint turns the platform's SIGTERM into nginx's graceful QUIT,
    and runs the nginx master in the foreground."""
    ins = dockerfile(EXAMPLES / "nginx" / "Dockerfile")
    entrypoint = exec_form(only(ins, "ENTRYPOINT"))
    cmd = exec_form(only(ins, "CMD"))
    assert entrypoint == ["gsup", "--rewrite", "TERM:QUIT", "--"]
    assert cmd == ["nginx", "-g", "daemon off;"]
    assert parse_signal(only(ins, "STOPSIGNAL")) == signal.SIGTERM

    # The same gsup options in front of a stand-in for nginx that reports what it receives.
    stand_in = (
        "import signal, sys\n"
        "for s in (signal.SIGTERM, signal.SIGQUIT):\n"
        "    signal.signal(s, lambda n, f: (print(signal.Signals(n).name, flush=True),"
        " sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "while True: signal.pause()\n"
    )
    argv = [sys.executable, "-m", "gsup", *entrypoint[1:], sys.executable, "-c", stand_in]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # no terminal: gsup gives the child a group of its own
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # failed half-way: kill gsup's descendants, then gsup, by pid
            import psutil

            for p in psutil.Process(proc.pid).children(recursive=True):
                p.kill()
            proc.kill()
            proc.communicate(timeout=10)
    assert out.strip() == "SIGQUIT", f"stand-in saw {out!r}\n{err}"
    assert proc.returncode == 0, err


# -- the shell entrypoint, and the READMEs ----------------------------------------------


def test_shell_app_entrypoint_does_not_exec() -> None:
    """The shell-app example is valid sh and, as its point, runs the app without exec."""
    script = EXAMPLES / "shell-app" / "entrypoint.sh"
    subprocess.run(["sh", "-n", str(script)], check=True, timeout=30)
    code = [ln for ln in script.read_text().splitlines() if not ln.lstrip().startswith("#")]
    assert not any(re.match(r"\s*exec\b", ln) for ln in code)
    assert any("counter_app.py" in ln for ln in code)
    assert os.access(script, os.X_OK)


EXAMPLE_DIRS = ["kubernetes", "compose", "ecs", "systemd", "nginx", "shell-app"]


@pytest.mark.parametrize("name", EXAMPLE_DIRS)
def test_example_has_readme(name: str) -> None:
    """Every deployable example has a short README, linked from examples/README.md."""
    assert (EXAMPLES / name / "README.md").is_file()
    assert f"({name}/)" in (EXAMPLES / "README.md").read_text()
