"""The ``gsup`` console script: every signal blocked first, then the command line.

Owns: the first thing gsup's process does. As PID 1 of a container a signal
for which gsup has no handler yet is discarded by the kernel, so a
``docker stop`` that came while typer was still being imported would be
lost and the child would run to its end. Blocked, it stays pending (also
for a namespace's init) until the loop reads it, across the handover to the
lean process too. ``cli.main`` unblocks them again for every mode that does
not supervise (``check``, ``drill``, ``--help``).

Imports: ``gsup.signals`` (the standard library's ``signal`` and little
else) before anything else; ``gsup.cli`` after.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    """Block, then run the command line on *argv* (default: ``sys.argv[1:]``).

    Never returns: the command line ends the process.
    """
    from gsup.signals import block_signals

    before = block_signals()
    from gsup.cli import main as cli_main

    cli_main(argv, mask=before)
