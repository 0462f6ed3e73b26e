"""gsup on a terminal (a pty): Ctrl+C reaches the child once, twice force-kills, input works.

gsup is started as a shell would start it: leader of the terminal's
foreground process group (tests/helpers/launch.py --ctty). Ctrl+C is the
byte 0x03 written to the pty master; the kernel's line discipline turns it
into SIGINT for the whole foreground group, gsup and child alike.

The child's lines are matched unanchored: on a terminal they may follow
gsup's countdown, which is redrawn in place without a newline.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

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
