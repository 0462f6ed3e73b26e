"""What gsup tells a person: the rows of the final report and of ``gsup check``.

Owns: the content of the report (as data for JSON, as labelled rows for
text) and of ``check`` (the settings with their origins, the programs in
start order with their conditions, the stop plan). The renderers only lay
it out: ``log`` as plain lines or JSON, ``ui`` with rich. Pure: no I/O;
imports the standard library, ``gsup.model`` and ``gsup.units``, and
``gsup.config`` only for ``check``'s rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gsup.model import Outcome, ProgramOutcome, ProgramSpec
from gsup.units import format_duration, signal_name

if TYPE_CHECKING:
    from gsup.config import Resolved

#: Events shown only with --verbose.
VERBOSE_KINDS = frozenset({"orphan_reaped"})


# -- the final report -------------------------------------------------------------


def report_fields(o: Outcome) -> dict[str, object]:
    """The final report as data (the JSON ``exit`` event)."""
    return {
        "exit_code": o.exit_code,
        "cause": o.cause.value,
        "program": o.program.name,
        "command": o.program.display,
        "pid": o.pid,
        "status": o.status.describe() if o.status else None,
        "stop_signal_received": signal_name(o.stop_signal_received) if o.stop_signal_received else None,
        "stop_signal_sender": o.stop_signal_sender,
        "stop_signal_sent": signal_name(o.stop_signal_sent) if o.stop_signal_sent else None,
        "stop_seconds": None if o.stop_seconds is None else round(o.stop_seconds, 6),
        "drain_seconds": None if o.drain_seconds is None else round(o.drain_seconds, 6),
        "pre_stops": [{"program": who or None, "ended": how} for who, how in o.pre_stops],
        "ran_seconds": round(o.ran_seconds, 6),
        "grace": o.grace,
        "force_killed": o.force_killed,
        "escalation": o.escalation,
        "leftovers_signalled": o.leftovers_signalled,
        "leftovers_killed": o.leftovers_killed,
        "leftovers_surviving": o.leftovers_surviving,
        "orphans_reaped": o.orphans_reaped,
        "error": o.error,
        "reason": o.reason,
        "programs": [
            {
                "name": p.name,
                "pid": p.pid,
                "status": p.status.describe() if p.status else None,
                "code": p.status.shell_code if p.status else None,
                "exit_code": p.exit_code,
                "stop_signal": signal_name(p.stop_signal) if p.stop_signal else None,
                "stop_seconds": None if p.stop_seconds is None else round(p.stop_seconds, 6),
                "force_killed": p.force_killed,
                "escalation": p.escalation,
                "restarts": p.restarts,
                "failure": p.failure,
                "started": p.started,
                "leftovers_signalled": p.leftovers_signalled,
                "leftovers_killed": p.leftovers_killed,
            }
            for p in o.programs
        ],
    }


def report_rows(o: Outcome) -> list[tuple[str, str]]:
    """The final report as (label, text) rows, for people."""
    rows: list[tuple[str, str]] = []
    if o.error:
        rows.append(("failed", o.error))
    if o.stop_signal_received:
        sender = f" from pid {o.stop_signal_sender}" if o.stop_signal_sender else ""
        rows.append(("stopped by", f"{signal_name(o.stop_signal_received)}{sender}"))
    elif o.programs and o.reason:
        rows.append(("stopped by", o.reason))
    elif o.status is not None:
        rows.append(("stopped by", "the child's own exit"))
    if o.programs:
        rows += [(p.name, _program_text(p)) for p in o.programs]
    elif o.status is not None:
        rows.append(("child", f"pid {o.pid} ({o.program.brief}) {o.status.describe()}"))
    if o.stop_seconds is not None:
        # The drain and the grace apart: the grace starts when the drain ends.
        drain = o.drain_seconds or 0.0
        took = f"took {o.stop_seconds - drain:.3f}s of a {format_duration(o.grace)} grace"
        waited = "pre-stop and drain" if o.pre_stops else "drain"
        then = f"{waited} {drain:.3f}s, then " if drain > 0 else ""
        if drain > 0 and drain >= o.stop_seconds and not o.force_killed:
            what = "the child" if not o.programs else "every program"
            rows.append(
                ("stop", f"{what} exited during the drain, {o.stop_seconds:.3f}s after the stop request")
            )
        elif o.programs:
            rows.append(("stop", then + took))
        else:
            sent = f"{signal_name(o.stop_signal_sent)} sent, " if o.stop_signal_sent else ""
            if o.force_killed:
                verdict = f"force-killed: SIGKILL sent ({o.escalation or 'grace ran out'})"
            else:
                verdict = "exited within the grace"
            rows.append(("stop", f"{then}{sent}{took}; {verdict}"))
    for who, how in o.pre_stops:
        rows.append((f"{who}:pre-stop" if who else "pre-stop", how))
    left = []
    if o.leftovers_signalled:
        left.append(f"{o.leftovers_signalled} signalled")
    if o.leftovers_killed:
        left.append(f"{o.leftovers_killed} killed")
    if o.leftovers_surviving:
        left.append(f"{o.leftovers_surviving} survived SIGKILL")
    rows.append(("leftovers", ", ".join(left) if left else "none"))
    if o.orphans_reaped:
        rows.append(("orphans", f"{o.orphans_reaped} reaped"))
    rows.append(("exit", str(o.exit_code)))
    return rows


def _program_text(p: ProgramOutcome) -> str:
    if not p.started:
        return "never started" + (f": {p.failure}" if p.failure else " (stopped before its turn)")
    text = f"pid {p.pid} {p.status.describe() if p.status else 'still running'}"
    if p.stop_seconds is not None and p.stop_signal:
        text += f", {p.stop_seconds:.3f}s after {signal_name(p.stop_signal)}"
    if p.status is not None and p.exit_code == 0 and p.status.shell_code != 0 and not p.force_killed:
        text += " (counts as success: gsup stopped it)"
    if p.force_killed:
        text += f"; force-killed: SIGKILL ({p.escalation or 'grace ran out'})"
    if p.leftovers_signalled or p.leftovers_killed:
        text += f"; leftovers: {p.leftovers_signalled} signalled, {p.leftovers_killed} killed"
    if p.restarts:
        text += f"; restarted {p.restarts} time(s)"
    if p.failure:
        text += f"; FAILED: {p.failure}"
    return text


# -- gsup check ----------------------------------------------------------------------

_DURATIONS = ("grace", "stop_delay", "platform_timeout", "pre_stop_timeout")
_SIGNALS = ("stop_signal", "parent_death_signal", "rewrite")


def _signals_shown(name: str, value: object) -> str:
    """A signal option's value as the plan holds it (already validated): ``SIGTERM``, ``SIGTERM:SIGQUIT``."""
    from gsup.units import parse_signal

    if name != "rewrite":
        return parse_signal(str(value)).name
    pairs = value.split() if isinstance(value, str) else value
    if not isinstance(pairs, (list, tuple)):
        pairs = [pairs]
    shown = []
    for pair in pairs:
        src, _, dst = str(pair).partition(":")
        shown.append(f"{parse_signal(src).name}:{parse_signal(dst).name}")
    return " ".join(shown) or "-"


