"""The child that ``bench/run.py`` supervises: small, pure Python, no C.

Run as ``python3 -I -S helper.py MODE [ARG]``; it talks to the harness over
its inherited stdin and stdout (pipes the harness holds), so every wrapper
passes the same bytes through untouched.

Modes:

``serve``
    Write ``READY <pid>`` and sleep on stdin. Each SIGUSR1 that arrives makes
    the interpreter's C-level signal handler write one byte (the signal number)
    to stdout through ``signal.set_wakeup_fd``: the harness times the read, so
    no Python code runs between the signal's arrival and the byte. A byte on
    stdin makes it write ``EXIT <time.monotonic()>`` and ``_exit(0)`` at once;
    EOF on stdin makes it exit quietly. The handler is set before READY is
    written, so a signal forwarded early (gsup's start-up window) writes its
    byte, a newline, before the READY line; the harness tells the two apart.
``ignore-term``
    Like ``serve``, with SIGTERM ignored (the escalation benchmark).
``orphans N``
    Meant to run as PID 2 in a fresh PID namespace, under the wrapper as
    PID 1. A shell forks N subshells that block on a pipe and exits, so the N
    become orphans of PID 1. Closing the pipe releases them all at once; each
    writes one byte to a count pipe and exits. The helper then counts the
    processes in /proc (the namespace's own) every 2 ms until none is left
    but PID 1 and itself, and prints one JSON line: time from the release to the last exit and to the
    last reap, and the largest number of zombies seen.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time


def _write(text: str) -> None:
    data = text.encode()
    while data:
        data = data[os.write(1, data) :]


def _sleep_on_stdin() -> None:
    while True:
        select.select([0], [], [])  # EINTR is retried (PEP 475) after a handler ran
        data = os.read(0, 1)
        if not data:
            os._exit(0)
        now = time.monotonic()
        _write(f"EXIT {now!r}\n")
        os._exit(0)


def serve(ignore_term: bool) -> None:
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A new open file description for the stdout pipe, so that making it
    # non-blocking (set_wakeup_fd requires it) does not touch the wrapper's.
    wake = os.open(f"/proc/self/fd/{1}", os.O_WRONLY | os.O_NONBLOCK)
    signal.signal(signal.SIGUSR1, lambda signo, frame: None)
    signal.set_wakeup_fd(wake, warn_on_full_buffer=False)
    _write(f"READY {os.getpid()}\n")
    _sleep_on_stdin()


def _children_of_init() -> list[int]:
    # One big read: the file is rebuilt from the start of the list at every read.
    fd = os.open("/proc/1/task/1/children", os.O_RDONLY)
    try:
        data = b""
        while chunk := os.read(fd, 1 << 20):
            data += chunk
    finally:
        os.close(fd)
    return [int(p) for p in data.split()]


def _processes_besides(me: int) -> int:
    """Processes in this PID namespace other than PID 1 and *me*, zombies included.

    Listing /proc walks the PID table under RCU: unlike
    ``/proc/1/task/1/children``, it takes no lock that reaping needs, so the
    observer does not slow the reaper down.
    """
    count = 0
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name[0].isdigit():
                count += 1
    return count - 2 if me != 1 else count - 1


def orphans(n: int) -> None:
    me = os.getpid()
    gate_r, gate_w = os.pipe()
    count_r, count_w = os.pipe()
    os.set_inheritable(gate_r, True)
    os.set_inheritable(count_w, True)
    script = (
        f"exec 3<&{gate_r} 4>&{count_w}; i=0; "
        f'while [ "$i" -lt {n} ]; do (read _ <&3; printf x >&4) & i=$((i+1)); done'
    )
    started = time.monotonic()
    subprocess.run(
        ["/bin/sh", "-c", script],
        pass_fds=(gate_r, count_w),
        stdin=subprocess.DEVNULL,
        check=True,
        timeout=120,
    )
    os.close(gate_r)
    os.close(count_w)
    # Wait until all N are PID 1's children (the shell has exited and they
    # were reparented), then let them settle in their read.
    deadline = time.monotonic() + 60
    while len([p for p in _children_of_init() if p != me]) < n:
        if time.monotonic() > deadline:
            raise SystemExit("orphans: not all children reparented to PID 1")
        time.sleep(0.01)
    forked = time.monotonic() - started
    time.sleep(0.3)
    os.set_blocking(count_r, False)

    exited = 0
    max_zombies = 0
    last_exit = None
    zombies_at_last_exit = 0
    gone = None
    samples = 0
    released = time.monotonic()
    os.close(gate_w)  # every orphan's read returns EOF now
    deadline = released + 60
    while True:
        try:
            while chunk := os.read(count_r, 65536):
                exited += len(chunk)
        except BlockingIOError:
            pass
        remaining = _processes_besides(me)
        now = time.monotonic()
        samples += 1
        alive = n - exited
        max_zombies = max(max_zombies, remaining - alive)
        if last_exit is None and exited >= n:
            last_exit = now
            zombies_at_last_exit = remaining
        if remaining == 0 and exited >= n:
            gone = now
            break
        if now > deadline:
            break
        time.sleep(0.002)
    _write(
        json.dumps(
            {
                "n": n,
                "fork_s": forked,
                "exited": exited,
                "last_exit_s": None if last_exit is None else last_exit - released,
                "gone_s": None if gone is None else gone - released,
                "max_zombies": max_zombies,
                "zombies_at_last_exit": zombies_at_last_exit,
                "samples": samples,
            }
        )
        + "\n"
    )


def main() -> None:
    mode = sys.argv[1]
    if mode == "serve":
        serve(ignore_term=False)
    elif mode == "ignore-term":
        serve(ignore_term=True)
    elif mode == "orphans":
        orphans(int(sys.argv[2]))
    else:
        raise SystemExit(f"helper: unknown mode {mode!r}")


if __name__ == "__main__":
    main()
