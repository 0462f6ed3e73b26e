"""Many programs as a pure state machine: start order, readiness, restarts, stop order.

Owns: when each program of a TOML plan starts (its dependencies ready, or
exited 0 for oneshots), when readiness is probed and when it has failed,
restarts with exponential backoff and their limit, fail-fast, and the stop:
reverse dependency order, independent programs in parallel, all inside one
grace, then SIGKILL. It performs no I/O and reads no clock: the supervisor
feeds it events with the time, carries out its actions, and asks for the
next deadline. Tests drive it on a fake clock.

Exit status (SPEC §6, many programs): the status of the first program that
failed on its own; else 137 if any program was force-killed; else 0.

Imports: the standard library, ``gsup.model``, ``gsup.units``.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass, field
from typing import Optional, Union

from gsup.lifecycle import Note as Note  # re-exported: the fleet acts with the same notes
from gsup.lifecycle import received_note
from gsup.model import ChildStatus, Plan, ProgramSpec, Restart
from gsup.status import EXIT_FORCE_KILLED
from gsup.units import format_duration, signal_name

_STOP = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
EXIT_NOT_READY = 1


class State(enum.Enum):
    WAITING = "waiting"  # for its dependencies
    STARTING = "starting"  # running, not yet ready
    READY = "ready"  # running and ready (a oneshot: running)
    BACKOFF = "backoff"  # exited, to be restarted
    DONE = "done"  # exited for good (a oneshot that succeeded included)
    SKIPPED = "skipped"  # never started: the fleet stopped first


@dataclass(frozen=True)
class Start:
    name: str


@dataclass(frozen=True)
class Probe:
    """Run one readiness probe of *name* and report with ``on_probe``, giving back *attempt*.

    The number tells a result from an earlier one that arrives late (probes
    run beside the loop): only the attempt the fleet waits for counts.
    """

    name: str
    attempt: int


@dataclass(frozen=True)
class Signal:
    name: str
    sig: int


@dataclass(frozen=True)
class Kill:
    """SIGKILL the program's group and descendants (``None``: every process)."""

    name: Optional[str]


Action = Union[Start, Probe, Signal, Kill, Note]


@dataclass
class Program:
    """The fleet's view of one program."""

    spec: ProgramSpec
    state: State = State.WAITING
    pid: Optional[int] = None
    started_at: Optional[float] = None
    ready_by: Optional[float] = None  # readiness timeout
    next_probe: Optional[float] = None
    probing: Optional[int] = None  # the attempt whose result is awaited
    restart_at: Optional[float] = None
    restarts: int = 0
    signalled_at: Optional[float] = None
    stop_sig: Optional[int] = None
    kill_at: Optional[float] = None
    killed: bool = False
    kill_reason: Optional[str] = None
    status: Optional[ChildStatus] = None
    exited_at: Optional[float] = None
    failure: Optional[str] = None
    restart_times: list[float] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state in (State.STARTING, State.READY)

    @property
    def force_killed(self) -> bool:
        """gsup's SIGKILL ended it (not an exit of its own that beat the kill)."""
        return self.killed and self.status is not None and self.status.signal == signal.SIGKILL


