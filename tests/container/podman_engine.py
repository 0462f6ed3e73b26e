"""Podman without images: a real container engine over the host's own filesystem.

CI machines have podman and runc from Debian's packages but no image
registry, so a container's rootfs is an empty directory into which the host's
``/usr /lib /lib64 /bin /sbin /etc`` (and the Python installation, when it
lives elsewhere) are bind-mounted read-only; the repository is mounted
read-write at its own path and is the working directory. Everything else is
the engine's real path: ``podman run``, ``podman stop -t N`` (the engine's
own SIGKILL at the deadline included), ``podman kill -s SIG``, ``podman
inspect``.

Two settings make podman work inside CI's own container: an empty
``default_ulimits`` (raising limits is not allowed there) in a private
``containers.conf``, and runc with the cgroupfs cgroup manager (no systemd).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
HOST_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc")

#: What podman writes on stderr when the stop signal did not end the container in time.
ENGINE_SIGKILL_WARNING = "resorting to SIGKILL"


def python_prefix() -> Optional[str]:
    """The Python installation to mount, when it is not under /usr already."""
    prefix = os.path.realpath(sys.base_prefix)
    return None if prefix == "/usr" or prefix.startswith("/usr/") else prefix


@dataclass(frozen=True)
class StopResult:
    seconds: float
    returncode: int
    stderr: str

    @property
    def engine_killed(self) -> bool:
        """podman itself had to send SIGKILL (its stop signal did not do it in time)."""
        return ENGINE_SIGKILL_WARNING in self.stderr


class Engine:
    """``podman --runtime runc --cgroup-manager cgroupfs`` with a private containers.conf."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        conf = state_dir / "containers.conf"
        conf.write_text("[containers]\ndefault_ulimits = []\n")
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        runc = shutil.which("runc") or "/usr/sbin/runc"
        self.base = ["podman", "--runtime", runc, "--cgroup-manager", "cgroupfs"]

    @staticmethod
    def missing() -> Optional[str]:
        """Why this machine cannot run the engine tests, or None."""
        if os.geteuid() != 0:
            return "the container tests run podman as root"
        if shutil.which("podman") is None:
            return "podman is not installed (Debian packages podman, runc)"
        if shutil.which("runc") is None and not os.path.exists("/usr/sbin/runc"):
            return "runc is not installed (Debian package runc)"
        return None

    def podman(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def check(self, *args: str, timeout: float = 60) -> str:
        """Run a podman verb that must succeed; its stdout."""
        done = self.podman(*args, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done.stdout

    @contextmanager
    def container(self, rootfs: Path, prefix: str = "gsup-test") -> Iterator[Container]:
        """A unique container name, removed (forcibly) however the test ends."""
        c = Container(self, f"{prefix}-{uuid.uuid4().hex[:12]}", rootfs)
        try:
            yield c
        finally:
            self.podman("rm", "--force", "--time", "0", c.name, timeout=60)


class Container:
    """One container: started with ``run``, then driven by the engine's own verbs."""

    def __init__(self, engine: Engine, name: str, rootfs: Path) -> None:
        self.engine, self.name, self.rootfs = engine, name, rootfs

    def run(
        self,
        argv: Sequence[str],
        *,
        volumes: Sequence[Path] = (),
        options: Sequence[str] = (),
    ) -> None:
        """``podman run -d --init=false`` with *argv* as PID 1 over the host's filesystem."""
        self.rootfs.mkdir(parents=True, exist_ok=True)
        (self.rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
        mounts: list[str] = []
        for d in (*HOST_DIRS, python_prefix()):
            if d is not None and os.path.exists(d):
                mounts += ["-v", f"{d}:{d}:ro"]
        for v in (REPO, *volumes):
            mounts += ["-v", f"{v}:{v}"]
        run = ["run", "--detach", "--name", self.name]
        run += ["--init=false"]  # no engine-provided init: argv[0] is PID 1
        run += ["--network=host", *mounts, "-w", str(REPO), *options]
        # With --rootfs the first positional argument is the rootfs, not an image.
        self.engine.check(*run, "--rootfs", str(self.rootfs), *argv)

    def stop(self, timeout: int) -> StopResult:
        """``podman stop -t TIMEOUT``: the stop signal, and SIGKILL at the deadline."""
        start = time.monotonic()
        done = self.engine.podman("stop", "--time", str(timeout), self.name, timeout=timeout + 60)
        return StopResult(time.monotonic() - start, done.returncode, done.stderr)

    def kill(self, sig: str) -> None:
        """``podman kill -s SIG``: one signal to the container's PID 1."""
        self.engine.check("kill", "--signal", sig, self.name)

    def wait(self, timeout: float) -> int:
        """Wait for the container to exit on its own; its exit code."""
        return int(self.engine.check("wait", self.name, timeout=timeout).strip())

    def exit_code(self) -> int:
        """The exit code the engine recorded (``podman inspect``)."""
        return int(self.engine.check("inspect", "--format", "{{.State.ExitCode}}", self.name))

    def status(self) -> str:
        return self.engine.check("inspect", "--format", "{{.State.Status}}", self.name).strip()

    def logs(self) -> str:
        """What PID 1 and its children wrote (stdout and stderr)."""
        done = self.engine.podman("logs", self.name)
        return done.stdout + done.stderr


class EventPipe:
    """A FIFO the containerized child writes lines to; the test waits on them.

    Opened read-write here, so the child's open never blocks and the pipe
    never reads as closed between writers.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.lines: list[str] = []
        self._partial = b""

    def expect(self, prefix: str, timeout: float) -> str:
        """The first line starting with *prefix* (consumed); fails after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.lines):
                if line.startswith(prefix):
                    del self.lines[: i + 1]
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no event {prefix!r} within {timeout}s; got {self.lines}")
            readable, _, _ = select.select([self.fd], [], [], remaining)
            if readable:
                data = self._partial + os.read(self.fd, 65536)
                *complete, self._partial = data.split(b"\n")
                self.lines += [c.decode(errors="replace") for c in complete]

    def close(self) -> None:
        os.close(self.fd)
