"""gsup reaps every orphan that is reparented to it, as PID 1 or as a child subreaper."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from gsup import reaper


@pytest.mark.timeout(90)
def test_orphans_leave_no_zombie(gsup):
    """500 orphaned grandchildren that exit leave no zombie 100 ms later, and gsup reaped each."""
    run = gsup([], child=["--orphans", "500"])
    run.out.expect(r"^ready pid=", timeout=60)
    # Printed once the last orphan has closed its files, i.e. is exiting.
    run.out.expect(r"^orphans exited count=500$", timeout=30)
    time.sleep(0.1)  # the guarantee under test: no zombie outlives 100 ms
    assert [st.pid for st in run.zombies()] == []
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert re.search(r"^gsup: orphans\s+500 reaped$", run.err.text(), re.M), run.err.text()


@pytest.mark.timeout(30)
def test_exits_within_waits_for_the_exit_and_leaves_the_status():
    """reaper.exits_within tells an exited child from a running one and never collects its status."""
    quick = os.posix_spawnp("true", ["true"], os.environ)
    assert reaper.exits_within(quick, 10.0)
    assert os.waitpid(quick, os.WNOHANG) == (quick, 0), "the status was collected, or lost"
    slow = os.posix_spawnp("sleep", ["sleep", "30"], os.environ)
    try:
        assert not reaper.exits_within(slow, 0.05)
        assert os.waitpid(slow, os.WNOHANG) == (0, 0)
    finally:
        os.kill(slow, signal.SIGKILL)
        os.waitpid(slow, 0)
