"""The stop policy as a pure state machine: ``(event, now) -> actions``.

Owns: when a stop starts, how long the drain and the grace last, which
signal is sent to whom, when SIGKILL is due, what a second Ctrl+C or a
repeated SIGTERM means, and when supervision is over. It performs no I/O and
reads no clock: the supervisor feeds it events with the time and carries out
the actions it returns, and asks it for the next deadline. Tests drive it
on a fake clock, without processes.

Imports: the standard library and ``gsup.model`` only.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple, Optional, Union

from gsup.model import ChildStatus, Plan
from gsup.units import format_duration, signal_name

_STOP = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
_JOB_CONTROL = frozenset({signal.SIGTSTP})


class Phase(enum.Enum):
    RUNNING = "running"
    DRAINING = "draining"  # stop requested, waiting --stop-delay before signalling
    STOPPING = "stopping"  # stop signal sent, grace clock running
    LINGERING = "lingering"  # the child is gone, its leftovers are not
    KILLING = "killing"  # SIGKILL sent, waiting for the dead to be reaped
    DONE = "done"


class Target(enum.Enum):
    GROUP = "group"  # the child's process group (or the child, per --forward-to)
    CHILD = "child"
    LEFTOVERS = "leftovers"  # every remaining descendant


class Send(NamedTuple):
    """Send *sig* to *target*; with ``outside_group_only`` skip the child's group."""

    sig: int
    target: Target
    outside_group_only: bool = False


class KillAll:
    """SIGKILL the child's group and every descendant."""


class Note(NamedTuple):
    """An event for the log."""

    kind: str
    message: str
    fields: Mapping[str, object] = MappingProxyType({})


class SuspendSelf:
    """Stop gsup itself (Ctrl+Z at a terminal suspends the whole job)."""


Action = Union[Send, KillAll, Note, SuspendSelf]


def received_note(sig: int, sender: int, **fields: object) -> Note:
    """The log event for a signal gsup received (both loops' machines use it)."""
    return Note(
        "signal_received",
        f"received {signal_name(sig)}" + (f" from pid {sender}" if sender else ""),
        {"signal": signal_name(sig), "sender": sender, **fields},
    )


