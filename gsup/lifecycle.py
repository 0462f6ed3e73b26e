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
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple, Optional, Tuple, Union

from gsup import status as rules
from gsup.model import STOP_SIGNALS, ChildStatus, ForwardTo, Plan, ProgramSpec, Restart
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
    """Make readiness attempt *attempt* of *name*; report it with ``on_probe``.

    The number tells a result from an earlier one that arrives late: only the
    attempt the machine waits for counts.
    """

    name: str
    attempt: int


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
    """An event for the log."""

    kind: str
    message: str
    fields: Mapping[str, object] = MappingProxyType({})


class SuspendSelf(NamedTuple):
    """Stop gsup itself (Ctrl+Z at a terminal suspends the whole job)."""


Action = Union[Start, Probe, Send, SendLeftovers, Kill, KillLeftovers, Note, SuspendSelf]


def received_note(sig: int, sender: int, **fields: object) -> Note:
    """The log event for a signal gsup received."""
    return Note(
        "signal_received",
        f"received {signal_name(sig)}" + (f" from pid {sender}" if sender else ""),
        {"signal": signal_name(sig), "sender": sender, **fields},
    )


class Program:
    """The machine's view of one program: its spec and where it is."""

    __slots__ = (
        "ended_in_stop",
        "exited_at",
        "failure",
        "group_signalled",
        "kill_at",
        "kill_reason",
        "killed",
        "last_probe",
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
        self.restarts = 0
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
        self.dependents = {
            name: [q.name for q in plan.programs if name in q.depends_on] for name in self.programs
        }
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
        if self.phase is Phase.DRAINING:
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
            if p.running and p.kill_at is not None and not p.killed:
                due.append(p.kill_at)
        due += self.lingering.values()
        if self.phase is Phase.DRAINING and self.drain_end is not None:
            due.append(self.drain_end)
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
        fields = {"program": name, "pid": pid, "command": p.spec.display}
        if self.plan.single:
            note = Note("started", f"started pid {pid}: {p.spec.brief}", {**fields, "grace": self.plan.grace})
        else:
            note = Note("started", f"{name}: started pid {pid}", fields)
        actions: list[Action] = [note]
        if p.spec.ready is not None and not p.spec.oneshot:
            p.state = State.STARTING
            p.ready_by = now + p.spec.ready.timeout
            p.next_probe = now
            return actions
        p.state = State.READY
        if not p.spec.oneshot:
            actions += self._start_ready_ones(now)
        return actions

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
        if attempt != p.probing or p.state is not State.STARTING or p.spec.ready is None:
            return []
        p.probing = None
        p.last_probe = detail
        if ok:
            p.state, p.next_probe, p.ready_by = State.READY, None, None
            took = now - (p.started_at or now)
            actions: list[Action] = [
                Note(
                    "ready", f"{name}: ready after {took:.3f}s", {"program": name, "seconds": round(took, 6)}
                )
            ]
            return actions + self._start_ready_ones(now)
        p.next_probe = now + p.spec.ready.interval
        return []

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
                if self.phase is Phase.DRAINING:
                    return [
                        *actions,
                        Note("drain_skipped", "second SIGINT: ending the drain now"),
                        *self._end_drain(now),
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
                    msg = f"{p.name} not ready within {format_duration(r.timeout)} ({r.kind}={r.target}{saw})"
                    p.next_probe = p.probing = p.ready_by = None
                    actions += self._fail(p.name, rules.EXIT_NOT_READY, msg, now)
                elif p.next_probe is not None and now >= p.next_probe:
                    p.next_probe = None  # until the result is in
                    self.attempts += 1
                    p.probing = self.attempts
                    actions.append(Probe(p.name, self.attempts))
            elif p.state is State.BACKOFF and p.restart_at is not None and now >= p.restart_at:
                p.restart_at = None
                p.state = State.STARTING  # until on_started says more
                actions.append(Start(p.name))
        return actions

    # -- internals: starting ---------------------------------------------------------

    def _start_ready_ones(self, now: float) -> list[Action]:
        if self.stopping:
            return []
        actions: list[Action] = []
        for p in self.programs.values():
            if p.state is not State.WAITING:
                continue
            if all(self._satisfied(self.programs[d]) for d in p.spec.depends_on):
                p.state = State.STARTING  # until on_started says more
                actions.append(Start(p.name))
        return actions

    @staticmethod
    def _satisfied(dep: Program) -> bool:
        if dep.spec.oneshot:
            return dep.state is State.DONE and dep.status is not None and dep.status.shell_code == 0
        return dep.state is State.READY

    def _on_own_exit(self, p: Program, status: ChildStatus, was_ready: bool, now: float) -> list[Action]:
        """A program exited with no stop under way: restart it, go on, or stop the others."""
        spec, failed = p.spec, status.shell_code != 0
        if spec.oneshot and not failed:
            return self._start_ready_ones(now)
        policy = spec.restart.policy
        if policy is Restart.ALWAYS or (policy is Restart.ON_FAILURE and failed):
            if p.restarts < spec.restart.max_restarts:
                # The exponent is capped: 2**1024 no longer fits a float (and 2**64 s is forever).
                delay = min(spec.restart.backoff * 2.0 ** min(p.restarts, 64), spec.restart.backoff_max)
                p.restarts += 1
                p.state, p.restart_at = State.BACKOFF, now + delay
                return [
                    Note(
                        "restart_scheduled",
                        f"{p.name}: restart {p.restarts}/{spec.restart.max_restarts}"
                        f" in {format_duration(delay)}",
                        {"program": p.name, "restart": p.restarts, "delay": delay},
                    )
                ]
            why = f"{p.name} {status.describe()} and gave up after {p.restarts} restart(s)"
            return self._fail(p.name, status.shell_code or 1, why, now)
        if failed:
            what = "oneshot" if spec.oneshot else "program"
            return self._fail(p.name, status.shell_code, f"{what} {p.name} {status.describe()}", now)
        if not was_ready and not spec.oneshot and spec.ready is not None:
            why = f"{p.name} {status.describe()} before it was ready"
            return self._fail(p.name, rules.EXIT_NOT_READY, why, now)
        return self._stop(now, f"{p.name} exited ({status.describe()}); the container is whole or not at all")

    def _fail(self, name: str, code: int, message: str, now: float) -> list[Action]:
        if self.first_failure is None and not self.stopping:
            self.first_failure = (name, code)
        self.programs[name].failure = message
        if self.plan.single:  # its exit is the report: nothing else to stop
            return self._stop(now, message)
        return [Note("failed", message, {"program": name, "code": code}), *self._stop(now, message)]

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
        actions: list[Action] = []
        for p in self.programs.values():
            if p.running:
                actions.append(Send(sig, p.name, self._to_group))
        if actions:
            names = [p.name for p in self.programs.values() if p.running]
            actions.append(
                Note(
                    "signal_forwarded",
                    f"forwarded {signal_name(sig)}" + ("" if self.plan.single else f" to {', '.join(names)}"),
                    {"signal": signal_name(sig), "programs": names},
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
            return actions + self._start_grace(now)
        if self.plan.stop_delay > 0:
            self.phase = Phase.DRAINING
            self.drain_end = now + self.plan.stop_delay
            if self.plan.single:
                then = f"sending {signal_name(self._stop_signal_for(self.programs[self.plan.program.name]))}"
            else:
                then = "signalling the programs"
            return [
                *actions,
                Note(
                    "drain_started",
                    f"stop requested: draining for {format_duration(self.plan.stop_delay)} before {then}",
                    {"stop_delay": self.plan.stop_delay},
                ),
            ]
        return actions + self._end_drain(now)

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

    def _end_drain(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.phase is Phase.DRAINING:
            actions.append(Note("drain_ended", "drain ended"))
        self.drain_end = None
        self.phase = Phase.STOPPING
        self.kill_all_at = now + self.plan.grace
        return actions + self._advance_stop(now) + self._start_grace(now)

    def _start_grace(self, now: float) -> list[Action]:
        self.phase = Phase.STOPPING
        self.kill_all_at = now + self.plan.grace
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
