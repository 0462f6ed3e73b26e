"""The terminal rendering: a live grace countdown and a compact report.

Owns: everything gsup shows with rich, on a TTY only. The only module that
imports rich (and it is imported only when stderr is a terminal). Child
output never passes through here.
"""

from __future__ import annotations

import sys
from typing import Optional

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gsup.log import VERBOSE_KINDS, report_rows
from gsup.model import Outcome

_REDRAW = 0.1  # seconds between countdown frames; only while a stop is under way


class TerminalSink:
    """Events as dim lines, the countdown redrawn in place, the report as a table."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self.console = Console(file=sys.stderr, highlight=False, soft_wrap=True)
        self.quiet, self.verbose = quiet, verbose
        self._live_line = False

    def _clear_line(self) -> None:
        if self._live_line:
            self.console.file.write("\r\x1b[2K")
            self._live_line = False

    def event(self, kind: str, message: str, **fields: object) -> None:
        if self.quiet or (kind in VERBOSE_KINDS and not self.verbose):
            return
        self._clear_line()
        self.console.print(Text(f"gsup: {message}", style="dim"))

    def countdown(self, remaining: float, total: float, label: str) -> Optional[float]:
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
        self._clear_line()
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        style = "green" if outcome.exit_code == 0 else "red" if outcome.force_killed else "yellow"
        for label, text in report_rows(outcome):
            table.add_row(label, Text(text, style=style if label == "exit" else ""))
        self.console.print(Text("gsup report", style="bold"), table)

    def error(self, message: str) -> None:
        self._clear_line()
        self.console.print(Text(f"gsup: error: {message}", style="bold red"))
