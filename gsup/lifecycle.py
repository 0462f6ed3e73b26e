"""The supervision policy as one pure state machine, for one program or many.

Owns every decision of a supervision: when each program starts (its
dependencies met), when it is probed for readiness and when that has failed,
restarts with backoff and their limit, fail-fast, when a stop begins and
why, the drain, which signal goes to whom (the stop signal at each
program's turn, in reverse dependency order; every other signal forwarded
at once), the grace and each program's own grace, the leftovers (processes
that outlive a program), SIGKILL, and the facts the exit status is made of.

It performs no I/O and reads no clock: the loop (``supervisor``) feeds it
events with the time, carries out the actions it returns, and asks it for
the next deadline. Tests drive it on a fake clock, without processes.

A single command (``gsup -- CMD``) is a plan of one program with
``plan.single``. What exists only there is a parameter, not a second machine:

* its exit status is gsup's (``status.plan_status``);
* at a terminal (*terminal*) it shares gsup's foreground process group, so a
  key the terminal already delivered to it (``delivered``) is not sent a
  second time, and a forwarded signal goes to its process (the group is
  gsup's own);
* when gsup is the foreground job of a terminal and not PID 1, Ctrl+Z
  suspends gsup too, in every plan.

Signals (SPEC §3): the first TERM, INT or QUIT begins the stop. After that
every signal is still forwarded to every running program (after
``--rewrite``), another stop signal included, with two exceptions: an exact
repeat of the signal that began the stop is logged and not forwarded (a
platform that sends TERM twice), and a second INT after an INT (the second
Ctrl+C) force-kills, or in the drain ends the drain. Two INTs within
``SAME_KEYPRESS``, one of them from the terminal, are one Ctrl+C, not two:
under ``timeout --foreground`` (or any wrapper that forwards what it gets)
gsup sees the kernel's SIGINT and the wrapper's copy a moment later; no hand
presses a key twice that fast. Two INTs sent with ``kill`` are two. The
grace clock never restarts.

Leftovers: when a program exits, what remains of its process group gets its
stop signal and the rest of its grace (a fresh grace if no stop is under
way), then SIGKILL. When no program runs any more, every process left is a
leftover of the job and gets the same. A process that left its program's
group (``setsid``) cannot be told apart from another program's, so it is
stopped with the job's leftovers, once every program has ended.

Imports: the standard library, ``gsup.model``, ``gsup.status``, ``gsup.units``.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple, Optional, Tuple, Union

from gsup import status as rules
from gsup.model import STOP_SIGNALS, ChildStatus, Condition, Dependency, ForwardTo, Plan, ProgramSpec, Restart
from gsup.units import format_duration, signal_name

#: Two SIGINTs closer than this, one from the terminal, are one Ctrl+C (the kernel's and a wrapper's copy).
SAME_KEYPRESS = 0.05


class State(enum.Enum):
    """Where one program is."""

    WAITING = "waiting"  # for its dependencies
    STARTING = "starting"  # running, not yet ready
    READY = "ready"  # running and ready (a oneshot: running)
    BACKOFF = "backoff"  # exited, to be started again
    DONE = "done"  # exited for good (a oneshot that succeeded included)
    SKIPPED = "skipped"  # never started: the stop came first


class Phase(enum.Enum):
    """Where the whole supervision is."""

    RUNNING = "running"  # no stop under way
    PRE_STOP = "pre-stop"  # stop requested, the --pre-stop commands run
    DRAINING = "draining"  # stop requested, waiting --stop-delay before signalling
    STOPPING = "stopping"  # stop signals going out in order, the grace clock running
    LINGERING = "lingering"  # no program runs any more; leftovers do
    KILLING = "killing"  # SIGKILL sent to everything, waiting for the dead to be reaped
    DONE = "done"


# -- actions: what the loop is asked to do ------------------------------------------
#
# NamedTuples compare as tuples: Start("web") == Kill("web"). Tests and the
# loop tell actions apart by type, never by comparing across types.


class Start(NamedTuple):
    """Start program *name*."""

    name: str


class Probe(NamedTuple):
    """Make attempt *attempt* of *name*'s readiness check (with *live*: of its
    liveness check); report it with ``on_probe``.

    The number tells a result from an earlier one that arrives late: only the
    attempt the machine waits for counts.
    """

    name: str
    attempt: int
    live: bool = False


class Send(NamedTuple):
    """Send *sig* to program *name*: its process group, or with ``group``
    false its process only; with ``cont``, SIGCONT right after to what of it
    is stopped (SIGSTOP, Ctrl+Z), so it can handle its stop signal (systemd
    does the same)."""

    sig: int
    name: str
    group: bool
    cont: bool = False


class SendLeftovers(NamedTuple):
    """Send *sig* (and SIGCONT if stopped) to leftovers: what remains of the process
    group of the program that ran as pid *of*; with *of* None, every process
    gsup still has, but the members of the groups of the programs that ran
    as the pids in *skip*, which got the signal already."""

    sig: int
    of: Optional[int]
    skip: Tuple[int, ...] = ()


class Kill(NamedTuple):
    """SIGKILL running program *name*'s group and descendants; *name* None: every process."""

    name: Optional[str]


class KillLeftovers(NamedTuple):
    """SIGKILL what remains of the process group of the program that ran as pid *of*."""

    of: int


class Note(NamedTuple):
    """An event for the log.

    *message* may be a function that makes the text: the notes about a
    signal come with its send, and their text is made after the send (``text``).
    """

    kind: str
    message: Union[str, Callable[[], str]]
    fields: Mapping[str, object] = MappingProxyType({})

    @property
    def text(self) -> str:
        return self.message if isinstance(self.message, str) else self.message()


class PreStop(NamedTuple):
    """Run a pre-stop command: the plan's (*key* "") or program *key*'s."""

    key: str


