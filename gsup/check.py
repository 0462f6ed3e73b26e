"""``gsup check``: the resolved settings, where each came from, and the timeline.

Owns: how ``check`` prints: plain text when stdout is not a terminal; on a
terminal ``ui`` draws it with rich. What it says comes from ``report`` and
``budget``. Imports ``gsup.budget``, ``gsup.config`` and ``gsup.report``;
rich only through ``ui``.
"""

from __future__ import annotations

import os
import sys

from gsup import budget
from gsup.config import Resolved
from gsup.report import program_lines, settings_rows


def print_check(resolved: Resolved) -> int:
    """Print the check; the configuration is valid if we got here (exit 0)."""
    rows = settings_rows(resolved)
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        from gsup.ui import render_check

        render_check(resolved, rows)
        return 0
    out = ["gsup check: configuration is valid", "", "settings:"]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    out += [f"  {o:<{w0}}  {v:<{w1}}  ({origin})" for o, v, origin in rows]
    out += ["", *program_lines(resolved), "", "shutdown timeline:"]
    out += ["  " + line for line in budget.timeline_text(resolved.budget, resolved.plan.health).splitlines()]
    print("\n".join(out))
    return 0
