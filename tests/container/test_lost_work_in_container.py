"""The lost-work scenario in a real container: `podman stop` under load, the work counted.

The counter app (examples/counter_app.py) runs in a podman container, behind
gsup or behind a shell that does not ``exec``; Redis runs on the host's
loopback (the container shares the host's network). In the middle of a
steady load the engine stops the container with ``podman stop -t 3``; then
the 200 answers are compared with the Redis counter. Both markers: it is the
lost-work scenario, and it needs the engine.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
from podman_engine import REPO, Engine

pytestmark = [pytest.mark.container, pytest.mark.scenario]


def _load_lostwork() -> ModuleType:
    """The scenario's helpers (tests/scenario/lostwork.py): Redis, steady load, line readers."""
    path = REPO / "tests" / "scenario" / "lostwork.py"
    spec = importlib.util.spec_from_file_location("gsup_container_lostwork", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


lostwork = _load_lostwork()

ENGINE_TIMEOUT = 3  # podman stop -t: the engine's SIGKILL, 3 s after its SIGTERM
APP = str(REPO / "examples" / "counter_app.py")
LOAD_TOTAL, LOAD_INTERVAL, LOAD_STOP_AT = 300, 0.02, 75  # as in tests/scenario


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    import shutil

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    server = lostwork.RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("frontend", ["gsup", "sh -c (no exec)"])
def test_counter_app_container_stopped_under_load(
    engine: Engine,
    venv: Path,
    redis: object,
    tmp_path: Path,
    frontend: str,
    comparison: Callable[[str], None],
) -> None:
    """Behind gsup as the container's PID 1, `podman stop` in the middle of the load loses no
    accepted request; behind a non-exec shell the engine's SIGKILL loses some."""
    port = lostwork.free_port()
    key = f"hits:{uuid.uuid4().hex}"
    python = str(venv / "bin" / "python")
    app = [python, APP, "--host", "127.0.0.1", "--port", str(port)]
    app += ["--redis", redis.address, "--key", key]  # type: ignore[attr-defined]
    if frontend == "gsup":
        argv = [str(venv / "bin" / "gsup"), "--platform-timeout", str(ENGINE_TIMEOUT), "--", *app]
    else:
        argv = ["sh", "-c", f"{shlex.join(app)}; exit $?"]
    with engine.container(tmp_path / "rootfs") as c:
        c.run(argv)
        follow = subprocess.Popen(
            [*engine.base, "logs", "--follow", c.name],
            env=engine.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert follow.stdout is not None
            logs = lostwork.Lines(follow.stdout)
            logs.wait_for(lambda s: "counter_app: ready" in s, 30, "the app's ready line")
            load = lostwork.SteadyLoad(port, total=LOAD_TOTAL, interval=LOAD_INTERVAL, mark_at=LOAD_STOP_AT)
            load.start()
            try:
                assert load.marked.wait(20), "the load did not get going"
                stopped = c.stop(timeout=ENGINE_TIMEOUT)
                load.join(30)
            finally:
                load.abort()
            code = c.exit_code()
            follow.wait(timeout=30)  # ends with the container
        finally:
            if follow.poll() is None:
                follow.kill()
                follow.wait(timeout=10)
        output = logs.text()
    counted = int(redis.command("GET", key) or 0)  # type: ignore[attr-defined]
    lost = load.accepted - counted
    comparison(
        f"counter_app in a container behind {frontend:<16} podman stop -t {ENGINE_TIMEOUT}: "
        f"accepted {load.accepted}  counter {counted}  lost {lost}  exit {code}"
        + ("  (podman had to SIGKILL)" if stopped.engine_killed else "")
    )
    if frontend == "gsup":
        assert lost == 0, f"gsup lost {lost} accepted requests\n{output}"
        assert not stopped.engine_killed, stopped.stderr
        assert code == 0, output
    else:
        assert stopped.engine_killed, "the shell was expected to ignore SIGTERM\n" + output
        assert lost > 0, f"no request lost behind a non-exec shell?\n{output}"
        assert code == 137