class KillPreStops(NamedTuple):
    """SIGKILL every pre-stop command still running: its slot is over."""


class SuspendSelf(NamedTuple):
    """Stop gsup itself (Ctrl+Z at a terminal suspends the whole job)."""


Action = Union[
    Start, Probe, Send, SendLeftovers, Kill, KillLeftovers, Note, PreStop, KillPreStops, SuspendSelf
]


def received_note(sig: int, sender: int, **fields: object) -> Note:
    """The log event for a signal gsup received."""
    name = signal_name(sig)
    return Note(
        "signal_received",
        lambda: f"received {name}" + (f" from pid {sender}" if sender else ""),
        {"signal": name, "sender": sender, **fields},
    )


class Program:
    """The machine's view of one program: its spec and where it is."""

    __slots__ = (
        "check_failed",
        "ended_in_stop",
        "exited_at",
        "failed_runs",
        "failure",
        "group_signalled",
        "kill_at",
        "kill_reason",
        "killed",
        "last_probe",
        "live_failures",
        "live_next",
        "live_probing",
        "next_probe",
        "pid",
        "probing",
        "ready_by",
        "restart_at",
        "restarts",
        "signalled_at",
        "spec",
        "started_at",
        "state",
        "status",
        "stop_sig",
    )

    def __init__(self, spec: ProgramSpec) -> None:
        self.spec = spec
        self.state = State.WAITING
        self.pid: Optional[int] = None
        self.started_at: Optional[float] = None
        self.ready_by: Optional[float] = None  # the readiness timeout
        self.next_probe: Optional[float] = None
        self.probing: Optional[int] = None  # the attempt whose result is awaited
        self.last_probe = ""  # what the last attempt saw, for "not ready within"
        self.restart_at: Optional[float] = None
        self.restarts = 0  # restarts that happened
        self.failed_runs = 0  # failed runs in a row (a run of min_uptime forgives)
        self.live_next: Optional[float] = None  # the next liveness attempt
        self.live_probing: Optional[int] = None  # the liveness attempt whose result is awaited
        self.live_failures = 0  # liveness attempts failed in a row
        #: gsup stopped it alone because a check failed (liveness, or readiness when not required):
        #: whatever it exits with, the run failed.
        self.check_failed: Optional[str] = None
        self.signalled_at: Optional[float] = None  # its stop signal went out
        self.stop_sig: Optional[int] = None
        self.group_signalled = False  # ...to its whole group (so its leftovers have it)
        self.kill_at: Optional[float] = None  # its grace ends
        self.killed = False
        self.kill_reason: Optional[str] = None
        self.status: Optional[ChildStatus] = None
        self.exited_at: Optional[float] = None
        self.ended_in_stop = False  # it ended after a stop began: gsup stopped it
        self.failure: Optional[str] = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def running(self) -> bool:
        return self.state in (State.STARTING, State.READY)

    @property
    def active(self) -> bool:
        """Running, or still to run (waiting for its dependencies, or for a restart)."""
        return self.state in (State.WAITING, State.STARTING, State.READY, State.BACKOFF)

    @property
    def force_killed(self) -> bool:
        """gsup's SIGKILL ended it (not an exit of its own that beat the kill)."""
        return self.killed and (self.status is None or self.status.signal == signal.SIGKILL)