class Fleet:
    """The lifecycle of every program of a plan, as one machine."""

    def __init__(self, plan: Plan, now: float) -> None:
        self.plan = plan
        self.programs = {p.name: Program(p) for p in plan.programs}
        self.started_at = now
        self.stopping_since: Optional[float] = None
        self.drain_end: Optional[float] = None
        self.kill_all_at: Optional[float] = None
        self.kill_wait_end: Optional[float] = None
        self.killing = False
        self.done = False
        self.stop_reason: Optional[str] = None
        self.stop_received: Optional[int] = None
        self.stop_sender: int = 0
        self.first_failure: Optional[tuple[str, int]] = None
        self.attempts = 0  # readiness probes asked for, to number them
        self.dependents = {
            name: [q.name for q in plan.programs if name in q.depends_on] for name in self.programs
        }

    # -- queries -------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self.stopping_since is not None

    def exit_code(self) -> int:
        if self.first_failure is not None:
            return self.first_failure[1]
        if any(p.force_killed for p in self.programs.values()):
            return EXIT_FORCE_KILLED
        return 0

    def next_deadline(self) -> Optional[float]:
        due: list[float] = []
        for p in self.programs.values():
            if p.state is State.STARTING and p.spec.ready is not None:
                due += [t for t in (p.next_probe, p.ready_by) if t is not None]
            if p.state is State.BACKOFF and p.restart_at is not None:
                due.append(p.restart_at)
            if p.running and p.kill_at is not None and not p.killed:
                due.append(p.kill_at)
        for t in (self.drain_end, self.kill_all_at if not self.killing else None, self.kill_wait_end):
            if t is not None:
                due.append(t)
        return min(due) if due else None

    def by_pid(self, pid: int) -> Optional[Program]:
        for p in self.programs.values():
            if p.pid == pid and p.running:
                return p
        return None

    # -- events --------------------------------------------------------------

    def begin(self, now: float) -> list[Action]:
        """Start every program whose dependencies are met (none, at first)."""
        return self._start_ready_ones(now)

    def on_started(self, name: str, pid: int, now: float) -> list[Action]:
        p = self.programs[name]
        p.pid, p.started_at, p.status, p.exited_at = pid, now, None, None
        p.probing = None  # a probe of an earlier start may still report: it is not this one's
        actions: list[Action] = [Note("started", f"{name}: started pid {pid}", {"program": name, "pid": pid})]
        if p.spec.ready is not None and not p.spec.oneshot:
            p.state = State.STARTING
            p.ready_by = now + p.spec.ready.timeout
            p.next_probe = now
            return actions
        p.state = State.READY
        if not p.spec.oneshot:
            actions += self._start_ready_ones(now)
        return actions

    def on_spawn_failed(self, name: str, message: str, code: int, now: float) -> list[Action]:
        p = self.programs[name]
        p.state, p.failure = State.DONE, message
        return self._fail(name, code, message, now)

    def on_probe(self, name: str, ok: bool, now: float, *, attempt: int) -> list[Action]:
        """The result of probe *attempt*.

        A stale one is ignored: an attempt for an earlier start of the
        program, or one that was still running when the fleet began to stop.
        """
        p = self.programs[name]
        if attempt != p.probing or p.state is not State.STARTING or p.spec.ready is None:
            return []
        p.probing = None
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

    def on_exit(self, name: str, status: ChildStatus, now: float) -> list[Action]:
        p = self.programs[name]
        p.status, p.exited_at, p.probing = status, now, None
        was_ready = p.state is State.READY
        p.state = State.DONE
        fields: dict[str, object] = {"program": name, "status": status.describe(), "code": status.shell_code}
        if p.signalled_at is not None:
            fields["stop_seconds"] = round(now - p.signalled_at, 6)
        actions: list[Action] = [Note("program_exited", f"{name}: {status.describe()}", fields)]
        if self.stopping:
            return actions + self._advance_stop(now)
        spec, failed = p.spec, status.shell_code != 0
        if spec.oneshot and not failed:
            actions += self._start_ready_ones(now)
            if all(q.state in (State.DONE, State.SKIPPED) for q in self.programs.values()):
                self.done = True  # only oneshots, all exited 0: the job is done
            return actions
        policy = spec.restart.policy
        if policy is Restart.ALWAYS or (policy is Restart.ON_FAILURE and failed):
            if p.restarts < spec.restart.max_restarts:
                delay = min(spec.restart.backoff * 2**p.restarts, spec.restart.backoff_max)
                p.restarts += 1
                p.state, p.restart_at = State.BACKOFF, now + delay
                return [
                    *actions,
                    Note(
                        "restart_scheduled",
                        f"{name}: restart {p.restarts}/{spec.restart.max_restarts}"
                        f" in {format_duration(delay)}",
                        {"program": name, "restart": p.restarts, "delay": delay},
                    ),
                ]
            why = f"{name} {status.describe()} and gave up after {p.restarts} restart(s)"
            return actions + self._fail(name, status.shell_code or 1, why, now)
        if failed:
            what = "oneshot" if spec.oneshot else "program"
            return actions + self._fail(name, status.shell_code, f"{what} {name} {status.describe()}", now)
        if not was_ready and not spec.oneshot:
            why = f"{name} {status.describe()} before it was ready"
            return actions + self._fail(name, EXIT_NOT_READY, why, now)
        return actions + self._stop(
            now, f"{name} exited ({status.describe()}); the container is whole or not at all"
        )

    def on_signal(self, sig: int, now: float, sender: int = 0) -> list[Action]:
        actions: list[Action] = [received_note(sig, sender)]
        if sig in _STOP:
            if not self.stopping:
                self.stop_received, self.stop_sender = sig, sender
                return actions + self._stop(now, f"{signal_name(sig)} received", sig=sig)
            if sig == signal.SIGINT and not self.killing:
                if self.drain_end is not None:
                    self.drain_end = None
                    return [
                        *actions,
                        Note("drain_skipped", "second SIGINT: ending the drain now"),
                        *self._advance_stop(now),
                    ]
                return actions + self._kill_all(now, "second SIGINT")
            return [*actions, Note("repeat_ignored", f"already stopping: {signal_name(sig)} ignored")]
        out = self.plan.rewritten(sig)
        for p in self.programs.values():
            if p.running:
                actions.append(Signal(p.spec.name, out))
        return actions

    def on_deadline(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.kill_wait_end is not None and now >= self.kill_wait_end:
            self.done = True
            return [Note("gave_up", "processes survived SIGKILL; exiting without them")]
        if self.kill_all_at is not None and not self.killing and now >= self.kill_all_at:
            return self._kill_all(now, "grace ran out")
        if self.drain_end is not None and now >= self.drain_end:
            self.drain_end = None
            actions.append(Note("drain_ended", "drain ended"))
            actions += self._advance_stop(now)
        for p in self.programs.values():
            if p.running and p.kill_at is not None and not p.killed and now >= p.kill_at:
                p.killed, p.kill_reason = True, "its grace ran out"
                actions += [
                    Note("escalated", f"{p.spec.name}: its grace ran out: SIGKILL", {"program": p.spec.name}),
                    Kill(p.spec.name),
                ]
            if p.state is State.STARTING and p.spec.ready is not None:
                if p.ready_by is not None and now >= p.ready_by:
                    r = p.spec.ready
                    msg = f"{p.spec.name} not ready within {format_duration(r.timeout)} ({r.kind}={r.target})"
                    p.next_probe = p.probing = None
                    p.failure = msg
                    actions += self._fail(p.spec.name, EXIT_NOT_READY, msg, now)
                elif p.next_probe is not None and now >= p.next_probe:
                    p.next_probe = None  # until the result is in
                    self.attempts += 1
                    p.probing = self.attempts
                    actions.append(Probe(p.spec.name, self.attempts))
            if p.state is State.BACKOFF and p.restart_at is not None and now >= p.restart_at:
                p.restart_at = None
                p.restart_times.append(now)
                actions.append(Start(p.spec.name))
        return actions

    def on_all_gone(self, now: float) -> None:
        """No process of gsup's is left: done once every program is."""
        if self.stopping and all(not p.running for p in self.programs.values()):
            self.done = True

    # -- internals -----------------------------------------------------------

    def _start_ready_ones(self, now: float) -> list[Action]:
        if self.stopping:
            return []
        actions: list[Action] = []
        for p in self.programs.values():
            if p.state is not State.WAITING:
                continue
            deps = [self.programs[d] for d in p.spec.depends_on]
            if all(self._satisfied(d) for d in deps):
                p.state = State.STARTING  # until on_started says more
                actions.append(Start(p.spec.name))
        return actions

    @staticmethod
    def _satisfied(dep: Program) -> bool:
        if dep.spec.oneshot:
            return dep.state is State.DONE and dep.status is not None and dep.status.shell_code == 0
        return dep.state is State.READY

    def _fail(self, name: str, code: int, message: str, now: float) -> list[Action]:
        if self.first_failure is None and not self.stopping:
            self.first_failure = (name, code)
        self.programs[name].failure = message
        return [Note("failed", message, {"program": name, "code": code}), *self._stop(now, message)]

    def _stop(self, now: float, reason: str, *, sig: Optional[int] = None) -> list[Action]:
        if self.stopping:
            return []
        self.stopping_since = now
        self.stop_reason = reason
        self.kill_all_at = now + self.plan.stop_delay + self.plan.grace
        for p in self.programs.values():
            if p.state in (State.WAITING, State.BACKOFF):
                p.state, p.restart_at = State.SKIPPED if p.state is State.WAITING else State.DONE, None
            p.next_probe = p.probing = None  # no more probing: a result still to come is ignored
            p.ready_by = None  # nor a readiness timeout: a program being stopped has not "failed"
        actions: list[Action] = [
            Note(
                "stopping",
                f"stopping all programs: {reason}; SIGKILL in "
                f"{format_duration(self.plan.stop_delay + self.plan.grace)}",
                {"reason": reason, "grace": self.plan.grace},
            )
        ]
        if self.plan.stop_delay > 0 and sig is not None:
            self.drain_end = now + self.plan.stop_delay
            actions.append(
                Note(
                    "drain_started",
                    f"draining for {format_duration(self.plan.stop_delay)}",
                    {"stop_delay": self.plan.stop_delay},
                )
            )
            return actions
        return actions + self._advance_stop(now)

    def _advance_stop(self, now: float) -> list[Action]:
        """Signal every running program none of whose dependents still runs."""
        if self.drain_end is not None or self.killing:
            return self._check_done()
        actions: list[Action] = []
        assert self.kill_all_at is not None  # set by _stop
        for p in self.programs.values():
            if not p.running or p.signalled_at is not None:
                continue
            if any(self.programs[d].running for d in self.dependents[p.spec.name]):
                continue  # its dependents stop first
            received = self.stop_received
            sig = (
                p.spec.stop_signal
                or self.plan.stop_signal
                or (self.plan.rewritten(received) if received else signal.SIGTERM)
            )
            p.signalled_at, p.stop_sig = now, sig
            limit = self.kill_all_at if p.spec.grace is None else min(self.kill_all_at, now + p.spec.grace)
            p.kill_at = limit
            actions += [
                Signal(p.spec.name, sig),
                Note(
                    "program_stopping",
                    f"{p.spec.name}: sent {signal_name(sig)}",
                    {"program": p.spec.name, "signal": signal_name(sig), "kill_in": round(limit - now, 6)},
                ),
            ]
        return actions + self._check_done()

    def _check_done(self) -> list[Action]:
        if all(not p.running for p in self.programs.values()):
            self.kill_all_at = None
            self.done = True
        return []

    def _kill_all(self, now: float, why: str) -> list[Action]:
        self.killing = True
        self.kill_wait_end = now + self.plan.kill_wait
        for p in self.programs.values():
            if p.running:
                p.killed, p.kill_reason = True, why
        return [Note("escalated", f"{why}: sending SIGKILL to everything left", {"reason": why}), Kill(None)]
