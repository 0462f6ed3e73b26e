"""``gsup check``: the resolved settings, where each came from, and the timeline.

Owns: what ``check`` prints. Plain text when stdout is not a terminal; on a
terminal the timeline is drawn by ``ui``. Imports ``gsup.config`` and
``gsup.budget``; rich only through ``ui``.
"""

from __future__ import annotations

import os
import sys

from gsup import budget
from gsup.config import Resolved, Source, env_name, option_flag
from gsup.units import format_duration


def settings_rows(resolved: Resolved, config_path: str | None) -> list[tuple[str, str, str]]:
    """(option, value, origin) for every setting."""
    rows = []
    for name, s in resolved.settings.items():
        value = s.value
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
    prog = resolved.plan.program
    out += [
        "",
        f"command: {prog.display if prog.argv else '(none given)'}",
        "",
        "shutdown timeline:",
    ]
    out += ["  " + line for line in budget.timeline_text(resolved.budget).splitlines()]
    print("\n".join(out))
    return 0
