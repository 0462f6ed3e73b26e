"""The deployable examples parse, and the numbers they carry agree with gsup's shutdown budget.

For each platform file: the deadline it gives the platform equals the one it
tells gsup (``GSUP_PLATFORM_TIMEOUT``), and gsup's budget, margin = max(1 s,
10 % of the deadline), grace = deadline - stop delay - margin, puts gsup's
SIGKILL before the platform's. The numbers are computed here from that rule,
compared with ``gsup.budget.resolve``, and with what the real ``gsup check``
prints for the example's environment (which also proves gsup accepts every
``GSUP_*`` value in it). The files are read by the tools that consume
them: YAML by PyYAML, JSON by ``json``, the systemd unit by ``systemd-analyze
verify``, the Dockerfiles by hadolint; the Compose and Kubernetes files are
also run by podman (``tests/container``). Fast, no marker: no container, no
Redis.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from examplekit import EXAMPLES, REPO, copy_sources, dockerfile, exec_form, hadolint, stages, yaml_documents

from gsup.budget import Platform, resolve
from gsup.units import parse_duration, parse_signal

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


@pytest.mark.timeout(60)
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own checker reads the unit without a complaint (no unknown key, no bad value)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd, see tests/install-deps)"
    text = (EXAMPLES / "systemd" / "counter-app.service").read_text()
    # verify also checks that ExecStart's program exists; the unit's venv is not installed here,
    # so an executable that is stands in for it. Every other line is the example's.
    venv_gsup = "/opt/counter-app/venv/bin/gsup"
    assert venv_gsup in text
    unit = tmp_path / "counter-app.service"
    unit.write_text(text.replace(venv_gsup, sys.executable))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


# -- Dockerfiles --------------------------------------------------------------------------


def only(instructions: list[tuple[str, str]], word: str) -> str:
    found = [a for w, a in instructions if w == word]
    assert len(found) == 1, f"{word}: expected exactly one, found {found}"
    return found[0]


DOCKERFILES = {"Dockerfile.example": REPO / "Dockerfile.example", "nginx": EXAMPLES / "nginx" / "Dockerfile"}
SLIM = r"python:3(\.\d+)*-slim(-\w+)?"


def shell_commands(run: str) -> list[list[str]]:
    """The commands of a shell-form RUN (``a && b``), each split like the shell does."""
    return [shlex.split(part) for part in run.split("&&")]


def test_dockerfile_example(tmp_path: Path) -> None:
    """Dockerfile.example builds a slim Python image that installs gsup with pip, runs as a
    non-root user, and makes gsup PID 1 with SIGTERM as the stop signal."""
    ins = dockerfile(REPO / "Dockerfile.example")
    final = stages(REPO / "Dockerfile.example")[-1]
    for base in (a.split()[0] for w, a in ins if w == "FROM"):
        assert re.fullmatch(SLIM, base), base
    assert any(w == "RUN" and re.search(r"pip install .*\bgsup\b", a) for w, a in ins)
    users = final.all("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as root"
    assert parse_signal(only(ins, "STOPSIGNAL")) == signal.SIGTERM
    assert exec_form(only(ins, "ENTRYPOINT")) == ["gsup", "--"]
    assert_app_command(exec_form(only(ins, "CMD")))
    for w, a in ins:
        if w == "COPY":
            stage, sources, _ = copy_sources(a)
            for src in sources if stage is None else ():  # --from: a path in another stage
                assert (REPO / src).exists(), f"COPY source {src} does not exist"
    # As the image runs it under docker (detected, 10 s), gsup accepts it.
    gsup_check({"container": "docker"}, exec_form(only(ins, "CMD")), tmp_path)


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_dockerfile_installs_the_wheel_built_from_this_repository(name: str) -> None:
    """The image's gsup is the wheel that its first stage builds from this repository's source
    (pyproject.toml, README.md, gsup/), never a name looked up on a package index."""
    build, final = stages(DOCKERFILES[name])
    assert build.name and re.fullmatch(SLIM, build.base) and build.base == final.base
    copied = sorted(src for args in build.all("COPY") for src in copy_sources(args)[1])
    assert copied == ["README.md", "gsup/", "pyproject.toml"], copied
    (run,) = build.all("RUN")
    (wheel,) = shell_commands(run)
    assert wheel[:2] == ["pip", "wheel"] and "--no-deps" in wheel and wheel[-1] == ".", wheel
    wheel_dir = wheel[wheel.index("--wheel-dir") + 1]
    (taken,) = [copy_sources(a) for a in final.all("COPY") if copy_sources(a)[0] == build.name]
    assert taken[1] == [wheel_dir.rstrip("/") + "/"], taken
    installs = [c for r in final.all("RUN") for c in shell_commands(r) if c[:2] == ["pip", "install"]]
    assert installs, "the final stage installs nothing"
    for install in installs:
        targets = [a for a in install[2:] if not a.startswith("-")]
        assert targets and all(a.startswith(taken[2]) and a.endswith(".whl") for a in targets), (
            f"pip installs something other than the copied wheel: {install}"
        )
    for stage in (build, final):
        for r in stage.all("RUN"):
            for c in shell_commands(r):
                assert not (c[:2] == ["pip", "install"] and "gsup" in c), f"gsup from an index: {c}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_dockerfile_passes_hadolint(name: str) -> None:
    """hadolint finds nothing in the example Dockerfiles, and every rule they ignore is
    justified by a comment just above the ignore."""
    path = DOCKERFILES[name]
    done = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            before = lines[i - 1].strip() if i else ""
            assert before.startswith("#") and "hadolint" not in before and len(before) > 20, (
                f"{path.name}:{i + 1}: an ignore without a reason on the line above"
            )


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


# -- the demo and the stack: run by gsup as their READMEs say -------------------------------


@contextmanager
def supervised(argv: list[str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """gsup started without a terminal; whatever is left of it at the end is killed by pid."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # no terminal: gsup gives the child a group of its own
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:  # failed half-way: kill gsup's descendants, then gsup, by pid
            import psutil

            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
        proc.communicate(timeout=10)


