"""gsup: a process supervisor for containers.

The library entry point is ``gsup.supervisor.supervise(plan, sink, clock)``;
``gsup.cli`` is the command line over it.
"""

__version__ = "0.1.0"
