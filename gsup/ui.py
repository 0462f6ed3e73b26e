"""The terminal rendering: a live grace countdown, a compact report, the check.

Owns: everything gsup shows with rich, on a TTY only. The only module that
imports rich (and it is imported only when stderr is a terminal). Child
output never passes through here. What it shows comes from ``report``.

The countdown lives on the terminal's bottom row, outside the region the
text scrolls in (DECSTBM, as apt draws its progress bar): the child writes
to the same terminal whenever it likes, gsup cannot know when, and a line
redrawn in place at the cursor would end up in the middle of the child's
next line. Each frame is one ``write`` (the tty takes it whole) that saves
the cursor, draws the bottom row and puts the cursor back where the child
left it. The report restores the full scroll region and clears that row.
"""

from __future__ import annotations

import os
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
        self._rows = 0  # the terminal's height when the scroll region was set; 0: no region
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

    def _write(self, sequence: str) -> bool:
        """Write *sequence* in one write(2), after what the stream holds; False if the terminal is gone."""
        try:
            self._stream.flush()
            fd = self._stream.fileno()  # type: ignore[attr-defined]
            os.write(fd, sequence.encode())
        except (OSError, ValueError, AttributeError):
            return False
        return True

    def _clear_line(self) -> None:
        """The countdown ends: the whole screen scrolls again, the bottom row is blank."""
        if self._rows:
            self._write(f"\x1b7\x1b[r\x1b[{self._rows};1H\x1b[2K\x1b8")
            self._rows = 0

    def event(self, kind: str, message: str, **fields: object) -> None:
        if self.quiet or (kind in VERBOSE_KINDS and not self.verbose):
            return
        from rich.text import Text

        self.console.print(
            Text(f"gsup: {message}", style="dim")
        )  # where the text scrolls, not the countdown's row

    def countdown(self, remaining: float, total: float, label: str, hint: str = "") -> Optional[float]:
        try:
            columns, rows = os.get_terminal_size(self._stream.fileno())  # type: ignore[attr-defined]
        except (OSError, ValueError, AttributeError):
            return None
        if rows < 4 or columns < 20:
            return None  # no room for a row of its own
        width = 20
        filled = 0 if total <= 0 else round(width * remaining / total)
        bar = "█" * filled + "░" * (width - filled)
        text = f"gsup: {label} {remaining:5.1f}s {bar}" + (f"  ({hint})" if hint else "")
        text = text[: columns - 1]
        head = len("gsup: ")
        line = f"\x1b[2m{text[:head]}\x1b[0;1;33m{text[head:]}\x1b[0m"
        frame = ""
        if rows != self._rows:
            # Make room (IND scrolls only if the cursor is on the last row; CUU goes back),
            # then keep the text above the bottom row. DECSTBM homes the cursor: save, restore.
            frame += f"\x1bD\x1b[A\x1b7\x1b[1;{rows - 1}r\x1b8"
            self._rows = rows
        frame += f"\x1b7\x1b[{rows};1H\x1b[2K{line}\x1b8"
        if not self._write(frame):
            self._rows = 0
            return None
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

    pre, drain, kill = col(b.pre_stop), col(b.pre_stop + b.stop_delay), col(b.kill_at)
    bar = Text()
    bar.append("▓" * pre, style="magenta")
    bar.append("▒" * (drain - pre), style="blue")
    bar.append("█" * (kill - drain), style="yellow")
    bar.append("░" * (width - kill), style="green" if b.deadline is not None else "dim")
    console.print(Text("shutdown timeline", style="bold"))
    console.print(Text("  0s ").append(bar).append(f" {format_duration(end)}"))
    legend = Text("  ")
    if b.pre_stop:
        legend.append("▓ pre-stop ", style="magenta").append(f"{format_duration(b.pre_stop)}   ")
    if b.stop_delay:
        legend.append("▒ drain ", style="blue").append(f"{format_duration(b.stop_delay)}   ")
    legend.append("█ grace ", style="yellow").append(f"{format_duration(b.grace)}   ")
    if b.deadline is not None:
        legend.append("░ margin ", style="green").append(f"{format_duration(b.deadline - b.kill_at)}")
    console.print(legend)
    for t, what in budget_mod.timeline(b, resolved.plan.health):
        console.print(Text.assemble(("  t=", "dim"), (f"{format_duration(t):>6}", "bold"), f"  {what}"))
