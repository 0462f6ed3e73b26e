"""A stand-in for typer that holds gsup in the middle of its imports (tests only).

With this directory first on PYTHONPATH, gsup's ``import typer`` lands here:
it writes a line to the FIFO ``$SLOW_IMPORT_AT`` (the test now knows gsup
is importing), waits until the test writes to the FIFO ``$SLOW_IMPORT_GO``,
then puts the real typer in its place and gsup carries on. Nothing else of
gsup changes. Standard library only.
"""

import importlib
import os
import sys

_here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

with open(os.environ["SLOW_IMPORT_AT"], "w") as at:
    at.write(f"importing pid={os.getpid()}\n")
with open(os.environ["SLOW_IMPORT_GO"]) as go:
    go.read()

sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
del sys.modules["typer"]
sys.modules["typer"] = importlib.import_module("typer")  # what `import typer` gives gsup now
