"""The lost-work scenario: stop a service under load the way a platform does, count the work.

The service is PID 1 of a fresh PID namespace, as in a container. The
"platform" sends SIGTERM to PID 1 in the middle of a steady load and, if PID
1 is still there ``PLATFORM_DEADLINE`` seconds later, SIGKILL, which ends
the namespace. Then the test compares what clients were promised (200
answers, jobs taken from the queue) with what was done (the Redis counter,
the done list).

Behind gsup every accepted request and every job taken is done, every run.
Behind a shell that does not ``exec`` as PID 1, the SIGTERM reaches nobody,
the platform's SIGKILL arrives mid-work, and work is lost: the tests show
how much.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import uuid
from pathlib import Path
from typing import Callable

import pytest
from lostwork import EXAMPLES, Pid1, RedisServer, SteadyLoad, no_exec_shell

pytestmark = [pytest.mark.scenario, pytest.mark.usefixtures("pid_namespaces")]

PY = sys.executable
PLATFORM_DEADLINE = 3.0  # the platform's SIGKILL, this long after its SIGTERM
# gsup is told the platform's deadline; its budget keeps max(1 s, 10 %) = 1 s
# for itself and gives the child the rest (2 s) before its own SIGKILL.
GSUP = [PY, "-m", "gsup", "--platform-timeout", f"{PLATFORM_DEADLINE:g}"]

COUNTER_APP = str(EXAMPLES / "counter_app.py")
QUEUE_WORKER = str(EXAMPLES / "queue_worker.py")
SHELL_APP = str(EXAMPLES / "shell-app" / "entrypoint.sh")

# The load: 50 requests/s for 6 s; the stop comes after 75 (1.5 s), so the
# platform's SIGKILL (1.5 s + 3 s) still falls in the middle of the load.
LOAD_TOTAL, LOAD_INTERVAL, LOAD_STOP_AT = 300, 0.02, 75
WORK_SECONDS = 0.3  # each request's work happens this long after its 200

# The queue: 4 workers, 0.15 s a job, ~27 jobs/s; stop after 30 are done
# (~1.1 s); 300 jobs last ~11 s, so a SIGKILL at the deadline (~4.1 s) is
# mid-stream.
JOBS, WORKERS, JOB_SECONDS, JOBS_STOP_AT = 300, 4, 0.15, 30


def counter_argv(frontend: str, key: str, redis: RedisServer) -> list[str]:
    app_args = ["--port", "0", "--host", "127.0.0.1", "--redis", redis.address, "--key", key]
    app_args += ["--work-seconds", str(WORK_SECONDS)]
    if frontend == "gsup":
        return [*GSUP, "--", PY, COUNTER_APP, *app_args]
    if frontend == "gsup + shell without exec":
        # The shell dies of the SIGTERM gsup sends to the group; --success-on-stop
        # reads that requested stop as success.
        return [*GSUP, "--success-on-stop", "--", "sh", SHELL_APP, *app_args]
    assert frontend == "sh -c (no exec)"
    return no_exec_shell([PY, COUNTER_APP, *app_args])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("frontend", "run"),
    [
        ("gsup", 1),
        ("gsup", 2),
        ("gsup", 3),
        ("gsup + shell without exec", 1),
        ("sh -c (no exec)", 1),
        ("sh -c (no exec)", 2),
    ],
)
def test_counter_app_stopped_under_load(
    frontend: str,
    run: int,
    redis_server: RedisServer,
    tmp_path: Path,
    scenario_report: Callable[[str], None],
) -> None:
    """Behind gsup, every request answered 200 before a platform stop is counted; behind a
    non-exec shell as PID 1, some are lost."""
    key = f"hits:{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHON": PY}  # the python3 the shell-app example runs
    argv = counter_argv(frontend, key, redis_server)
    pid1 = Pid1(argv, stderr_path=tmp_path / "stderr", env=env)
    load = None
    try:
        ready = pid1.out.wait_for(lambda s: "counter_app: ready" in s, 20, "ready line")
        fields = dict(kv.split("=", 1) for kv in ready.split()[2:])
        assert fields["pid"] != "1", "the service itself must not be PID 1 here"
        load = SteadyLoad(int(fields["port"]), total=LOAD_TOTAL, interval=LOAD_INTERVAL, mark_at=LOAD_STOP_AT)
        load.start()
        assert load.marked.wait(20), "the load did not get going"
        stop = pid1.stop_like_platform(PLATFORM_DEADLINE, signal.SIGTERM)
        load.join(30)
        assert not load.is_alive(), "the load did not finish"
    finally:
        if load is not None:
            load.abort()
        pid1.close()

    counted = int(redis_server.command("GET", key) or 0)  # type: ignore[call-overload]
    lost = load.accepted - counted
    scenario_report(
        f"counter_app  behind {frontend:<26} run {run}: accepted {load.accepted:3d}  "
        f"counter {counted:3d}  lost {lost:3d}   (stop took {stop.seconds:.2f}s; "
        + ("platform had to SIGKILL)" if stop.platform_killed else "exited before the deadline)")
    )
    details = f"PID 1 stderr:\n{pid1.stderr()}\nstdout:\n{pid1.out.text()}"
    if frontend.startswith("gsup"):
        assert lost == 0, f"gsup lost {lost} accepted requests\n{details}"
        assert counted == load.accepted, details
        assert not stop.platform_killed, "the platform had to SIGKILL gsup\n" + details
        assert stop.returncode == 0, details
        assert re.search(r"^gsup: exit\s+0$", pid1.stderr(), re.M), details
        assert load.accepted >= LOAD_STOP_AT - 5, "too few requests accepted to mean anything"
    else:
        assert stop.platform_killed, "the shell was expected to ignore SIGTERM\n" + details
        assert lost > 0, f"no request lost behind a non-exec shell?\n{details}"


def queue_argv(frontend: str, queue: str, done: str, redis: RedisServer) -> list[str]:
    args = ["--redis", redis.address, "--queue", queue, "--done", done]
    args += ["--workers", str(WORKERS), "--work-seconds", str(JOB_SECONDS)]
    if frontend == "gsup":
        return [*GSUP, "--", PY, QUEUE_WORKER, *args]
    assert frontend == "sh -c (no exec)"
    return no_exec_shell([PY, QUEUE_WORKER, *args])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("frontend", "run"),
    [("gsup", 1), ("gsup", 2), ("gsup", 3), ("sh -c (no exec)", 1), ("sh -c (no exec)", 2)],
)
def test_queue_worker_stopped_mid_stream(
    frontend: str,
    run: int,
    redis_server: RedisServer,
    tmp_path: Path,
    scenario_report: Callable[[str], None],
) -> None:
    """Behind gsup, every job a worker took before a platform stop is done exactly once;
    behind a non-exec shell as PID 1, the jobs in hand are lost."""
    tag = uuid.uuid4().hex
    queue, done = f"jobs:{tag}", f"done:{tag}"
    jobs = [f"job-{i}" for i in range(JOBS)]
    redis_server.command("RPUSH", queue, *jobs)
    pid1 = Pid1(queue_argv(frontend, queue, done, redis_server), stderr_path=tmp_path / "stderr")
    try:
        pid1.out.wait_for(lambda s: "queue_worker: ready" in s, 20, "ready line")
        pid1.out.wait_count(lambda s: "queue_worker: done " in s, JOBS_STOP_AT, 30, "jobs done")
        stop = pid1.stop_like_platform(PLATFORM_DEADLINE, signal.SIGTERM)
    finally:
        pid1.close()

    left = [j.decode() for j in redis_server.command("LRANGE", queue, 0, -1)]  # type: ignore[union-attr]
    finished = [j.decode() for j in redis_server.command("LRANGE", done, 0, -1)]  # type: ignore[union-attr]
    taken = JOBS - len(left)
    lost = sorted(set(jobs) - set(left) - set(finished))
    twice = len(finished) - len(set(finished))
    scenario_report(
        f"queue_worker behind {frontend:<26} run {run}: accepted {taken:3d}  "
        f"counter {len(finished):3d}  lost {len(lost):3d}   (done twice: {twice}; "
        f"stop took {stop.seconds:.2f}s; "
        + ("platform had to SIGKILL)" if stop.platform_killed else "exited before the deadline)")
    )
    details = f"PID 1 stderr:\n{pid1.stderr()}\nstdout:\n{pid1.out.text()}"
    assert twice == 0, f"{twice} job(s) done twice\n{details}"
    assert not set(left) & set(finished), "a job is both done and still queued"
    if frontend == "gsup":
        assert lost == [], f"gsup lost jobs {lost}\n{details}"
        assert len(finished) == taken
        assert not stop.platform_killed, "the platform had to SIGKILL gsup\n" + details
        assert stop.returncode == 0, details
        assert left, "the queue ran dry before the stop: the test proves nothing"
    else:
        assert stop.platform_killed, "the shell was expected to ignore SIGTERM\n" + details
        assert lost, f"no job lost behind a non-exec shell?\n{details}"
