"""A rolling update behind a real load balancer: does a request fail, is work lost?

haproxy (``balancer.Haproxy``) spreads a steady load of ``TOTAL`` requests
over the instances of the counter app; each instance is PID 1 of its own PID
namespace, as in a container. In the middle of the load a rolling update
replaces instance A by B, then B by A', the way a platform does it with one
instance of surge: start the new instance, register it, and once haproxy's
health check sees it UP, stop the old one (SIGTERM to its PID 1, SIGKILL if
it is still there ``PLATFORM_DEADLINE`` seconds later) without waiting for
its end, and deregister it once it is gone. Nobody tells haproxy about the
stop: only its health check can notice it. At the end A' is stopped cleanly
so that its last work is done, and the test compares the 200 answers with
the Redis counter.

Behind gsup with ``--health`` (haproxy checks its ``/readyz``, 503 from the
stop request on) and a ``--stop-delay`` longer than one check interval, the
old instance leaves the rotation before its app gets the signal: no request
fails and every 200 is counted, every run. Behind a front end that passes
SIGTERM on at once (gsup without a drain, tini) the app stops listening
before haproxy knows, and the requests sent to it in that moment fail;
behind a shell that does not ``exec``, the SIGTERM reaches nobody and the
platform's SIGKILL cuts requests and loses work. Those are measured and
reported, not asserted.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import psutil
import pytest
from balancer import CHECK_INTERVAL, Haproxy
from lostwork import EXAMPLES, Pid1, RedisServer, SteadyLoad, Stop, free_port, no_exec_shell

pytestmark = [pytest.mark.scenario, pytest.mark.rollout, pytest.mark.usefixtures("pid_namespaces")]

PY = sys.executable
COUNTER_APP = str(EXAMPLES / "counter_app.py")
PLATFORM_DEADLINE = 3.0  # the platform's SIGKILL, this long after its SIGTERM
# The drain: more than haproxy's check interval times its fall (1), so that its check
# has seen /readyz 503 and taken the instance out before the app is signalled; with
# room for a busy machine (0.5 s failed 1 run in about 60 under two CPU hogs).
STOP_DELAY = 1.0
assert STOP_DELAY > 2 * CHECK_INTERVAL
GSUP = [PY, "-m", "gsup", "--platform-timeout", f"{PLATFORM_DEADLINE:g}"]
# The load: 1000 requests at 200/s (5 s), each on a new connection; the
# rolling update starts after 100 (0.5 s) and is over in about 1.5 s; the
# SIGKILLs of a platform whose SIGTERM nobody heeded come 3 s after theirs,
# still inside the load.
TOTAL, INTERVAL, ROLLOUT_AT = 1000, 0.005, 100
WORK_SECONDS = 0.1  # each request's INCR happens this long after its 200

GSUP_HEALTH = "gsup --health --stop-delay"


@dataclass(frozen=True)
class Frontend:
    name: str
    health: bool  # haproxy checks gsup's /readyz (else the app's own /healthz)
    asserted: bool  # zero failures and every 200 counted, asserted (else measured only)


FRONTENDS = {
    GSUP_HEALTH: Frontend(GSUP_HEALTH, health=True, asserted=True),
    "gsup": Frontend("gsup", health=False, asserted=False),
    "tini": Frontend("tini", health=False, asserted=False),
    "sh -c (no exec)": Frontend("sh -c (no exec)", health=False, asserted=False),
}


def instance_argv(frontend: str, key: str, redis: RedisServer, health_port: Optional[int]) -> list[str]:
    app = [PY, COUNTER_APP, "--port", "0", "--host", "127.0.0.1", "--redis", redis.address, "--key", key]
    app += ["--work-seconds", str(WORK_SECONDS)]
    if frontend == GSUP_HEALTH:
        assert health_port is not None
        # Ready (for /readyz) once the app says it listens, not merely once it runs.
        health = ["--health", f"127.0.0.1:{health_port}", "--ready", "log=counter_app: ready"]
        return [*GSUP, *health, "--stop-delay", f"{STOP_DELAY:g}", "--", *app]
    if frontend == "gsup":
        return [*GSUP, "--", *app]
    if frontend == "tini":
        return ["tini", "--", *app]
    assert frontend == "sh -c (no exec)"
    return no_exec_shell(app)


@dataclass
class Instance:
    name: str  # its server's name in haproxy
    pid1: Pid1
    stop: Optional[Stop] = None
    stop_requested: float = 0.0  # monotonic time of the platform's SIGTERM
    error: Optional[BaseException] = None


class Rollout:
    """The instances of one run, started, registered and stopped the way a platform does it."""

    def __init__(
        self, frontend: Frontend, key: str, redis: RedisServer, balancer: Haproxy, workdir: Path
    ) -> None:
        self.frontend, self.key, self.redis = frontend, key, redis
        self.balancer, self.workdir = balancer, workdir
        self.instances: list[Instance] = []
        self.stops: list[threading.Thread] = []
        self.load: Optional[SteadyLoad] = None

    def start(self, name: str) -> Instance:
        """Start instance *name* and return once haproxy routes requests to it."""
        health_port = free_port() if self.frontend.health else None
        argv = instance_argv(self.frontend.name, self.key, self.redis, health_port)
        pid1 = Pid1(argv, stderr_path=self.workdir / f"{name}.stderr")
        instance = Instance(name, pid1)
        self.instances.append(instance)
        ready = pid1.out.wait_for(lambda s: "counter_app: ready" in s, 20, f"{name}'s ready line")
        fields = dict(kv.split("=", 1) for kv in ready.split()[2:])
        port = int(fields["port"])
        self.balancer.add(name, port, check_port=health_port or port)
        return instance

    def stop_like_platform(self, instance: Instance) -> None:
        """SIGTERM to its PID 1 now, SIGKILL at the deadline, in the background;
        deregistered from haproxy once it has ended."""

        def run() -> None:
            try:
                instance.stop_requested = time.monotonic()
                instance.stop = instance.pid1.stop_like_platform(PLATFORM_DEADLINE, signal.SIGTERM)
                self.balancer.retire(instance.name)
            except BaseException as e:  # handed to the test's thread, which raises it
                instance.error = e

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.stops.append(thread)

    def wait_stops(self, timeout: float) -> None:
        for thread in self.stops:
            thread.join(timeout)
            assert not thread.is_alive(), "a platform stop did not end"
        for instance in self.instances:
            if instance.error is not None:
                raise instance.error

    def finish(self, instance: Instance) -> None:
        """Stop the survivor cleanly, whatever its PID 1 does with SIGTERM: SIGTERM to the
        app itself, which finishes its work and exits, and so does its PID 1."""
        app = [p for p in psutil.Process(instance.pid1.proc.pid).children(recursive=True) if is_app(p)]
        assert len(app) == 1, f"{instance.name}: app process not found"
        os.kill(app[0].pid, signal.SIGTERM)
        instance.pid1.proc.wait(timeout=10)
        instance.pid1.out.join()

    def close(self) -> None:
        if self.load is not None:
            self.load.abort()
        for instance in self.instances:
            instance.pid1.close()
        for thread in self.stops:
            thread.join(10)


def is_app(process: psutil.Process) -> bool:
    """The app's own interpreter (a front end's command line names the app too)."""
    try:
        return process.cmdline()[1:2] == [COUNTER_APP]
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def balancer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Haproxy]:
    """haproxy for this run, checking /readyz (gsup --health) or the app's /healthz."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (Debian package haproxy)")
    frontend = FRONTENDS[request.node.callspec.params["frontend"]]
    haproxy = Haproxy(tmp_path, check_path="/readyz" if frontend.health else "/healthz")
    try:
        yield haproxy
    finally:
        haproxy.stop()


