"""The supervised child of the reliability tests (standard library only).

    child.py [--tag TOKEN] [--on-term exit|log] [--code N] [--exit-on-stdin]
             [--grandchildren N] [--orphans N] [--log-fd FD]

One line per event on stdout (or on --log-fd), each written with a single ``os.write``:

    ready pid=N                     set up; the signals below are handled
    grandchildren ready n=N         --grandchildren: every grandchild is set up
    orphans exited n=N              --orphans: every orphan has exited (or is exiting)
    signal SIGNAME                  a signal arrived (in order of arrival)
    exiting code=N                  about to exit with N

``--on-term exit`` (default) ends the child with ``--code`` at TERM, INT or
QUIT; ``--on-term log`` only reports them (a child that ignores the stop).
``--exit-on-stdin`` ends it with ``--code`` at the first line (or EOF) on
stdin. ``--tag`` is only there to mark the command line of the child and of
every process it forks, so that a test can find all of them in /proc.

Grandchildren (``--grandchildren``) come in four kinds, in turn: in the
child's group, in a group of their own, in a session of their own (setsid)
and orphaned, in a group of their own and orphaned. They ignore every
catchable signal and sleep until killed.

Orphans (``--orphans``) are forked by an intermediate process that exits
at once, so they are reparented to gsup; they wait on a barrier pipe that the
child then closes, so that they all exit at the same moment.

Handlers only note the signal; the main loop, woken through the wakeup fd,
reports it.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import sys

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
CATCHABLE = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]

pending: list[int] = []


LOG_FD = 1


def log(text: str) -> None:
    try:
        os.write(LOG_FD, (text + "\n").encode())
    except OSError:
        pass  # a closed or broken log must not change how the child behaves


def exit_now(code: int) -> None:
    log(f"exiting code={code}")
    os._exit(code)


def note(signo: int, _frame: object) -> None:
    pending.append(signo)


def ignore_everything() -> None:
    for sig in CATCHABLE:
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (OSError, ValueError):
            pass


def grandchild(kind: int, ready_w: int) -> None:
    """In a fresh fork: become a grandchild of *kind*, report, sleep until killed."""
    try:
        os.closerange(3, ready_w)
        os.closerange(ready_w + 1, 1024)
        ignore_everything()
        if kind == 1 or kind == 3:
            os.setpgid(0, 0)
        elif kind == 2:
            os.setsid()
        os.write(ready_w, b"x")
        os.close(ready_w)
        while True:
            signal.pause()
    finally:
        os._exit(0)


def spawn_grandchildren(n: int) -> None:
    ready_r, ready_w = os.pipe()
    for i in range(n):
        kind = i % 4
        if kind in (0, 1):
            if os.fork() == 0:
                grandchild(kind, ready_w)
            continue
        middle = os.fork()
        if middle == 0:  # the intermediate: fork the grandchild and exit, orphaning it
            try:
                if os.fork() == 0:
                    grandchild(kind, ready_w)
            finally:
                os._exit(0)
        os.waitpid(middle, 0)
    os.close(ready_w)
    got = 0
    while got < n:
        chunk = os.read(ready_r, n - got)
        if not chunk:
            break
        got += len(chunk)
    os.close(ready_r)
    log(f"grandchildren ready n={got}")


def spawn_orphans(n: int) -> None:
    barrier_r, barrier_w = os.pipe()
    done_r, done_w = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.close(barrier_w)
            os.close(done_r)
            for _ in range(n):
                if os.fork() == 0:  # an orphan-to-be: wait for the barrier, then exit
                    try:
                        os.read(barrier_r, 1)
                    finally:
                        os._exit(0)
        finally:
            os._exit(0)
    os.close(barrier_r)
    os.close(done_w)
    os.waitpid(middle, 0)  # every orphan is forked and reparented to gsup
    os.close(barrier_w)  # release them all at once
    while os.read(done_r, 4096):
        pass  # EOF: the last orphan closed its end, i.e. is exiting
    os.close(done_r)
    log(f"orphans exited n={n}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tag", default="")
    p.add_argument("--on-term", choices=["exit", "log"], default="exit")
    p.add_argument("--code", type=int, default=0)
    p.add_argument("--exit-on-stdin", action="store_true")
    p.add_argument("--grandchildren", type=int, default=0)
    p.add_argument("--orphans", type=int, default=0)
    p.add_argument("--log-fd", type=int, default=1)
    args = p.parse_args()
    global LOG_FD
    LOG_FD = args.log_fd

    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    for sig in HANDLED:
        signal.signal(sig, note)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    log(f"ready pid={os.getpid()}")
    if args.grandchildren:
        spawn_grandchildren(args.grandchildren)
    if args.orphans:
        spawn_orphans(args.orphans)

    watch = [wake_r.fileno()]
    if args.exit_on_stdin:
        watch.append(0)
    while True:
        try:
            ready, _, _ = select.select(watch, [], [])
        except InterruptedError:
            ready = []
        if wake_r.fileno() in ready:
            try:
                while wake_r.recv(4096):
                    pass
            except BlockingIOError:
                pass
        while pending:
            sig = pending.pop(0)
            log(f"signal {signal.Signals(sig).name}")
            if sig in STOP and args.on_term == "exit":
                exit_now(args.code)
        if 0 in ready:
            sys.stdin.buffer.raw.read(4096)  # type: ignore[attr-defined]
            exit_now(args.code)


if __name__ == "__main__":
    main()
