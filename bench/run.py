"""Benchmark gsup against tini, dumb-init and catatonit, and write docs/benchmarks.md.

    python bench/run.py [--quick] [--rounds N] [--output FILE]

Measures, for gsup and every anchor found on PATH (missing ones are skipped
and named in the report), in interleaved rounds (each round runs every
wrapper once, in an order rotated from round to round), median and p90 of:

1. start overhead: ``WRAPPER -- true`` against ``true``, ``python3 -c pass``
   and ``python3 -c 'import typer'``;
2. RSS and USS of the supervising process while its child sleeps;
3. signal forwarding latency (SIGUSR1 to the wrapper, byte from the child),
   minus the same signal sent straight to the child;
4. exit propagation, from the child's ``_exit`` to the wrapper's exit;
5. zombie reaping as PID 1 of a PID namespace: N orphans released at once;
6. idle cost: context switches and CPU time over an idle period;
7. escalation precision of ``gsup --grace 1`` (gsup only);
8. prefixed-output throughput of the many-programs mode, honcho as anchor.

Then it marks every target of issue 6 met or not. ``--quick`` is the CI smoke
run: every measurement with very few rounds, well under a minute, exit 0
whenever the harness works, no timing assertions; it writes to a temporary
file unless ``--output`` is given.

Every process it starts is killed by pid (with the descendants found by
psutil) in a ``finally``; every wait has a timeout; the harness is a child
subreaper, so nothing it started can escape it. Standard library + psutil.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import select
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

# Targets of issue 6.
START_RATIO = 1.3
MEMORY_RATIO = 1.5
ADDED_MEDIAN_S = 0.001
ADDED_P90_S = 0.003
REAP_AFTER_LAST_EXIT_S = 1.0
REAP_RATE_VS_TINI = 0.5
ESCALATION_S = 0.020
OUTPUT_VS_HONCHO = 2.0

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


def shebang_is_python(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


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
        "held_ms": by_package(held),
        "after_ms": by_package(after),
        "heavy_before": sorted({n.split(".")[0] for n, _ in before} & heavy),
        "heavy_held": sorted({n.split(".")[0] for n, _ in held} & heavy),
    }


# -- 2-4. memory, forwarding, exit propagation -----------------------------------

HOLD = "import os; os.write(1, b'READY %d\\n' % os.getpid()); os.read(0, 1)"
FLOORS = {
    "python3 (bare interpreter)": [PY, "-c", HOLD],
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
    exit: list[float] = field(default_factory=list)
    exit_added: list[float] = field(default_factory=list)  # minus the direct run just before
    errors: list[str] = field(default_factory=list)


def memory(pid: int) -> tuple[int, int]:
    info = psutil.Process(pid).memory_full_info()
    return info.rss, info.uss


def serve_session(w: Optional[Wrapper], signals: int, wait: float, res: ServeResult) -> None:
    """One wrapper around one ``helper.py serve``: memory, forwarding, exit."""
    argv = w.cmd(*HELPER_ARGV, "serve") if w else [*HELPER_ARGV, "serve"]
    with Proc(argv) as p:
        child = int(p.read_line(20, "READY from the child").split()[1])
        settle(p.pid)
        time.sleep(wait)
        if w is not None:
            rss, uss = memory(p.pid)
            res.rss.append(rss)
            res.uss.append(uss)
            for k in range(signals):
                order = [(p.pid, res.via), (child, res.direct)]
                if k % 2:
                    order.reverse()
                pair = {}
                for target, samples in order:
                    t0 = time.monotonic()
                    os.kill(target, signal.SIGUSR1)
                    byte, seen = p.read_byte(5)
                    if byte != bytes([signal.SIGUSR1]):
                        raise MeasureError(f"unexpected byte {byte!r} from the child")
                    samples.append(seen - t0)
                    pair[target] = seen - t0
                    time.sleep(0.002)
                res.added.append(pair[p.pid] - pair[child])
            res.rss_after.append(memory(p.pid)[0])
        p.send(b"x")
        gone = p.wait_exit(10)
        line = p.read_line(5, "EXIT from the child")
        if not line.startswith("EXIT "):
            raise MeasureError(f"unexpected line {line!r}")
        res.exit.append(gone - float(line.split()[1]))


def floor_memory(argv: Sequence[str], wait: float, res: ServeResult) -> None:
    with Proc(argv) as p:
        p.read_line(20, "READY")
        settle(p.pid)
        time.sleep(wait)
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


def bench_serve(
    wrappers: list[Wrapper], rounds: int, signals: int
) -> tuple[dict[str, ServeResult], dict[str, ServeResult]]:
    wrappers = [*wrappers, *logging_variant(wrappers)]
    results = {"direct": ServeResult(), **{w.name: ServeResult() for w in wrappers}}
    floors = {name: ServeResult() for name in FLOORS}

    def paired(w: Wrapper) -> None:
        """The child alone, then under *w*: exit propagation as a paired difference."""
        direct, res = results["direct"], results[w.name]
        serve_session(None, 0, 0.0, direct)
        serve_session(w, signals, 0.2, res)
        res.exit_added.append(res.exit[-1] - direct.exit[-1])

    jobs: list[tuple[str, Callable[[], None]]] = []
    for w in wrappers:
        jobs.append((w.name, lambda w=w: paired(w)))
    for name, argv in FLOORS.items():
        jobs.append((name, lambda argv=argv, name=name: floor_memory(argv, 0.2, floors[name])))
    for r in range(rounds):
        log(f"memory/forwarding/exit: round {r + 1}/{rounds}")
        for key, job in rotated(jobs, r):
            try:
                job()
            except MeasureError as e:
                (results.get(key) or floors[key]).errors.append(str(e))
    return results, floors


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


# -- 8. output throughput ---------------------------------------------------------


def find_honcho() -> Optional[str]:
    venv = BENCH / ".venv" / "bin" / "honcho"
    if venv.is_file() and os.access(venv, os.X_OK):
        return str(venv)
    return shutil.which("honcho")


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


def throughput_session(argv: Sequence[str], total: int, cwd: str) -> dict[str, float]:
    t0 = time.monotonic()
    with Proc(argv, stdin=subprocess.DEVNULL, cwd=cwd) as p:
        assert p.popen.stdout is not None
        fd = p.popen.stdout.fileno()
        seen = nbytes = 0
        first_at: Optional[float] = None
        first_lines = first_bytes = 0
        tail = b""
        deadline = t0 + 300
        while seen < total:
            left = deadline - time.monotonic()
            if left <= 0 or not wait_readable(fd, left):
                raise MeasureError(f"{seen} of {total} lines after {300} s")
            data = os.read(fd, 1 << 16)
            now = time.monotonic()
            if not data:
                raise MeasureError(f"output ended after {seen} of {total} lines")
            nbytes += len(data)
            tail += data
            cut = tail.rfind(b"\n") + 1
            seen += tail[:cut].count(MARKER)
            tail = tail[cut:]
            if first_at is None and seen:
                first_at, first_lines, first_bytes = now, seen, nbytes
        done = time.monotonic()
    assert first_at is not None
    steady = max(done - first_at, 1e-9)
    return {
        "lines_s": (seen - first_lines) / steady,
        "mb_s": (nbytes - first_bytes) / steady / 1e6,
        "total_s": done - t0,
        "bytes_per_line": nbytes / seen,
    }


def bench_output(
    gsup: Optional[Wrapper], rounds: int, programs: int, lines: int
) -> dict[str, dict[str, Any]]:
    honcho = find_honcho()
    out: dict[str, dict[str, Any]] = {}
    runners: list[tuple[str, list[str]]] = []
    with tempfile.TemporaryDirectory(prefix="gsup-bench-") as tmp:
        gens = [generator(lines, linger=True) for _ in range(programs)]
        direct = " & ".join(f"({generator(lines, linger=False)})" for _ in range(programs))
        runners.append(("direct (sh, no prefix)", ["sh", "-c", f"{direct} & wait"]))
        out["direct (sh, no prefix)"] = {"runs": [], "errors": []}
        if honcho:
            with open(os.path.join(tmp, "Procfile"), "w") as f:
                f.writelines(f"gen{i + 1}: {g}\n" for i, g in enumerate(gens))
            runners.append(("honcho", [honcho, "-f", "Procfile", "start"]))
            out["honcho"] = {"runs": [], "errors": []}
        else:
            out["honcho"] = {"runs": [], "errors": [], "skipped": "honcho not installed"}
        why = gsup_many_programs(gsup, tmp) if gsup is not None else "gsup not found"
        if why is None:
            with open(os.path.join(tmp, "gsup.toml"), "w") as f:
                for i, g in enumerate(gens):
                    f.write(f"[programs.gen{i + 1}]\ncommand = {json.dumps(['sh', '-c', g])}\n\n")
            runners.append(("gsup", [*gsup.argv, "--config", "gsup.toml"]))
            out["gsup"] = {"runs": [], "errors": []}
        else:
            out["gsup"] = {"runs": [], "errors": [], "skipped": why}
        for r in range(rounds):
            for name, argv in rotated(runners, r):
                log(f"output: round {r + 1}/{rounds}, {name}")
                try:
                    out[name]["runs"].append(throughput_session(argv, programs * lines, tmp))
                except MeasureError as e:
                    out[name]["errors"].append(str(e))
    return out


# -- the machine ----------------------------------------------------------------


#: Where the gsup package measured lives (``compile_gsup`` finds it); its commit is the revision.
PACKAGE_DIR: list[str] = []


def revision() -> str:
    """The commit of the tree measured (gsup runs from it: an editable install)."""
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
    return out.stdout.strip() or "?"


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
    targets: list[tuple[str, str, Optional[bool]]] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

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
    bare_m = median(start["python3 -c pass"])
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
        rep.targets.append(
            (
                f"start: `gsup -- true` within {START_RATIO}{X} of `python3 -c 'import typer'`",
                f"{ms(g, 1)} ms = {g / typer_m:.2f}{X} of {ms(typer_m, 1)} ms" + runs_at,
                g <= START_RATIO * typer_m,
            )
        )
        rep.targets.append(
            (
                "start: no more than typer's import above the bare interpreter",
                f"gsup adds {ms(g - bare_m, 1)} ms to `python3 -c pass`, "
                f"typer's import {ms(typer_m - bare_m, 1)} ms",
                g - bare_m <= typer_m - bare_m,
            )
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
        early = [m for m in prof["heavy_before"] if m in ("rich", "psutil", "tomllib", "tomli")]
        rep.targets.append(
            (
                "start: the child starts before rich, psutil or TOML loading are imported",
                "imported first: " + (", ".join(early) if early else "none of them"),
                not early if prof["ok"] else None,
            )
        )

    # 2. memory
    serve, floors = res["serve"], res["floors"]
    bare_rss = median(floors["python3 (bare interpreter)"].rss)
    tini_rss = median(serve["tini"].rss) if has_tini else None
    rep.add(
        "## 2. Resident memory of the supervising process",
        "",
        "RSS and USS (memory unique to the process, from /proc/PID/smaps via psutil) of the "
        "wrapper's own process once its child (`helper.py serve`, sleeping on stdin) reported "
        "ready and the wrapper is quiet (CPU time and RSS unchanged over 150 ms; gsup `execve`s "
        "a lean interpreter after starting the child), plus 0.2 s; "
        f"{nrounds(cfg['serve_rounds'])}. *RSS after signals* is measured again "
        f"after the {cfg['signals']} forwarded signals of §3 (lazy imports show there). The "
        "floors are interpreters sleeping in `os.read` after `-c pass` or `-c 'import typer'`."
        + load("serve"),
        "",
    )
    rows = []
    for name in names:
        s = serve[name]
        rows.append(
            [
                f"`{shown[name]}`",
                mib(median(s.rss)),
                mib(p90(s.rss)),
                mib(median(s.uss)),
                mib(median(s.rss_after)),
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
            "RSS ratio to tini",
        ],
        rows,
    )
    for name in names:
        rep.errors(name, serve[name].errors)
    if gsup:
        g = median(serve["gsup"].rss)
        rep.targets.append(
            (
                f"memory: RSS within {MEMORY_RATIO}{X} of a bare interpreter's",
                f"{mib(g)} MiB = {g / bare_rss:.2f}{X} of {mib(bare_rss)} MiB",
                None if math.isnan(g) else g <= MEMORY_RATIO * bare_rss,
            )
        )

    # 3. forwarding
    rep.add(
        "## 3. Signal forwarding latency",
        "",
        "The harness sends SIGUSR1 to the wrapper and times until a byte arrives from the "
        "child: the child's interpreter writes it from its C-level signal handler "
        "(`signal.set_wakeup_fd`), so no Python code runs in between. Each such sample is "
        "paired with the same signal sent straight to the child in the same session (order "
        f"alternating); *added* is the difference within each pair. {cfg['serve_rounds']} "
        f"rounds {X} {cfg['signals']} pairs per wrapper.",
        "",
    )
    tini_fwd = median(serve["tini"].added) if has_tini else None
    rows = []
    for name in [*names, *([LOGGING] if LOGGING in serve else [])]:
        s = serve[name]
        rows.append(
            [
                f"`{shown.get(name, 'gsup (log on)')}`",
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
    if rep.baseline:
        render_baseline(rep, serve)
    if gsup:
        s = serve["gsup"]
        m, q = median(s.added), p90(s.added)
        rep.targets.append(
            (
                "forwarding: added median < 1 ms, p90 < 3 ms",
                f"median {ms(m, 3)} ms, p90 {ms(q, 3)} ms",
                None if math.isnan(m) else m < ADDED_MEDIAN_S and q < ADDED_P90_S,
            )
        )

    # 4. exit
    direct_exit = median(serve["direct"].exit)
    rep.add(
        "## 4. Exit propagation",
        "",
        "The child writes `time.monotonic()` and calls `os._exit(0)`; the harness notes when "
        "the wrapper's exit becomes visible (its pidfd turns readable). *Direct* is the same "
        "child run without a wrapper, just before each wrapper's session: the time for a "
        "process to die and its parent to see it. *Added* is each sample minus the direct run "
        f"just before it. {nrounds(cfg['serve_rounds'])}.",
        "",
    )
    rows = [
        [
            "child alone (direct)",
            ms(direct_exit, 3),
            ms(p90(serve["direct"].exit), 3),
            "—",
            "—",
            "—",
        ]
    ]
    tini_exit = median(serve["tini"].exit_added) if has_tini else None
    for name in names:
        s = serve[name]
        added = s.exit_added
        rows.append(
            [
                f"`{shown[name]}`",
                ms(median(s.exit), 3),
                ms(p90(s.exit), 3),
                ms(median(added), 3),
                ms(p90(added), 3),
                ratio(median(added), tini_exit),
            ]
        )
    rep.table(
        ["wrapper", "median ms", "p90 ms", "added median ms", "added p90 ms", "added, ratio to tini"],
        rows,
    )
    rep.errors("direct", serve["direct"].errors)
    if gsup:
        added = serve["gsup"].exit_added
        m, q = median(added), p90(added)
        rep.targets.append(
            (
                "exit propagation: added median < 1 ms, p90 < 3 ms",
                f"median {ms(m, 3)} ms, p90 {ms(q, 3)} ms",
                None if math.isnan(m) else m < ADDED_MEDIAN_S and q < ADDED_P90_S,
            )
        )

    # 5. reaping
    reap = res.get("reap")
    rep.add("## 5. Zombie reaping as PID 1", "")
    if isinstance(reap, str):
        rep.add(f"Not measured: {reap}.", "")
        rep.targets.append(("reaping", reap, None))
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
            lag = [r["gone_s"] - r["last_exit_s"] for r in runs]
            rate = [n / r["gone_s"] for r in runs]
            drain = drains(runs)
            zmax = [r["max_zombies"] for r in runs]
            zlast = [r["zombies_at_last_exit"] for r in runs]
            rows.append(
                [
                    f"`{shown[name]}`",
                    ms(median(last), 0),
                    ms(median(gone), 0),
                    ms(median(lag), 0),
                    ms(p90(lag), 0),
                    f"{median(zmax):,.0f} / {max(zmax):,}" if zmax else "—",
                    f"{median(zlast):,.0f}" if zlast else "—",
                    f"{median(rate):,.0f}" if rate else "—",
                    ratio(median(rate), tini_rate),
                    f"{median(drain):,.0f}" if drain else "—",
                    ratio(median(drain), tini_drain),
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
            vs = ""
            if tini_drain and not math.isnan(tini_drain) and not math.isnan(drain):
                vs = f" = {drain / tini_drain:.2f}{X} tini's"
            rep.targets.append(
                (
                    f"reaping: {n:,} orphans gone within 1 s of the last exit, ≥ half of tini's rate",
                    f"{ms(lag, 0)} ms after the last exit (median; p90 {ms(p90(lags), 0)} ms"
                    + (f", tini's {ms(p90(tini_lags), 0)} ms" if tini_lags else "")
                    + "); drain "
                    + (f"{drain:,.0f} zombies/s{vs}" if not math.isnan(drain) else "— (no backlog)")
                    + f"; overall {rate:,.0f} orphans/s"
                    + (f" = {rate / tini_rate:.2f}{X} tini's" if tini_rate else ""),
                    ok,
                )
            )

    # 6. idle
    idle = res["idle"]
    secs = cfg["idle_seconds"]
    rep.add(
        "## 6. Idle cost",
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
        rep.targets.append(
            (
                f"idle: 0 context switches over {secs:g} s",
                f"median {median(c):g}, max {max(c)}",
                max(c) == 0,
            )
        )

    # 7. escalation
    rep.add("## 7. Escalation precision (gsup only)", "")
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
            rep.targets.append(
                (
                    "escalation: within 20 ms of the grace",
                    f"p90 |error| {ms(p90(aerr), 2)} ms, worst {ms(max(aerr), 2)} ms",
                    p90(aerr) <= ESCALATION_S,
                )
            )

    # 8. output
    outp = res["output"]
    rep.add(
        "## 8. Prefixed output throughput (many-programs mode)",
        "",
        f"{cfg['programs']} programs, each `{generator(cfg['lines'], linger=True)}` "
        f"(the line is {len(PAYLOAD)} characters), in a Procfile for honcho "
        "(`honcho -f Procfile start`) and a TOML file for gsup (`gsup --quiet --config "
        "gsup.toml`); the harness reads the supervisor's stdout (a pipe) and counts the "
        "payload lines. Throughput is from the first payload line to the last, in prefixed "
        "bytes and lines per second; *total* includes the supervisor's start. The programs "
        "sleep once done (a program that exits stops the others), and the harness stops the "
        f"supervisor after the last line. *direct* is the same generators writing to the pipe "
        f"with no supervisor. {nrounds(cfg['output_rounds'])}. honcho is found in "
        "`bench/.venv` (`python3 -m venv bench/.venv && bench/.venv/bin/pip install honcho`) "
        "or on PATH, and skipped when missing." + load("output"),
        "",
    )
    honcho_rate = median([r["lines_s"] for r in outp["honcho"]["runs"]]) if outp["honcho"]["runs"] else None
    rows = []
    for name, d in outp.items():
        if d.get("skipped"):
            rows.append([name, d["skipped"], "", "", "", ""])
            continue
        runs = d["runs"]
        rows.append(
            [
                name,
                f"{median([r['lines_s'] for r in runs]):,.0f}" if runs else "—",
                f"{median([r['mb_s'] for r in runs]):.1f}" if runs else "—",
                f"{median([r['bytes_per_line'] for r in runs]):.0f}" if runs else "—",
                f"{median([r['total_s'] for r in runs]):.2f}" if runs else "—",
                ratio(median([r["lines_s"] for r in runs]), honcho_rate) if runs else "—",
            ]
        )
    rep.table(
        ["supervisor", "lines/s, median", "MB/s, median", "bytes a line", "total s", "ratio to honcho"],
        rows,
    )
    for name, d in outp.items():
        rep.errors(name, d["errors"])
    g = outp.get("gsup", {})
    if g.get("skipped"):
        rep.targets.append(
            (
                f"prefixed output: ≥ {OUTPUT_VS_HONCHO:g}{X} honcho's throughput",
                g["skipped"],
                False if "not implemented" in g["skipped"] else None,
            )
        )
    elif g.get("runs") and honcho_rate:
        rate = median([r["lines_s"] for r in g["runs"]])
        rep.targets.append(
            (
                f"prefixed output: ≥ {OUTPUT_VS_HONCHO:g}{X} honcho's throughput",
                f"{rate:,.0f} lines/s = {rate / honcho_rate:.2f}{X} honcho",
                rate >= OUTPUT_VS_HONCHO * honcho_rate,
            )
        )

    # the document
    body = rep.lines
    m = machine()
    load_after = os.getloadavg()
    elapsed = time.monotonic() - rep.started
    versions = ", ".join(f"{w.name} {w.version} (`{w.shown}`)" for w in rep.wrappers)
    honcho = find_honcho()
    head = [
        "# Benchmarks: gsup against tini, dumb-init and catatonit",
        "",
        "Generated by `bench/run.py`; do not edit by hand. Regenerate after any performance work with:",
        "",
        "    python bench/run.py --output docs/benchmarks.md",
        "",
        f"This run: `python bench/run.py {' '.join(rep.args.argv_shown)}`".rstrip() + ", "
        f"{datetime.date.today().isoformat()}, {elapsed:.0f} s"
        + (" (**--quick: too few rounds to quote**)" if rep.args.quick else "")
        + ".",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}; memory {m['memory']}",
        f"- Kernel: {m['kernel']}",
        f"- Python: {m['python']} — the interpreter of gsup, of the floors and of the "
        "benchmark's child helper",
        f"- Wrappers: {versions}; gsup from the work tree at `{revision()}`; its bytecode {rep.bytecode}",
        f"- honcho: {_version([honcho, '--version']) if honcho else 'not installed'}",
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
        "- The child in §2-§4, §6 and §7 is `bench/helper.py` run as `python3 -I -S`; tini "
        "runs with `-s` (child subreaper outside PID 1, as gsup registers itself); gsup "
        "with `--quiet` (its final report still goes to stderr, which the harness discards).",
        "",
        "## Targets (issue 6)",
        "",
        "| target | gsup's figure | |",
        "|---|---|---|",
        *(f"| {t} | {fig} | {verdict(ok)} |" for t, fig, ok in rep.targets),
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
            "output_rounds": 1,
            "programs": 2,
            "lines": 2000,
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
        "output_rounds": heavy,
        "programs": 2,
        "lines": 100_000,
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
        with section("serve"):
            res["serve"], res["floors"] = bench_serve(wrappers, cfg["serve_rounds"], cfg["signals"])
        with section("idle"):
            res["idle"] = bench_idle(wrappers, cfg["idle_rounds"], cfg["idle_seconds"])
        if gsup:
            with section("escalation"):
                res["escalation"] = bench_escalation(gsup, cfg["escalation_rounds"])
        with section("output"):
            res["output"] = bench_output(gsup, cfg["output_rounds"], cfg["programs"], cfg["lines"])
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
