"""gsup reaps every orphan that is reparented to it, as PID 1 or as a child subreaper."""

from __future__ import annotations

import re
import signal
import time

import pytest


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
