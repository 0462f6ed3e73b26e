"""Run gsup once per exit code, fast: fork each run from one warm interpreter.

    exit_sweep.py [--pid1] CODE...

A gsup start costs a fraction of a second, nearly all of it importing and
parsing; 256 of them in each mode would take minutes. This program loads the
entry point of the installed ``gsup`` console script once (the same function
the command calls), warms its parsing with ``gsup check``, then for each
CODE forks and calls it in the child, exactly as the script would, with
``-- sh -c 'exit CODE'`` (gsup then execs its lean supervisor on the same
pid, as it does when started as a command). With ``--pid1`` the fork first enters a new PID
namespace (``unshare(CLONE_NEWPID)``), so gsup runs as PID 1 there.

Prints one JSON object per code: ``{"code": N, "status": S, "stderr": TEXT}``,
where S is the status gsup exited with. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import io
import json
import os
import sys
from importlib.metadata import entry_points
from typing import Callable

CLONE_NEWPID = 0x20000000


def load_gsup() -> Callable[[list[str]], object]:
    try:
        (ep,) = entry_points(group="console_scripts", name="gsup")
    except TypeError:  # Python 3.9: a dict of groups
        (ep,) = [e for e in entry_points()["console_scripts"] if e.name == "gsup"]  # type: ignore[index]
    main: Callable[[list[str]], object] = ep.load()
    return main


def call(main: Callable[[list[str]], object], argv: list[str]) -> int:
    """Run the console script's function as the script does; return its exit status."""
    try:
        main(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    return 0


def enter_pid_namespace() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.unshare(CLONE_NEWPID) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def start_one(main: Callable[[list[str]], object], code: int, pid1: bool) -> tuple[int, int]:
    """Fork one run of gsup for *code*; return its pid and the read end of its stderr."""
    argv = ["--", "sh", "-c", f"exit {code}"]
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 125
        try:
            os.close(r)
            os.dup2(w, 2)
            os.close(w)
            if pid1:
                enter_pid_namespace()
                inner = os.fork()  # the first child in the namespace is its PID 1
                if inner != 0:
                    _, wait_status = os.waitpid(inner, 0)
                    status = os.waitstatus_to_exitcode(wait_status) & 0xFF
                    os._exit(status)
            # gsup replaces this process (its lean supervisor, same pid) or
            # returns through SystemExit when it supervises in place.
            status = call(main, argv)
        finally:
            sys.stderr.flush()
            os._exit(status)
    os.close(w)
    return pid, r


def read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pid1", action="store_true")
    p.add_argument("--jobs", type=int, default=4, help="runs at a time")
    p.add_argument("codes", type=int, nargs="+")
    args = p.parse_args()
    gsup_main = load_gsup()
    # Warm every import of parsing with a run that starts nothing (``check``).
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warm = call(gsup_main, ["check", "--", "true"])
    if warm != 0:
        raise SystemExit(f"warm-up run of gsup check failed with {warm}")
    pending = list(args.codes)
    running: dict[int, tuple[int, int]] = {}  # pid -> (code, stderr fd)
    results: dict[int, tuple[int, str]] = {}
    while pending or running:
        while pending and len(running) < args.jobs:
            code = pending.pop(0)
            pid, fd = start_one(gsup_main, code, args.pid1)
            running[pid] = (code, fd)
        pid, wait_status = os.waitpid(-1, 0)
        if pid not in running:
            continue  # an orphan reparented here: not one of ours
        code, fd = running.pop(pid)
        results[code] = (os.waitstatus_to_exitcode(wait_status), read_all(fd))
    for code in args.codes:
        status, stderr = results[code]
        print(json.dumps({"code": code, "status": status, "stderr": stderr}), flush=True)


if __name__ == "__main__":
    main()
