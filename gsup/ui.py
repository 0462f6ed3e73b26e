"""The terminal rendering: a live grace countdown, a compact report, the check.

Owns: everything gsup shows with rich, on a TTY only. The only module that
imports rich (and it is imported only when stderr is a terminal). Child
output never passes through here. What it shows comes from ``report``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional

from gsup.model import Outcome, TextStream
from gsup.report import VERBOSE_KINDS, program_lines, report_rows
from gsup.units import format_duration

if TYPE_CHECKING:
    from rich.console import Console

    from gsup.config import Resolved

_REDRAW = 0.1  # seconds between countdown frames; only while a stop is under way


class TerminalSink:
    """Events as dim lines, the countdown redrawn in place, the report as a table."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet, self.verbose = quiet, verbose
        self._live_line = False
        self._console: Optional[Console] = None
        self._stream: TextStream = sys.stderr

    def use_stream(self, stream: TextStream) -> None:
        self._stream = stream
        if self._console is not None:
            self._console.file = stream  # type: ignore[assignment]  # write/flush is all rich uses

    @property
    def console(self) -> Console:
        # rich is imported here, at the first message: after the child started.
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self._stream, highlight=False, soft_wrap=True)  # type: ignore[arg-type]
        return self._console

    def _clear_line(self) -> None:
        if self._live_line and self._console is not None:
            self._console.file.write("\r\x1b[2K")
            self._live_line = False

    def event(self, kind: str, message: str, **fields: object) -> None:
        if self.quiet or (kind in VERBOSE_KINDS and not self.verbose):
            return
        from rich.text import Text

        self._clear_line()
        self.console.print(Text(f"gsup: {message}", style="dim"))

    def countdown(self, remaining: float, total: float, label: str) -> Optional[float]:
        from rich.text import Text

        width = 20
        filled = 0 if total <= 0 else round(width * remaining / total)
        bar = "█" * filled + "░" * (width - filled)
        line = Text.assemble(
            ("gsup: ", "dim"),
            (f"{label} {remaining:5.1f}s ", "bold yellow"),
            (bar, "yellow"),
            ("  (Ctrl+C again to force)", "dim"),
        )
        try:
            self.console.file.write("\r\x1b[2K")
            self.console.print(line, end="")
            self.console.file.flush()
        except OSError:
            return None
        self._live_line = True
        return _REDRAW

    def report(self, outcome: Outcome) -> None:
        from rich.table import Table
        from rich.text import Text

        self._clear_line()
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        style = "green" if outcome.exit_code == 0 else "red" if outcome.force_killed else "yellow"
        for label, text in report_rows(outcome):
            table.add_row(label, Text(text, style=style if label == "exit" else ""))
        self.console.print(Text("gsup report", style="bold"), table)

    def error(self, message: str) -> None:
        from rich.text import Text

        self._clear_line()
        self.console.print(Text(f"gsup: error: {message}", style="bold red"))


def render_check(resolved: Resolved, rows: list[tuple[str, str, str]]) -> None:
    """``gsup check`` on a terminal: a settings table and the timeline as a bar."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from gsup import budget as budget_mod

    console = Console(highlight=False)
    table = Table(title="gsup check: configuration is valid", title_justify="left", box=None)
    table.add_column("option", style="bold")
    table.add_column("value")
    table.add_column("from", style="dim")
    for option, value, origin in rows:
        table.add_row(option, value, origin)
    console.print(table)
    console.print(Text("\n" + "\n".join(program_lines(resolved)) + "\n"))

    b = resolved.budget
    end = b.deadline if b.deadline is not None else b.kill_at * 1.1 or 1.0
    width = max(20, min(72, console.width - 10))

    def col(t: float) -> int:
        return min(width, round(width * t / end)) if end > 0 else 0

    drain, kill = col(b.stop_delay), col(b.kill_at)
    bar = Text()
    bar.append("▒" * drain, style="blue")
    bar.append("█" * (kill - drain), style="yellow")
    bar.append("░" * (width - kill), style="green" if b.deadline is not None else "dim")
    console.print(Text("shutdown timeline", style="bold"))
    console.print(Text("  0s ").append(bar).append(f" {format_duration(end)}"))
    legend = Text("  ")
    if b.stop_delay:
        legend.append("▒ drain ", style="blue").append(f"{format_duration(b.stop_delay)}   ")
    legend.append("█ grace ", style="yellow").append(f"{format_duration(b.grace)}   ")
    if b.deadline is not None:
        legend.append("░ margin ", style="green").append(f"{format_duration(b.deadline - b.kill_at)}")
    console.print(legend)
    for t, what in budget_mod.timeline(b):
        console.print(Text.assemble(("  t=", "dim"), (f"{format_duration(t):>6}", "bold"), f"  {what}"))
