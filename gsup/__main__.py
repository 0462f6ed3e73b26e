"""``python -m gsup``: the same as the ``gsup`` command."""

from gsup.entry import main

main()
