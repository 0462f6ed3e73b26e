"""A child for the shutdown-budget tests (standard library only).

    child.py [--on SIG=ACTION]... [--tick SECONDS] [--ready-file PATH]
             [--orphans N] [--setsid-grandchild] [--exit-after SECONDS --code N]

It writes one line per event to stdout, each with a single ``os.write`` so
lines never wait in a buffer (``t`` is CLOCK_MONOTONIC, the clock the tests
and gsup's JSON ``ts`` use):

    grandchild pid=N              --setsid-grandchild: a sleeper in its own session
    orphan pid=N                  --orphans: a grandchild whose parent has exited
    ready pid=N uid=N gid=N groups=A,B   handlers installed; send signals now
    tick N t=T                    --tick: still serving
    signal SIGTERM t=T            a signal named in --on arrived
    exiting code=N                about to exit

ACTION is ``log`` (note it, keep running: ignoring the stop) or ``exit:N``
(exit with N). Signals not named in --on keep their default disposition, so
an unhandled SIGTERM kills the child (status 143 through a shell).
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time


def log(text: str) -> None:
    os.write(1, (text + "\n").encode())


def parse_signal(text: str) -> signal.Signals:
    name = text.strip().upper()
    if name.isdigit():
        return signal.Signals(int(name))
    return signal.Signals[name if name.startswith("SIG") else "SIG" + name]


def parse_on(text: str) -> tuple[signal.Signals, str]:
    sig, _, action = text.partition("=")
    if action != "log" and not action.startswith("exit:"):
        raise argparse.ArgumentTypeError(f"{text!r}: ACTION is log or exit:N")
    return parse_signal(sig), action


def setsid_grandchild() -> int:
    """A grandchild in a session of its own that outlives this child."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.execvp("sleep", ["sleep", "300"])
        finally:
            os._exit(127)
    return pid


def orphan(linger: float) -> int:
    """A grandchild that exits *linger* seconds after its parent (so gsup reaps it)."""
    r, w = os.pipe()
    mid = os.fork()
    if mid == 0:
        try:
            os.close(r)
            pid = os.fork()
            if pid == 0:
                os.close(w)
                time.sleep(linger)
            else:
                os.write(w, str(pid).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 32):
        data += chunk
    os.close(r)
    os.waitpid(mid, 0)  # the intermediate is ours to reap; its child is now an orphan
    return int(data)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--on", type=parse_on, action="append", default=[])
    p.add_argument("--tick", type=float, help="print a tick line this often")
    p.add_argument("--ready-file", help="create this file once ready")
    p.add_argument("--orphans", type=int, default=0)
    p.add_argument("--orphan-linger", type=float, default=0.2)
    p.add_argument("--setsid-grandchild", action="store_true")
    p.add_argument("--exit-after", type=float, help="exit with --code after this many seconds")
    p.add_argument("--code", type=int, default=0)
    args = p.parse_args()

    if args.setsid_grandchild:
        log(f"grandchild pid={setsid_grandchild()}")
    for _ in range(args.orphans):
        log(f"orphan pid={orphan(args.orphan_linger)}")

    # Handlers only wake the loop through the wakeup fd; the loop reports.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    actions = dict(args.on)
    for sig in actions:
        signal.signal(sig, lambda *_: None)
    if args.ready_file:
        with open(args.ready_file, "w"):
            pass
    groups = ",".join(str(g) for g in sorted(os.getgroups()))
    log(f"ready pid={os.getpid()} uid={os.getuid()} gid={os.getgid()} groups={groups}")

    start = time.monotonic()
    ticks = 0
    next_tick = start + args.tick if args.tick else None
    exit_at = start + args.exit_after if args.exit_after is not None else None
    while True:
        due = [t for t in (next_tick, exit_at) if t is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        readable, _, _ = select.select([wake_r], [], [], timeout)
        now = time.monotonic()
        if readable:
            for signo in os.read(wake_r, 64):
                sig = signal.Signals(signo)
                log(f"signal {sig.name} t={now:.6f}")
                action = actions.get(sig, "log")
                if action.startswith("exit:"):
                    code = int(action[5:])
                    log(f"exiting code={code}")
                    sys.stdout.flush()
                    os._exit(code)
        if next_tick is not None and now >= next_tick:
            ticks += 1
            log(f"tick {ticks} t={now:.6f}")
            next_tick += args.tick
        if exit_at is not None and now >= exit_at:
            log(f"exiting code={args.code}")
            os._exit(args.code)


if __name__ == "__main__":
    main()
