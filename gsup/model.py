"""The nouns of gsup: plans, specs, child statuses and outcomes.

Owns: the immutable records and enums every other module passes around, and
the ``Sink`` interface through which the core reports. Pure: imports only the
standard library; no I/O.

The records are ``NamedTuple``s, not frozen dataclasses: just as immutable,
and five times cheaper to define (0.16 ms a class against 0.86 ms on
CPython 3.11, which compiles each dataclass's methods from source at import).
gsup defines about twenty records before its child starts, and a container
waits for that start. The machine's mutable state (``lifecycle.Program``) is
a plain class with ``__slots__`` for the same reason.
"""

from __future__ import annotations

import enum
import os
import signal
from collections.abc import Mapping
from typing import FrozenSet, NamedTuple, Optional, Protocol, Tuple

#: The signals that ask gsup to stop (SPEC §4: several platforms send INT first).
STOP_SIGNALS: FrozenSet[int] = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


#: The longest command line a text message shows whole (a 1 MB argv is not a log line).
BRIEF = 200


class ForwardTo(str, enum.Enum):
    """Where forwarded signals go."""

    GROUP = "group"
    CHILD = "child"


class Restart(str, enum.Enum):
    """When a program that exited is started again."""

    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


class Condition(str, enum.Enum):
    """What a program waits for before it starts, of each of its dependencies."""

    STARTED = "started"  # the process exists (it was started)
    READY = "ready"  # its readiness check passed
    COMPLETED = "completed"  # it exited, with any status
    SUCCEEDED = "succeeded"  # it exited 0, or with one of its success codes


class Dependency(NamedTuple):
    """One entry of ``depends_on``: a program's name and what to wait for."""

    name: str
    #: None: what the array form means, ``succeeded`` for a oneshot, else ``ready``.
    condition: Optional[Condition] = None

    def resolved(self, oneshot: bool) -> Condition:
        """The condition, given whether the dependency is a oneshot."""
        if self.condition is not None:
            return self.condition
        return Condition.SUCCEEDED if oneshot else Condition.READY


class ReadySpec(NamedTuple):
    """How to tell that a program is ready: one probe kind and its timing."""

    kind: str  # tcp | http | file | command | log
    target: str  # HOST:PORT, URL, PATH or a regex; for command, the display form
    argv: Tuple[bytes, ...] = ()  # for command
    timeout: Optional[float] = 30.0  # None: probed until ready, never a failure (a single command)
    interval: float = 0.25


class LivenessSpec(NamedTuple):
    """How to tell that a ready program still works: restart it after *failures* in a row."""

    kind: str  # tcp | http | command
    target: str
    argv: Tuple[bytes, ...] = ()  # for command
    interval: float = 10.0
    timeout: float = 2.0  # of one attempt
    failures: int = 3


class RestartSpec(NamedTuple):
    policy: Restart = Restart.NEVER
    #: How many failed runs in a row are restarted; the next one gives up.
    max_restarts: int = 5
    backoff: float = 0.5  # the first delay; doubled after each failed run in a row
    backoff_max: float = 30.0
    #: A run at least this long forgives: the count of failed runs and the backoff start again.
    min_uptime: float = 10.0


class ProgramSpec(NamedTuple):
    """One program to run: its argv (bytes, passed byte-exact) and how.

    Every global option that concerns a program (``--user``,
    ``--stop-signal``, ``--success-code``) is folded into each program's spec
    by ``config``, so the core reads one place: the spec.
    """

    argv: Tuple[bytes, ...]
    name: str = "main"
    #: Variables set over gsup's own environment; None and {} both mean
    #: exactly gsup's environment.
    env: Optional[Mapping[bytes, bytes]] = None
    cwd: Optional[str] = None
    user: Optional[str] = None
    #: The signal it gets at its turn of a stop; None: the one gsup received
    #: (after ``--rewrite``), or TERM when gsup stops for another reason.
    stop_signal: Optional[signal.Signals] = None
    #: Exit statuses reported as 0 when gsup stopped the program.
    success_codes: FrozenSet[int] = frozenset()
    grace: Optional[float] = None  # None: the whole grace of the plan
    depends_on: Tuple[Dependency, ...] = ()
    oneshot: bool = False
    ready: Optional[ReadySpec] = None
    liveness: Optional[LivenessSpec] = None
    restart: RestartSpec = RestartSpec()
    #: False: its end (after its restarts) does not stop the others, nor fail gsup.
    required: bool = True
    #: The label before each of its output lines: "" for none (its lines still
    #: come whole, through a pipe); None: its stdio is gsup's (a single command).
    prefix: Optional[str] = ""
    timestamps: bool = False
    #: Run at the stop request, before any stop signal (``pre_stop = [...]``).
    pre_stop: Tuple[bytes, ...] = ()

    @property
    def display(self) -> str:
        """The whole command line as text (for JSON fields)."""
        return " ".join(os.fsdecode(a) for a in self.argv)

    @property
    def brief(self) -> str:
        """The command line for a message meant to be read: cut past ``BRIEF`` characters."""
        text = self.display
        if len(text) <= BRIEF:
            return text
        size = sum(len(a) + 1 for a in self.argv) - 1
        return f"{text[: BRIEF - 40]}... ({len(self.argv)} arguments, {size} bytes)"

    @property
    def needs(self) -> Tuple[str, ...]:
        """The names of the programs it depends on."""
        return tuple(d.name for d in self.depends_on)


