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

Compose and Kubernetes files name an image, so ``Engine.import_image``
makes one from an empty tar (``podman import``, with ``--change`` for the
image's config: ENTRYPOINT, ENV, STOPSIGNAL...); the host's directories are
mounted into its containers the same way (``host_mounts``). podman-compose
reaches this engine through ``Engine.wrapper``, a ``podman`` that adds the
two settings.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Optional

from examplekit import DOCKERFILE, copy_sources, runtime_config, stages

REPO = Path(__file__).resolve().parents[2]
HOST_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc")

#: What podman writes on stderr when the stop signal did not end the container in time.
ENGINE_SIGKILL_WARNING = "resorting to SIGKILL"


def python_prefix() -> Optional[str]:
    """The Python installation to mount, when it is not under /usr already."""
    prefix = os.path.realpath(sys.base_prefix)
    return None if prefix == "/usr" or prefix.startswith("/usr/") else prefix


def report_exit(logs: str) -> int:
    """The code on gsup's report line ``gsup: exit <code>``."""
    found = re.findall(r"^gsup: exit\s+(\d+)\s*$", logs, re.M)
    assert found, f"no report line 'gsup: exit <code>' in the logs:\n{logs}"
    return int(found[-1])


def host_mounts() -> list[str]:
    """The host directories an empty rootfs gets, read-only, to run the host's programs."""
    return [d for d in (*HOST_DIRS, python_prefix()) if d is not None and os.path.exists(d)]


def unique_name(prefix: str = "gsup-test") -> str:
    """A name for a container, pod, project or image of this test run alone."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Pid1:
    """A container's PID 1 as the host sees it (``/proc`` of its host pid)."""

    host_pid: int
    comm: str
    argv: list[str]
    nspid: list[int]
    environ: dict[str, str]

    @property
    def is_gsup(self) -> bool:
        """gsup, either still parsing (``.../gsup --``) or handed over to its lean supervisor."""
        return self.comm == "gsup" or any(os.path.basename(a) in ("gsup", "lean.py") for a in self.argv[:3])

    @property
    def pid_in_container(self) -> int:
        return self.nspid[-1]


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
        #: ``podman`` with this engine's settings, for tools that run podman themselves.
        self.wrapper = state_dir / "podman"
        self.wrapper.write_text(
            f"#!/bin/sh\nCONTAINERS_CONF='{conf}' exec podman"
            f" --runtime '{runc}' --cgroup-manager cgroupfs \"$@\"\n"
        )
        self.wrapper.chmod(0o755)

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

    def version(self) -> tuple[int, ...]:
        """podman's version, ``(4, 3, 1)``."""
        text = self.check("version", "--format", "{{.Client.Version}}").strip()
        return tuple(int(part) for part in text.split("-")[0].split(".") if part.isdigit())

    def import_image(self, name: str, changes: Sequence[str]) -> None:
        """An image with nothing in it and the config of *changes* (``podman import --change``)."""
        empty = self.state_dir / "empty.tar"
        if not empty.exists():
            with tarfile.open(empty, "w"):
                pass
        args: list[str] = []
        for change in changes:
            args += ["--change", change]
        self.check("import", *args, str(empty), name)

    def remove_image(self, name: str) -> None:
        self.podman("rmi", "--force", name)

    def pid1(self, name: str) -> Pid1:
        """PID 1 of a running container, read from the host's /proc."""
        pid = int(self.check("inspect", "--format", "{{.State.Pid}}", name).strip())
        assert pid > 0, f"{name} is not running"
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        with open(f"/proc/{pid}/cmdline", "rb") as fb:
            argv = [a.decode() for a in fb.read().split(b"\0") if a]
        with open(f"/proc/{pid}/status") as f:
            nspid = next(line.split()[1:] for line in f if line.startswith("NSpid:"))
        with open(f"/proc/{pid}/environ", "rb") as fb:
            pairs = [e.decode().partition("=") for e in fb.read().split(b"\0") if e]
        return Pid1(pid, comm, argv, [int(n) for n in nspid], {k: v for k, _, v in pairs})

    @contextmanager
    def follow(self, name: str) -> Iterator[Follow]:
        """``podman logs --follow NAME``, its lines collected to wait on; ended with the block."""
        proc = subprocess.Popen(
            [*self.base, "logs", "--follow", name],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert proc.stdout is not None
        follow = Follow(proc.stdout)
        try:
            yield follow
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            follow.join(10)

    @contextmanager
    def container(self, rootfs: Path, prefix: str = "gsup-test") -> Iterator[Container]:
        """A unique container name, removed (forcibly) however the test ends."""
        c = Container(self, unique_name(prefix), rootfs)
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
        for d in host_mounts():
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


class Follow:
    """The lines of a stream (a container's logs), collected by a thread, to wait on."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                with self._cond:
                    self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        """Wait for the stream's end (the writer is gone); the stream is closed then."""
        self._thread.join(timeout)

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line containing *text*; fails when the stream ends or *timeout* passes."""

        def found() -> Optional[str]:
            return next((line for line in self.lines if text in line), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self._closed, timeout)
            line = found()
            if line is None:
                raise AssertionError(f"no line with {text!r} within {timeout}s:\n" + "\n".join(self.lines))
            return line


class Images:
    """The images Compose and Kubernetes files can name, made with ``podman import``.

    ``empty``: nothing in it (PATH set). ``example``: the config of
    Dockerfile.example's final stage (ENTRYPOINT ``["gsup", "--"]``, CMD,
    ENV, WORKDIR, EXPOSE, STOPSIGNAL), with a PATH that finds *venv*'s gsup
    first, where the real image has the wheel's. ``app_files``: where the
    Dockerfile copies the app's files, to mount them there.
    """

    def __init__(self, engine: Engine, venv: Path) -> None:
        final = stages(DOCKERFILE)[-1]
        config = runtime_config(final)
        prefix = python_prefix()
        # Where `pip install` puts gsup in the real image (/usr/local/bin), the venv is here.
        path = [str(venv / "bin"), *([f"{prefix}/bin"] if prefix else [])]
        path += ["/usr/local/bin", "/usr/bin", "/bin"]
        env = {**config["env"], "PATH": ":".join(path)}
        changes = [
            f"ENTRYPOINT {json.dumps(config['entrypoint'])}",
            f"CMD {json.dumps(config['cmd'])}",
            f"STOPSIGNAL {config['stopsignal']}",
            f"WORKDIR {config['workdir']}",
            *(f"EXPOSE {port}" for port in config["expose"]),
            *(f"ENV {k}={v}" for k, v in env.items()),
            # USER is left out: the host's Python may live where uid 10001 cannot read it.
        ]
        #: The example's config, as the tests compare with what runs.
        self.config: dict[str, Any] = {**config, "env": env}
        #: (host file, path in the image) for each file the Dockerfile copies from examples/.
        self.app_files: list[tuple[Path, str]] = []
        for args in final.all("COPY"):
            stage, sources, dest = copy_sources(args)
            if stage is None:
                self.app_files += [(REPO / s, f"{dest.rstrip('/')}/{Path(s).name}") for s in sources]
        self.engine = engine
        self.empty = f"localhost/{unique_name('gsup-test-empty')}"
        self.example = f"localhost/{unique_name('gsup-test-example')}"
        engine.import_image(self.empty, ["ENV PATH=/usr/local/bin:/usr/bin:/bin"])
        engine.import_image(self.example, changes)

    def remove(self) -> None:
        for name in (self.example, self.empty):
            self.engine.remove_image(name)
