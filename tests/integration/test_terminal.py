"""gsup on a terminal (a pty): Ctrl+C reaches the child once, twice force-kills, input works.

gsup is started as a shell would start it: leader of the terminal's
foreground process group (tests/helpers/launch.py --ctty). Ctrl+C is the
byte 0x03 written to the pty master; the kernel's line discipline turns it
into SIGINT for the whole foreground group, gsup and child alike.

The child's lines are matched unanchored. What the screen shows is checked
with a terminal emulator (pyte) fed every byte the terminal received.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest
from gsupkit import GSUP, GsupRun, quiet_platform

HELPERS = Path(__file__).resolve().parent.parent / "helpers"
LAUNCH = (sys.executable, str(HELPERS / "launch.py"))

#: Long enough never to run out during a test; short enough for any platform budget.
GRACE = "8s"
CTRL_C = b"\x03"


@pytest.mark.timeout(30)
def test_ctrl_c_reaches_the_child_exactly_once(gsup):
    """Ctrl+C gives the child exactly one SIGINT (gsup does not repeat it) and shows the countdown."""
    run = gsup(["--grace", GRACE], child=["--ignore", "INT", "--exit-on", "USR2"], tty=True)
    ready = run.out.expect(r"^ready pid=(\d+) pgid=(\d+)")
    assert ready[1] != ready[2]  # the child stays in gsup's group, the terminal's foreground
    run.type(CTRL_C)
    run.out.expect(r"signal SIGINT$")
    run.out.wait_text(r"SIGKILL in\s+\d+\.\ds")  # the grace countdown
    # gsup handles signals in order: once the child has USR1 from gsup, any
    # SIGINT gsup would have sent has been sent (and reported) before it.
    run.send(signal.SIGUSR1)
    run.out.expect(r"signal SIGUSR1$")
    assert len(run.out.matching(r"signal SIGINT$")) == 1
    assert "forwarded SIGINT" not in run.out.text()
    run.send(signal.SIGUSR2)
    run.out.expect(r"exiting code=0$")
    assert run.finish() == 0


@pytest.mark.timeout(30)
def test_second_ctrl_c_force_kills(gsup):
    """A second Ctrl+C during the grace SIGKILLs the child at once, and gsup exits 137."""
    run = gsup(["--grace", GRACE], child=["--ignore", "INT"], tty=True)
    child = run.learn(int(run.out.expect(r"^ready pid=(\d+)")[1]))
    run.type(CTRL_C)
    run.out.expect(r"signal SIGINT$")
    run.out.wait_text(r"SIGKILL in")  # gsup is in its grace
    # A second frame, 0.1 s on: a second press, not the same one seen twice (SAME_KEYPRESS).
    run.out.wait_for(lambda: run.out.data.count(b"SIGKILL in") >= 2)
    pressed = time.monotonic()
    run.type(CTRL_C)
    assert run.wait(10) == 137
    assert run.exited_at is not None and run.exited_at - pressed < 2.0  # not the 8 s grace
    assert not child.running
    run.finish()
    assert re.search(r"force-killed", run.out.text())


@pytest.mark.timeout(30)
def test_interactive_child_reads_the_terminal(gsup):
    """A child under gsup can read a line typed at the terminal (it is in the foreground)."""
    run = gsup([], child=["--read-line", "--code", "0"], tty=True)
    run.out.expect(r"^ready pid=")
    run.type(b"hello gsup\r")  # Enter sends CR; the terminal turns it into a newline
    run.out.expect(r"echo: hello gsup$")
    assert run.finish() == 0


ROWS, COLUMNS = 40, 100


def set_size(run: GsupRun, rows: int = ROWS, columns: int = COLUMNS) -> None:
    """Give the terminal a size (the pty starts at 0x0), as a terminal window would."""
    assert run._master is not None
    fcntl.ioctl(run._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def screen_of(data: bytes, rows: int = ROWS, columns: int = COLUMNS) -> list[str]:
    """The screen as a user sees it after the terminal received *data*."""
    screen = pyte.Screen(columns, rows)
    pyte.ByteStream(screen).feed(data)
    return [line.rstrip() for line in screen.display]


@pytest.mark.timeout(30)
def test_the_countdown_never_mixes_with_the_childs_output(gsup):
    """While the child writes its lines (each in two pieces) during the grace, the countdown stays on a row of
    its own: every line of the child reads whole on the screen, and the countdown's row is gone at the end."""
    # -q: gsup's own event lines, written where the text scrolls, are another matter than the countdown.
    run = gsup(["-q", "--grace", GRACE, "--", sys.executable, str(HELPERS / "jobs.py"), "15"], tty=True)
    set_size(run)
    run.out.expect(r"^ready$")
    run.type(CTRL_C)
    run.out.expect(r"all jobs done")
    assert run.finish() == 0
    data = bytes(run.out.data)
    assert b"SIGKILL in" in data, "no countdown was drawn"
    shown = screen_of(data)
    jobs = [line.replace("^C", "") for line in shown if "job " in line]  # the terminal echoes ^C
    assert jobs == [f"job {i} done" for i in range(15)], "\n".join(shown)
    assert not [line for line in shown if "SIGKILL in" in line], "\n".join(shown)
    assert any(line.startswith("gsup report") for line in shown), "\n".join(shown)


@pytest.mark.timeout(30)
def test_the_countdown_offers_ctrl_c_only_when_it_would_force(gsup):
    """After a Ctrl+C the countdown says "Ctrl+C again to force"; after a SIGTERM from kill it does not
    (a Ctrl+C would then only be forwarded)."""
    run = gsup(
        ["--grace", GRACE], child=["--ignore", "INT", "--ignore", "TERM", "--exit-on", "USR2"], tty=True
    )
    set_size(run)
    run.out.expect(r"^ready pid=")
    run.send(signal.SIGTERM)
    run.out.wait_text(r"SIGKILL in\s+\d+\.\ds")
    run.send(signal.SIGUSR2)
    assert run.finish() == 0
    assert "Ctrl+C" not in run.out.text()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "wrapper",
    [("timeout", "--foreground", "60"), (sys.executable, str(HELPERS / "forwarder.py"), "0.02", "--")],
    ids=["timeout-foreground", "copy-20ms-later"],
)
def test_one_ctrl_c_under_a_forwarding_wrapper_is_one_ctrl_c(wrapper):
    """Under `timeout --foreground` (or a wrapper whose copy comes 20 ms later), one Ctrl+C reaches gsup
    twice, the kernel's SIGINT and the wrapper's copy: it is one Ctrl+C, the child stops in its own time and
    nothing is force-killed."""
    child = [sys.executable, str(HELPERS / "child.py"), "--stop-after", "0.5"]
    argv = [*LAUNCH, "--ctty", "--", *wrapper, GSUP, "--grace", GRACE, "--", *child]
    run = GsupRun(argv, env=quiet_platform(), tty=True)
    try:
        run.out.expect(r"^ready pid=")
        run.out.wait_text(r"gsup: started pid")  # gsup is idle in its loop, not importing rich
        assert run._master is not None
        os.write(run._master, CTRL_C)
        assert run.wait(15) == 0, run.out.text()
        run.out.wait_eof(10)
        text = run.out.text()
        assert "force-killed" not in text and "second SIGINT" not in text, text
        assert re.search(r"exiting code=0", text), text
    finally:
        run.close()
