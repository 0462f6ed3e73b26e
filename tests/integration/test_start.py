"""No signal is lost at start: one that comes while gsup is still importing waits for the loop."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from gsupkit import quiet_platform

SLOW_IMPORT = Path(__file__).resolve().parent.parent / "helpers" / "slow_import"


@pytest.mark.timeout(30)
def test_a_sigterm_while_gsup_imports_is_not_lost(gsup, tmp_path):
    """A SIGTERM sent to gsup (PID 1 of a namespace, or a subreaper) while it is still importing
    its command line reaches the child once it runs: the child is stopped at once, exit 143
    (before, as PID 1 the kernel discarded it and the child ran its 30 s)."""
    at, go = tmp_path / "at", tmp_path / "go"
    os.mkfifo(at)
    os.mkfifo(go)
    env = {
        **quiet_platform(),
        "PYTHONPATH": str(SLOW_IMPORT),
        "SLOW_IMPORT_AT": str(at),
        "SLOW_IMPORT_GO": str(go),
    }
    run = gsup(["--grace", "10s", "--", "sleep", "30"], env=env)
    importing: list[str] = []
    reader = threading.Thread(target=lambda: importing.append(at.read_text()), daemon=True)
    reader.start()
    reader.join(20)
    assert importing and importing[0].startswith("importing"), "gsup never reached its import of typer"
    run.send(signal.SIGTERM)  # gsup has no child yet, and is nowhere near its loop
    go.write_text("go\n")
    assert run.finish(20) == 143, run.err.text()
    assert run.exited_at is not None and run.exited_at - run.started_at < 10, "the child ran its course"
    assert "stopped by  SIGTERM" in run.err.text()
    assert "killed by SIGTERM" in run.err.text()
