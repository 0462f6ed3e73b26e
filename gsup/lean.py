"""The lean supervising process: gsup replaces itself after parsing.

Owns: the handoff from the command-line process to the supervising one.
Parsing (typer, click, the config file) costs memory that a PID 1 would
carry for its whole life. So once the plan is made, and a single command
already started (its start is not delayed by this), gsup ``execve``s a fresh
interpreter on the same PID that imports only the core: the plan travels in
an anonymous memory file, the child stays its child, and the blocked signal
mask and any pending signal survive the exec, so nothing is lost on the way.
The signalfd the loop reads is made before the exec and kept open across it
(a signalfd reads the pending signals of whichever process reads it), so the
lean process loads neither ctypes nor pickle.py: it unpickles with the C
``_pickle`` alone.

The new interpreter runs with ``-S`` (no site: less memory, faster start);
the paths that site computed are handed over with the plan. Its environment
is the one gsup received, read from /proc/self/environ (not ``os.environ``,
which CPython's locale coercion may have changed), so the child's stays
exact too.

If the exec fails, gsup supervises in the process it already is.

Imports: the standard library and gsup's core; never typer or rich.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # Run as a script by handoff(), without site: the package's parent
    # replaces the script's own directory (gsup/) at the head of the path.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from typing import NamedTuple

from gsup import linux, signals
from gsup.model import Plan
from gsup.supervisor import Prepared


class Handoff(NamedTuple):
    plan: Plan
    prepared: Prepared  # what was started and resolved before the exec
    log_format: str
    quiet: bool
    verbose: bool
    sys_path: tuple[str, ...]


def handoff(h: Handoff) -> None:
    """Exec the lean supervisor; returns only if that is impossible."""
    if not sys.executable or os.environ.get("GSUP_NO_HANDOFF"):
        return
    import pickle

    from gsup import spawn

    try:
        fd = os.memfd_create("gsup-plan", 0)  # inherited across exec on purpose
    except (AttributeError, OSError):
        return
    # The loop's signalfd, made here: the lean process need not load ctypes to make one.
    try:
        inbox = signals.new_signalfd()
    except OSError:
        os.close(fd)
        return
    h = h._replace(prepared=h.prepared._replace(inbox_fd=inbox))
    with os.fdopen(os.dup(fd), "wb") as f:
        pickle.dump(h, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.lseek(fd, 0, os.SEEK_SET)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    script = os.path.abspath(__file__)
    # The test hook's interpreter option goes along (signals.open_inbox); nothing else does.
    hook = [f"-X{k}={v}" for k, v in sys._xoptions.items() if k == signals.TEST_FAULT]
    kept = h.prepared.descriptors()  # the health endpoint, a log-ready child's pipes
    for d in kept:
        os.set_inheritable(d, True)  # across this exec only: the loop clears it again
    try:
        os.execve(
            sys.executable, [sys.executable, "-S", *hook, script, str(fd)], spawn.inherited_environment()
        )
    except OSError:
        os.close(fd)
        os.close(inbox)
        for d in kept:
            os.set_inheritable(d, False)


def main(fd: int) -> int:
    """In the lean process: supervise what the handoff describes."""
    # The C unpickler alone: pickle.py and what it imports would stay in memory.
    from _pickle import load

    with os.fdopen(fd, "rb") as f:
        h: Handoff = load(f)
    sys.path[1:1] = [p for p in h.sys_path if p not in sys.path]
    from gsup.errors import EXIT_INTERNAL, GsupError
    from gsup.log import make_sink
    from gsup.supervisor import run

    sink = make_sink(h.log_format, quiet=h.quiet, verbose=h.verbose)
    try:  # named once it is about to supervise: from outside, the handover's end
        linux.set_name(b"gsup")
    except OSError:
        pass
    try:
        outcome = run(h.plan, sink, h.prepared)
    except GsupError as e:
        sink.error(e.message)
        return e.exit_code
    except Exception as e:  # the loop has killed and reaped what it started
        import traceback

        sink.error(f"internal error: {type(e).__name__}: {e}")
        traceback.print_exc()
        return EXIT_INTERNAL
    sink.report(outcome)
    return outcome.exit_code


if __name__ == "__main__":
    from gsup.errors import exit_now
    from gsup.lean import main as _main  # the module, not this __main__ copy: one set of classes

    exit_now(_main(int(sys.argv[1])))
