"""``gsup check``: the resolved settings, where each came from, and the timeline.

Owns: what ``check`` prints. Plain text when stdout is not a terminal; on a
terminal the timeline is drawn by ``ui``. Imports ``gsup.config`` and
``gsup.budget``; rich only through ``ui``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from gsup import budget
from gsup.config import Resolved, Source, env_name, option_flag
from gsup.model import ProgramSpec
from gsup.units import format_duration, parse_duration

_DURATIONS = ("grace", "stop_delay", "platform_timeout")


def settings_rows(resolved: Resolved, config_path: str | None) -> list[tuple[str, str, str]]:
    """(option, value, origin) for every setting."""
    rows = []
    for name, s in resolved.settings.items():
        value = s.value
        if name in _DURATIONS and isinstance(value, (str, int)) and not isinstance(value, bool):
            value = parse_duration(str(value))  # shown like the computed ones
        if isinstance(value, float):
            shown = format_duration(value)
        elif isinstance(value, (list, tuple)):
            shown = " ".join(str(v) for v in value) or "-"
        elif value is None:
            shown = "-"
        else:
            shown = str(value)
        origin = {
            Source.FLAG: option_flag(name),
            Source.ENV: env_name(name),
            Source.FILE: f"{config_path} [gsup]",
            Source.PLATFORM: "platform default",
            Source.DEFAULT: "default",
        }[s.source]
        if name == "platform" and s.source is Source.PLATFORM:
            _, evidence = budget.detection(os.environ, os.path.exists)
            origin = f"detected: {evidence}"
        rows.append((option_flag(name), shown, origin))
    return rows


def stop_stages(programs: Sequence[ProgramSpec]) -> list[list[str]]:
    """The stop plan: stages signalled in order; the programs of a stage in parallel.

    A program is signalled once every program that depends on it has exited,
    so the first stage is the programs nothing depends on.
    """
    dependents = {p.name: {q.name for q in programs if p.name in q.depends_on} for p in programs}
    stages: list[list[str]] = []
    placed: set[str] = set()
    while len(placed) < len(programs):
        stage = [p.name for p in programs if p.name not in placed and dependents[p.name] <= placed]
        stages.append(stage)
        placed.update(stage)
    return stages


def program_lines(resolved: Resolved) -> list[str]:
    """The command, or the start order and stop plan of many programs."""
    plan = resolved.plan
    if not plan.programs:
        prog = plan.program
        return [f"command: {prog.display if prog.argv else '(none given)'}"]
    lines = ["programs (start order):"]
    for i, p in enumerate(plan.programs, 1):
        extra = []
        if p.depends_on:
            extra.append("after " + ", ".join(p.depends_on))
        if p.oneshot:
            extra.append("oneshot: must exit 0")
        if p.ready:
            extra.append(
                f"ready when {p.ready.kind}={p.ready.target} (within {format_duration(p.ready.timeout)})"
            )
        if p.restart.policy.value != "never":
            extra.append(f"restart {p.restart.policy.value} (max {p.restart.max_restarts})")
        lines.append(f"  {i}. {p.name}: {p.display}" + (f"  [{'; '.join(extra)}]" if extra else ""))
    lines.append("stop plan (each stage after the previous one exited; SIGKILL for all at the grace end):")
    for i, stage in enumerate(stop_stages(plan.programs), 1):
        parts = []
        for name in stage:
            spec = next(p for p in plan.programs if p.name == name)
            sig = spec.stop_signal.name if spec.stop_signal else "the stop signal"
            g = format_duration(spec.grace) if spec.grace is not None else "the grace"
            parts.append(f"{name} ({sig}, within {g})")
        lines.append(f"  {i}. " + ", ".join(parts) + (" in parallel" if len(stage) > 1 else ""))
    return lines


def print_check(resolved: Resolved, *, config_path: str | None) -> int:
    """Print the check; the configuration is valid if we got here (exit 0)."""
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        from gsup.ui import render_check

        render_check(resolved, settings_rows(resolved, config_path))
        return 0
    out = ["gsup check: configuration is valid", "", "settings:"]
    rows = settings_rows(resolved, config_path)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    out += [f"  {o:<{w0}}  {v:<{w1}}  ({origin})" for o, v, origin in rows]
    out += ["", *program_lines(resolved), "", "shutdown timeline:"]
    out += ["  " + line for line in budget.timeline_text(resolved.budget).splitlines()]
    print("\n".join(out))
    return 0
