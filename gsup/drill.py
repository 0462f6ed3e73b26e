"""``gsup drill``: stop a program the way the platform would, and judge it.

Owns: the drill's procedure and verdict. The drill plays the platform: it
runs ``gsup --log-format json [the same options] -- CMD`` as a child, waits
until CMD is ready (``--ready``) or for ``--after``, sends gsup the platform's
first stop signal, optionally sends requests to ``--probe URL`` while the
stop is under way, waits for gsup's exit and reads gsup's own JSON report.

PASS (exit 0) only when the program exited by itself within the grace with
a success status (0, or what --success-code/--success-on-stop make 0),
nothing was left behind (no leftover gsup had to signal or kill, nothing
escaped), and no probe request failed. Otherwise FAIL (exit 1) with reasons.

The drill is a subreaper too: a process that escaped gsup entirely would be
reparented to it, found, counted and killed.

Imports: the standard library, gsup's config/budget/readiness/linux/procs; psutil.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, NamedTuple, Optional, Sequence

from gsup import linux
from gsup.config import Resolved
from gsup.errors import UsageError
from gsup.readiness import Probe, http_check
from gsup.units import format_duration, parse_duration, quote, signal_name

#: How long a probe keeps sending requests at least, from the stop signal: a
#: load balancer goes on routing to a stopping instance for a moment.
PROBE_WINDOW = 1.0
READY_TIMEOUT = 60.0
DEFAULT_AFTER = 1.0
_DRILL_ONLY = ("--after", "--ready", "--probe")


class DrillOptions(NamedTuple):
    after: Optional[float]
    ready: Optional[Probe]
    probe: Optional[str]

    @classmethod
    def parse(cls, *, after: Optional[str], ready: Optional[str], probe: Optional[str]) -> DrillOptions:
        if after is not None and ready is not None:
            raise UsageError("gsup drill: give --after or --ready, not both")
        if probe is not None and not probe.startswith(("http://", "https://")):
            raise UsageError(f"--probe: {quote(probe)} is not an http:// or https:// URL")
        return cls(
            after=_after(after) if after is not None else None,
            ready=Probe.parse(ready) if ready is not None else None,
            probe=probe,
        )


def _after(text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as e:
        raise UsageError(f"--after: {e.message}") from None


@dataclass
class _ProbeCount:
    sent: int = 0
    failed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


def inner_argv(args: Sequence[str]) -> list[str]:
    """The drill's own argv without the drill-only options, for the inner gsup."""
    strip = (*_DRILL_ONLY, "--log-format")
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            out += args[i:]
            break
        if a in strip:
            i += 2
        elif "=" in a and a.split("=", 1)[0] in strip:
            i += 1
        else:
            out.append(a)
            i += 1
    return out


def run_drill(resolved: Resolved, args: Sequence[str], options: DrillOptions) -> int:
    """Run the drill; print the verdict; 0 for PASS, 1 for FAIL."""
    stop_sig = resolved.budget.first_signal or signal.SIGTERM
    if os.getpid() != 1:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    cmd = [sys.executable, "-m", "gsup", "--log-format", "json", *inner_argv(args)]
    events: list[dict[str, object]] = []
    listening = threading.Event()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    reader = threading.Thread(target=_read_events, args=(proc.stderr, events, listening), daemon=True)
    reader.start()
    counts = _ProbeCount()
    reasons: list[str] = []
    try:
        started = time.monotonic()
        # The inner gsup takes a stop only once it has said something: before, its
        # interpreter is still starting and a SIGTERM would end it unhandled.
        while not listening.wait(0.05) and proc.poll() is None:
            pass
        started = time.monotonic()  # the program runs: --after counts from here
        if not _wait_ready(proc, options, started):
            reasons.append(
                "the program exited before it was ready"
                if proc.poll() is not None
                else f"not ready within {format_duration(READY_TIMEOUT)}"
            )
        sent_at = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(stop_sig)
            prober = None
            if options.probe:
                # The window a load balancer keeps routing to a stopping instance:
                # requests in it must succeed, whether or not gsup has exited.
                window_end = sent_at + max(PROBE_WINDOW, resolved.plan.stop_delay)
                prober = threading.Thread(
                    target=_probe, args=(options.probe, counts, window_end), daemon=True
                )
                prober.start()
            budget_end = resolved.budget.kill_at + resolved.plan.kill_wait + 5.0
            try:
                proc.wait(timeout=budget_end)
            except subprocess.TimeoutExpired:
                reasons.append("gsup did not exit within its own budget")
                proc.kill()
                proc.wait()
            if prober is not None:
                prober.join(timeout=max(0.0, window_end - time.monotonic()) + 5)
                counts.stop.set()
        else:
            proc.wait()
        exited_at = time.monotonic()
        reader.join(timeout=5)
        escaped = _kill_escaped()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = next((e for e in reversed(events) if e.get("event") == "exit"), None)
    return _verdict(
        report,
        events,
        reasons,
        counts,
        escaped,
        stop_sig,
        sent_at - started,
        exited_at - sent_at,
        resolved,
        options,
        proc.returncode,
    )