def read_until(proc: subprocess.Popen[str], text: str) -> list[str]:
    """gsup's stdout lines up to the first one containing *text* (the test's timeout bounds it)."""
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if text in line:
            return lines
    raise AssertionError(f"gsup's stdout ended without {text!r}: {lines}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("presses", [1, 2])
def test_demo_stops_on_ctrl_c(presses: int) -> None:
    """The README's first command: one Ctrl+C (SIGINT) lets the demo finish its job and exit 0
    inside the grace; a second one makes gsup force-kill it (exit 137)."""
    argv = [sys.executable, "-m", "gsup", "--", sys.executable, str(EXAMPLES / "demo.py")]
    with supervised(argv, REPO) as proc:
        read_until(proc, "demo: ready")
        proc.send_signal(signal.SIGINT)
        read_until(proc, "demo: got SIGINT")
        if presses == 2:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    if presses == 1:
        assert proc.returncode == 0, err
        assert "exited within the grace" in err, err
    else:
        assert proc.returncode == 137, err
        assert "force-killed" in err, err


@pytest.mark.timeout(60)
def test_stack_example_starts_in_order_and_stops_cleanly() -> None:
    """examples/stack/gsup.toml, run from the repository root as its README says: migrate, then
    web once it answers, then worker; SIGTERM stops worker before web and gsup exits 0."""
    argv = [sys.executable, "-m", "gsup", "--config", "examples/stack/gsup.toml"]
    with supervised(argv, REPO) as proc:
        started = read_until(proc, "worker: job 1 ")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    lines = started + out.splitlines()

    def first(text: str) -> int:
        found = [i for i, line in enumerate(lines) if text in line]
        assert found, f"no line with {text!r}:\n" + "\n".join(lines) + err
        return found[0]

    assert first("migrate: done") < first("web: listening") < first("worker: job 1 ")
    assert first("worker: stopped") < first("web: stopped"), "stop in reverse dependency order"
    assert proc.returncode == 0, err


# -- the README's "Use it in your image" --------------------------------------------------


def readme_blocks(language: str) -> list[str]:
    """The README's fenced code blocks in *language*, in order."""
    text = (REPO / "README.md").read_text()
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


def test_readme_starts_with_the_two_commands() -> None:
    """The README opens with the install-and-try command and the test command, in that order."""
    text = (REPO / "README.md").read_text()
    first = re.findall(r"^```sh\n(.*?)\n```$", text, re.M | re.S)[:2]
    assert first == [
        "pip install . && gsup -- python3 examples/demo.py",
        "bash tests/install-deps && python3 -m pytest",
    ]
    assert text.index("## Use it in your image") > text.index("bash tests/install-deps")


@pytest.mark.timeout(60)
def test_readme_dockerfile_lines_are_the_examples(tmp_path: Path) -> None:
    """The README's Dockerfile lines are Dockerfile.example's, in its order (a RUN may show the
    first of its commands), and pass hadolint on their own."""
    (block,) = readme_blocks("dockerfile")
    snippet = tmp_path / "Dockerfile"
    snippet.write_text(block)
    shown, full = dockerfile(snippet), dockerfile(REPO / "Dockerfile.example")
    at = 0
    for word, args in shown:
        for i in range(at, len(full)):
            w, a = full[i]
            same = a == args or (
                w == "RUN" and shell_commands(a)[: len(shell_commands(args))] == shell_commands(args)
            )
            if w == word and same:
                at = i + 1
                break
        else:
            raise AssertionError(f"README's {word} {args} is not in Dockerfile.example (in this order)")
    done = subprocess.run(
        [hadolint(), "--no-color", str(snippet)], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_kubectl_line_names_a_played_manifest() -> None:
    """The README's `kubectl apply -f` names an example manifest that tests/container/test_kube.py
    plays with podman."""
    lines = [ln for block in readme_blocks("sh") for ln in block.splitlines() if ln.startswith("kubectl ")]
    assert lines, "no kubectl line in the README"
    played = (REPO / "tests" / "container" / "test_kube.py").read_text()
    for line in lines:
        words = shlex.split(line.split("#")[0])
        manifest = Path(words[words.index("-f") + 1])
        assert (REPO / manifest).is_file() and manifest.parent == Path("examples/kubernetes"), line
        assert f'"{manifest.name}"' in played, f"{manifest.name} is not in test_kube's MANIFESTS"


# -- every example is consumed ----------------------------------------------------------------

#: Each file in examples/, and the test that feeds it to the tool that consumes it.
CONSUMERS = {
    "README.md": "tests/scenario/test_examples.py",  # test_example_has_readme
    "counter_app.py": "tests/scenario/test_lost_work.py",  # python3 under gsup, with Redis
    "queue_worker.py": "tests/scenario/test_lost_work.py",
    "resp.py": "tests/scenario/lostwork.py",  # imported; both services use it
    "demo.py": "tests/scenario/test_examples.py",  # gsup -- python3 demo.py, Ctrl+C
    "compose/compose.yaml": "tests/container/test_compose.py",  # podman-compose up / stop
    "compose/README.md": "tests/scenario/test_examples.py",
    "ecs/task-definition.json": "tests/scenario/test_examples.py",  # json, gsup check
    "ecs/README.md": "tests/scenario/test_examples.py",
    "kubernetes/deployment.yaml": "tests/container/test_kube.py",  # podman kube play
    "kubernetes/deployment-prestop.yaml": "tests/container/test_kube.py",
    "kubernetes/README.md": "tests/scenario/test_examples.py",
    "nginx/Dockerfile": "tests/scenario/test_examples.py",  # hadolint
    "nginx/README.md": "tests/scenario/test_examples.py",
    "shell-app/entrypoint.sh": "tests/scenario/test_lost_work.py",  # sh -n here; run there
    "shell-app/README.md": "tests/scenario/test_examples.py",
    "stack/gsup.toml": "tests/scenario/test_examples.py",  # gsup --config
    "stack/migrate.py": "tests/scenario/test_examples.py",
    "stack/web.py": "tests/scenario/test_examples.py",
    "stack/worker.py": "tests/scenario/test_examples.py",
    "stack/README.md": "tests/scenario/test_examples.py",
    "systemd/counter-app.service": "tests/scenario/test_examples.py",  # systemd-analyze verify
    "systemd/README.md": "tests/scenario/test_examples.py",
}


def test_every_example_file_is_consumed_by_a_test() -> None:
    """Every file in examples/ is listed with the test that feeds it to a real tool (python, sh,
    gsup, PyYAML, json, podman, hadolint, systemd-analyze), and that test names it."""
    files = {
        str(p.relative_to(EXAMPLES))
        for p in EXAMPLES.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert files == set(CONSUMERS), f"unlisted: {files - set(CONSUMERS)}; gone: {set(CONSUMERS) - files}"
    for name, test in CONSUMERS.items():
        path = Path(name)
        source = (REPO / test).read_text()
        key = path.parent.name if path.name == "README.md" and path.parent.name else path.stem
        assert key in source, f"{test} does not mention {name}"
