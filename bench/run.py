"""Benchmark gsup against tini, dumb-init and catatonit (and honcho, supervisord), write docs/benchmarks.md.

    python bench/run.py [--quick] [--rounds N] [--output FILE]

Measures, for gsup and every anchor found (missing ones are skipped and
named in the report), in interleaved rounds (each round runs every wrapper
once, in an order rotated from round to round), median and p90 of:

1. start overhead: ``WRAPPER -- true`` against ``true``, ``python3 -c pass``
   and ``python3 -c 'import typer'``; what gsup imports, and when;
2. RSS and USS of the supervising process while its child sleeps, against
   sleeping interpreters (``python3 -I -S`` among them); the modules gsup's
   lean process holds and the RSS each adds (replayed in a fresh
   ``python3 -I -S``);
3. signal forwarding latency (SIGUSR1 to the wrapper, byte from the child),
   minus the same signal sent straight to the child: in the steady state
   (``SETTLE_S`` after the child is ready) and at the child's READY;
4. exit propagation, from the child's exit to the wrapper's, both seen in
   one session: steady state and at READY;
5. gsup's start-up window: spawn until every signal is blocked (against
   ``python3 -c pass``), and SIGUSR1 at offsets after the spawn: arrived or
   not, latency, and how long past the handover to the lean process;
6. zombie reaping as PID 1 of a PID namespace: N orphans released at once;
7. idle cost: context switches and CPU time over an idle period;
8. escalation precision of ``gsup --grace 1`` (gsup only);
9. prefixed-output throughput of the many-programs mode against a raw pipe,
   honcho and supervisord, with lost and broken lines counted;
10. many programs (1, 10, 50): RSS and CPU time of the supervisor's own
    processes, per program and per line, and lost or broken lines.

Then it marks every target met or not, each against its reference in the
same run. ``--quick`` is the CI smoke run: every measurement with very few
rounds, well under two minutes, exit 0 whenever the harness works (missing
anchors are skipped), no timing assertions; it writes to a temporary file
unless ``--output`` is given.

Every process it starts is killed by pid (with the descendants found by
psutil) in a ``finally``; every wait has a timeout; the harness is a child
subreaper, so nothing it started can escape it. Standard library + psutil.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import ctypes
import dataclasses
import datetime
import functools
import json
import math
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HELPER = str(BENCH / "helper.py")
PY = sys.executable
HELPER_ARGV = (PY, "-I", "-S", HELPER)
MiB = 1024 * 1024
X = "\N{MULTIPLICATION SIGN}"

#: The steady state: signals and the child's exit are sent this long after the
#: child reported ready, when gsup's handover to its lean process is over.
SETTLE_S = 0.3

# Targets, each compared with its reference measured in the same run.
START_RATIO = 1.2  # `gsup -- true` / `python3 -c 'import typer'`
FORWARD_VS_TINI = 2.0  # forwarding, added median / tini's
FORWARD_P90_S = 0.0005  # forwarding, added p90
EXIT_VS_TINI = 2.0  # exit propagation, added median / tini's
MEMORY_VS_NO_SITE = 1.25  # RSS while supervising / a sleeping `python3 -I -S`
BLOCKED_VS_BARE = 1.5  # spawn -> every signal blocked / `python3 -c pass`
#: A signal sent in the start-up window may wait for the handover, and no
#: longer: its byte comes at most this long after the later of its sending
#: and the end of the handover (seen by polling the lean process's name every
#: millisecond, so the slack covers that poll and the loop's first turn).
WINDOW_SLACK_S = 0.002
WINDOW_OFFSETS_S = (0.005, 0.010, 0.020, 0.040, 0.080, 0.120, 0.160, 0.240)
OUTPUT_VS_RAW = 0.7  # prefixed output lines/s / the raw pipe's
REAP_AFTER_LAST_EXIT_S = 1.0
REAP_RATE_VS_TINI = 0.5
ESCALATION_S = 0.020

PAYLOAD = "gsup-bench-payload " + "x" * 44  # 63 characters, 64 bytes a line
MARKER = b"gsup-bench-payload"


class MeasureError(Exception):
    """A wrapper did not behave as the protocol expects (timeout, bad output)."""


_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[bench {time.monotonic() - _T0:5.1f}s] {msg}", file=sys.stderr, flush=True)


# -- statistics ---------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def p90(xs: Sequence[float]) -> float:
    if not xs:
        return math.nan
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=10, method="inclusive")[8]


def rotated(items: Sequence[Any], r: int) -> list[Any]:
    if not items:
        return []
    k = r % len(items)
    return [*items[k:], *items[:k]]


# -- processes ----------------------------------------------------------------


def become_subreaper() -> None:
    """Orphans of anything the harness starts come back to it, to be killed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def wait_readable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(0, math.ceil(timeout * 1000))))