class Lifecycle:
    """The life of every program of a plan, from the first start to the last reaped process."""

    def __init__(self, plan: Plan, now: float, *, terminal: bool = False, pid1: bool = False) -> None:
        self.plan = plan
        #: gsup is the foreground job of its terminal.
        self.terminal = terminal
        self.pid1 = pid1
        self.programs = {p.name: Program(p) for p in plan.programs}
        self.dependents = {name: [q.name for q in plan.programs if name in q.needs] for name in self.programs}
        self.phase = Phase.RUNNING
        self.started_at = now
        self.stopping_since: Optional[float] = None
        self.stop_reason: Optional[str] = None
        self.stop_received: Optional[int] = None  # the signal that began the stop
        self.stop_sender = 0
        self._first_stop_signal: Optional[int] = None  # ... or the first one during a stop
        self._first_stop_at = 0.0  # when it came
        self._first_stop_delivered = False  # ... from the terminal
        self.drain_end: Optional[float] = None
        self.kill_all_at: Optional[float] = None  # the grace ends
        self.linger_until: Optional[float] = None  # the job's leftovers get SIGKILL then
        #: What remains of exited programs' groups, by the pid each ran as: SIGKILL then.
        self.lingering: dict[int, float] = {}
        self.kill_wait_end: Optional[float] = None
        self.escalation: Optional[str] = None
        self.leftovers_killed = False
        self.first_failure: Optional[tuple[str, int]] = None
        self.attempts = 0  # readiness attempts asked for, to number them
        #: The pre-stop commands of this stop, by key ("" the plan's, else a program's
        #: name), and how each ended (None: still running, or killed at the slot's end).
        self.pre_stops: dict[str, Optional[ChildStatus]] = {}
        self.pre_stop_end: Optional[float] = None
        self.pre_stop_killed = False
        #: When the health endpoint's /readyz was asked (the last few), for --stop-delay auto.
        self.polls: list[float] = []
        self._paced = False  # the full budget's SIGKILL time holds, not "grace from now"
        #: When the stop signals began (the pre-stop and the drain were over).
        self.grace_started_at: Optional[float] = None

    # -- queries -------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def stopping(self) -> bool:
        """A stop is (or was) under way."""
        return self.stopping_since is not None

    @property
    def killing(self) -> bool:
        return self.phase is Phase.KILLING

    @property
    def shares_group(self) -> bool:
        """The single command stays in gsup's own process group, the terminal's foreground job."""
        return self.terminal and self.plan.single

    @property
    def ctrl_c_hint(self) -> str:
        """What a Ctrl+C would do now, for the countdown ("" when it would be only forwarded)."""
        if self.phase is Phase.LINGERING:
            return "Ctrl+C to force"
        if self._first_stop_signal != signal.SIGINT:
            return ""  # an INT after a TERM is forwarded, not an escalation
        if self.phase in (Phase.DRAINING, Phase.PRE_STOP):
            return "Ctrl+C again to end the drain"
        return "Ctrl+C again to force" if self.phase is Phase.STOPPING else ""

    def exit_code(self) -> int:
        """gsup's exit status (``status``)."""
        single = None
        if self.plan.single:
            single = self.program_code(self.plan.program.name)
        return rules.plan_status(
            failed=None if self.first_failure is None else self.first_failure[1],
            single=single,
            force_killed=any(p.force_killed for p in self.programs.values()),
        )

    def program_code(self, name: str) -> Optional[int]:
        """The status program *name*'s ending stands for (None: it has not ended)."""
        p = self.programs[name]
        if p.status is None:
            if not p.force_killed:
                return None
            status = ChildStatus(signal=signal.SIGKILL)  # gave up waiting: unkillable
        else:
            status = p.status
        return rules.exit_status(
            status,
            force_killed=p.force_killed,
            stop_requested=p.ended_in_stop,
            stop_signals=[s for s in (self.stop_received, p.stop_sig) if s is not None],
            success_codes=p.spec.success_codes,
            success_on_stop=self.plan.success_on_stop,
        )

    def next_deadline(self) -> Optional[float]:
        """The next moment something is due without any event, or None."""
        due: list[float] = []
        if self.phase is Phase.KILLING:
            return self.kill_wait_end
        for p in self.programs.values():
            if p.state is State.STARTING and p.spec.ready is not None:
                due += [t for t in (p.next_probe, p.ready_by) if t is not None]
            elif p.state is State.BACKOFF and p.restart_at is not None:
                due.append(p.restart_at)
            elif p.state is State.READY and p.live_next is not None:
                due.append(p.live_next)
            if p.running and p.kill_at is not None and not p.killed:
                due.append(p.kill_at)
        due += self.lingering.values()
        if self.phase is Phase.DRAINING and self.drain_end is not None:
            due.append(self.drain_end)
        if self.phase is Phase.PRE_STOP and self.pre_stop_end is not None:
            due.append(self.pre_stop_end)
        if self.phase is Phase.STOPPING and self.kill_all_at is not None:
            due.append(self.kill_all_at)
        if self.phase is Phase.LINGERING and self.linger_until is not None:
            due.append(self.linger_until)
        return min(due) if due else None

    # -- events: programs ----------------------------------------------------

    def begin(self, now: float) -> list[Action]:
        """Start every program whose dependencies are met (none, at first)."""
        return self._start_ready_ones(now)

    def on_started(self, name: str, pid: int, now: float) -> list[Action]:
        p = self.programs[name]
        p.pid, p.started_at, p.status, p.exited_at = pid, now, None, None
        p.signalled_at = p.stop_sig = p.kill_at = None
        p.group_signalled = p.killed = p.ended_in_stop = False
        p.probing = None  # an attempt for an earlier start may still report: it is not this one's
        p.live_next = p.live_probing = p.check_failed = None
        p.live_failures = 0
        fields = {"program": name, "pid": pid, "command": p.spec.display}
        if self.plan.single:
            note = Note("started", f"started pid {pid}: {p.spec.brief}", {**fields, "grace": self.plan.grace})
        else:
            note = Note("started", f"{name}: started pid {pid}", fields)
        actions: list[Action] = [note]
        if p.spec.ready is not None and not p.spec.oneshot:
            p.state = State.STARTING
            p.ready_by = None if p.spec.ready.timeout is None else now + p.spec.ready.timeout
            p.next_probe = None if p.spec.ready.kind == "log" else now  # a log line comes by itself
            return actions + self._start_ready_ones(now)  # what waits for it to be started
        p.state = State.READY
        if not p.spec.oneshot:
            self._watch(p, now)
        return actions + self._start_ready_ones(now)

    def on_spawn_failed(
        self, name: str, message: str, code: int, now: float, *, anything_left: bool = False
    ) -> list[Action]:
        """Program *name* could not be started; *anything_left*: as for ``on_exit``."""
        p = self.programs[name]
        p.state, p.failure = State.DONE, message
        actions = self._fail(name, code, message, now)
        return actions + self._after_exit(p, now, group_left=False, anything_left=anything_left)

    def on_probe(self, name: str, ok: bool, now: float, *, attempt: int, detail: str = "") -> list[Action]:
        """The result of readiness attempt *attempt*; *detail*: what it saw.

        A stale one is ignored: an attempt for an earlier start of the
        program, or one that was still running when the stop began.
        """
        p = self.programs[name]
        if attempt == p.live_probing:
            return self._on_liveness(p, ok, now, detail)
        if attempt != p.probing or p.state is not State.STARTING or p.spec.ready is None:
            return []
        p.probing = None
        p.last_probe = detail
        if ok:
            p.state, p.next_probe, p.ready_by = State.READY, None, None
            self._watch(p, now)
            took = now - (p.started_at or now)
            actions: list[Action] = [
                Note(
                    "ready", f"{name}: ready after {took:.3f}s", {"program": name, "seconds": round(took, 6)}
                )
            ]
            return actions + self._start_ready_ones(now)
        p.next_probe = now + p.spec.ready.interval
        return []

    def on_log_match(self, name: str, now: float) -> list[Action]:
        """A line of program *name* matched its ``ready = { log = ... }``."""
        p = self.programs[name]
        if p.state is not State.STARTING or p.spec.ready is None or p.spec.ready.kind != "log":
            return []
        p.state, p.ready_by = State.READY, None
        self._watch(p, now)
        took = now - (p.started_at or now)
        note = Note("ready", f"{name}: ready after {took:.3f}s", {"program": name, "seconds": round(took, 6)})
        return [note, *self._start_ready_ones(now)]

    def _watch(self, p: Program, now: float) -> None:
        """A program just became ready: its liveness checks begin, one interval on."""
        if p.spec.liveness is not None and not self.stopping:
            p.live_next = now + p.spec.liveness.interval

    def _on_liveness(self, p: Program, ok: bool, now: float, detail: str) -> list[Action]:
        live = p.spec.liveness
        p.live_probing = None
        if live is None or p.state is not State.READY or self.stopping or p.check_failed:
            return []
        if ok:
            p.live_failures = 0
            p.live_next = now + live.interval
            return []
        p.live_failures += 1
        if p.live_failures < live.failures:
            p.live_next = now + live.interval
            return [
                Note(
                    "liveness_failed",
                    f"{p.name}: liveness check failed ({detail}), {p.live_failures}/{live.failures} in a row",
                    {"program": p.name, "failures": p.live_failures, "saw": detail},
                )
            ]
        why = (
            f"{p.name} failed its liveness check {p.live_failures} times in a row "
            f"({live.kind}={live.target}: {detail})"
        )
        return self._stop_one(p, now, why)

    def on_exit(
        self,
        name: str,
        status: ChildStatus,
        now: float,
        *,
        group_left: bool = False,
        anything_left: bool = False,
    ) -> list[Action]:
        """Program *name* was reaped with *status*.

        *group_left*: members of its process group are still alive;
        *anything_left*: any process of gsup's is (the loop knows, cheaply).
        """
        p = self.programs[name]
        p.status, p.exited_at = status, now
        p.probing = p.next_probe = p.ready_by = None
        p.ended_in_stop = self.stopping
        was_ready = p.state is State.READY
        p.state = State.DONE
        fields: dict[str, object] = {"program": name, "status": status.describe(), "code": status.shell_code}
        if p.signalled_at is not None:
            fields["stop_seconds"] = round(now - p.signalled_at, 6)
        elif self.stopping_since is not None and self.stop_received is not None:
            fields["stop_seconds"] = round(now - self.stopping_since, 6)
        who = "child" if self.plan.single else f"{name}:"
        actions: list[Action] = [Note("program_exited", f"{who} {status.describe()}", fields)]
        if p.ended_in_stop:
            actions += self._advance_stop(now)
        else:
            actions += self._on_own_exit(p, status, was_ready, now)
        return actions + self._after_exit(p, now, group_left=group_left, anything_left=anything_left)

    def on_group_gone(self, of: int, now: float) -> list[Action]:
        """Nothing remains of the group of the program that ran as pid *of*."""
        self.lingering.pop(of, None)
        return []

    def on_all_gone(self, now: float) -> list[Action]:
        """No process of gsup's is left (every one reaped)."""
        self.lingering.clear()
        if not any(p.active for p in self.programs.values()):
            self.phase = Phase.DONE
        return []

    # -- events: signals and time ----------------------------------------------

    def on_signal(self, sig: int, now: float, *, delivered: bool = False, sender: int = 0) -> list[Action]:
        """A signal reached gsup. *delivered*: the program already got it from
        the kernel (a key typed at the terminal whose foreground group it shares).

        The loop carries out the sends before it writes the notes, so the
        order of this list is the order of the log, not of the syscalls.
        """
        actions: list[Action] = [received_note(sig, sender, from_terminal=delivered)]
        if self.phase is Phase.LINGERING and sig == signal.SIGINT:
            return actions + self._kill_all(now, "SIGINT while descendants linger")
        if self.phase in (Phase.LINGERING, Phase.KILLING, Phase.DONE):
            return actions  # no program runs: nothing to forward to
        if sig in STOP_SIGNALS:
            first = self._first_stop_signal
            if first is None:
                self._first_stop_signal, self._first_stop_at = sig, now
                self._first_stop_delivered = delivered
                if not self.stopping:
                    return actions + self._request_stop(sig, now, delivered=delivered, sender=sender)
                # A stop for another reason is under way: forwarded, like any other.
            elif sig == first:
                if sig != signal.SIGINT:
                    hint = " (Ctrl+C twice force-kills)" if delivered else ""  # only a terminal has keys
                    return [
                        *actions,
                        Note(
                            "repeat_ignored",
                            f"already stopping: {signal_name(sig)} ignored, a repeat is not forwarded{hint}",
                            {"signal": signal_name(sig)},
                        ),
                    ]
                if (delivered or self._first_stop_delivered) and now - self._first_stop_at < SAME_KEYPRESS:
                    ms = (now - self._first_stop_at) * 1000
                    return [
                        *actions,
                        Note(
                            "repeat_ignored",
                            f"SIGINT again {ms:.0f} ms after the first: the same Ctrl+C (a copy), ignored",
                            {"signal": signal_name(sig), "same_keypress": True},
                        ),
                    ]
                if self.phase in (Phase.DRAINING, Phase.PRE_STOP):
                    return [
                        *actions,
                        Note("drain_skipped", "second SIGINT: ending the drain now"),
                        *self._end_pre_stop(now),
                        *self._end_drain(now, skipped=True),
                    ]
                return actions + self._kill_all(now, "second SIGINT")
        if not delivered:
            actions += self._forward(self.plan.rewritten(sig))
        if sig == signal.SIGTSTP and self.terminal and not self.pid1:
            actions.append(SuspendSelf())
        return actions

    def on_deadline(self, now: float) -> list[Action]:
        """Time passed; act on whatever is due."""
        if self.phase is Phase.KILLING:
            if self.kill_wait_end is not None and now >= self.kill_wait_end:
                self.phase = Phase.DONE
                return [Note("gave_up", "processes survived SIGKILL; exiting without them")]
            return []
        if self.phase is Phase.STOPPING and self.kill_all_at is not None and now >= self.kill_all_at:
            return self._kill_all(now, "grace ran out")
        if self.phase is Phase.LINGERING and self.linger_until is not None and now >= self.linger_until:
            return self._kill_all(now, "grace ran out")
        actions: list[Action] = []
        if self.phase is Phase.PRE_STOP and self.pre_stop_end is not None and now >= self.pre_stop_end:
            running = [k or "the pre-stop command" for k, st in self.pre_stops.items() if st is None]
            actions += [
                Note(
                    "pre_stop_killed",
                    f"{', '.join(running)}: still running at the end of its "
                    f"{format_duration(self.plan.pre_stop_slot)} slot: SIGKILL; the stop goes on",
                    {"programs": running},
                ),
                *self._end_pre_stop(now),
                *self._begin_drain(now),
            ]
        if self.phase is Phase.DRAINING and self.drain_end is not None and now >= self.drain_end:
            actions += self._end_drain(now)
        for of, until in list(self.lingering.items()):
            if now >= until:
                del self.lingering[of]
                actions += [
                    Note(
                        "escalated",
                        f"grace ran out for the leftovers of pid {of}: SIGKILL",
                        {"reason": "grace ran out", "of": of},
                    ),
                    KillLeftovers(of),
                ]
        for p in self.programs.values():
            if p.running and p.kill_at is not None and not p.killed and now >= p.kill_at:
                p.killed, p.kill_reason = True, "its grace ran out"
                actions += [
                    Note("escalated", f"{p.name}: its grace ran out: SIGKILL", {"program": p.name}),
                    Kill(p.name),
                ]
            if p.state is State.STARTING and p.spec.ready is not None:
                if p.ready_by is not None and now >= p.ready_by:
                    r = p.spec.ready
                    saw = f"; the last attempt saw: {p.last_probe}" if p.last_probe else ""
                    within = format_duration(r.timeout or 0.0)  # ready_by is set only with a timeout
                    msg = f"{p.name} not ready within {within} ({r.kind}={r.target}{saw})"
                    p.next_probe = p.probing = p.ready_by = None
                    if p.spec.required:
                        actions += self._fail(p.name, rules.EXIT_NOT_READY, msg, now)
                    else:  # only this one fails: it is stopped, and ends (or restarts) like a failed run
                        actions += self._stop_one(p, now, msg)
                elif p.next_probe is not None and now >= p.next_probe:
                    p.next_probe = None  # until the result is in
                    self.attempts += 1
                    p.probing = self.attempts
                    actions.append(Probe(p.name, self.attempts))
            elif p.state is State.READY and p.live_next is not None and now >= p.live_next:
                p.live_next = None  # until the result is in
                self.attempts += 1
                p.live_probing = self.attempts
                actions.append(Probe(p.name, self.attempts, live=True))
            elif p.state is State.BACKOFF and p.restart_at is not None and now >= p.restart_at:
                p.restart_at = None
                p.restarts += 1  # counted when it happens: a stop during the backoff prevents it
                p.state = State.STARTING  # until on_started says more
                actions.append(Start(p.name))
        return actions

    # -- internals: starting ---------------------------------------------------------

    def _start_ready_ones(self, now: float) -> list[Action]:
        """Start every waiting program whose conditions are met; fail one whose can no longer be."""
        if self.stopping:
            return []
        actions: list[Action] = []
        for p in self.programs.values():
            if p.state is not State.WAITING:
                continue
            met = [(d, self._met(d)) for d in p.spec.depends_on]
            broken = next((d for d, m in met if m is False), None)
            if broken is not None:
                p.state = State.SKIPPED
                actions += self._fail(p.name, rules.EXIT_NOT_READY, self._cannot_start(p, broken), now)
                if self.stopping:
                    return actions
            elif all(m for _, m in met):
                p.state = State.STARTING  # until on_started says more
                actions.append(Start(p.name))
        return actions

    def _met(self, d: Dependency) -> Optional[bool]:
        """Whether dependency *d* is met: True, False when it can no longer be, None not yet."""
        dep = self.programs[d.name]
        cond = d.resolved(dep.spec.oneshot)
        over = dep.state in (State.DONE, State.SKIPPED)  # it will not run again
        if cond is Condition.STARTED:
            return True if dep.pid is not None else (False if over else None)
        if cond is Condition.READY:
            return True if dep.state is State.READY else (False if over else None)
        if not over:
            return None
        if cond is Condition.COMPLETED:
            return dep.status is not None  # False: it never ran
        return dep.status is not None and rules.succeeded(dep.status, dep.spec.success_codes)

    def _cannot_start(self, p: Program, d: Dependency) -> str:
        dep = self.programs[d.name]
        cond = d.resolved(dep.spec.oneshot)
        wants = {
            Condition.STARTED: "to have started",
            Condition.READY: "to be ready",
            Condition.COMPLETED: "to have exited",
            Condition.SUCCEEDED: "to have succeeded",
        }[cond]
        if dep.status is not None:
            what = dep.status.describe()
        elif dep.failure:
            what = f"failed: {dep.failure}"
        else:
            what = "never started"
        return f"{p.name} cannot start: it needs {d.name} {wants} ({cond.value}), and {d.name} {what}"

    def _on_own_exit(self, p: Program, status: ChildStatus, was_ready: bool, now: float) -> list[Action]:
        """A program exited with no stop of the whole under way: restart it, go on, or stop the others."""
        spec, restart = p.spec, p.spec.restart
        ok = rules.succeeded(status, spec.success_codes) and p.check_failed is None
        if p.started_at is not None and now - p.started_at >= restart.min_uptime:
            p.failed_runs = 0  # a long enough run forgives what came before
        if not ok:
            p.failed_runs += 1
        if spec.oneshot and ok:
            return self._start_ready_ones(now)
        ended = p.check_failed or f"{p.name} {status.describe()}"
        if restart.policy is Restart.ALWAYS or (restart.policy is Restart.ON_FAILURE and not ok):
            if ok or p.failed_runs <= restart.max_restarts:
                # The exponent is capped: 2**1024 no longer fits a float (and 2**64 s is forever).
                exponent = min(max(0, p.failed_runs - 1), 64)
                delay = min(restart.backoff * 2.0**exponent, restart.backoff_max)
                p.state, p.restart_at = State.BACKOFF, now + delay
                in_a_row = (
                    f", {p.failed_runs}/{restart.max_restarts} failed in a row" if p.failed_runs else ""
                )
                return [
                    Note(
                        "restart_scheduled",
                        f"{p.name}: restart {p.restarts + 1} in {format_duration(delay)}{in_a_row}",
                        {"program": p.name, "failed_runs": p.failed_runs, "delay": delay},
                    )
                ]
            why = f"{ended} and gave up after {p.restarts} restart(s)"
            return self._fail(p.name, status.shell_code or 1, why, now)
        if not ok:
            what = "oneshot" if spec.oneshot else "program"
            why = p.check_failed or f"{what} {p.name} {status.describe()}"
            return self._fail(p.name, status.shell_code or 1, why, now)
        if not was_ready and not spec.oneshot and spec.ready is not None:
            return self._fail(
                p.name, rules.EXIT_NOT_READY, f"{p.name} {status.describe()} before it was ready", now
            )
        if not spec.required:
            note = Note(
                "program_ended",
                f"{p.name}: {status.describe()}; not required: the others run on",
                {"program": p.name},
            )
            return [note, *self._start_ready_ones(now)]
        return self._stop(now, f"{p.name} exited ({status.describe()}); the container is whole or not at all")

    def _fail(self, name: str, code: int, message: str, now: float) -> list[Action]:
        p = self.programs[name]
        p.failure = message
        if not p.spec.required:  # its end is its own: the others run on, gsup's status is theirs
            note = Note(
                "failed", f"{message}; not required: the others run on", {"program": name, "code": code}
            )
            return [note, *self._start_ready_ones(now)]
        if self.first_failure is None and not self.stopping:
            self.first_failure = (name, code)
        if self.plan.single:  # its exit is the report: nothing else to stop
            return self._stop(now, message)
        return [Note("failed", message, {"program": name, "code": code}), *self._stop(now, message)]

    def _stop_one(self, p: Program, now: float, why: str) -> list[Action]:
        """Stop *p* alone, its check having failed: its stop signal, its grace, then SIGKILL."""
        p.check_failed = why
        p.live_next = p.live_probing = p.next_probe = p.probing = p.ready_by = None
        sig = self._stop_signal_for(p)
        p.signalled_at, p.stop_sig, p.group_signalled = now, sig, self._to_group
        p.kill_at = now + self._grace_of(p)
        return [
            Note("check_failed", f"{why}: stopping it", {"program": p.name, "reason": why}),
            Send(sig, p.name, self._to_group, cont=sig != signal.SIGCONT),
            Note(
                "signal_forwarded",
                f"{p.name}: sent {signal_name(sig)}",
                {
                    "program": p.name,
                    "signal": signal_name(sig),
                    "stop": True,
                    "kill_in": round(p.kill_at - now, 6),
                },
            ),
        ]

    # -- internals: leftovers -------------------------------------------------------

    def _after_exit(self, p: Program, now: float, *, group_left: bool, anything_left: bool) -> list[Action]:
        """What is left of *p*, or of the whole job once no program is to run any more."""
        if any(q.active for q in self.programs.values()):
            if not group_left or self.shares_group or p.pid is None:
                return []
            # Its group outlives it: part of its job, stopped like it.
            sig = self._stop_signal_for(p)
            until = p.kill_at if p.kill_at is not None else now + self._grace_of(p)
            self.lingering[p.pid] = until
            actions: list[Action] = [
                Note(
                    "leftovers",
                    f"{p.name} exited but its process group remains: sending {signal_name(sig)}, "
                    f"SIGKILL in {format_duration(max(0.0, until - now))}",
                    {"program": p.name, "signal": signal_name(sig), "kill_in": round(until - now, 6)},
                )
            ]
            if not p.group_signalled:
                actions.append(SendLeftovers(sig, p.pid))
            return actions
        if not anything_left:
            self.phase = Phase.DONE
            return []
        if self.phase is Phase.KILLING:
            return []  # everything already got SIGKILL: wait for the reaping
        # Nothing runs any more, something does: the job's leftovers. They
        # get the stop signal and the rest of the grace, then SIGKILL.
        sig = self._stop_signal_for(p)
        if self.linger_until is None:
            self.linger_until = self.kill_all_at if self.kill_all_at is not None else now + self._grace_of(p)
        self.phase = Phase.LINGERING
        skip = tuple(self.lingering) + tuple(
            q.pid for q in self.programs.values() if q.group_signalled and q.pid is not None
        )
        who = "child exited" if self.plan.single else "every program has ended"
        return [
            Note(
                "leftovers",
                f"{who} but descendants remain: sending {signal_name(sig)}, "
                f"SIGKILL in {format_duration(max(0.0, self.linger_until - now))}",
                {"signal": signal_name(sig), "kill_in": round(self.linger_until - now, 6)},
            ),
            SendLeftovers(sig, None, skip),
        ]

    def _grace_of(self, p: Program) -> float:
        return self.plan.grace if p.spec.grace is None else p.spec.grace

    # -- internals: the stop --------------------------------------------------------

    def _stop_signal_for(self, p: Program) -> int:
        """The signal *p* gets at its turn: its own, else the one received (rewritten), else TERM."""
        if p.stop_sig is not None:
            return p.stop_sig
        if p.spec.stop_signal is not None:
            return p.spec.stop_signal
        if self.stop_received is not None:
            return self.plan.rewritten(self.stop_received)
        return signal.SIGTERM

    @property
    def _to_group(self) -> bool:
        """Signals for a program go to its whole group (else to its process only)."""
        return self.plan.forward_to is ForwardTo.GROUP and not self.shares_group

    def _forward(self, sig: int) -> list[Action]:
        names = [p.name for p in self.programs.values() if p.running]
        actions: list[Action] = [Send(sig, n, self._to_group) for n in names]
        if actions:
            name, single = signal_name(sig), self.plan.single
            actions.append(
                Note(
                    "signal_forwarded",
                    lambda: f"forwarded {name}" + ("" if single else f" to {', '.join(names)}"),
                    {"signal": name, "programs": names},
                )
            )
        return actions

    def _request_stop(self, sig: int, now: float, *, delivered: bool, sender: int) -> list[Action]:
        """The first stop signal: the stop begins, with the drain if one is set."""
        self.stop_received, self.stop_sender = sig, sender
        actions = self._begin_stop(now, f"{signal_name(sig)} received")
        if delivered and all(self._stop_signal_for(p) == sig for p in self.programs.values() if p.running):
            # The terminal sent it to the program's whole group: no drain, no second copy.
            for p in self.programs.values():
                if p.running:
                    p.signalled_at, p.stop_sig, p.group_signalled = now, sig, True
                    p.kill_at = self._kill_at_for(p, now + self.plan.grace, now)
            return actions + self._start_grace(now, skipped=True)
        self._paced = True
        keys = ([""] if self.plan.pre_stop else []) + [
            p.name for p in self.programs.values() if p.spec.pre_stop and p.running
        ]
        if keys:
            self.phase = Phase.PRE_STOP
            self.pre_stop_end = now + self.plan.pre_stop_slot
            self.pre_stops = dict.fromkeys(keys)
            return [
                *actions,
                *(PreStop(k) for k in keys),
                Note(
                    "pre_stop_started",
                    f"stop requested: running the pre-stop command{'s' if len(keys) > 1 else ''} "
                    f"(at most {format_duration(self.plan.pre_stop_slot)}) before any stop signal",
                    {"programs": keys, "slot": self.plan.pre_stop_slot},
                ),
            ]
        return actions + self._begin_drain(now)

    def _begin_drain(self, now: float) -> list[Action]:
        """After the pre-stop commands (or at once): the drain, or the stop signals if there is none."""
        if self.plan.stop_delay <= 0:
            return self._end_drain(now)
        self.phase = Phase.DRAINING
        self.drain_end = now + self.plan.stop_delay
        if self.plan.single:
            then = f"sending {signal_name(self._stop_signal_for(self.programs[self.plan.program.name]))}"
        else:
            then = "signalling the programs"
        if self.plan.stop_delay_auto:
            how = (
                f"until the health endpoint was polled and one poll interval more "
                f"(at most {format_duration(self.plan.stop_delay)})"
            )
            self._check_polls(now)
        else:
            how = f"for {format_duration(self.plan.stop_delay)}"
        return [
            Note(
                "drain_started",
                f"stop requested: draining {how} before {then}",
                {"stop_delay": self.plan.stop_delay, "auto": self.plan.stop_delay_auto},
            ),
        ]

    def _end_pre_stop(self, now: float) -> list[Action]:
        """The pre-stop slot is over (or skipped): what still runs of it is killed."""
        self.pre_stop_end = None
        if any(st is None for st in self.pre_stops.values()):
            self.pre_stop_killed = True
            return [KillPreStops()]
        return []

    def on_pre_stop_exit(self, key: str, status: ChildStatus, now: float) -> list[Action]:
        """A pre-stop command ended; when the last one has, the drain begins."""
        if key not in self.pre_stops:
            return []
        self.pre_stops[key] = status
        who = key or "the pre-stop command"
        actions: list[Action] = [
            Note(
                "pre_stop_exited",
                f"{who}: {status.describe()}",
                {"program": key, "status": status.describe()},
            )
        ]
        if self.phase is Phase.PRE_STOP and all(st is not None for st in self.pre_stops.values()):
            self.pre_stop_end = None
            actions += self._begin_drain(now)
        return actions

    # -- the health endpoint ---------------------------------------------------------

    def ready(self) -> bool:
        """What /readyz says: every required long-running program ready, no stop asked for."""
        if self.stopping or self.phase is not Phase.RUNNING:
            return False
        for p in self.programs.values():
            if not p.spec.required:
                continue
            if p.spec.oneshot:
                if p.state is not State.DONE:
                    return False  # still to run, or running: not serving yet
            elif p.state is not State.READY:
                return False
        return True

    def health(self, now: float) -> tuple[bool, dict[str, object]]:
        """/readyz's answer and the body of both: each program's state, the time left."""
        programs = []
        for p in self.programs.values():
            state = {
                State.WAITING: "waiting",
                State.STARTING: "starting",
                State.READY: "ready",
                State.BACKOFF: "restarting",
                State.DONE: "exited",
                State.SKIPPED: "never started",
            }[p.state]
            if p.running and p.signalled_at is not None:
                state = "stopping"
            entry: dict[str, object] = {"name": p.name, "state": state, "pid": p.pid}
            if p.status is not None:
                entry["status"] = p.status.describe()
            programs.append(entry)
        left = None if self.kill_all_at is None else round(max(0.0, self.kill_all_at - now), 3)
        body: dict[str, object] = {
            "phase": self.phase.value,
            "stopping": self.stopping,
            "programs": programs,
            "grace": self.plan.grace,
            "sigkill_in": left,
        }
        return self.ready(), body

    def on_polled(self, now: float) -> list[Action]:
        """The health endpoint answered /readyz (``--stop-delay auto`` watches these)."""
        self.polls.append(now)
        del self.polls[:-16]
        if self.phase is Phase.DRAINING and self.plan.stop_delay_auto:
            return self._check_polls(now)
        return []

    def _check_polls(self, now: float) -> list[Action]:
        """--stop-delay auto: end the drain one poll interval after the first poll that saw 503."""
        assert self.stopping_since is not None  # a drain is part of a stop
        since = self.stopping_since
        after = [t for t in self.polls if t >= since]
        before = [t for t in self.polls if t < since]
        if not after or self.drain_end is None:
            return []  # not polled since it turned 503: the drain waits (at most its longest)
        if before:
            interval = after[0] - before[-1]
            self.drain_end = min(self.drain_end, after[0] + interval)
        elif len(after) >= 2:  # no earlier poll to tell the interval: the second one marks it
            self.drain_end = min(self.drain_end, after[1])
        if now >= self.drain_end:
            return self._end_drain(now)
        return []

    def _stop(self, now: float, reason: str) -> list[Action]:
        """Stop every program for *reason* (a failure, an exit): no drain."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.stopping or not any(p.active for p in self.programs.values()):
            return []  # already stopping, or nothing left to stop
        return self._begin_stop(now, reason) + self._end_drain(now)

    def _begin_stop(self, now: float, reason: str) -> list[Action]:
        self.stopping_since = now
        self.stop_reason = reason
        for p in self.programs.values():
            if p.state in (State.WAITING, State.BACKOFF):
                p.state, p.restart_at = State.SKIPPED if p.state is State.WAITING else State.DONE, None
            p.next_probe = p.probing = None  # no more probing: a result still to come is ignored
            p.live_next = p.live_probing = None
            p.ready_by = None  # nor a readiness timeout: a program being stopped has not "failed"
        if self.plan.single:
            return []  # "received SIGTERM" says it: no line more
        return [
            Note(
                "stopping",
                f"stopping all programs: {reason}; "
                f"SIGKILL in {format_duration(self.plan.stop_delay + self.plan.grace)}",
                {"reason": reason, "grace": self.plan.grace, "stop_delay": self.plan.stop_delay},
            )
        ]

    def _end_drain(self, now: float, *, skipped: bool = False) -> list[Action]:
        actions: list[Action] = []
        if self.phase is Phase.DRAINING:
            actions.append(Note("drain_ended", "drain ended"))
        self.drain_end = None
        self.phase = Phase.STOPPING
        self.grace_started_at = now
        self.kill_all_at = self._grace_end(now, skipped=skipped)
        return actions + self._advance_stop(now) + self._start_grace(now, skipped=skipped)

    def _grace_end(self, now: float, *, skipped: bool = False) -> float:
        """When gsup's SIGKILL is due. After a requested stop, where the budget put it: a
        pre-stop or a drain that ended early leaves its time to the programs; else (a
        failure, a Ctrl+C that skipped the drain) the grace from now."""
        if self._paced and not skipped and self.stopping_since is not None:
            slot = self.plan.pre_stop_slot if self.pre_stops else 0.0
            return max(now, self.stopping_since + slot + self.plan.stop_delay) + self.plan.grace
        return now + self.plan.grace

    def _start_grace(self, now: float, *, skipped: bool = False) -> list[Action]:
        self.phase = Phase.STOPPING
        if self.grace_started_at is None:
            self.grace_started_at = now
        self.kill_all_at = self._grace_end(now, skipped=skipped)
        if not any(p.running for p in self.programs.values()):
            return []
        what = "the child" if self.plan.single else "every program"
        return [
            Note(
                "grace_started",
                f"waiting up to {format_duration(self.plan.grace)} for {what} to exit",
                {"grace": self.plan.grace},
            )
        ]

    def _kill_at_for(self, p: Program, kill_all_at: float, now: float) -> float:
        return kill_all_at if p.spec.grace is None else min(kill_all_at, now + p.spec.grace)

    def _advance_stop(self, now: float) -> list[Action]:
        """Signal every running program none of whose dependents still runs."""
        if self.phase is not Phase.STOPPING or self.kill_all_at is None:
            return []
        actions: list[Action] = []
        for p in self.programs.values():
            if not p.running or p.signalled_at is not None:
                continue
            if any(self.programs[d].running for d in self.dependents[p.name]):
                continue  # its dependents stop first
            sig = self._stop_signal_for(p)
            p.signalled_at, p.stop_sig, p.group_signalled = now, sig, self._to_group
            p.kill_at = self._kill_at_for(p, self.kill_all_at, now)
            actions += [
                Send(sig, p.name, self._to_group, cont=sig != signal.SIGCONT),
                Note(
                    "signal_forwarded",
                    f"forwarded {signal_name(sig)}"
                    if self.plan.single
                    else f"{p.name}: sent {signal_name(sig)}",
                    {
                        "program": p.name,
                        "signal": signal_name(sig),
                        "stop": True,
                        "kill_in": round(p.kill_at - now, 6),
                    },
                ),
            ]
        return actions

    def _kill_all(self, now: float, why: str) -> list[Action]:
        self.phase = Phase.KILLING
        self.escalation = why
        self.kill_wait_end = now + self.plan.kill_wait
        self.drain_end = None
        running = [p for p in self.programs.values() if p.running]
        for p in running:
            p.killed, p.kill_reason = True, why
        self.lingering.clear()
        if not running:
            self.leftovers_killed = True
        what = "sending SIGKILL" if self.plan.single else "sending SIGKILL to everything left"
        return [Note("escalated", f"{why}: {what}", {"reason": why}), Kill(None)]
