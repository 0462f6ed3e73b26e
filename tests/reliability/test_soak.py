"""Soak: many start/stop cycles and many restarts, as PID 1, with nothing leaked.

Full forms (marked slow): 1,000 cycles of gsup with a child, and one gsup
restarting a program 1,000 times. Reduced forms (CI): 100 of each.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from prockit import Stat, children_of, descendants, rss_kib, stat

from .relkit import SCALES, Gsup, all_gone, fd_count


def _snapshot(root: int) -> list[Stat]:
    """*root* and every process below it now (host pids with start times)."""
    return [st for st in (stat(root), *descendants(root)) if st is not None]


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("scale", SCALES)
def test_start_stop_cycles_leak_nothing(pid1, scale):
    """1,000 start/stop cycles of gsup as PID 1 with a child leave no process behind and leak no descriptor,
    child or memory in the process that runs them."""
    cycles = 1000 // scale
    me = os.getpid()
    fds = fd_count()
    kids = len(children_of(me))
    rss = None
    for i in range(cycles):
        run = Gsup(
            pid1, ["--grace", "5s", "--success-on-stop", "--", "sh", "-c", "echo ready; exec sleep 600"]
        )
        try:
            run.out.expect(r"^ready$")
            procs = _snapshot(run.pid)  # gsup, its child
            assert len(procs) == 2, procs
            run.send(signal.SIGTERM)
            assert run.finish(30) == 0, run.err.text()
        finally:
            run.close()
        assert all_gone(procs) == [], f"cycle {i}: left behind"
        assert fd_count() == fds, f"cycle {i}: descriptors leaked"
        assert len(children_of(me)) == kids, f"cycle {i}: children left"
        if i == min(10, cycles - 1):
            rss = rss_kib("self")  # after the first cycles have warmed up the caches
    assert rss is not None and rss_kib("self") - rss < 8 * 1024


HOLD_SCRIPT = 'echo run; if [ -e "$1" ]; then echo held; while [ -e "$1" ]; do sleep 0.02; done; fi'


def _quiet_sample(run: Gsup, hold: Path) -> tuple[int, int]:
    """gsup's descriptor count and VmRSS (KiB) while one instance of the program is held.

    Between restarts the program's pipes come and go; with the instance
    held, gsup is idle with exactly one instance's pipes open.
    """
    hold.touch()
    run.out.expect(r"^p \| held$", timeout=60)
    sample = min(fd_count(run.pid) for _ in range(20)), rss_kib(run.pid)
    hold.unlink()  # the held instance exits; restarts resume
    return sample


@pytest.mark.timeout(900)
@pytest.mark.parametrize("scale", SCALES)
def test_restarts_leak_no_fd_and_no_memory(pid1, tag, tmp_path, scale):
    """A long-lived gsup (PID 1) restarting a program 1,000 times keeps a flat descriptor count and a flat
    resident memory."""
    restarts = 1000 // scale
    warm = 20
    hold = tmp_path / "hold"
    config = tmp_path / "gsup.toml"
    config.write_text(
        '[gsup]\ngrace = "2s"\n\n[programs.p]\n'
        f"command = {json.dumps(['sh', '-c', HOLD_SCRIPT, tag, str(hold)])}\n"
        'restart = "always"\nmax_restarts = 1000000\nbackoff = "0s"\nbackoff_max = "0s"\n'
    )
    run = Gsup(pid1, ["--config", str(config)], tag=tag)
    try:
        run.err.expect(rf"restart {warm} in ", timeout=60)
        fds, rss = _quiet_sample(run, hold)
        run.err.expect(rf"restart {warm + restarts} in ", timeout=600)
        fds_after, rss_after = _quiet_sample(run, hold)
        run.send(signal.SIGTERM)
        assert run.finish(30) == 0, run.err.text()[-2000:]
    finally:
        run.close()
    assert len(run.out.matching(r"^p \| run$")) >= warm + restarts
    assert fds_after == fds, (fds, fds_after)
    assert rss_after - rss < 3 * 1024, (rss, rss_after)