def kill_pids(pids: Sequence[int], *, reap_timeout: float = 2.0) -> None:
    """SIGKILL each pid, then reap the ones that became the harness's children."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    pending = set(pids)
    deadline = time.monotonic() + reap_timeout
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    pending.discard(pid)
            except ChildProcessError:  # not ours (yet): gone, or reparented to us later
                if not psutil.pid_exists(pid):
                    pending.discard(pid)
        if pending:
            time.sleep(0.005)


def descendants(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def settle(pid: int, timeout: float = 3.0) -> None:
    """Wait until *pid* is quiet: CPU time and RSS unchanged over 3 polls 50 ms apart.

    A wrapper may still be busy after its child reported ready (gsup hands
    over to a second interpreter with ``execve`` after starting the child).
    """
    time.sleep(0.1)
    deadline = time.monotonic() + timeout
    last = None
    same = 0
    while time.monotonic() < deadline and same < 3:
        try:
            proc = psutil.Process(pid)
            cpu = proc.cpu_times()
            now = (cpu.user + cpu.system, proc.memory_info().rss, proc.status())
        except psutil.Error:
            return
        same = same + 1 if now == last and now[2] != psutil.STATUS_RUNNING else 0
        last = now
        time.sleep(0.05)


class Proc:
    """One process tree the harness started, with a line reader on its stdout.

    ``close`` SIGKILLs it and every descendant by pid; use it as a context
    manager so that happens in a ``finally``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.DEVNULL,
        cwd: Optional[str] = None,
        env: Optional[dict[str, str]] = None,
    ) -> None:
        self.popen = subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=env,
            start_new_session=True,  # never in the harness's group, never on its terminal
        )
        self.pid = self.popen.pid
        self.pidfd = os.pidfd_open(self.pid)
        self.buf = b""
        self.eof = False
        self.exited_at: Optional[float] = None

    # output
    def _fill(self, timeout: float) -> bool:
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        if not wait_readable(fd, timeout):
            return False
        data = os.read(fd, 1 << 16)
        if not data:
            self.eof = True
        self.buf += data
        return True

    def read_line(self, timeout: float, what: str = "a line") -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                raise MeasureError(f"output ended before {what} (got {self.buf[-200:]!r})")
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                raise MeasureError(f"no {what} within {timeout:g} s")
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace")

    def read_byte(self, timeout: float) -> tuple[bytes, float]:
        """The next byte and the monotonic time it was seen."""
        if not self.buf:
            assert self.popen.stdout is not None
            fd = self.popen.stdout.fileno()
            if not wait_readable(fd, timeout):
                raise MeasureError(f"no byte within {timeout:g} s")
            seen = time.monotonic()
            data = os.read(fd, 1 << 16)
            if not data:
                raise MeasureError("output ended while waiting for a byte")
            self.buf = data
        else:
            seen = time.monotonic()
        byte, self.buf = self.buf[:1], self.buf[1:]
        return byte, seen

    def send(self, data: bytes) -> None:
        assert self.popen.stdin is not None
        os.write(self.popen.stdin.fileno(), data)

    # exit
    def wait_exit(self, timeout: float) -> float:
        """Monotonic time its exit was seen (pidfd readable); then reap it."""
        if self.exited_at is None:
            if not wait_readable(self.pidfd, timeout):
                raise MeasureError(f"pid {self.pid} still running after {timeout:g} s")
            self.exited_at = time.monotonic()
            self.popen.wait(timeout=5)
        return self.exited_at

    @property
    def returncode(self) -> Optional[int]:
        return self.popen.returncode

    def close(self) -> None:
        try:
            if self.popen.returncode is None:
                kill_pids([self.pid, *descendants(self.pid)])
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=5)
        finally:
            os.close(self.pidfd)
            for stream in (self.popen.stdin, self.popen.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def procs() -> Iterator[list[Proc]]:
    """A list of Procs all closed (killed by pid) on the way out."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for p in started:
            p.close()


def sweep_children() -> None:
    """Kill and reap anything still parented to the harness (a subreaper)."""
    kill_pids([c.pid for c in psutil.Process().children(recursive=True)])


# -- the wrappers ---------------------------------------------------------------


@dataclass(frozen=True)
class Wrapper:
    name: str
    argv: tuple[str, ...]  # up to, not including, "--"
    shown: str  # how the report names the command
    version: str

    def cmd(self, *child: str) -> list[str]:
        return [*self.argv, "--", *child]


def _version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    m = re.search(r"v?(\d+(?:\.\d+)+\S*)", text[0] if text else "")
    return m.group(1) if m else "?"


def find_gsup() -> Optional[str]:
    """The console script next to this interpreter, else the one on PATH.

    Not a version manager's shim: a shim is a shell script that would add its
    own start-up to every figure.
    """
    here = Path(sysconfig.get_path("scripts")) / "gsup"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("gsup")


def find_wrappers() -> tuple[list[Wrapper], list[str]]:
    found: list[Wrapper] = []
    missing: list[str] = []
    gsup = find_gsup()
    if gsup:
        found.append(Wrapper("gsup", (gsup, "--quiet"), "gsup --quiet", _version([gsup, "--version"])))
    else:
        missing.append("gsup")
    for name, extra, shown in (
        ("tini", ("-s",), "tini -s"),  # -s: child subreaper outside PID 1, like gsup
        ("dumb-init", (), "dumb-init"),
        ("catatonit", (), "catatonit"),
    ):
        path = shutil.which(name)
        if path:
            found.append(Wrapper(name, (path, *extra), shown, _version([path, "--version"])))
        else:
            missing.append(name)
    return found, missing


def compile_gsup(gsup: Wrapper) -> str:
    """Byte-compile the gsup package the console script imports, as ``pip install`` does.

    An editable checkout holds no (or stale) bytecode for modules just
    changed, and with PYTHONDONTWRITEBYTECODE set nothing is ever cached:
    every start would compile gsup from source, which an installed gsup never
    does. Returns what was done, for the report.
    """
    with open(gsup.argv[0], "rb") as f:
        first = f.readline()
    interpreter = first[2:].decode().strip().split()[0] if first.startswith(b"#!") else sys.executable
    # The gsup the script imports: the same environment (PYTHONPATH too, as the
    # console script sees it), from a directory that holds no gsup of its own.
    where = subprocess.run(
        [interpreter, "-c", "import gsup, os; print(os.path.dirname(gsup.__file__))"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    if where.returncode != 0:
        return f"not compiled: gsup not importable ({where.stderr.strip()[-200:]})"
    package = where.stdout.strip()
    PACKAGE_DIR[:] = [package]
    done = subprocess.run(
        [interpreter, "-m", "compileall", "-q", package], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        return f"failed to compile ({done.stdout.strip()[-200:]}): start figures include compiling gsup"
    return "compiled with `python -m compileall` before measuring, as `pip install` does"


def first_line(path: str) -> Optional[bytes]:
    """The first line of file *path* (a script's ``#!`` line), None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.readline()
    except OSError:
        return None


def shebang_is_python(path: str) -> bool:
    first = first_line(path)
    return first is not None and first.startswith(b"#!") and b"python" in first


# -- 1. start -----------------------------------------------------------------


def time_run(argv: Sequence[str], timeout: float = 60) -> float:
    t0 = time.monotonic()
    with Proc(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) as p:
        return p.wait_exit(timeout) - t0


def time_child_start(argv: Sequence[str], timeout: float = 60) -> float:
    """Spawn to the first byte the child (``echo``) writes: when the child runs."""
    t0 = time.monotonic()
    with Proc(argv, stdin=subprocess.DEVNULL) as p:
        _, seen = p.read_byte(timeout)
        p.wait_exit(timeout)
        return seen - t0


def bench_start(
    wrappers: list[Wrapper], rounds: int, warm: bool
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall time of ``X -- true``, and time until the child runs in ``X -- echo``."""
    true = shutil.which("true") or "/bin/true"
    echo = shutil.which("echo") or "/bin/echo"
    commands: list[tuple[str, list[str], Callable[..., float]]] = [
        ("true", [true], time_run),
        ("python3 -c pass", [PY, "-c", "pass"], time_run),
        ("python3 -c 'import typer'", [PY, "-c", "import typer"], time_run),
        *((f"{w.shown} -- true", w.cmd(true), time_run) for w in wrappers),
        ("echo", [echo], time_child_start),
        *((f"{w.shown} -- echo", w.cmd(echo), time_child_start) for w in wrappers),
    ]
    out: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    if warm:
        for _, argv, fn in commands:  # warm the page cache; not counted
            fn(argv)
    for r in range(rounds):
        log(f"start: round {r + 1}/{rounds}")
        for name, argv, fn in rotated(commands, r):
            out[name].append(fn(argv))
    runs = {k: v for k, v in out.items() if not k.endswith("echo")}
    child = {k: v for k, v in out.items() if k.endswith("echo")}
    return runs, child


IMPORT_HEADER = "import time: self [us] | cumulative | imported package"


def import_profile(gsup: Wrapper) -> dict[str, Any]:
    """``PYTHONPROFILEIMPORTTIME=1 gsup -- CHILD``: what gsup imports, and when.

    The child writes a marker to the same stderr right after it starts, and a
    second one half a second later. Imports before the first ran before the
    child was started. The variable (unlike ``-X importtime``) reaches an
    interpreter gsup may ``execve`` into: each interpreter prints the header
    line once, so the last one's imports are what the supervising process
    holds while the child runs.
    """
    child = "echo @@STARTED@@ >&2; sleep 0.5; echo @@RUNNING@@ >&2"
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    with Proc(
        [*gsup.argv, "--", "sh", "-c", child],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    ) as p:
        assert p.popen.stderr is not None
        deadline = time.monotonic() + 30
        err = b""
        fd = p.popen.stderr.fileno()
        while time.monotonic() < deadline:
            if not wait_readable(fd, deadline - time.monotonic()):
                break
            data = os.read(fd, 1 << 16)
            if not data:
                break
            err += data
        p.wait_exit(10)
    phase = "before"
    interpreters = 0
    before: list[tuple[str, int]] = []  # (module, self µs) before the child started
    last: list[tuple[str, int, str]] = []  # the last interpreter's, with the phase
    for line in err.decode(errors="replace").splitlines():
        if line == "@@STARTED@@":  # a whole line: the report repeats the command
            phase = "running"
            continue
        if line == "@@RUNNING@@":
            phase = "after"
            continue
        if line.startswith(IMPORT_HEADER):
            interpreters += 1
            last = []
            continue
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        name, self_us = m.group(4), int(m.group(1))
        if interpreters == 1 and phase == "before":
            before.append((name, self_us))
        last.append((name, self_us, phase))

    def by_package(rows: list[tuple[str, int]]) -> list[tuple[str, float]]:
        acc: dict[str, int] = {}
        for name, self_us in rows:
            top = name.split(".")[0]
            acc[top] = acc.get(top, 0) + self_us
        return sorted(((k, v / 1000) for k, v in acc.items()), key=lambda kv: -kv[1])

    held = [(n, t) for n, t, ph in last if ph != "after"]
    after = [(n, t) for n, t, ph in last if ph == "after"]
    heavy = {"rich", "psutil", "tomllib", "tomli", "pydantic", "asyncio", "typer", "click"}
    return {
        "ok": bool(before) and phase == "after",
        "interpreters": interpreters,
        "total_before_ms": sum(t for _, t in before) / 1000,
        "by_package_ms": by_package(before),
        "modules_before": len(before),
        "modules_held": len(held),
        "held_names": [n for n, _, ph in last if ph != "after"],
        "held_ms": by_package(held),
        "after_ms": by_package(after),
        "heavy_before": sorted({n.split(".")[0] for n, _ in before} & heavy),
        "heavy_held": sorted({n.split(".")[0] for n, _ in held} & heavy),
    }


# -- 2-4. memory, forwarding, exit propagation: the steady state -------------------

HOLD = "import os; os.write(1, b'READY %d\\n' % os.getpid()); os.read(0, 1)"
NO_SITE = "python3 -I -S (no site)"
FLOORS = {
    "python3 (bare interpreter)": [PY, "-c", HOLD],
    NO_SITE: [PY, "-I", "-S", "-c", HOLD],
    "python3 + import typer": [PY, "-c", "import typer; " + HOLD],
}


@dataclass
class ServeResult:
    rss: list[float] = field(default_factory=list)
    uss: list[float] = field(default_factory=list)
    rss_after: list[float] = field(default_factory=list)
    via: list[float] = field(default_factory=list)
    direct: list[float] = field(default_factory=list)
    added: list[float] = field(default_factory=list)
    exit: list[float] = field(default_factory=list)  # the child's _exit -> the wrapper's exit seen
    child_exit: list[float] = field(default_factory=list)  # the child's _exit -> the child's exit seen
    exit_added: list[float] = field(default_factory=list)  # the child's exit seen -> the wrapper's
    #: gsup: its lean process had its signal inbox open when the first signal was sent.
    settled: list[bool] = field(default_factory=list)
    # The start-up window: sent the moment the child reported ready, no settling.
    early_fwd: list[float] = field(default_factory=list)  # SIGUSR1 to the wrapper -> byte from the child
    early_fwd_settled: list[bool] = field(default_factory=list)
    early_exit_added: list[float] = field(default_factory=list)
    early_exit_settled: list[bool] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def memory(pid: int) -> tuple[int, int]:
    info = psutil.Process(pid).memory_full_info()
    return info.rss, info.uss


def handed_over(pid: int) -> bool:
    """*pid* is gsup's lean process, about to read its signal inbox: the handover is over.

    The lean process (``gsup/lean.py`` on its command line from the exec on)
    names itself ``gsup`` once its modules are imported, right before its
    loop; this marks the end of the start-up window from outside. (Its
    signalfd is no marker: it is made before the exec and kept across it.)
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            lean = b"lean.py" in f.read()
        with open(f"/proc/{pid}/comm", "rb") as f:
            return lean and f.read().strip() == b"gsup"
    except OSError:
        return False


def is_gsup(w: Wrapper) -> bool:
    return w.name in ("gsup", LOGGING)


def exit_times(p: Proc, child: int) -> tuple[float, float, float]:
    """Ask the child to ``_exit``: (its time stamp, its exit seen, the wrapper's exit seen).

    Both exits are watched in the same ``poll`` through pidfds (a pidfd turns
    readable when its process has exited, reaped or not), so the wrapper's
    share is a difference within one session.
    """
    cfd = os.pidfd_open(child)
    try:
        poller = select.poll()
        poller.register(cfd, select.POLLIN)
        poller.register(p.pidfd, select.POLLIN)
        p.send(b"x")
        child_gone: Optional[float] = None
        wrapper_gone: Optional[float] = None
        deadline = time.monotonic() + 10
        while child_gone is None or wrapper_gone is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise MeasureError("the child or the wrapper still running 10 s after the exit request")
            events = poller.poll(math.ceil(left * 1000))
            now = time.monotonic()
            for fd, _ in events:
                if fd == cfd and child_gone is None:
                    child_gone = now
                    poller.unregister(cfd)
                elif fd == p.pidfd and wrapper_gone is None:
                    wrapper_gone = now
                    poller.unregister(p.pidfd)
        if child_gone > wrapper_gone:  # cannot be: the wrapper waits for its child
            child_gone = wrapper_gone
    finally:
        os.close(cfd)
    p.exited_at = wrapper_gone
    p.popen.wait(timeout=5)
    line = p.read_line(5, "EXIT from the child")
    if not line.startswith("EXIT "):
        raise MeasureError(f"unexpected line {line!r}")
    return float(line.split()[1]), child_gone, wrapper_gone


def forward_once(p: Proc, target: int) -> float:
    """SIGUSR1 to *target*; the time until the child's byte arrives."""
    t0 = time.monotonic()
    os.kill(target, signal.SIGUSR1)
    byte, seen = p.read_byte(5)
    if byte != bytes([signal.SIGUSR1]):
        raise MeasureError(f"unexpected byte {byte!r} from the child")
    return seen - t0


def serve_session(w: Wrapper, signals: int, res: ServeResult) -> None:
    """One wrapper around one ``helper.py serve``, SETTLE_S after it is ready: memory, forwarding, exit."""
    with Proc(w.cmd(*HELPER_ARGV, "serve")) as p:
        child = int(p.read_line(20, "READY from the child").split()[1])
        time.sleep(SETTLE_S)
        if is_gsup(w):
            res.settled.append(handed_over(p.pid))
        rss, uss = memory(p.pid)
        res.rss.append(rss)
        res.uss.append(uss)
        for k in range(signals):
            order = [(p.pid, res.via), (child, res.direct)]
            if k % 2:
                order.reverse()
            pair = {}
            for target, samples in order:
                pair[target] = forward_once(p, target)
                samples.append(pair[target])
                time.sleep(0.002)
            res.added.append(pair[p.pid] - pair[child])
        res.rss_after.append(memory(p.pid)[0])
        stamp, child_gone, wrapper_gone = exit_times(p, child)
    res.exit.append(wrapper_gone - stamp)
    res.child_exit.append(child_gone - stamp)
    res.exit_added.append(wrapper_gone - child_gone)


def early_signal_session(w: Wrapper, res: ServeResult) -> None:
    """SIGUSR1 to the wrapper the moment the child reports ready: forwarding in the start-up window."""
    with Proc(w.cmd(*HELPER_ARGV, "serve")) as p:
        child = int(p.read_line(20, "READY from the child").split()[1])
        if is_gsup(w):
            res.early_fwd_settled.append(handed_over(p.pid))
        res.early_fwd.append(forward_once(p, p.pid))
        exit_times(p, child)


def early_exit_session(w: Wrapper, res: ServeResult) -> None:
    """The child exits the moment it is ready: exit propagation in the start-up window."""
    with Proc(w.cmd(*HELPER_ARGV, "serve")) as p:
        child = int(p.read_line(20, "READY from the child").split()[1])
        if is_gsup(w):
            res.early_exit_settled.append(handed_over(p.pid))
        _, child_gone, wrapper_gone = exit_times(p, child)
    res.early_exit_added.append(wrapper_gone - child_gone)


def floor_memory(argv: Sequence[str], res: ServeResult) -> None:
    with Proc(argv) as p:
        p.read_line(20, "READY")
        time.sleep(SETTLE_S)
        rss, uss = memory(p.pid)
        res.rss.append(rss)
        res.uss.append(uss)


#: gsup with its own log on (a line per signal received and forwarded, to the
#: stderr the harness discards): forwarding must not wait for that writing.
LOGGING = "gsup-log"


def logging_variant(wrappers: list[Wrapper]) -> list[Wrapper]:
    """gsup again, without --quiet, for the forwarding measurement only."""
    gsup = next((w for w in wrappers if w.name == "gsup"), None)
    if gsup is None:
        return []
    return [Wrapper(LOGGING, gsup.argv[:1], "gsup (log on)", gsup.version)]


#: A minimal Python forwarder (``bench/floor.py``: block, signalfd, fork/exec,
#: poll, read, kill): the floor of any forwarder in Python, measured in the
#: steady-state sessions only. Not a supervisor, so no other measurement gets it.
FLOOR = "python-floor"
FLOOR_SHOWN = "python3 -I -S floor.py"
FLOOR_ROW = f"`{FLOOR_SHOWN}` (a minimal Python forwarder)"


def floor_variant() -> Wrapper:
    return Wrapper(FLOOR, (PY, "-I", "-S", str(BENCH / "floor.py")), FLOOR_SHOWN, platform.python_version())


def bench_serve(
    wrappers: list[Wrapper], rounds: int, signals: int
) -> tuple[dict[str, ServeResult], dict[str, ServeResult]]:
    everyone = [*wrappers, *logging_variant(wrappers), floor_variant()]
    results = {w.name: ServeResult() for w in everyone}
    floors = {name: ServeResult() for name in FLOORS}

    jobs: list[tuple[str, Callable[[], None]]] = []
    for w in everyone:
        res = results[w.name]
        jobs.append((w.name, functools.partial(serve_session, w, signals, res)))
        if w.name not in (LOGGING, FLOOR):
            jobs.append((w.name, functools.partial(early_signal_session, w, res)))
            jobs.append((w.name, functools.partial(early_exit_session, w, res)))
    for name, argv in FLOORS.items():
        jobs.append((name, functools.partial(floor_memory, argv, floors[name])))
    for r in range(rounds):
        log(f"memory/forwarding/exit: round {r + 1}/{rounds}")
        for key, job in rotated(jobs, r):
            try:
                job()
            except MeasureError as e:
                (results.get(key) or floors[key]).errors.append(str(e))
    return results, floors


# -- the lean process's modules -------------------------------------------------

#: Run in a fresh ``python3 -I -S``: import the modules named, in the order
#: given, and note the RSS after each. Only builtins and modules every
#: interpreter has loaded before ``-c`` runs are used, so the measuring costs
#: nothing that the list would then get for free.
REPLAY = r"""
import sys
sys.path[:0] = {paths!r}
def rss():
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * {page}
start = rss()
out = []
for name in {names!r}:
    if name in sys.modules:
        out.append((name, 0, "preloaded"))
        continue
    before = rss()
    try:
        __import__(name)
    except ModuleNotFoundError:
        out.append((name, -1, "not found"))
        continue
    except BaseException:
        # Not importable first (os <- posixpath <- genericpath): what it
        # loaded was undone, and the next module's delta includes it.
        out.append((name, -1, "alone"))
        continue
    where = getattr(sys.modules.get(name), "__file__", None) or ""
    kind = "extension" if where.endswith(".so") else ("python" if where else "built-in")
    out.append((name, rss() - before, kind))
sys.stdout.write(repr((start, rss(), out)))
"""


def module_costs(names: Sequence[str]) -> dict[str, Any]:
    """RSS each module adds, imported in a fresh ``python3 -I -S`` in the order the lean process did.

    The order is the import profile's, in which a module is listed when its
    import finished, so after everything it imported: each delta is the
    module's own cost, and the deltas add up to the whole.
    """
    paths = [os.path.dirname(PACKAGE_DIR[0])] if PACKAGE_DIR else []
    paths += [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    script = REPLAY.format(paths=paths, names=list(names), page=os.sysconf("SC_PAGE_SIZE"))
    out = subprocess.run([PY, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=60, cwd="/")
    if out.returncode != 0:
        raise MeasureError(f"module replay failed: {out.stderr.strip()[-300:]}")
    start, end, rows = ast.literal_eval(out.stdout)
    return {"start": start, "end": end, "rows": rows}


def bench_modules(prof: Optional[dict[str, Any]], rounds: int) -> dict[str, Any]:
    if not prof or not prof.get("held_names"):
        return {"skipped": "no import profile of the lean process"}
    runs = []
    errors = []
    for _ in range(rounds):
        try:
            runs.append(module_costs(prof["held_names"]))
        except (MeasureError, subprocess.TimeoutExpired, ValueError, SyntaxError) as e:
            errors.append(str(e))
    if not runs:
        return {"skipped": "; ".join(errors)}
    # per module: the median of its deltas over the runs
    names = [row[0] for row in runs[0]["rows"]]
    kinds = {row[0]: row[2] for row in runs[0]["rows"]}
    deltas = {n: median([r["rows"][i][1] for r in runs]) for i, n in enumerate(names)}
    return {
        "start": median([r["start"] for r in runs]),
        "end": median([r["end"] for r in runs]),
        "deltas": deltas,
        "kinds": kinds,
        "runs": len(runs),
        "errors": errors,
    }


# -- 5. the start-up window --------------------------------------------------------

_FAULTS = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGABRT", "SIGKILL", "SIGSTOP"}
#: The SigBlk bits of every signal gsup blocks (all but the faults, KILL and STOP).
CATCHABLE_MASK = sum(
    1 << (int(s) - 1)
    for s in signal.valid_signals()
    if int(s) not in {int(getattr(signal, n)) for n in _FAULTS}
)


def sigblk(pid: int) -> Optional[int]:
    """The blocked mask of *pid* (/proc/PID/status), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            data = f.read()
    except OSError:
        return None
    i = data.find(b"\nSigBlk:")
    if i < 0:
        return None
    return int(data[i + 8 : data.index(b"\n", i + 1)].strip(), 16)


def all_blocked(pid: int) -> bool:
    mask = sigblk(pid)
    return mask is not None and mask & CATCHABLE_MASK == CATCHABLE_MASK


#: Between polls of /proc/PID/status while watching for the mask.
MASK_POLL_S = 0.0002


def bare_start_session() -> float:
    """``python3 -c pass`` watched as gsup is (its status polled): spawn to exit."""
    t0 = time.monotonic()
    with Proc([PY, "-c", "pass"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) as p:
        deadline = t0 + 30
        while not wait_readable(p.pidfd, 0):
            if time.monotonic() > deadline:
                raise MeasureError("python3 -c pass still running after 30 s")
            sigblk(p.pid)
            time.sleep(MASK_POLL_S)
        return p.wait_exit(1) - t0


def window_session(gsup: Wrapper, offset: float) -> dict[str, Any]:
    """SIGUSR1 to gsup *offset* s after its spawn; what became of it.

    From the spawn on, one loop watches: gsup's blocked mask every
    ``MASK_POLL_S`` until all catchable signals are blocked; once they are,
    gsup's name every millisecond for its lean process (the end of the
    handover); the output, for the child's READY and the signal's byte. At
    *offset* it sends the signal. The child (``helper.py serve``) sets its
    handler before it writes READY, so the byte can come before that line or
    after it: the byte is a newline (SIGUSR1 is 10) that ends no line.
    """
    out: dict[str, Any] = {"offset": offset, "blocked": None, "ready": None, "inbox": None, "arrived": None}
    t0 = time.monotonic()
    with Proc(gsup.cmd(*HELPER_ARGV, "serve")) as p:
        assert p.popen.stdout is not None
        fd = p.popen.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(p.pidfd, select.POLLIN)
        buf = b""
        child = 0
        sent: Optional[float] = None
        next_inbox = t0
        deadline = t0 + offset + 10
        while sent is None or out["arrived"] is None or out["ready"] is None:
            now = time.monotonic()
            if sent is None and now >= t0 + offset:
                out["blocked_at_send"] = all_blocked(p.pid)
                sent = time.monotonic()
                os.kill(p.pid, signal.SIGUSR1)
                out["sent"] = sent - t0
                if out["blocked"] is None and out["blocked_at_send"]:
                    out["blocked"] = sent - t0
                continue
            if out["blocked"] is None and sent is None and all_blocked(p.pid):
                out["blocked"] = now - t0
            if out["blocked"] is not None and out["inbox"] is None and now >= next_inbox:
                if handed_over(p.pid):
                    out["inbox"] = now - t0
                next_inbox = now + 0.001
            if now > deadline:
                out["outcome"] = "lost"
                return out
            if sent is None and out["blocked"] is None:
                events = dict(poller.poll(0))
                if not events:
                    time.sleep(min(MASK_POLL_S, max(0.0, t0 + offset - now)))
                    continue
            elif sent is None and t0 + offset - now < 0.001:  # the offset is near: to the microsecond
                time.sleep(max(0.0, t0 + offset - now))
                continue
            else:
                wake = min(
                    next_inbox if out["inbox"] is None else now + 0.001,
                    t0 + offset if sent is None else now + 0.001,
                )
                events = dict(poller.poll(max(0, math.ceil((wake - now) * 1000))))
            now = time.monotonic()
            if fd in events:
                data = os.read(fd, 4096)
                if not data:
                    poller.unregister(fd)
                buf += data
                while buf:
                    if buf[:1] == b"\n" and out["arrived"] is None:
                        out["arrived"] = now - t0
                        buf = buf[1:]
                    elif b"\n" in buf:
                        line, _, buf = buf.partition(b"\n")
                        if line.startswith(b"READY "):
                            out["ready"] = now - t0
                            child = int(line.split()[1])
                    else:
                        break
                if data:
                    continue
            if p.pidfd in events:  # gsup ended before the byte came
                p.wait_exit(5)
                code = p.returncode
                if code == -signal.SIGUSR1:
                    out["outcome"] = "gsup killed: sent before the mask was set"
                elif out["ready"] is None:
                    out["outcome"] = f"gsup exited {code} before the child was ready"
                else:
                    out["outcome"] = f"gsup exited {code} (the child killed by the signal?)"
                return out
        assert sent is not None
        out["outcome"] = "arrived"
        if out["inbox"] is None and handed_over(p.pid):
            out["inbox"] = time.monotonic() - t0
        out["latency"] = out["arrived"] - out["sent"]
        if out["inbox"] is not None:
            out["past_handover"] = out["arrived"] - max(out["sent"], out["inbox"])
        exit_times(p, child)
    return out


def bench_window(gsup: Wrapper, rounds: int, offsets: Sequence[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": [], "bare": [], "errors": []}
    jobs: list[Optional[float]] = [*offsets, None, None]  # None: a bare interpreter's start
    for r in range(rounds):
        log(f"start-up window: round {r + 1}/{rounds}")
        for offset in rotated(jobs, r):
            try:
                if offset is None:
                    out["bare"].append(bare_start_session())
                else:
                    out["runs"].append(window_session(gsup, offset))
            except MeasureError as e:
                out["errors"].append(str(e))
    return out


# -- 5. reaping ---------------------------------------------------------------


def unshare_works() -> Optional[str]:
    """None when ``unshare --pid --fork --mount-proc`` works here, else why not."""
    unshare = shutil.which("unshare")
    if not unshare:
        return "unshare not found"
    try:
        out = subprocess.run(
            [unshare, "--pid", "--fork", "--mount-proc", "--kill-child", "true"],
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if out.returncode:
        return out.stderr.decode(errors="replace").strip() or f"exit {out.returncode}"
    return None


def reap_session(w: Wrapper, n: int) -> dict[str, Any]:
    argv = [
        shutil.which("unshare") or "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        *w.cmd(*HELPER_ARGV, "orphans", str(n)),
    ]
    with Proc(argv, stdin=subprocess.DEVNULL) as p:
        line = p.read_line(240, "the orphans report")
        p.wait_exit(30)
    try:
        data: dict[str, Any] = json.loads(line)
    except ValueError:
        raise MeasureError(f"bad report {line!r}") from None
    if data.get("gone_s") is None:
        raise MeasureError(f"orphans still there after 60 s: {data}")
    return data


def bench_reap(wrappers: list[Wrapper], rounds: int, n: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {w.name: {"runs": [], "errors": []} for w in wrappers}
    for r in range(rounds):
        for w in rotated(wrappers, r):
            log(f"reaping: round {r + 1}/{rounds}, {w.name} as PID 1, {n} orphans")
            try:
                out[w.name]["runs"].append(reap_session(w, n))
            except MeasureError as e:
                out[w.name]["errors"].append(str(e))
    return out


# -- 6. idle --------------------------------------------------------------------


def bench_idle(wrappers: list[Wrapper], rounds: int, seconds: float) -> dict[str, dict[str, Any]]:
    """All wrappers idle side by side (they do nothing, so they do not disturb each other)."""
    out: dict[str, dict[str, Any]] = {w.name: {"ctx": [], "cpu": [], "errors": []} for w in wrappers}
    for r in range(rounds):
        log(f"idle: round {r + 1}/{rounds}, {seconds:g} s")
        with procs() as started:
            live: list[tuple[Wrapper, Proc]] = []
            for w in wrappers:
                p = Proc(w.cmd(*HELPER_ARGV, "serve"))
                started.append(p)
                try:
                    p.read_line(20, "READY from the child")
                    settle(p.pid)
                    live.append((w, p))
                except MeasureError as e:
                    out[w.name]["errors"].append(str(e))
            time.sleep(1.0)
            before = {}
            for w, p in live:
                proc = psutil.Process(p.pid)
                before[w.name] = (proc.num_ctx_switches(), proc.cpu_times())
            time.sleep(seconds)
            for w, p in live:
                proc = psutil.Process(p.pid)
                ctx, cpu = proc.num_ctx_switches(), proc.cpu_times()
                ctx0, cpu0 = before[w.name]
                out[w.name]["ctx"].append(
                    (ctx.voluntary - ctx0.voluntary) + (ctx.involuntary - ctx0.involuntary)
                )
                out[w.name]["cpu"].append((cpu.user - cpu0.user) + (cpu.system - cpu0.system))
    return out


# -- 7. escalation --------------------------------------------------------------


def escalation_session(gsup: Wrapper, grace: float) -> dict[str, Any]:
    argv = [*gsup.argv, "--grace", f"{grace:g}", "--", *HELPER_ARGV, "ignore-term"]
    with Proc(argv) as p:
        child = int(p.read_line(20, "READY from the child").split()[1])
        settle(p.pid)
        cfd = os.pidfd_open(child)
        try:
            t0 = time.monotonic()
            os.kill(p.pid, signal.SIGTERM)
            if not wait_readable(cfd, grace + 10):
                raise MeasureError(f"the child outlived the grace by 10 s (grace {grace:g} s)")
            died = time.monotonic()
        finally:
            os.close(cfd)
        ended = p.wait_exit(10)
        return {"error": died - t0 - grace, "after": ended - died, "code": p.returncode}


def bench_escalation(gsup: Wrapper, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": [], "errors": []}
    for r in range(rounds):
        log(f"escalation: round {r + 1}/{rounds}")
        try:
            out["runs"].append(escalation_session(gsup, 1.0))
        except MeasureError as e:
            out["errors"].append(str(e))
    return out


# -- 9-10. programs' output: throughput, and many programs -------------------------


def find_tool(name: str) -> Optional[str]:
    """*name* from ``bench/.venv`` (see the report), else from PATH; a script whose
    interpreter is gone (a venv moved or copied) counts as missing."""
    venv = str(BENCH / ".venv" / "bin" / name)
    for path in (venv, shutil.which(name)):
        if path and os.path.isfile(path) and os.access(path, os.X_OK) and _interpreter_exists(path):
            return path
    return None


def _interpreter_exists(path: str) -> bool:
    first = first_line(path)
    if first is None:
        return False
    if not first.startswith(b"#!"):
        return True
    interpreter = first[2:].split()
    return bool(interpreter) and os.path.exists(os.fsdecode(interpreter[0]))


def find_honcho() -> Optional[str]:
    return find_tool("honcho")


def find_supervisord() -> Optional[str]:
    return find_tool("supervisord")


def gsup_many_programs(gsup: Wrapper, tmp: str) -> Optional[str]:
    """None when ``gsup --config FILE`` runs the programs of FILE, else why not.

    A probe: one program that prints a line and sleeps. ``--config`` alone is
    no proof (it may only read settings), so the line must come out.
    """
    path = os.path.join(tmp, "probe.toml")
    with open(path, "w") as f:
        probe = ["sh", "-c", "echo gsup-bench-probe; exec sleep 600"]
        f.write(f"[programs.probe]\ncommand = {json.dumps(probe)}\n")
    with Proc(
        [*gsup.argv, "--config", "probe.toml"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp,
    ) as p:
        try:
            while True:
                if "gsup-bench-probe" in p.read_line(10, "the probe's line"):
                    return None
        except MeasureError:
            pass
        err = b""
        assert p.popen.stderr is not None
        if wait_readable(p.popen.stderr.fileno(), 0.5):
            err = os.read(p.popen.stderr.fileno(), 4096)
        said = err.decode(errors="replace").strip().splitlines()
        return (
            "not implemented yet (`gsup --config FILE` with [programs] is a later issue"
            + (f"; gsup said: {said[0]!r}" if said else "")
            + ")"
        )


def generator(lines: int, *, linger: bool) -> str:
    cmd = f"yes '{PAYLOAD}' | head -n {lines}"
    # A program that exits stops the others (honcho, and gsup by the spec):
    # so each one sleeps once it is done, and the harness stops the supervisor.
    return f"{cmd}; exec sleep 600" if linger else cmd


#: A whole payload line: the supervisor's prefix, if any (gsup's ``gen1 | ``,
#: honcho's ``12:00:00 gen1.1 | ``; supervisord and the raw pipe add none),
#: then exactly one payload.
WHOLE = re.compile(
    rb"^(?:\d\d:\d\d:\d\d )?(?:gen\d+(?:\.\d+)? *\| )?" + re.escape(PAYLOAD.encode()) + rb"$", re.M
)
#: The supervisor's or a tool's own lines, not the programs' payload: honcho's
#: ``system | gen1.1 started``; ``yes`` reporting EPIPE (supervisord leaves
#: SIGPIPE ignored in its programs).
CHATTER = re.compile(rb"^(?:(?:\d\d:\d\d:\d\d )?system *\| |yes: ).*$", re.M)


def count_lines(data: bytes) -> dict[str, int]:
    """Whole payload lines, and every other line that is not chatter (a broken one)."""
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    whole = len(WHOLE.findall(data))
    chatter = len(CHATTER.findall(data))
    return {"whole": whole, "broken": lines - whole - chatter, "chatter": chatter}


def supervisor_usage(root: int, *, full: bool) -> dict[str, float]:
    """RSS (and with *full* USS and CPU) summed over the supervisor's own processes.

    Those are the processes of the tree under *root* that run a Python
    interpreter (gsup, honcho and its one worker per program, supervisord);
    the programs (``sh``, ``yes``, ``head``, ``sleep``) are not counted.
    """
    rss = uss = cpu = 0.0
    count = 0
    try:
        top = psutil.Process(root)
        tree = [top, *top.children(recursive=True)]
    except psutil.Error:
        return {"rss": math.nan, "uss": math.nan, "cpu": math.nan, "procs": 0}
    for proc in tree:
        try:
            if not os.path.basename(proc.exe()).startswith("python"):
                continue
            if full:
                full_info = proc.memory_full_info()
                rss += full_info.rss
                uss += full_info.uss
                times = proc.cpu_times()
                cpu += times.user + times.system
            else:
                rss += proc.memory_info().rss
            count += 1
        except psutil.Error:
            continue
    return {"rss": rss, "uss": uss, "cpu": cpu, "procs": count}


def output_session(
    argv: Sequence[str], total: int, cwd: str, *, sample: bool, quiet_s: float = 2.0
) -> dict[str, float]:
    """Run *argv*, drain its stdout, and account for the *total* payload lines it should carry.

    The reader keeps the bytes and only counts payload markers while it reads
    (in C: ``bytes.count``), so it drains the pipe as fast as it can; whole
    and broken lines are counted afterwards. It stops at *total* payload
    markers, at EOF, or after *quiet_s* with no output once lines came (lines
    were lost). With *sample*, the supervisor's RSS is sampled every 0.25 s
    (the peak), and its USS and CPU time are read before it is stopped.
    """
    t0 = time.monotonic()
    with Proc(argv, stdin=subprocess.DEVNULL, cwd=cwd) as p:
        assert p.popen.stdout is not None
        fd = p.popen.stdout.fileno()
        chunks: list[bytes] = []
        seen = nbytes = 0
        first_at: Optional[float] = None
        last_at = t0
        first_lines = first_bytes = 0
        tail = b""
        peak = 0.0
        next_sample = t0
        deadline = t0 + 300
        while seen < total:
            now = time.monotonic()
            if now > deadline:
                raise MeasureError(f"{seen} of {total} lines after 300 s")
            if first_at is None and now - t0 > 60:
                raise MeasureError("no payload line within 60 s")
            if first_at is not None and now - last_at > quiet_s:
                break  # quiet: the rest was lost
            if sample and now >= next_sample:
                peak = max(peak, supervisor_usage(p.pid, full=False)["rss"])
                next_sample = now + 0.25
            wait = min(deadline, last_at + quiet_s if first_at is not None else t0 + 60) - now
            if sample:
                wait = min(wait, next_sample - now)
            if not wait_readable(fd, max(wait, 0.001)):
                continue
            data = os.read(fd, 1 << 16)
            now = time.monotonic()
            if not data:
                break
            chunks.append(data)
            nbytes += len(data)
            tail += data
            cut = tail.rfind(b"\n") + 1
            got = tail[:cut].count(MARKER)
            tail = tail[cut:]
            if got:
                seen += got
                last_at = now
                if first_at is None:
                    first_at, first_lines, first_bytes = now, seen, nbytes
        usage = supervisor_usage(p.pid, full=True) if sample else {}
    if first_at is None:
        raise MeasureError("no payload line came")
    counts = count_lines(b"".join(chunks))
    steady = max(last_at - first_at, 1e-9)
    return {
        "lines_s": (seen - first_lines) / steady,
        "mb_s": (nbytes - first_bytes) / steady / 1e6,
        "total_s": last_at - t0,
        "bytes_per_line": nbytes / max(seen, 1),
        "lost": max(0, total - counts["whole"]),
        "broken": counts["broken"],
        "whole": counts["whole"],
        "rss_peak": max(peak, usage.get("rss", 0.0)) if sample else math.nan,
        **usage,
    }


def write_configs(tmp: str, gens: Sequence[str]) -> dict[str, str]:
    """The same programs for each supervisor: gsup.toml, Procfile, supervisord.conf."""
    with open(os.path.join(tmp, "gsup.toml"), "w") as f:
        for i, g in enumerate(gens):
            f.write(f"[programs.gen{i + 1}]\ncommand = {json.dumps(['sh', '-c', g])}\n\n")
    with open(os.path.join(tmp, "Procfile"), "w") as f:
        f.writelines(f"gen{i + 1}: {g}\n" for i, g in enumerate(gens))
    with open(os.path.join(tmp, "supervisord.conf"), "w") as f:
        f.write(SUPERVISORD_HEAD.format(tmp=tmp))
        for i, g in enumerate(gens):
            f.write(SUPERVISORD_PROGRAM.format(name=f"gen{i + 1}", command=shlex.quote(g)))
    return {"gsup": "gsup.toml", "honcho": "Procfile", "supervisord": "supervisord.conf"}


#: supervisord in the foreground (``-n``), its own log in a file and not on
#: stdout (``silent``), every program's stdout and stderr to supervisord's stdout.
SUPERVISORD_HEAD = """[supervisord]
nodaemon=true
silent=true
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}

"""
SUPERVISORD_PROGRAM = """[program:{name}]
command=sh -c {command}
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
redirect_stderr=true
startsecs=0
autorestart=false

"""


#: ``gsup_many_programs``'s answer, asked once a run.
_PROBED: dict[str, Optional[str]] = {}


def supervisors(gsup: Optional[Wrapper], tmp: str) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    """(name, argv) of every supervisor found, and why each missing one is skipped."""
    found: list[tuple[str, list[str]]] = []
    skipped: dict[str, str] = {}
    if "gsup" not in _PROBED:
        _PROBED["gsup"] = gsup_many_programs(gsup, tmp) if gsup is not None else "gsup not found"
    why = _PROBED["gsup"]
    if why is None and gsup is not None:
        found.append(("gsup", [*gsup.argv, "--config", "gsup.toml"]))
    else:
        skipped["gsup"] = why or "?"
    honcho = find_honcho()
    if honcho:
        found.append(("honcho", [honcho, "-f", "Procfile", "start"]))
    else:
        skipped["honcho"] = "honcho not installed"
    supervisord = find_supervisord()
    if supervisord:
        found.append(("supervisord", [supervisord, "-n", "-c", "supervisord.conf"]))
    else:
        skipped["supervisord"] = "supervisord not installed"
    return found, skipped


RAW = "raw pipe (no supervisor)"


def bench_output(
    gsup: Optional[Wrapper], rounds: int, programs: int, lines: int
) -> dict[str, dict[str, Any]]:
    """*programs* generators of *lines* lines each: into one raw pipe, and under each supervisor."""
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="gsup-bench-") as tmp:
        write_configs(tmp, [generator(lines, linger=True) for _ in range(programs)])
        direct = " & ".join(f"({generator(lines, linger=False)})" for _ in range(programs))
        found, skipped = supervisors(gsup, tmp)
        runners = [(RAW, ["sh", "-c", f"{direct} & wait"]), *found]
        for name, _ in runners:
            out[name] = {"runs": [], "errors": []}
        for name, why in skipped.items():
            out[name] = {"runs": [], "errors": [], "skipped": why}
        for r in range(rounds):
            for name, argv in rotated(runners, r):
                log(f"output: round {r + 1}/{rounds}, {name}")
                try:
                    out[name]["runs"].append(output_session(argv, programs * lines, tmp, sample=False))
                except MeasureError as e:
                    out[name]["errors"].append(str(e))
    return out


def bench_many(
    gsup: Optional[Wrapper], rounds: int, counts: Sequence[int], lines: int
) -> dict[str, dict[int, dict[str, Any]]]:
    """For each number of programs, each supervisor: memory, CPU time, lines lost and broken."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="gsup-bench-") as tmp:
            write_configs(tmp, [generator(lines, linger=True) for _ in range(n)])
            found, skipped = supervisors(gsup, tmp)
            for name, why in skipped.items():
                out.setdefault(name, {})[n] = {"runs": [], "errors": [], "skipped": why}
            for name, _ in found:
                out.setdefault(name, {})[n] = {"runs": [], "errors": []}
            for r in range(rounds):
                for name, argv in rotated(found, r):
                    log(f"many programs: {n} x {lines:,} lines, round {r + 1}/{rounds}, {name}")
                    try:
                        out[name][n]["runs"].append(output_session(argv, n * lines, tmp, sample=True))
                    except MeasureError as e:
                        out[name][n]["errors"].append(str(e))
    return out


# -- the machine ----------------------------------------------------------------


#: Where the gsup package measured lives (``compile_gsup`` finds it); its commit is the revision.
PACKAGE_DIR: list[str] = []


#: ``revision()``'s answer, taken once when the measuring starts.
_REVISION: list[str] = []


def revision() -> str:
    """The commit of the tree measured (gsup runs from it: an editable install).

    Asked once, before the first measurement: what the tree was when it was
    measured, whatever is edited while the run goes on.
    """
    if _REVISION:
        return _REVISION[0]
    tree = os.path.dirname(PACKAGE_DIR[0]) if PACKAGE_DIR else str(ROOT)
    try:
        out = subprocess.run(
            ["git", "-C", tree, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    _REVISION.append(out.stdout.strip() or "?")
    return _REVISION[0]


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    virt = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        if " hypervisor" in f.read():
            virt = " (virtual machine)"
    mem = psutil.virtual_memory().total / 2**30
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical cores{virt}",
        "memory": f"{mem:.0f} GiB",
        "kernel": f"Linux {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


# -- the report -------------------------------------------------------------------


def nrounds(k: int) -> str:
    return f"{k} round" if k == 1 else f"{k} rounds"


def ms(x: float, digits: int = 2) -> str:
    return "—" if x is None or math.isnan(x) else f"{x * 1000:.{digits}f}"


def mib(x: float) -> str:
    return "—" if math.isnan(x) else f"{x / MiB:.1f}"


def ratio(x: float, ref: Optional[float]) -> str:
    if ref is None or math.isnan(x) or math.isnan(ref) or ref <= 0:
        return "—"
    return f"{x / ref:.2f}{X}"


def verdict(ok: Optional[bool]) -> str:
    return {True: "**met**", False: "**not met**", None: "not measured"}[ok]


@dataclass
class Report:
    args: argparse.Namespace
    cfg: dict[str, Any]
    wrappers: list[Wrapper]
    missing: list[str]
    started: float
    load_before: tuple[float, float, float]
    load_mid: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    procs_before: int = field(default_factory=lambda: len(psutil.pids()))
    procs_mid: int = 0
    bytecode: str = "not compiled: gsup not found"
    #: The raw results of an earlier run to compare with (``--baseline``).
    baseline: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    #: (order, target, gsup's figure, the reference's, ratio, met)
    targets: list[tuple[str, str, str, str, str, Optional[bool]]] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def target(self, order: str, what: str, figure: str, ref: str, rat: str, ok: Optional[bool]) -> None:
        self.targets.append((order, what, figure, ref, rat, ok))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header))
        self.add(*("| " + " | ".join(r) + " |" for r in rows))
        self.add("")

    def errors(self, name: str, errs: Sequence[str]) -> None:
        for e in sorted(set(errs)):
            self.add(f"- {name}: {errs.count(e)} failed run(s): {e}")
        if errs:
            self.add("")


def render_baseline(rep: Report, serve: dict[str, ServeResult]) -> None:
    """Forwarding and exit propagation of this run beside those of the ``--baseline`` run."""
    base, rev = rep.baseline["serve"], rep.baseline.get("revision", "?")
    rep.add(
        f"### Against an earlier run: the baseline at `{rev}`",
        "",
        f"The same measurement, run by this harness on the gsup of `{rev}` "
        f"({rep.baseline.get('date', '?')}, the same machine), beside this run's at `{revision()}`. "
        "tini's figures of both runs show how far the machine itself moved between them.",
        "",
    )
    rows = []
    for name, label in (("gsup", "gsup --quiet"), (LOGGING, "gsup (log on)"), ("tini", "tini -s")):
        if name not in serve or name not in base:
            continue
        b, s = base[name], serve[name]
        rows.append(
            [
                f"`{label}`",
                ms(median(b["added"]), 3),
                ms(p90(b["added"]), 3),
                ms(median(s.added), 3),
                ms(p90(s.added), 3),
                ms(median(b["exit_added"]), 3),
                ms(median(s.exit_added), 3),
            ]
        )
    rep.table(
        [
            "wrapper",
            "forwarding added, baseline median ms",
            "p90 ms",
            "this run median ms",
            "p90 ms",
            "exit added, baseline median ms",
            "this run median ms",
        ],
        rows,
    )


def settled_note(serve: dict[str, ServeResult], key: str) -> str:
    """How often gsup's lean process had its signal inbox open at the moment of sending."""
    got: list[bool] = getattr(serve["gsup"], key) if "gsup" in serve else []
    if not got:
        return ""
    return (
        f" gsup's lean process had opened its signal inbox (the handover was over) at the "
        f"moment of sending in {sum(got)} of {len(got)} sessions."
    )


def render_modules(
    rep: Report, mods: Optional[dict[str, Any]], gsup: Optional[ServeResult], no_site_rss: float
) -> None:
    """The modules gsup's lean process holds, and the RSS each adds to a bare ``python3 -I -S``."""
    if not mods:
        return
    rep.add("### What the lean supervising process holds", "")
    if mods.get("skipped"):
        rep.add(f"Not measured: {mods['skipped']}.", "")
        return
    deltas: dict[str, float] = mods["deltas"]
    kinds: dict[str, str] = mods["kinds"]
    groups: dict[str, dict[str, Any]] = {}
    tops = {n.split(".")[0] for n in deltas}
    for name, delta in deltas.items():
        kind = kinds[name]
        if kind == "preloaded" or delta < 0:
            continue
        top = name.split(".")[0]
        # gsup's own modules one by one; the standard library by top-level
        # package, an accelerator (_pickle) with its module (pickle)
        key = name if top == "gsup" else top[1:] if top[:1] == "_" and top[1:] in tops else top
        g = groups.setdefault(key, {"bytes": 0.0, "modules": [], "ext": []})
        g["bytes"] += delta
        g["modules"].append(name)
        if kind == "extension":
            g["ext"].append(name)
    preloaded = [n for n, k in kinds.items() if k == "preloaded"]
    missing = [n for n, k in kinds.items() if k == "not found"]
    alone = [n for n, k in kinds.items() if k == "alone"]
    total = sum(g["bytes"] for g in groups.values())
    lean = median(gsup.rss) if gsup else math.nan
    rep.add(
        "Method: the modules are the lean interpreter's own imports, read from "
        "`PYTHONPROFILEIMPORTTIME=1` (§1's profile: the last interpreter's imports up to the "
        "child's end). A fresh `python3 -I -S` then imports them one by one in that order, "
        "which is the order their imports finished in, so a module comes after everything "
        "it imports, and reads its own RSS (/proc/self/statm) after each: each delta is "
        "what that module adds, extension modules (`.so`, their mapped pages) and pure "
        "Python ones (code objects, dicts) alike, and the deltas add up. "
        f"{nrounds(mods['runs'])}, the median delta per module. Preloaded by every "
        f"interpreter before `-c` runs, so free: {len(preloaded)} modules "
        f"({', '.join(f'`{n}`' for n in preloaded[:8])}{', …' if len(preloaded) > 8 else ''})"
        + (
            f"; not found (optional imports that failed): {', '.join(f'`{n}`' for n in missing)}"
            if missing
            else ""
        )
        + (
            f"; not importable first, so counted with the module imported next: "
            f"{', '.join(f'`{n}`' for n in alone)}"
            if alone
            else ""
        )
        + ".",
        "",
        f"The replaying interpreter starts at {mib(mods['start'])} MiB and ends at "
        f"{mib(mods['end'])} MiB: the modules add {mib(total)} MiB. gsup's lean process "
        f"measured {mib(lean)} MiB in §2, a sleeping `python3 -I -S` {mib(no_site_rss)} MiB: "
        f"{mib(lean - no_site_rss)} MiB more, of which the modules are {mib(total)} MiB and "
        f"the rest ({mib(lean - no_site_rss - total)} MiB) is the supervisor's data (the plan, "
        "the loop, buffers) and allocator slack.",
        "",
    )
    rows = []
    for key, g in sorted(groups.items(), key=lambda kv: -kv[1]["bytes"]):
        rows.append(
            [
                f"`{key}`",
                str(len(g["modules"])),
                f"{g['bytes'] / 1024:.0f}",
                ", ".join(f"`{e}`" for e in g["ext"]) or "—",
            ]
        )
    rows.append(["total", str(sum(len(g["modules"]) for g in groups.values())), f"{total / 1024:.0f}", ""])
    rep.table(["module or package", "modules", "RSS added KiB", "extension modules among them"], rows)


def render_window(rep: Report, win: dict[str, Any], cfg: dict[str, Any], load_note: str) -> None:
    runs = win["runs"]
    bare = median(win["bare"])
    blocked = [r["blocked"] for r in runs if r["blocked"] is not None]
    b = median(blocked)
    rep.add(
        "**Every signal blocked.** From the spawn of `gsup --quiet -- python3 -I -S helper.py "
        "serve` until /proc/PID/status shows every catchable signal in `SigBlk` (all but "
        "SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT, KILL and STOP), polled every "
        f"{MASK_POLL_S * 1000:g} ms; the reference is `python3 -c pass` from its spawn to its "
        "exit, its status polled the same way (the poller costs both alike), in the same "
        f"rounds. Before that moment a signal finds gsup with its default disposition: "
        "SIGTERM or SIGUSR1 end it, and as PID 1 of a container the kernel drops them.",
        "",
    )
    rep.table(
        ["", "median ms", "p90 ms", "samples", "ratio to `python3 -c pass`"],
        [
            [
                "spawn → every signal blocked (gsup)",
                ms(b, 1),
                ms(p90(blocked), 1),
                str(len(blocked)),
                ratio(b, bare),
            ],
            [
                "`python3 -c pass`, spawn → exit",
                ms(bare, 1),
                ms(p90(win["bare"]), 1),
                str(len(win["bare"])),
                "1.00" + X,
            ],
        ],
    )
    rep.add(
        "**A signal at each offset.** One session per offset and round (standard signals "
        "pending together merge, so one signal a session): SIGUSR1 to gsup that long after "
        "its spawn; the child sets its handler before it writes READY, so a byte that comes "
        "before READY is counted too. *Handover over* is when gsup's lean process was about "
        "to read its signal inbox (it names itself `gsup` right before its loop; looked for "
        "every millisecond once the mask is set); *READY* is when the child's line came; *past the handover* "
        "is the byte's arrival minus the later of the "
        "sending and that moment. The signal goes out within a few microseconds of its "
        f"offset. {nrounds(cfg['window_rounds'])}; medians, worst in brackets." + load_note,
        "",
    )
    rows = []
    for offset in sorted({r["offset"] for r in runs}):
        at = [r for r in runs if r["offset"] == offset]
        arrived = [r for r in at if r["outcome"] == "arrived"]
        others = sorted({r["outcome"] for r in at if r["outcome"] != "arrived"})
        lat = [r["latency"] for r in arrived]
        past = [r["past_handover"] for r in arrived if r.get("past_handover") is not None]
        ready = [r["ready"] for r in arrived if r["ready"] is not None]
        inbox = [r["inbox"] for r in arrived if r["inbox"] is not None]
        masked = sum(bool(r["blocked_at_send"]) for r in at)
        rows.append(
            [
                f"{offset * 1000:g}",
                f"{masked} of {len(at)}",
                f"{len(arrived)} of {len(at)}" + (f" ({'; '.join(others)})" if others else ""),
                f"{ms(median(lat), 1)} ({ms(max(lat), 1)})" if lat else "—",
                f"{ms(median(ready), 0)}" if ready else "—",
                f"{ms(median(inbox), 0)}" if inbox else "—",
                f"{ms(median(past), 2)} ({ms(max(past), 2)})" if past else "—",
            ]
        )
    rep.table(
        [
            "offset ms",
            "mask set at the sending",
            "arrived",
            "latency ms",
            "child READY at ms",
            "handover over at ms",
            "past the handover ms",
        ],
        rows,
    )
    rep.errors("gsup", win["errors"])
    rep.target(
        "4a",
        f"start-up: spawn → every signal blocked ≤ {BLOCKED_VS_BARE:g}{X} `python3 -c pass`",
        f"{ms(b, 1)} ms",
        f"`python3 -c pass` {ms(bare, 1)} ms",
        ratio(b, bare),
        None if math.isnan(b) or math.isnan(bare) else b <= BLOCKED_VS_BARE * bare,
    )
    after = [r for r in runs if r["blocked_at_send"]]
    ok_runs = [r for r in after if r["outcome"] == "arrived" and r.get("past_handover") is not None]
    lost = len(after) - len([r for r in after if r["outcome"] == "arrived"])
    worst = max((r["past_handover"] for r in ok_runs), default=math.nan)
    rep.target(
        "4b",
        "start-up: once the mask is set no signal is lost, and none waits past the handover "
        f"(+{ms(WINDOW_SLACK_S, 0)} ms)",
        f"{len(after) - lost} of {len(after)} arrived; worst {ms(worst, 2)} ms past the handover",
        "—",
        "—",
        None if not after else lost == 0 and len(ok_runs) == len(after) and worst <= WINDOW_SLACK_S,
    )


def floor_note(what: str, g: float, floor: float, tini: Optional[float]) -> str:
    """gsup's added median against the minimal Python forwarder's (and tini's, if there)."""
    if math.isnan(g) or math.isnan(floor):
        return ""
    text = f"gsup's added {what} median is {ratio(g, floor)} the minimal Python forwarder's"
    if tini is not None and not math.isnan(tini) and g > tini:
        text += (
            f"; of gsup's {ms(g - tini, 3)} ms above tini, the interpreter's floor accounts "
            f"for {ms(floor - tini, 3)} ms"
        )
    return text + "."


def vs_tini_target(
    rep: Report, key: str, what: str, limit: float, m: float, tini: Optional[float], floor: float
) -> None:
    """A target row: gsup's steady-state added median *m* within *limit* times tini's."""
    rep.target(
        key,
        f"{what} (steady state): added median ≤ {limit:g}{X} tini's",
        f"{ms(m, 3)} ms",
        (f"tini {ms(tini, 3)} ms" if tini is not None else "tini not installed")
        + f"; a minimal Python forwarder {ms(floor, 3)} ms",
        ratio(m, tini),
        None if math.isnan(m) or tini is None or math.isnan(tini) else m <= limit * max(tini, 0.0),
    )


def render(rep: Report, res: dict[str, Any]) -> str:
    def load(name: str) -> str:
        if name not in res["load"]:
            return ""
        a, b = res["load"][name]
        return f" (1-minute load average {a:.1f} when this section started, {b:.1f} when it ended.)"

    cfg = rep.cfg
    names = [w.name for w in rep.wrappers]
    has_tini = "tini" in names
    gsup = next((w for w in rep.wrappers if w.name == "gsup"), None)
    shown = {w.name: w.shown for w in rep.wrappers}

    # 1. start
    start = res["start"]
    true_m = median(start["true"])
    typer_m = median(start["python3 -c 'import typer'"])
    tini_key = f"{shown['tini']} -- true" if has_tini else None
    tini_start = median(start[tini_key]) if tini_key else None
    rep.add(
        "## 1. Start overhead",
        "",
        "Wall time from spawning the command to seeing it exit (a pidfd becomes readable), "
        f"{cfg['start_rounds']} interleaved rounds"
        + ("" if rep.args.quick else " after one warm-up round")
        + ". `true` is the "
        "cost of starting any program; `python3 -c pass` and `python3 -c 'import typer'` "
        "(the same interpreter that runs gsup) are the floors a Python tool using typer can "
        "reach. *Minus `true`* is what the wrapper adds to a container's start." + load("start"),
        "",
    )
    rows = []
    for name, xs in start.items():
        rows.append(
            [f"`{name}`", ms(median(xs)), ms(p90(xs)), ms(median(xs) - true_m), ratio(median(xs), tini_start)]
        )
    rep.table(["command", "median ms", "p90 ms", "minus `true` ms", "ratio to tini"], rows)
    child = res["child_start"]
    echo_m = median(child["echo"])
    tini_child = median(child[f"{shown['tini']} -- echo"]) if has_tini else None
    rep.add(
        "Time until the child runs: from the spawn to the first byte `echo` writes "
        "(`WRAPPER -- echo`, same rounds). The wrapper's exit can come later than its child's "
        "start (gsup's handover to its lean interpreter happens after the child started).",
        "",
    )
    rep.table(
        ["command", "median ms", "p90 ms", "minus `echo` ms", "ratio to tini"],
        [
            [
                f"`{name}`",
                ms(median(xs)),
                ms(p90(xs)),
                ms(median(xs) - echo_m),
                ratio(median(xs), tini_child),
            ]
            for name, xs in child.items()
        ],
    )
    if gsup:
        g = median(start[f"{gsup.shown} -- true"])
        gc = median(child.get(f"{gsup.shown} -- echo", []))
        runs_at = (
            ""
            if math.isnan(gc)
            else (f" (the child itself runs after {ms(gc, 1)} ms = {gc / typer_m:.2f}{X})")
        )
        rep.target(
            "7",
            f"start: `gsup -- true` ≤ {START_RATIO}{X} `python3 -c 'import typer'`",
            f"{ms(g, 1)} ms" + runs_at,
            f"`python3 -c 'import typer'` {ms(typer_m, 1)} ms"
            + (f"; tini {ms(tini_start, 1)} ms" if tini_start is not None else ""),
            ratio(g, typer_m),
            None if math.isnan(g) else g <= START_RATIO * typer_m,
        )
    prof = res.get("imports")
    if prof:
        rep.add(
            "What gsup imports before it starts the child (`PYTHONPROFILEIMPORTTIME=1 gsup "
            "--quiet -- sh -c ...`, the child writing a marker to the same stderr; self time "
            "per top-level package, the largest first; profiling itself slows imports down):",
            "",
        )
        top = prof["by_package_ms"][:12]
        rep.table(["package", "self import time ms"], [[f"`{k}`", f"{v:.1f}"] for k, v in top])
        handed = prof["interpreters"] > 1
        held = ", ".join(f"`{k}` {v:.1f} ms" for k, v in prof["held_ms"][:10])
        rep.add(
            f"Total: {prof['total_before_ms']:.1f} ms in {prof['modules_before']} modules before "
            "the child starts; heavy packages among them: "
            f"{', '.join(prof['heavy_before']) or 'none'}. "
            + (
                f"gsup then `execve`s a second interpreter on the same pid, which holds "
                f"{prof['modules_held']} modules while the child runs ({held}; heavy ones: "
                f"{', '.join(prof['heavy_held']) or 'none'}). "
                if handed
                else f"The same process supervises, holding {prof['modules_held']} modules "
                f"while the child runs (heavy ones: {', '.join(prof['heavy_held']) or 'none'}). "
            )
            + "Imported when the child has ended (stop, report): "
            + (", ".join(f"`{k}` {v:.1f} ms" for k, v in prof["after_ms"][:8]) or "nothing")
            + ".",
            "",
        )

    # 2. memory
    serve, floors = res["serve"], res["floors"]
    no_site_rss = median(floors[NO_SITE].rss)
    tini_rss = median(serve["tini"].rss) if has_tini else None
    rep.add(
        "## 2. Resident memory of the supervising process",
        "",
        "RSS and USS (memory unique to the process, from /proc/PID/smaps via psutil) of the "
        "wrapper's own process "
        f"{SETTLE_S:g} s after its child (`helper.py serve`, sleeping on stdin) reported ready "
        "(gsup `execve`s its lean interpreter after starting the child; that is over by then); "
        f"{nrounds(cfg['serve_rounds'])}. *RSS after signals* is measured again "
        f"after the {cfg['signals']} forwarded signals of §3 (lazy imports show there). The "
        "floors are interpreters sleeping in `os.read`, measured the same way in the same "
        "rounds: after `-c pass`, after `-I -S -c pass` (no site: what gsup's lean process "
        "runs with) and after `-c 'import typer'`. "
        f"{FLOOR_ROW} is `bench/floor.py` supervising the same child: every signal blocked, "
        "a signalfd, fork and exec, then poll, one read, one `kill` (the floor of any "
        "forwarder in Python; not a supervisor)." + load("serve"),
        "",
    )
    with_floor = [*names, *([FLOOR] if FLOOR in serve else [])]
    label = {**{n: f"`{shown[n]}`" for n in names}, LOGGING: "`gsup (log on)`", FLOOR: FLOOR_ROW}
    rows = []
    for name in with_floor:
        s = serve[name]
        rows.append(
            [
                label[name],
                mib(median(s.rss)),
                mib(p90(s.rss)),
                mib(median(s.uss)),
                mib(median(s.rss_after)),
                ratio(median(s.rss), no_site_rss),
                ratio(median(s.rss), tini_rss),
            ]
        )
    for name, s in floors.items():
        rows.append(
            [
                name,
                mib(median(s.rss)),
                mib(p90(s.rss)),
                mib(median(s.uss)),
                "—",
                ratio(median(s.rss), no_site_rss),
                ratio(median(s.rss), tini_rss),
            ]
        )
    rep.table(
        [
            "process",
            "RSS median MiB",
            "RSS p90 MiB",
            "USS median MiB",
            "RSS after signals MiB",
            "RSS ratio to `python3 -I -S`",
            "RSS ratio to tini",
        ],
        rows,
    )
    for name in with_floor:
        rep.errors(name, serve[name].errors)
    for name, s in floors.items():
        rep.errors(name, s.errors)
    if gsup:
        g = median(serve["gsup"].rss)
        rep.target(
            "3",
            f"memory: RSS while supervising ≤ {MEMORY_VS_NO_SITE}{X} a sleeping `python3 -I -S`",
            f"{mib(g)} MiB",
            f"`python3 -I -S` {mib(no_site_rss)} MiB",
            ratio(g, no_site_rss),
            None if math.isnan(g) or math.isnan(no_site_rss) else g <= MEMORY_VS_NO_SITE * no_site_rss,
        )
    render_modules(rep, res.get("modules"), serve.get("gsup"), no_site_rss)

    # 3. forwarding
    rep.add(
        "## 3. Signal forwarding latency",
        "",
        "The harness sends SIGUSR1 to the wrapper and times until a byte arrives from the "
        "child: the child's interpreter writes it from its C-level signal handler "
        "(`signal.set_wakeup_fd`), so no Python code runs in between.",
        "",
        f"**Steady state**: the signals are sent {SETTLE_S:g} s after the child reported ready. "
        "Each sample is paired with the same signal sent straight to the child in the same "
        "session (order alternating); *added* is the difference within each pair. "
        f"{cfg['serve_rounds']} rounds {X} {cfg['signals']} pairs per wrapper."
        + settled_note(serve, "settled"),
        "",
    )
    tini_fwd = median(serve["tini"].added) if has_tini else None
    tini_fwd90 = p90(serve["tini"].added) if has_tini else None
    rows = []
    floor_fwd = median(serve[FLOOR].added) if FLOOR in serve else math.nan
    for name in [*names, *([LOGGING] if LOGGING in serve else []), *([FLOOR] if FLOOR in serve else [])]:
        s = serve[name]
        rows.append(
            [
                label[name],
                ms(median(s.via), 3),
                ms(p90(s.via), 3),
                ms(median(s.direct), 3),
                ms(median(s.added), 3),
                ms(p90(s.added), 3),
                ratio(median(s.added), tini_fwd),
            ]
        )
    rep.table(
        [
            "wrapper",
            "via wrapper median ms",
            "p90 ms",
            "direct median ms",
            "added median ms",
            "added p90 ms",
            "added, ratio to tini",
        ],
        rows,
    )
    if LOGGING in serve:
        rep.add(
            "`gsup (log on)` is gsup without `--quiet`: it writes a line for each signal received "
            "and forwarded (to the stderr the harness discards). It sends the signal first and "
            "writes after, so its added latency should match `gsup --quiet`'s.",
            "",
        )
    if gsup and FLOOR in serve:
        note = floor_note("forwarding", median(serve["gsup"].added), floor_fwd, tini_fwd)
        if note:
            rep.add(note, "")
    tini_early = median(serve["tini"].early_fwd) if has_tini else None
    rep.add(
        "**Start-up window**: one SIGUSR1 to the wrapper the moment the child's READY line "
        "arrives, in a session of its own (one a round per wrapper). gsup may still be "
        "handing over to its lean process then: the signal waits, blocked and pending, until "
        "the lean process's loop reads it. The times are from the sending to the child's byte "
        "(nothing subtracted)." + settled_note(serve, "early_fwd_settled"),
        "",
    )
    rep.table(
        ["wrapper", "at READY, median ms", "p90 ms", "max ms", "ratio to tini"],
        [
            [
                f"`{shown[name]}`",
                ms(median(serve[name].early_fwd), 3),
                ms(p90(serve[name].early_fwd), 3),
                ms(max(serve[name].early_fwd, default=math.nan), 3),
                ratio(median(serve[name].early_fwd), tini_early),
            ]
            for name in names
        ],
    )
    if rep.baseline:
        render_baseline(rep, serve)
    if gsup:
        s = serve["gsup"]
        m, q = median(s.added), p90(s.added)
        vs_tini_target(rep, "1a", "forwarding", FORWARD_VS_TINI, m, tini_fwd, floor_fwd)
        rep.target(
            "1b",
            f"forwarding (steady state): added p90 ≤ {ms(FORWARD_P90_S, 1)} ms",
            f"{ms(q, 3)} ms",
            f"tini {ms(tini_fwd90, 3)} ms" if tini_fwd90 is not None else "tini not installed",
            ratio(q, tini_fwd90),
            None if math.isnan(q) else q <= FORWARD_P90_S,
        )

    # 4. exit
    rep.add(
        "## 4. Exit propagation",
        "",
        "The child writes `time.monotonic()` and calls `os._exit(0)`. The harness watches "
        "the child and the wrapper with a pidfd each, in one `poll`: a pidfd turns readable "
        "when its process has exited. *Child exit* is from the child's time stamp to its own "
        "exit (what any process takes to die); *added* is from the child's exit to the "
        "wrapper's, in the same session: what the wrapper adds. **Steady state**: the exit is "
        f"asked for {SETTLE_S:g} s after READY, after the signals of §3; "
        f"{nrounds(cfg['serve_rounds'])}. **Start-up window**: the exit is asked for the moment "
        "READY arrives, in a session of its own (one a round)." + settled_note(serve, "early_exit_settled"),
        "",
    )
    tini_exit = median(serve["tini"].exit_added) if has_tini else None
    floor_exit = median(serve[FLOOR].exit_added) if FLOOR in serve else math.nan
    rows = []
    for name in with_floor:
        s = serve[name]
        rows.append(
            [
                label[name],
                ms(median(s.child_exit), 3),
                ms(median(s.exit), 3),
                ms(median(s.exit_added), 3),
                ms(p90(s.exit_added), 3),
                ratio(median(s.exit_added), tini_exit),
                ms(median(s.early_exit_added), 3),
                ms(p90(s.early_exit_added), 3),
            ]
        )
    rep.table(
        [
            "wrapper",
            "child exit median ms",
            "stamp → wrapper gone median ms",
            "added median ms",
            "added p90 ms",
            "added, ratio to tini",
            "start-up window: added median ms",
            "p90 ms",
        ],
        rows,
    )
    if gsup and FLOOR in serve:
        note = floor_note("exit", median(serve["gsup"].exit_added), floor_exit, tini_exit)
        if note:
            rep.add(f"{FLOOR_ROW} is measured in the steady state only. " + note, "")
    if gsup:
        m = median(serve["gsup"].exit_added)
        vs_tini_target(rep, "2", "exit propagation", EXIT_VS_TINI, m, tini_exit, floor_exit)

    # 5. the start-up window
    win = res.get("window")
    rep.add("## 5. The start-up window: signals while gsup starts (gsup only)", "")
    if win is None:
        rep.add("Not measured: gsup not found.", "")
    else:
        render_window(rep, win, cfg, load("window"))

    # 6. reaping
    reap: Any = res.get("reap")
    rep.add("## 6. Zombie reaping as PID 1", "")
    if reap is None:
        rep.add("Not measured.", "")
    elif isinstance(reap, str):
        rep.add(f"Not measured: {reap}.", "")
        rep.target("r", "reaping", reap, "—", "—", None)
    else:
        n = cfg["orphans"]
        rep.add(
            f"`unshare --pid --fork --mount-proc --kill-child WRAPPER -- python3 helper.py "
            f"orphans {n}`: the wrapper is PID 1 of a new PID namespace; a shell forks {n} "
            f"subshells blocked on a pipe and exits, so they are orphans of PID 1; closing the "
            f"pipe makes all {n} exit at once. The helper (PID 2) counts the namespace's processes "
            "in /proc every 2 ms plus the scan itself (about 10 ms with 10,000 processes, so "
            "the zombie peak is a lower bound; the scan runs under RCU and takes no lock that "
            "reaping needs); each orphan writes a byte to a pipe just before it exits, so the "
            "helper knows how many have exited. *Last exit* is when the last orphan "
            "exited; *none left* is when PID 1 had reaped them all. "
            f"{nrounds(cfg['reap_rounds'])}.",
            "",
        )

        backlog = max(50, n // 20)  # fewer zombies left than this: no backlog to time

        def drains(runs: list[dict[str, Any]]) -> list[float]:
            return [
                r["zombies_at_last_exit"] / (r["gone_s"] - r["last_exit_s"])
                for r in runs
                if r["zombies_at_last_exit"] >= backlog and r["gone_s"] > r["last_exit_s"]
            ]

        tini_rate = tini_drain = None
        if has_tini and reap["tini"]["runs"]:
            tini_rate = median([n / r["gone_s"] for r in reap["tini"]["runs"]])
            tini_drain = median(drains(reap["tini"]["runs"]))
        rows = []
        for name in names:
            runs = reap[name]["runs"]
            last = [r["last_exit_s"] for r in runs]
            gone = [r["gone_s"] for r in runs]
            lag_n = [r["gone_s"] - r["last_exit_s"] for r in runs]
            rate_n = [n / r["gone_s"] for r in runs]
            drain_n = drains(runs)
            zmax = [r["max_zombies"] for r in runs]
            zlast = [r["zombies_at_last_exit"] for r in runs]
            rows.append(
                [
                    f"`{shown[name]}`",
                    ms(median(last), 0),
                    ms(median(gone), 0),
                    ms(median(lag_n), 0),
                    ms(p90(lag_n), 0),
                    f"{median(zmax):,.0f} / {max(zmax):,}" if zmax else "—",
                    f"{median(zlast):,.0f}" if zlast else "—",
                    f"{median(rate_n):,.0f}" if rate_n else "—",
                    ratio(median(rate_n), tini_rate),
                    f"{median(drain_n):,.0f}" if drain_n else "—",
                    ratio(median(drain_n), tini_drain),
                ]
            )
        rep.table(
            [
                "PID 1",
                "release → last exit ms",
                "release → none left ms",
                "last exit → none left, median ms",
                "p90 ms",
                "zombies seen, median / max",
                "zombies at the last exit",
                "overall orphans/s",
                "ratio to tini",
                "drain after the last exit, zombies/s",
                "ratio to tini",
            ],
            rows,
        )
        rep.add(
            "All orphans become runnable at once, so PID 1 competes with thousands of exiting "
            "processes for 2 cores: the *overall* rate (orphans / release → none left) is "
            "mostly the kernel's and the scheduler's. The *drain* rate (zombies left at the "
            "last exit / time to reap them) is the reaper's own speed, and is the one the "
            f"target compares with tini's; it is left out (—) of runs with fewer than {backlog} "
            "zombies left at the last exit (no backlog: the reaper kept up)." + load("reap"),
            "",
        )
        for name in names:
            rep.errors(name, reap[name]["errors"])
        if gsup and reap["gsup"]["runs"]:
            runs = reap["gsup"]["runs"]
            tini_runs = reap["tini"]["runs"] if has_tini else []
            tini_lags = [r["gone_s"] - r["last_exit_s"] for r in tini_runs]
            lags = [r["gone_s"] - r["last_exit_s"] for r in runs]
            lag = median(lags)
            rate = median([n / r["gone_s"] for r in runs])
            drain = median(drains(runs))
            if math.isnan(drain):  # no backlog at the last exit: it kept up
                rate_ok = True
            elif tini_drain is not None and not math.isnan(tini_drain):
                rate_ok = drain >= REAP_RATE_VS_TINI * tini_drain
            else:
                rate_ok = tini_rate is None or rate >= REAP_RATE_VS_TINI * tini_rate
            ok = lag <= REAP_AFTER_LAST_EXIT_S and rate_ok
            rep.target(
                "r",
                f"reaping: {n:,} orphans gone within 1 s of the last exit, ≥ half of tini's rate",
                f"{ms(lag, 0)} ms after the last exit (median; p90 {ms(p90(lags), 0)} ms); drain "
                + (f"{drain:,.0f} zombies/s" if not math.isnan(drain) else "— (no backlog)")
                + f"; overall {rate:,.0f} orphans/s",
                (
                    f"tini: p90 {ms(p90(tini_lags), 0)} ms; drain "
                    + (f"{tini_drain:,.0f} zombies/s" if tini_drain and not math.isnan(tini_drain) else "—")
                    + (f"; overall {tini_rate:,.0f} orphans/s" if tini_rate else "")
                )
                if tini_lags
                else "tini not installed",
                f"drain {ratio(drain, tini_drain)}"
                if tini_drain and not math.isnan(tini_drain) and not math.isnan(drain)
                else f"overall {ratio(rate, tini_rate)}",
                ok,
            )

    # 7. idle
    idle = res["idle"]
    secs = cfg["idle_seconds"]
    rep.add(
        "## 7. Idle cost",
        "",
        f"All wrappers run side by side with a sleeping child; after 1 s of settling, the "
        f"wrapper's voluntary + involuntary context switches and user + system CPU time over "
        f"{secs:g} s (psutil; CPU time has the kernel's 10 ms tick resolution). "
        f"{nrounds(cfg['idle_rounds'])}." + load("idle"),
        "",
    )
    tini_ctx = median(idle["tini"]["ctx"]) if has_tini else None
    rows = []
    for name in names:
        d = idle[name]
        rows.append(
            [
                f"`{shown[name]}`",
                f"{median(d['ctx']):g}" if d["ctx"] else "—",
                f"{max(d['ctx'])}" if d["ctx"] else "—",
                ms(median(d["cpu"]), 0),
                ratio(median(d["ctx"]), tini_ctx),
            ]
        )
    rep.table(
        ["wrapper", f"context switches in {secs:g} s, median", "max", "CPU ms, median", "ratio to tini"],
        rows,
    )
    if gsup and idle["gsup"]["ctx"]:
        c = idle["gsup"]["ctx"]
        rep.target(
            "s",
            f"idle: 0 context switches over {secs:g} s",
            f"median {median(c):g}, max {max(c)}",
            f"tini: median {tini_ctx:g}" if tini_ctx is not None and not math.isnan(tini_ctx) else "—",
            "—",
            max(c) == 0,
        )

    # 8. escalation
    rep.add("## 8. Escalation precision (gsup only)", "")
    esc = res.get("escalation")
    if esc is None:
        rep.add("Not measured: gsup not found.", "")
    else:
        runs = esc["runs"]
        err = [r["error"] for r in runs]
        aerr = [abs(x) for x in err]
        codes = sorted({r["code"] for r in runs})
        rep.add(
            "`gsup --quiet --grace 1 -- python3 helper.py ignore-term`: the child ignores "
            "SIGTERM; the harness sends SIGTERM to gsup and times until the child is dead (a "
            "pidfd on the child). *Error* = that time - 1 s (positive: late). tini, dumb-init "
            f"and catatonit have no grace period. {nrounds(cfg['escalation_rounds'])}. A "
            "SIGKILLed process must still be scheduled to die, so on a loaded machine the error "
            "includes scheduling delay; gsup's exit after the child's death includes its search "
            "for leftover descendants (psutil scans every process it can see)." + load("escalation"),
            "",
        )
        rep.table(
            [
                "error median ms",
                "error p90 ms",
                "worst |error| ms",
                "gsup's exit after the child's death, median ms",
                "exit codes",
            ],
            [
                [
                    ms(median(err), 2),
                    ms(p90(err), 2),
                    ms(max(aerr) if aerr else math.nan, 2),
                    ms(median([r["after"] for r in runs]), 2),
                    ", ".join(map(str, codes)) or "—",
                ]
            ],
        )
        rep.errors("gsup", esc["errors"])
        if aerr:
            rep.target(
                "t",
                f"escalation: within {ms(ESCALATION_S, 0)} ms of the grace",
                f"p90 |error| {ms(p90(aerr), 2)} ms, worst {ms(max(aerr), 2)} ms",
                "— (tini, dumb-init, catatonit have no grace)",
                "—",
                p90(aerr) <= ESCALATION_S,
            )

    # 9. output
    outp = res["output"]
    rep.add(
        "## 9. Prefixed output throughput (many-programs mode)",
        "",
        f"{cfg['programs']} programs, each `{generator(cfg['lines'], linger=True)}` "
        f"(the line is {len(PAYLOAD)} characters), in a TOML file for gsup (`gsup --quiet "
        "--config gsup.toml`), a Procfile for honcho (`honcho -f Procfile start`) and a "
        "configuration for supervisord (§10). The *raw pipe* is the same generators, without "
        "the `sleep`, writing into one pipe with no supervisor (`sh -c '(gen) & (gen) & (gen) "
        "& wait'`). The harness reads the supervisor's stdout (a pipe) as fast as it can: it "
        "keeps the bytes and only counts payload markers while it reads, and counts whole and "
        "broken lines afterwards. Throughput is from the first payload line to the last, in "
        "lines and bytes (prefixes included) per second; *total* includes the supervisor's "
        "start. A *broken* line is one whose bytes are not exactly one payload line, after "
        "the supervisor's prefix if it adds one (gsup `gen1 | `, honcho `12:00:00 gen1.1 | `); "
        "*lost* are payload lines that never came whole. The supervisor is stopped after the "
        f"last line. {nrounds(cfg['output_rounds'])}." + load("output"),
        "",
    )
    raw_rate = median([r["lines_s"] for r in outp[RAW]["runs"]]) if outp[RAW]["runs"] else math.nan
    honcho_rate = median([r["lines_s"] for r in outp["honcho"]["runs"]]) if outp["honcho"]["runs"] else None
    rows = []
    for name, d in outp.items():
        if d.get("skipped"):
            rows.append([name, d["skipped"], "", "", "", "", "", "", ""])
            continue
        runs = d["runs"]
        rate = median([r["lines_s"] for r in runs])
        rows.append(
            [
                name,
                f"{rate:,.0f}" if runs else "—",
                f"{median([r['mb_s'] for r in runs]):.1f}" if runs else "—",
                f"{median([r['bytes_per_line'] for r in runs]):.0f}" if runs else "—",
                f"{median([r['total_s'] for r in runs]):.2f}" if runs else "—",
                ratio(rate, raw_rate) if runs else "—",
                ratio(rate, honcho_rate) if runs else "—",
                str(sum(r["lost"] for r in runs)) if runs else "—",
                str(sum(r["broken"] for r in runs)) if runs else "—",
            ]
        )
    rep.table(
        [
            "supervisor",
            "lines/s, median",
            "MB/s, median",
            "bytes a line",
            "total s",
            "ratio to the raw pipe",
            "ratio to honcho",
            "lines lost (all rounds)",
            "lines broken (all rounds)",
        ],
        rows,
    )
    for name, d in outp.items():
        rep.errors(name, d["errors"])
    g = outp.get("gsup", {})
    what = f"prefixed output: ≥ {OUTPUT_VS_RAW:g}{X} a raw pipe's lines/s, no line lost or broken"
    if g.get("skipped"):
        rep.target("6", what, g["skipped"], "—", "—", False if "not implemented" in g["skipped"] else None)
    elif g.get("runs"):
        rate = median([r["lines_s"] for r in g["runs"]])
        lost = sum(r["lost"] for r in g["runs"])
        broken = sum(r["broken"] for r in g["runs"])
        rep.target(
            "6",
            what,
            f"{rate:,.0f} lines/s; {lost} lost, {broken} broken",
            f"raw pipe {raw_rate:,.0f} lines/s",
            ratio(rate, raw_rate),
            None if math.isnan(raw_rate) else rate >= OUTPUT_VS_RAW * raw_rate and lost == 0 and broken == 0,
        )

    # 10. many programs
    many = res["many"]
    counts = cfg["many_counts"]
    lines = cfg["many_lines"]
    rep.add(
        "## 10. Many programs: memory and CPU time per program and per line",
        "",
        f"{', '.join(map(str, counts))} programs, each `{generator(lines, linger=True)}`, under "
        "`gsup --quiet --config gsup.toml`, `honcho -f Procfile start` and `supervisord -n -c "
        "supervisord.conf`, in the same run, read as in §9. supervisord's file has a "
        "`[supervisord]` section with `nodaemon=true`, `silent=true` (its own log not on "
        "stdout) and its log and pid files in a temporary directory, and for each program:",
        "",
        *(
            "    " + line
            for line in SUPERVISORD_PROGRAM.format(name="gen1", command="'…'").strip().splitlines()
        ),
        "",
        "The supervisor's processes are those of its tree that run a Python interpreter "
        "(gsup: its one lean process; honcho: its manager and one worker per program; "
        "supervisord: one), never the programs (`sh`, `yes`, `head`, `sleep`). *RSS* is their "
        "sum once the last line came (forked workers share pages, so the sum counts those "
        "again; *USS* does not), *peak* the largest sum sampled every 0.25 s while the lines "
        "flowed; *CPU* is their user + system time from their start to the last line. *Per "
        f"program* and *per line* are the slopes from {counts[0]} to {counts[-1]} programs. "
        "A *split* line is a broken one as in §9 (its bytes not exactly one payload line "
        "after the prefix: a line cut, or two programs' lines mixed); *lost* as in §9. "
        f"{nrounds(cfg['many_rounds'])}, medians; lost and split lines summed over the rounds."
        + load("many"),
        "",
    )
    rows = []
    slopes: dict[str, tuple[float, float]] = {}
    for name, by_n in many.items():
        for n in counts:
            d = by_n.get(n, {"runs": [], "errors": [], "skipped": "not run"})
            if d.get("skipped"):
                rows.append([name, str(n), d["skipped"], "", "", "", "", "", ""])
                continue
            runs = d["runs"]
            rows.append(
                [
                    name,
                    str(n),
                    mib(median([r["rss"] for r in runs])) if runs else "—",
                    mib(median([r["rss_peak"] for r in runs])) if runs else "—",
                    mib(median([r["uss"] for r in runs])) if runs else "—",
                    f"{median([r['procs'] for r in runs]):.0f}" if runs else "—",
                    f"{median([r['cpu'] for r in runs]):.2f}" if runs else "—",
                    str(sum(r["lost"] for r in runs)) if runs else "—",
                    str(sum(r["broken"] for r in runs)) if runs else "—",
                ]
            )
        lo, hi = by_n.get(counts[0], {}).get("runs"), by_n.get(counts[-1], {}).get("runs")
        if lo and hi and counts[-1] > counts[0]:
            dn = counts[-1] - counts[0]
            per_prog = (median([r["rss"] for r in hi]) - median([r["rss"] for r in lo])) / dn
            per_line = (median([r["cpu"] for r in hi]) - median([r["cpu"] for r in lo])) / (dn * lines)
            slopes[name] = (per_prog, per_line)
    rep.table(
        [
            "supervisor",
            "programs",
            "RSS MiB",
            "peak RSS MiB",
            "USS MiB",
            "processes",
            "CPU s",
            "lines lost",
            "lines split",
        ],
        rows,
    )
    if slopes:
        rep.table(
            ["supervisor", "RSS per program KiB", "CPU per line µs"],
            [[name, f"{pp / 1024:,.0f}", f"{pl * 1e6:.2f}"] for name, (pp, pl) in slopes.items()],
        )
    for name, by_n in many.items():
        for n, d in by_n.items():
            rep.errors(f"{name}, {n} programs", d.get("errors", []))
    gm = many.get("gsup", {})
    gruns = [r for n in counts for r in gm.get(n, {}).get("runs", [])]
    if gruns:
        lost = sum(r["lost"] for r in gruns)
        broken = sum(r["broken"] for r in gruns)
        top = gm.get(counts[-1], {}).get("runs") or []
        refs = []
        for other in ("honcho", "supervisord"):
            oruns = many.get(other, {}).get(counts[-1], {}).get("runs") or []
            if oruns:
                refs.append(
                    f"{other} {mib(median([r['rss'] for r in oruns]))} MiB, "
                    f"{median([r['cpu'] for r in oruns]):.2f} s"
                )
        per = slopes.get("gsup")
        rep.target(
            "5",
            f"many programs: no line lost or split "
            f"({', '.join(map(str, counts))} programs {X} {lines:,} lines)",
            f"{lost} lost, {broken} split of {sum(r['whole'] for r in gruns) + lost:,}; "
            + (
                f"{counts[-1]} programs: {mib(median([r['rss'] for r in top]))} MiB, "
                f"{median([r['cpu'] for r in top]):.2f} s CPU"
                if top
                else ""
            )
            + (f"; {per[0] / 1024:,.0f} KiB a program, {per[1] * 1e6:.2f} µs a line" if per else ""),
            "; ".join(refs) or "honcho, supervisord not installed",
            "—",
            lost == 0 and broken == 0,
        )

    # the document
    body = rep.lines
    mach = machine()
    load_after = os.getloadavg()
    elapsed = time.monotonic() - rep.started
    versions = ", ".join(f"{w.name} {w.version} (`{w.shown}`)" for w in rep.wrappers)
    anchors = []
    for tool, find in (("honcho", find_honcho), ("supervisord", find_supervisord)):
        path = find()
        anchors.append(f"{tool} {_version([path, '--version'])}" if path else f"{tool} not installed")
    head = [
        "# Benchmarks: gsup against tini, dumb-init and catatonit (and honcho, supervisord)",
        "",
        "Generated by `bench/run.py`; do not edit by hand. Regenerate after any performance work with:",
        "",
        "    python bench/run.py --output docs/benchmarks.md",
        "",
        f"This run: `{' '.join(['python', 'bench/run.py', *rep.args.argv_shown])}`, "
        f"{datetime.date.today().isoformat()}, {elapsed:.0f} s"
        + (" (**--quick: too few rounds to quote**)" if rep.args.quick else "")
        + ".",
        "",
        "## Machine",
        "",
        f"- CPU: {mach['cpu']}; memory {mach['memory']}",
        f"- Kernel: {mach['kernel']}",
        f"- Python: {mach['python']} — the interpreter of gsup, of the floors and of the "
        "benchmark's child helper",
        f"- Wrappers: {versions}; gsup from the work tree at `{revision()}`; its bytecode {rep.bytecode}",
        f"- Anchors of the many-programs mode (§9, §10): {', '.join(anchors)}; found in "
        "`bench/.venv` (`python3 -m venv bench/.venv && bench/.venv/bin/pip install honcho "
        "supervisor`) or on PATH, and skipped when missing",
        f"- Not installed, so not measured: {', '.join(rep.missing) or 'none'}",
        "- Measured on a **shared 2-core virtual machine**, where other sessions may run "
        "test suites at the same time (1-minute load average "
        f"{rep.load_before[0]:.2f} at the start, {rep.load_mid[0]:.2f} before the reaping "
        f"test, {load_after[0]:.2f} after it: its orphans count as runnable; "
        f"{rep.procs_before} processes on the machine at the start, {rep.procs_mid} before the "
        "reaping test). Every figure is a "
        "median over interleaved rounds (each round runs every wrapper once, in an order "
        "rotated from round to round), so that a busy moment hits all of them alike; p90 "
        "shows the noise.",
        "- The child in §2-§5, §7 and §8 is `bench/helper.py` run as `python3 -I -S`; tini "
        "runs with `-s` (child subreaper outside PID 1, as gsup registers itself); gsup "
        "with `--quiet` (its final report still goes to stderr, which the harness discards).",
        "",
        "## Targets",
        "",
        "Each reference is measured in the same run. *Steady state*: the signal or the exit "
        f"comes {SETTLE_S:g} s after the child reported ready, once gsup's handover to its lean "
        "process is over; the start-up window is measured and reported apart (§3-§5).",
        "",
        "| target | gsup | reference (same run) | ratio | verdict |",
        "|---|---|---|---|---|",
        *(
            f"| {what} | {fig} | {ref} | {rat} | {verdict(ok)} |"
            for _, what, fig, ref, rat, ok in sorted(rep.targets, key=lambda t: t[0])
        ),
        "",
    ]
    return "\n".join(head + body).rstrip() + "\n"


# -- main -----------------------------------------------------------------------


def config(args: argparse.Namespace) -> dict[str, Any]:
    n = args.rounds if args.rounds else (2 if args.quick else 10)
    heavy = max(1, round(n / 2))
    if args.quick:
        return {
            "start_rounds": n,
            "serve_rounds": n,
            "signals": 3,
            "idle_rounds": 1,
            "idle_seconds": 3.0,
            "reap_rounds": 1,
            "orphans": 1000,
            "escalation_rounds": 1,
            "window_rounds": 1,
            "module_rounds": 1,
            "output_rounds": 1,
            "programs": 3,
            "lines": 20_000,
            "many_counts": (1, 10),
            "many_lines": 1_000,
            "many_rounds": 1,
        }
    return {
        "start_rounds": 3 * n,
        "serve_rounds": n,
        "signals": 20,
        "idle_rounds": heavy,
        "idle_seconds": 10.0,
        "reap_rounds": heavy,
        "orphans": 10_000,
        "escalation_rounds": n,
        "window_rounds": heavy,
        "module_rounds": 3,
        # honcho takes some 25 s for the 300,000 lines, a minute for 50 x 10,000
        "output_rounds": max(1, round(n / 3)),
        "programs": 3,
        "lines": 100_000,
        "many_counts": (1, 10, 50),
        "many_lines": 10_000,
        "many_rounds": max(1, round(n / 10)),
    }


def _jsonable(obj: object) -> object:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return str(obj)


def shown_args(args: argparse.Namespace) -> list[str]:
    """The options of this run as the report shows them: no absolute paths."""
    shown = ["--quick"] if args.quick else []
    if args.rounds:
        shown += ["--rounds", str(args.rounds)]
    if args.baseline:
        shown += ["--baseline", "BASELINE.json"]
    if args.output:
        out = Path(args.output).resolve()
        try:
            shown += ["--output", str(out.relative_to(ROOT))]
        except ValueError:
            shown += ["--output", "FILE"]
    return shown


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run: very few rounds")
    parser.add_argument("--rounds", type=int, default=0, help="base number of rounds")
    parser.add_argument("--output", help="markdown file to write (default: see --help)")
    parser.add_argument(
        "--baseline",
        help="the raw results (results/latest.json) of an earlier run, to compare forwarding with",
    )
    args = parser.parse_args(argv)
    args.argv_shown = shown_args(args)
    if args.rounds < 0:
        parser.error("--rounds must be positive")
    if args.output:
        output = Path(args.output)
    elif args.quick:
        fd, name = tempfile.mkstemp(prefix="gsup-benchmarks-", suffix=".md")
        os.close(fd)
        output = Path(name)
    else:
        output = ROOT / "docs" / "benchmarks.md"

    def stop(signo: int, frame: object) -> None:
        raise SystemExit(128 + signo)  # unwinds through every finally

    signal.signal(signal.SIGTERM, stop)
    become_subreaper()
    cfg = config(args)
    wrappers, missing = find_wrappers()
    for name in missing:
        log(f"{name} not found: skipped")
    gsup = next((w for w in wrappers if w.name == "gsup"), None)
    if gsup and not shebang_is_python(gsup.argv[0]):
        log(f"warning: {gsup.argv[0]} is not a Python script (a shim?): start figures include it")
    rep = Report(args, cfg, wrappers, missing, time.monotonic(), os.getloadavg())
    if args.baseline:
        rep.baseline = json.loads(Path(args.baseline).read_text())
    if gsup and shebang_is_python(gsup.argv[0]):
        rep.bytecode = compile_gsup(gsup)
        log(f"gsup bytecode: {rep.bytecode}")
    log(f"measuring the tree at {revision()}")
    res: dict[str, Any] = {"load": {}}

    @contextlib.contextmanager
    def section(name: str) -> Iterator[None]:
        """Note the 1-minute load average around a measurement: the machine is shared."""
        before = os.getloadavg()[0]
        try:
            yield
        finally:
            res["load"][name] = (before, os.getloadavg()[0])

    try:
        with section("start"):
            res["start"], res["child_start"] = bench_start(wrappers, cfg["start_rounds"], not args.quick)
            if gsup:
                try:
                    res["imports"] = import_profile(gsup)
                except MeasureError as e:
                    log(f"import profile failed: {e}")
        if gsup:
            log("the lean process's modules")
            res["modules"] = bench_modules(res.get("imports"), cfg["module_rounds"])
        with section("serve"):
            res["serve"], res["floors"] = bench_serve(wrappers, cfg["serve_rounds"], cfg["signals"])
        if gsup:
            with section("window"):
                res["window"] = bench_window(gsup, cfg["window_rounds"], WINDOW_OFFSETS_S)
        with section("idle"):
            res["idle"] = bench_idle(wrappers, cfg["idle_rounds"], cfg["idle_seconds"])
        if gsup:
            with section("escalation"):
                res["escalation"] = bench_escalation(gsup, cfg["escalation_rounds"])
        with section("output"):
            res["output"] = bench_output(gsup, cfg["output_rounds"], cfg["programs"], cfg["lines"])
        with section("many"):
            res["many"] = bench_many(gsup, cfg["many_rounds"], cfg["many_counts"], cfg["many_lines"])
        # Last: thousands of runnable orphans drive the load average up for a minute.
        rep.load_mid = os.getloadavg()
        rep.procs_mid = len(psutil.pids())
        why = unshare_works()
        with section("reap"):
            res["reap"] = why or bench_reap(wrappers, cfg["reap_rounds"], cfg["orphans"])
        if why:
            log(f"reaping skipped: {why}")
    finally:
        sweep_children()
    text = render(rep, res)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    raw = BENCH / "results" / "latest.json"  # every sample, for a second look (git-ignored)
    with contextlib.suppress(OSError):
        raw.parent.mkdir(exist_ok=True)
        raw.write_text(
            json.dumps(
                {"config": cfg, "revision": revision(), "date": datetime.date.today().isoformat(), **res},
                default=_jsonable,
                indent=1,
            )
        )
    log(f"wrote {output} in {time.monotonic() - rep.started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