def _read_events(
    stream: Optional[IO[str]], events: list[dict[str, object]], listening: threading.Event
) -> None:
    """gsup's JSON events into *events*; *listening* is set at the first (its signals are blocked by then)."""
    if stream is None:
        return
    for line in stream:
        try:
            record = json.loads(line)
        except ValueError:
            sys.stderr.write(line)  # not gsup's JSON: an error message, pass it on
            continue
        if isinstance(record, dict):
            events.append(record)
            listening.set()
            if record.get("event") == "error":
                sys.stderr.write(f"gsup: error: {record.get('message')}\n")


def _wait_ready(proc: subprocess.Popen[str], options: DrillOptions, started: float) -> bool:
    if options.ready is None:
        after = DEFAULT_AFTER if options.after is None else options.after
        try:
            proc.wait(timeout=after)
            return False  # exited during the wait
        except subprocess.TimeoutExpired:
            return True
    while time.monotonic() - started < READY_TIMEOUT:
        if proc.poll() is not None:
            return False
        if options.ready.attempt(timeout=0.5)[0]:
            return True
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
    return False


def _probe(url: str, counts: _ProbeCount, window_end: float) -> None:
    while not counts.stop.is_set() and time.monotonic() < window_end:
        counts.sent += 1
        if not http_check(url, timeout=1.0)[0]:
            counts.failed += 1
        counts.stop.wait(0.01)


def _kill_escaped() -> int:
    """Processes reparented to the drill (they escaped gsup): kill and count."""
    import psutil

    from gsup import procs

    escaped = [p for p in psutil.Process().children(recursive=True)]
    procs.kill(pids=[p.pid for p in escaped])
    psutil.wait_procs(escaped, timeout=2)
    return len(escaped)


def _verdict(
    report: Optional[dict[str, object]],
    events: list[dict[str, object]],
    reasons: list[str],
    counts: _ProbeCount,
    escaped: int,
    stop_sig: signal.Signals,
    ready_after: float,
    time_to_exit: float,
    resolved: Resolved,
    options: DrillOptions,
    gsup_status: Optional[int],
) -> int:
    grace = resolved.plan.grace
    lines = [f"gsup drill: {resolved.plan.program.brief}"]
    lines.append(
        f"  platform        {resolved.budget.platform.value} (stop signal {signal_name(stop_sig)}, "
        f"grace {format_duration(grace)})"
    )
    lines.append(
        f"  stop sent       {ready_after:.3f}s after start"
        + (f" (ready: {options.ready})" if options.ready else "")
    )
    if report is None:
        reasons.append(f"gsup gave no report (exit status {gsup_status})")
    else:
        code = report.get("exit_code")
        forced = bool(report.get("force_killed"))
        # Processes that outlived the child: those gsup had to signal after the
        # child's exit, and those it killed then (in a force-kill of the whole
        # job the group goes with the child: that counts once, as the force-kill).
        # Each counted once: a leftover that got the stop signal and then SIGKILL is one process.
        left = int(str(report.get("leftovers_signalled") or 0))
        if not forced:
            left = max(left, int(str(report.get("leftovers_killed") or 0)))
        # From the stop signal to the child's exit, as gsup measured it (not gsup's own exit,
        # nor the probe's window); the grace starts after the drain.
        stop_seconds = report.get("stop_seconds")
        if isinstance(stop_seconds, (int, float)):
            time_to_exit = float(stop_seconds)
        drain = report.get("drain_seconds")
        drained = float(drain) if isinstance(drain, (int, float)) else 0.0
        in_grace = round(time_to_exit - drained, 3)
        beat = not forced and in_grace <= grace
        if forced:
            how = "grace ran out"
        else:
            how = "beat the grace" if beat else f"after the {format_duration(grace)} grace ended"
        split = f"drain {drained:.3f}s + {in_grace:.3f}s of the grace; " if drained > 0 else ""
        lines.append(f"  time to exit    {time_to_exit:.3f}s ({split}{how})")
        if not forced and not beat:
            reasons.append(f"it exited {in_grace:.3f}s after {signal_name(stop_sig)}, past the grace")
        lines.append(f"  exit code       {code} ({report.get('status')})")
        lines.append(f"  force-killed    {'yes' if forced else 'no'}")
        lines.append(
            f"  processes left  {left + escaped}"
            + (f" ({left} had to be stopped by gsup after the child exited)" if left else "")
            + (f" ({escaped} escaped gsup)" if escaped else "")
        )
        if forced:
            reasons.append(
                f"it did not exit within the {format_duration(grace)} grace after "
                f"{signal_name(stop_sig)} and was force-killed"
            )
        elif code != 0:
            reasons.append(f"it exited with status {code} ({report.get('status')})")
        if left:
            reasons.append(f"{left} process(es) outlived the child (left behind)")
    if escaped:
        reasons.append(f"{escaped} process(es) escaped supervision")
    if options.probe:
        lines.append(f"  probe           {counts.failed} of {counts.sent} requests failed ({options.probe})")
        if counts.failed:
            reasons.append(f"{counts.failed} of {counts.sent} probe requests failed during the stop")
    verdict = "FAIL" if reasons else "PASS"
    lines.append(f"  verdict         {verdict}")
    lines += [f"    - {r}" for r in reasons]
    print("\n".join(lines), flush=True)
    return 1 if reasons else 0
