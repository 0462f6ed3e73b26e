"""A versatile child for gsup's integration tests (standard library only).

It reports what happens to it, one line per event, written with a single
``os.write`` so lines never interleave or wait in a buffer:

    ready pid=N pgid=N sid=N ppid=N      set up; every signal below is handled
                                         (then, with --stop-self, it stops itself)
    signal SIGUSR1                       a signal arrived (in order of arrival)
    grandchild pid=N pgid=N sid=N        a grandchild is set up (--grandchildren,
                                         --setsid-grandchild)
    orphans exited count=N               every --orphans grandchild has exited
    midway bytes=N                       --pause-midway: half the payload is out
    wrote bytes=N sha256=HEX             --write-bytes: the whole payload is out
                                         (then it exits with --code, or --stop-code
                                         after --pause-midway)
    echo: TEXT                           a line read from stdin
    stdin eof                            stdin closed
    exiting code=N                       about to exit with N

Signals are caught by no-op handlers and read back from the wakeup fd, which
carries their numbers in order of arrival; the main loop reports and acts on
them, so nothing is printed from inside a handler.

SIGTERM, SIGINT and SIGQUIT end the child with ``--stop-code`` (after
``--stop-after`` seconds) unless named in ``--ignore``; any signal named in
``--exit-on`` ends it with ``--code``.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import fcntl
import hashlib
import os
import random
import select
import signal
import sys
import time

HANDLED = [
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
    signal.SIGTERM,
    signal.SIGWINCH,
    signal.SIGCONT,
    signal.SIGURG,
]
STOP = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
PR_SET_DUMPABLE = 4
TAIL = b"\nthe last line has no newline"

LOG_FD = 1


def log(text: str) -> None:
    os.write(LOG_FD, (text + "\n").encode())


def parse_signal(text: str) -> signal.Signals:
    text = text.strip().upper()
    if text.isdigit():
        return signal.Signals(int(text))
    return signal.Signals[text if text.startswith("SIG") else "SIG" + text]


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view[: 1 << 16])
        view = view[n:]


def exit_now(code: int) -> None:
    log(f"exiting code={code}")
    os._exit(code)


def kill_self(sig: signal.Signals) -> None:
    """Die by *sig*, without a core dump (a dump would be slow and leave files)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    log(f"exiting signal={sig.name}")
    if sig not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(sig, signal.SIG_DFL)  # Python ignores SIGPIPE; handlers are set above
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    os.kill(os.getpid(), sig)
    os._exit(99)  # not reached: the signal is fatal