def settings_rows(resolved: Resolved) -> list[tuple[str, str, str]]:
    """(option, value, origin) for every setting."""
    from gsup.config import Source, env_name, option_flag
    from gsup.units import parse_duration

    rows = []
    for name, s in resolved.settings.items():
        value = s.value
        if name == "stop_delay" and resolved.budget.auto_delay:
            value = f"auto (at most {format_duration(resolved.budget.stop_delay)})"
        elif name in _DURATIONS and isinstance(value, (str, int)) and not isinstance(value, bool):
            value = parse_duration(str(value))  # shown like the computed ones
        elif name in _SIGNALS and value is not None:
            value = _signals_shown(name, value)  # resolved: SIGTERM, not the raw "Term"
        if name == "platform_timeout" and value is None:
            # The deadline in force: the platform's own, or none at all.
            deadline = resolved.budget.deadline
            value = "no deadline" if deadline is None else format_duration(deadline)
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
            Source.FILE: f"{resolved.config_path} [gsup]",
            Source.PLATFORM: "platform default",
            Source.DEFAULT: "default",
        }[s.source]
        if name == "platform" and s.source is Source.PLATFORM:
            origin = f"detected: {resolved.evidence}"
        if name == "platform_timeout" and s.value is None and resolved.budget.deadline is not None:
            origin = "platform default"
        rows.append((option_flag(name), shown, origin))
    return rows


def stop_stages(programs: Sequence[ProgramSpec]) -> list[list[str]]:
    """The stop plan: stages signalled in order; the programs of a stage in parallel.

    A program is signalled once every program that depends on it has exited,
    so the first stage is the programs nothing depends on.
    """
    dependents = {p.name: {q.name for q in programs if p.name in q.needs} for p in programs}
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
    if plan.single:
        prog = plan.program
        return [f"command: {prog.brief if prog.argv else '(none given)'}"]
    lines = ["programs (start order):"]
    for i, p in enumerate(plan.programs, 1):
        extra = []
        if p.depends_on:
            oneshot = {q.name: q.oneshot for q in plan.programs}
            conditions = [f"{d.name} {d.resolved(oneshot[d.name]).value}" for d in p.depends_on]
            extra.append("after " + ", ".join(conditions))
        if not p.required:
            extra.append("not required")
        if p.liveness:
            lv = p.liveness
            extra.append(
                f"alive while {lv.kind}={lv.target} answers (every {format_duration(lv.interval)}, "
                f"restart after {lv.failures} failures)"
            )
        if p.oneshot:
            extra.append("oneshot: must exit 0")
        if p.ready:
            extra.append(
                f"ready when {p.ready.kind}={p.ready.target}"
                + ("" if p.ready.timeout is None else f" (within {format_duration(p.ready.timeout)})")
            )
        if p.restart.policy.value != "never":
            extra.append(
                f"restart {p.restart.policy.value} (up to {p.restart.max_restarts} failed runs in a row; "
                f"a run of {format_duration(p.restart.min_uptime)} forgives)"
            )
        if p.user:
            extra.append(f"as {p.user}")
        if p.success_codes:
            extra.append("success after a stop: " + ", ".join(str(c) for c in sorted(p.success_codes)))
        lines.append(f"  {i}. {p.name}: {p.brief}" + (f"  [{'; '.join(extra)}]" if extra else ""))
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