class Plan(NamedTuple):
    """Everything the supervisor needs, resolved and validated.

    One program or many: ``gsup -- CMD`` is a plan of one program with
    ``single`` set (its stdio is gsup's, its exit status is gsup's, at a
    terminal it shares gsup's foreground group); a TOML file is a plan of
    many, in start order.
    """

    programs: Tuple[ProgramSpec, ...]
    single: bool = False
    grace: float = 10.0
    stop_delay: float = 0.0
    rewrite: Tuple[Tuple[signal.Signals, signal.Signals], ...] = ()
    forward_to: ForwardTo = ForwardTo.GROUP
    success_on_stop: bool = False
    parent_death_signal: Optional[signal.Signals] = None
    #: The programs' output lines as JSON objects (with ``--log-format json``).
    json_lines: bool = False
    #: Where the health endpoint listens (``--health``), None: no endpoint.
    health: Optional[str] = None
    #: ``--stop-delay auto``: the drain ends once the health endpoint was polled
    #: after it turned 503, plus one poll interval; ``stop_delay`` is its longest.
    stop_delay_auto: bool = False
    #: ``--pre-stop``: run at the stop request, before the drain and any stop signal.
    pre_stop: Tuple[bytes, ...] = ()
    #: How long the pre-stop commands may run (their slot in the budget).
    pre_stop_slot: float = 0.0
    #: How long gsup waits for processes to vanish after its SIGKILL before it
    #: gives up on them (a process in uninterruptible sleep cannot die at once).
    kill_wait: float = 2.0

    @property
    def program(self) -> ProgramSpec:
        """The first program: a single command's only one."""
        return self.programs[0]

    def rewritten(self, sig: int) -> int:
        """The signal to deliver when *sig* is to be forwarded."""
        for src, dst in self.rewrite:
            if src == sig:
                return dst
        return sig


class ChildStatus(NamedTuple):
    """How a process ended: exactly one of ``code`` and ``signal`` is set."""

    code: Optional[int] = None
    signal: Optional[int] = None

    @classmethod
    def from_wait(cls, status: int) -> ChildStatus:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.WEXITSTATUS(status))

    @property
    def shell_code(self) -> int:
        """The status as a shell reports it: N, or 128+S."""
        if self.signal is not None:
            return 128 + self.signal
        assert self.code is not None  # invariant of the dataclass, not user input
        return self.code

    def describe(self) -> str:
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"killed by {name}"
        return f"exited with {self.code}"


class ProgramOutcome(NamedTuple):
    """How one program of many ended."""

    name: str
    pid: Optional[int]
    status: Optional[ChildStatus]
    stop_signal: Optional[int] = None
    stop_seconds: Optional[float] = None
    force_killed: bool = False
    escalation: Optional[str] = None  # why gsup sent SIGKILL, if it did
    restarts: int = 0
    failure: Optional[str] = None
    started: bool = True
    exit_code: Optional[int] = None  # its status after the rules of ``status``
    leftovers_signalled: int = 0
    leftovers_killed: int = 0


class StopCause(str, enum.Enum):
    """What ended the supervision."""

    CHILD_EXIT = "child exited"
    SIGNAL = "stop signal received"
    SPAWN_FAILED = "command could not be started"


class Outcome(NamedTuple):
    """What happened, for the report and the exit status."""

    exit_code: int
    cause: StopCause
    program: ProgramSpec
    pid: Optional[int] = None
    status: Optional[ChildStatus] = None
    stop_signal_received: Optional[int] = None
    stop_signal_sender: Optional[int] = None
    stop_signal_sent: Optional[int] = None
    stop_seconds: Optional[float] = None  # from the stop request to the child's exit
    ran_seconds: float = 0.0
    force_killed: bool = False
    escalation: Optional[str] = None  # why gsup sent SIGKILL, if it did
    grace: float = 0.0
    leftovers_signalled: int = 0
    leftovers_killed: int = 0
    leftovers_surviving: int = 0
    orphans_reaped: int = 0
    error: Optional[str] = None
    #: Many-programs mode: every program's outcome, in start order, and why
    #: the fleet stopped.
    programs: Tuple[ProgramOutcome, ...] = ()
    reason: Optional[str] = None
    #: Of ``stop_seconds``, the drain (``--stop-delay``) before the stop signal went out.
    drain_seconds: Optional[float] = None
    #: The pre-stop commands that ran: (whose, "" for the plan's; how each ended).
    pre_stops: Tuple[Tuple[str, str], ...] = ()


class TextStream(Protocol):
    """Where a sink writes: ``sys.stderr``, or a queue in many-programs mode."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class Sink(Protocol):
    """Where the core reports to. Implementations: log.TextSink, log.JsonSink, ui."""

    def event(self, kind: str, message: str, **fields: object) -> None:
        """One thing happened (``kind`` is a stable identifier, ``message`` prose)."""

    def countdown(self, remaining: float, total: float, label: str, hint: str = "") -> Optional[float]:
        """The stop is under way; return when to be called again (seconds), or None.

        *hint*: what a Ctrl+C would do now ("" when it would only be forwarded)."""

    def report(self, outcome: Outcome) -> None:
        """The final report, written once at exit."""

    def error(self, message: str) -> None:
        """A one-line error for the user."""

    def use_stream(self, stream: TextStream) -> None:
        """Write to *stream* from now on (many-programs mode shares stderr)."""