def in_grandchild(ignore_term: bool) -> None:
    """Undo the parent's signal setup after fork: its handlers write to a shared pipe."""
    signal.set_wakeup_fd(-1)
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_DFL)
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def spawn_grandchild(*, setsid: bool, ignore_term: bool) -> int:
    """Fork a grandchild that sleeps until killed; return once it is set up."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            in_grandchild(ignore_term)
            if setsid:
                os.setsid()
            me = os.getpid()
            log(f"grandchild pid={me} pgid={os.getpgid(0)} sid={os.getsid(0)}")
            os.write(w, b"x")
            os.close(w)
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(w)
    os.read(r, 1)  # the grandchild is set up (its TERM disposition included)
    os.close(r)
    return pid


def spawn_orphans(count: int) -> int:
    """Double-fork *count* grandchildren that exit as soon as they are orphans.

    Each holds the write end of a pipe until it exits; the returned read end
    reaches EOF when the last of them is gone (its files are closed on exit).
    """
    r, w = os.pipe()
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                in_grandchild(ignore_term=False)
                parent_r, parent_w = os.pipe()
                if os.fork() != 0:
                    os._exit(0)  # the intermediate: leaves the grandchild an orphan
                # EOF once the intermediate is gone: the grandchild then exits
                # an orphan, so gsup (subreaper or PID 1), not its parent, reaps it.
                os.close(parent_w)
                os.read(parent_r, 1)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)  # reap the intermediate: it is this child's own
    os.close(w)
    return r


def main() -> None:
    global LOG_FD
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log-to", choices=["stdout", "stderr"], default="stdout")
    p.add_argument("--code", type=int, default=0, help="exit code when ending on its own")
    p.add_argument("--exit", dest="exit_at_once", action="store_true", help="exit after ready")
    p.add_argument("--exit-after", type=float, help="exit with --code after this many seconds")
    p.add_argument("--kill-self", type=parse_signal, help="die by this signal after ready")
    p.add_argument("--stop-code", type=int, default=0, help="exit code on TERM/INT/QUIT")
    p.add_argument("--stop-after", type=float, default=0.0, help="delay before that exit")
    p.add_argument("--ignore", type=parse_signal, action="append", default=[])
    p.add_argument("--exit-on", type=parse_signal, action="append", default=[])
    p.add_argument("--grandchildren", type=int, default=0, help="same group, ignore TERM")
    p.add_argument("--mortal-grandchildren", type=int, default=0, help="same group, die by TERM")
    p.add_argument("--stop-self", action="store_true", help="SIGSTOP itself after ready")
    p.add_argument("--tag", help="ignored: lets a test find its processes by their command line")
    p.add_argument("--setsid-grandchild", action="store_true", help="one that left the group")
    p.add_argument("--orphans", type=int, default=0, help="double-forked, exit at once")
    p.add_argument("--write-bytes", type=int, default=0)
    p.add_argument("--write-to", choices=["stdout", "stderr"], default="stdout")
    p.add_argument("--pause-midway", action="store_true", help="write the rest after SIGTERM")
    p.add_argument("--echo-stdin", action="store_true", help="echo stdin lines until EOF")
    p.add_argument("--read-line", action="store_true", help="echo one line of stdin, exit")
    args = p.parse_args()
    LOG_FD = 1 if args.log_to == "stdout" else 2

    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
        fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    for sig in HANDLED:
        signal.signal(sig, lambda *_: None)

    for _ in range(args.grandchildren):
        spawn_grandchild(setsid=False, ignore_term=True)
    for _ in range(args.mortal_grandchildren):
        spawn_grandchild(setsid=False, ignore_term=False)
    if args.setsid_grandchild:
        spawn_grandchild(setsid=True, ignore_term=True)
    orphans_fd = spawn_orphans(args.orphans) if args.orphans else None

    me = os.getpid()
    log(f"ready pid={me} pgid={os.getpgid(0)} sid={os.getsid(0)} ppid={os.getppid()}")

    if args.exit_at_once:
        exit_now(args.code)
    if args.stop_self:
        os.kill(me, signal.SIGSTOP)  # as a Ctrl+Z would: nothing runs here until SIGCONT
    if args.kill_self is not None:
        kill_self(args.kill_self)

    payload = b""
    out_fd = 1 if args.write_to == "stdout" else 2
    if args.write_bytes:
        rnd = random.Random(args.write_bytes)
        payload = rnd.randbytes(max(0, args.write_bytes - len(TAIL))) + TAIL
        payload = payload[-args.write_bytes :]
        half = len(payload) // 2
        write_all(out_fd, payload[:half])
        if args.pause_midway:
            log(f"midway bytes={half}")
        else:
            write_all(out_fd, payload[half:])
            log(f"wrote bytes={len(payload)} sha256={hashlib.sha256(payload).hexdigest()}")
            exit_now(args.code)

    deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
    watch = [wake_r]
    if orphans_fd is not None:
        watch.append(orphans_fd)
    if args.echo_stdin or args.read_line:
        watch.append(0)
    stdin_buf = b""
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            ready, _, _ = select.select(watch, [], [], timeout)
        except InterruptedError:
            continue
        if deadline is not None and time.monotonic() >= deadline:
            exit_now(args.code)
        if orphans_fd in ready and os.read(orphans_fd, 1) == b"":
            log(f"orphans exited count={args.orphans}")
            watch.remove(orphans_fd)
        if 0 in ready:
            chunk = os.read(0, 4096)
            if not chunk:
                log("stdin eof")
                watch.remove(0)
                if args.echo_stdin:
                    exit_now(args.code)
            stdin_buf += chunk
            while b"\n" in stdin_buf:
                line, stdin_buf = stdin_buf.split(b"\n", 1)
                log("echo: " + line.decode(errors="replace").rstrip("\r"))
                if args.read_line:
                    exit_now(args.code)
        if wake_r in ready:
            try:
                numbers = os.read(wake_r, 4096)
            except BlockingIOError:
                numbers = b""
            # Report the whole batch before acting on any of it: signals that
            # were pending together run their handlers in no useful order (the
            # kernel stacks one frame per signal, the last one set up runs
            # first), and a stop signal must not hide the others.
            batch = [signal.Signals(n) for n in numbers]
            for sig in batch:
                log(f"signal {sig.name}")
            for sig in batch:
                act_on(sig, args, payload, out_fd)


def act_on(sig: signal.Signals, args: argparse.Namespace, payload: bytes, out_fd: int) -> None:
    if sig in args.exit_on:
        exit_now(args.code)
    if sig in args.ignore:
        return
    if sig == signal.SIGTERM and args.pause_midway:
        write_all(out_fd, payload[len(payload) // 2 :])
        log(f"wrote bytes={len(payload)} sha256={hashlib.sha256(payload).hexdigest()}")
        exit_now(args.stop_code)
    if sig in STOP:
        if args.stop_after:
            time.sleep(args.stop_after)  # a child that takes time to stop
        exit_now(args.stop_code)


if __name__ == "__main__":
    sys.exit(main())