class Lifecycle:
    """The life of one supervised program, from start to the last reaped process."""

    def __init__(self, plan: Plan, now: float, *, terminal: bool, pid1: bool) -> None:
        self.plan = plan
        self.terminal = terminal
        self.pid1 = pid1
        self.phase = Phase.RUNNING
        self.started_at = now
        self.stop_requested_at: Optional[float] = None
        self.stop_received: Optional[int] = None
        self.stop_sender: Optional[int] = None
        self.stop_sent: Optional[int] = None
        self.drain_end: Optional[float] = None
        self.kill_at: Optional[float] = None
        self.kill_wait_end: Optional[float] = None
        self.child_status: Optional[ChildStatus] = None
        self.child_exited_at: Optional[float] = None
        self.force_killed = False
        self.leftovers_killed = False
        self.escalation: Optional[str] = None
        self._pending_stop: Optional[int] = None

    # -- queries -------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def stopping(self) -> bool:
        """gsup was asked to stop (the child's status then reads as requested)."""
        return self.stop_requested_at is not None

    def next_deadline(self) -> Optional[float]:
        """The next moment something is due without any event, or None."""
        if self.phase is Phase.DRAINING:
            return self.drain_end
        if self.phase in (Phase.STOPPING, Phase.LINGERING):
            return self.kill_at
        if self.phase is Phase.KILLING:
            return self.kill_wait_end
        return None

    # -- events --------------------------------------------------------------

    def on_signal(self, sig: int, now: float, *, delivered: bool = False, sender: int = 0) -> list[Action]:
        """A signal reached gsup. *delivered*: the child's group already got it
        from the kernel (a key typed at the terminal both share)."""
        actions: list[Action] = [received_note(sig, sender, from_terminal=delivered)]
        if self.phase is Phase.LINGERING and sig == signal.SIGINT:
            return actions + self._escalate(now, "SIGINT while descendants linger")
        if self.phase in (Phase.LINGERING, Phase.KILLING, Phase.DONE):
            return actions  # the child is gone or being killed: nothing to forward to
        if sig in _STOP:
            actions += self._on_stop_signal(sig, now, delivered=delivered, sender=sender)
        else:
            if not delivered:
                actions += self._forward(self.plan.rewritten(sig))
            if sig in _JOB_CONTROL and self.terminal and not self.pid1:
                actions.append(SuspendSelf())
        return actions

    def on_child_exit(self, status: ChildStatus, now: float, *, others_remain: bool) -> list[Action]:
        """The supervised child was reaped; *others_remain*: descendants still alive."""
        self.child_status = status
        self.child_exited_at = now
        fields: dict[str, object] = {"status": status.describe(), "code": status.shell_code}
        if self.stop_requested_at is not None:
            fields["stop_seconds"] = round(now - self.stop_requested_at, 6)
        actions: list[Action] = [Note("child_exited", f"child {status.describe()}", fields)]
        if not others_remain:
            self.phase = Phase.DONE
            return actions
        if self.phase is Phase.KILLING:
            return actions  # everything already got SIGKILL; wait for the reaping
        # Descendants outlive the child. They are part of the job: they get the
        # stop signal and the rest of the grace, then SIGKILL (never left behind).
        sig = self.stop_sent or self._pending_stop or self.plan.stop_signal or signal.SIGTERM
        outside_only = self.phase is Phase.STOPPING
        if self.kill_at is None:
            self.kill_at = now + self.plan.grace
        self.phase = Phase.LINGERING
        actions.append(
            Note(
                "leftovers",
                f"child exited but descendants remain: sending {signal_name(sig)}, "
                f"SIGKILL in {format_duration(max(0.0, self.kill_at - now))}",
                {"signal": signal_name(sig), "kill_in": round(self.kill_at - now, 6)},
            )
        )
        actions.append(Send(sig, Target.LEFTOVERS, outside_group_only=outside_only))
        return actions

    def on_all_gone(self, now: float) -> list[Action]:
        """No child of gsup is left (all reaped)."""
        if self.child_status is not None:
            self.phase = Phase.DONE
        return []

    def on_deadline(self, now: float) -> list[Action]:
        """Time passed; act on whatever deadline is due."""
        due = self.next_deadline()
        if due is None or now < due:
            return []
        if self.phase is Phase.DRAINING:
            return self._end_drain(now)
        if self.phase in (Phase.STOPPING, Phase.LINGERING):
            return self._escalate(now, "grace ran out")
        if self.phase is Phase.KILLING:
            self.phase = Phase.DONE
            return [Note("gave_up", "processes survived SIGKILL; exiting without them")]
        return []

    # -- internals -----------------------------------------------------------

    def _forward(self, sig: int) -> list[Action]:
        return [
            Send(sig, Target.GROUP),
            Note("signal_forwarded", f"forwarded {signal_name(sig)}", {"signal": signal_name(sig)}),
        ]

    def _on_stop_signal(self, sig: int, now: float, *, delivered: bool, sender: int) -> list[Action]:
        if self.stop_requested_at is None:
            self.stop_requested_at = now
            self.stop_received = sig
            self.stop_sender = sender
            stop_sig = self.plan.stop_signal or self.plan.rewritten(sig)
            if delivered and stop_sig == sig:
                # The terminal sent it to the child too: no drain, no second copy.
                self.stop_sent = sig
                return self._start_grace(now)
            self._pending_stop = stop_sig
            if self.plan.stop_delay > 0:
                self.phase = Phase.DRAINING
                self.drain_end = now + self.plan.stop_delay
                return [
                    Note(
                        "drain_started",
                        f"stop requested: draining for {format_duration(self.plan.stop_delay)} "
                        f"before sending {signal_name(stop_sig)}",
                        {"stop_delay": self.plan.stop_delay},
                    )
                ]
            return self._end_drain(now)
        if sig == signal.SIGINT:
            if self.phase is Phase.DRAINING:
                return [
                    Note("drain_skipped", "second SIGINT: ending the drain now"),
                    *self._end_drain(now),
                ]
            return self._escalate(now, "second SIGINT")
        return [
            Note(
                "repeat_ignored",
                f"already stopping: {signal_name(sig)} ignored (Ctrl+C twice force-kills)",
            )
        ]

    def _end_drain(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.phase is Phase.DRAINING:
            actions.append(Note("drain_ended", "drain ended"))
        sig = self._pending_stop
        assert sig is not None  # set with the stop request; not user input
        self.stop_sent = sig
        actions += self._forward(sig)
        return actions + self._start_grace(now)

    def _start_grace(self, now: float) -> list[Action]:
        self.phase = Phase.STOPPING
        self.kill_at = now + self.plan.grace
        return [
            Note(
                "grace_started",
                f"waiting up to {format_duration(self.plan.grace)} for the child to exit",
                {"grace": self.plan.grace},
            )
        ]

    def _escalate(self, now: float, why: str) -> list[Action]:
        self.phase = Phase.KILLING
        self.escalation = why
        self.kill_wait_end = now + self.plan.kill_wait
        if self.child_status is None:
            self.force_killed = True
        else:
            self.leftovers_killed = True
        return [Note("escalated", f"{why}: sending SIGKILL", {"reason": why}), KillAll()]
