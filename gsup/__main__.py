"""``python -m gsup``: the same as the ``gsup`` command."""

from gsup.cli import main

main()