@pytest.mark.timeout(40)
@pytest.mark.parametrize(
    ("frontend", "run"),
    [(GSUP_HEALTH, 1), (GSUP_HEALTH, 2), (GSUP_HEALTH, 3), ("gsup", 1), ("tini", 1), ("sh -c (no exec)", 1)],
)
def test_rolling_update_behind_haproxy(
    frontend: str,
    run: int,
    redis_server: RedisServer,
    balancer: Haproxy,
    tmp_path: Path,
    scenario_report: Callable[[str], None],
) -> None:
    """Behind gsup with --health and a drain, a rolling update under load fails no request and
    every 200 is counted; behind the other front ends the failures and the counter are measured."""
    if frontend == "tini" and shutil.which("tini") is None:
        pytest.skip("tini is not installed")
    fe = FRONTENDS[frontend]
    key = f"hits:{uuid.uuid4().hex}"
    rollout = Rollout(fe, key, redis_server, balancer, tmp_path)
    try:
        a = rollout.start("A")
        balancer.watch()
        load = rollout.load = SteadyLoad(balancer.port, total=TOTAL, interval=INTERVAL, mark_at=ROLLOUT_AT)
        load.start()
        assert load.marked.wait(20), "the load did not get going"
        b = rollout.start("B")
        rollout.stop_like_platform(a)
        a2 = rollout.start("A2")
        rollout.stop_like_platform(b)
        rollout.wait_stops(PLATFORM_DEADLINE + 10)
        rollout_done_at = load.sent
        load.join(30)
        assert not load.is_alive(), "the load did not finish"
        rollout.finish(a2)
        served = {name: int(row["stot"]) for name, row in balancer.stats().items()}
    finally:
        rollout.close()

    counted = int(redis_server.command("GET", key) or 0)  # type: ignore[call-overload]
    failures = ", ".join(f"{n} {what}" for what, n in sorted(load.outcomes.items()) if what != "200")

    def out_after(i: Instance) -> str:
        seconds = balancer.left_rotation(i.name, i.stop_requested)
        return "never" if seconds is None else f"{seconds:.2f}s"

    stops = "; ".join(
        f"{i.name} out of rotation {out_after(i)}, ended {i.stop.seconds:.2f}s"
        + (" SIGKILLed" if i.stop.platform_killed else "")
        for i in (a, b)
        if i.stop is not None
    )
    scenario_report(
        f"rollout behind {frontend:<26} run {run}: sent {load.sent}  200 {load.accepted:4d}  "
        f"failed {load.failed:3d}  counter {counted:4d}  lost {load.accepted - counted:3d}   "
        f"(failures: {failures or 'none'}; served A/B/A' {served['A']}/{served['B']}/{served['A2']}; "
        f"after SIGTERM: {stops}; update over at request {rollout_done_at})"
    )
    details = "\n".join(
        f"{i.name} stderr:\n{i.pid1.stderr()}\n{i.name} stdout:\n{i.pid1.out.text()}"
        for i in rollout.instances
    )
    details += f"\nhaproxy:\n{balancer.log.text()}"
    # The experiment ran, whatever the front end: every request was sent and answered or failed.
    assert load.sent == TOTAL
    assert load.accepted + load.failed == TOTAL
    assert all(served[name] > 0 for name in ("A", "B", "A2")), f"an instance got no request: {served}"
    assert counted <= load.accepted + load.failed, f"counted more than was sent\n{details}"
    if fe.asserted:
        assert load.failed == 0, f"{failures}\n{details}"
        assert counted == load.accepted, f"{load.accepted} answered 200, {counted} counted\n{details}"
        for i in (a, b):
            assert i.stop is not None and not i.stop.platform_killed, f"{i.name} was SIGKILLed\n{details}"
            assert i.stop.returncode == 0, details
        assert rollout_done_at < TOTAL, "the update ended after the load: it proves nothing"
