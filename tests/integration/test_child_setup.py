"""What the child inherits from gsup: exactly its environment, clean signals, its own group."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.timeout(30)
def test_child_environment_is_exactly_gsups(gsup):
    """The child's environment is exactly gsup's: nothing added (no LC_CTYPE), nothing lost."""
    # No locale variable at all: this is when CPython's locale coercion (PEP
    # 538) adds LC_CTYPE to gsup's own os.environ.
    env = {
        "PATH": os.environ["PATH"],
        "GSUP_PLATFORM": "none",
        "GSUP_TEST_VALUE": "spaces and = signs\tand a tab",
    }
    run = gsup(["--quiet", "--", "env", "-0"], env=env)
    assert run.finish() == 0
    entries = bytes(run.out.data).split(b"\0")
    assert entries[-1] == b""
    got = dict(e.decode().split("=", 1) for e in entries[:-1])
    assert got == env


@pytest.mark.timeout(30)
def test_child_has_no_blocked_or_ignored_signal(gsup, mode, helper):
    """The child starts with an empty signal mask and no ignored signal, whatever gsup inherited."""
    launch = ["--ignore", "INT,HUP,PIPE,USR2", "--block", "USR1,TERM,WINCH"]
    grep = ["grep", "-E", r"^Sig(Blk|Ign):", "/proc/self/status"]
    # Control: started the same way without gsup, a process does inherit them.
    control = subprocess.run(
        [sys.executable, helper("launch.py"), *launch, "--", *mode.prefix, *grep],
        capture_output=True,
        text=True,
        timeout=20,
    )
    inherited = dict(line.split(":\t") for line in control.stdout.splitlines())
    assert int(inherited["SigIgn"], 16) != 0 and int(inherited["SigBlk"], 16) != 0

    run = gsup(["--quiet", "--", *grep], launch=launch)
    assert run.finish() == 0
    fields = dict(line.split(":\t") for line in run.out.matching(r"^Sig"))
    assert int(fields["SigBlk"], 16) == 0, fields
    assert int(fields["SigIgn"], 16) == 0, fields


@pytest.mark.timeout(30)
def test_child_leads_its_own_process_group(gsup, mode):
    """Outside a terminal the child leads a process group of its own (pgid == its pid)."""
    run = gsup([], child=["--exit"])
    ready = run.out.expect(r"^ready pid=(\d+) pgid=(\d+) sid=(\d+) ppid=(\d+)$")
    assert run.finish() == 0
    assert ready[1] == ready[2]
    if mode.pid1:
        assert ready[4] == "1"  # gsup is PID 1 of the namespace
