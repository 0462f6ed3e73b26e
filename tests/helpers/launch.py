"""Exec a command with a chosen signal setup and, optionally, a controlling terminal.

    launch.py [--ignore SIGS] [--block SIGS] [--ctty] -- CMD [ARG...]

Every catchable signal is first reset to its default disposition and the
mask emptied (Python itself ignores SIGPIPE and SIGXFSZ, which exec would
pass on); then the signals of ``--ignore`` (comma-separated, e.g.
``INT,HUP,PIPE``) are ignored and those of ``--block`` blocked, both of which
survive exec. ``--ctty``: start a new session and make the terminal on
stdin its controlling terminal, so that CMD leads the terminal's foreground
process group, as a shell would arrange. Standard library only.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import termios

UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}


def signals(text: str) -> list[signal.Signals]:
    out = []
    for name in filter(None, (t.strip().upper() for t in text.split(","))):
        out.append(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ignore", type=signals, default=[])
    p.add_argument("--block", type=signals, default=[])
    p.add_argument("--ctty", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("missing command")
    if args.ctty:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    for sig in signal.valid_signals():
        if sig not in UNCATCHABLE:
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    for sig in args.ignore:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, args.block)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
