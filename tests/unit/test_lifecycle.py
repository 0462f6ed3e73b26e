"""The stop policy (gsup/lifecycle.py) on a fake clock: plain floats, no processes."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gsup.lifecycle import Action, KillAll, Lifecycle, Note, Phase, Send, SuspendSelf, Target
from gsup.model import ChildStatus, Plan, ProgramSpec

TERM, INT, QUIT, HUP = signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP
T0 = 1000.0  # monotonic clocks do not start at 0
GRACE = 10.0


def _machine(*, terminal: bool = False, pid1: bool = True, **plan: Any) -> Lifecycle:
    plan.setdefault("grace", GRACE)
    spec = ProgramSpec(argv=(b"server",))
    return Lifecycle(Plan(program=spec, **plan), T0, terminal=terminal, pid1=pid1)


def phase(m: Lifecycle) -> Phase:
    """The machine's phase (a call, so that type checkers do not pin it between events)."""
    return m.phase


def sends(actions: Sequence[Action]) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def kills(actions: Sequence[Action]) -> int:
    return sum(isinstance(a, KillAll) for a in actions)


def notes(actions: Sequence[Action]) -> list[str]:
    return [a.kind for a in actions if isinstance(a, Note)]


EXITED_0 = ChildStatus(code=0)
KILLED_BY_TERM = ChildStatus(signal=signal.SIGTERM)
KILLED_BY_KILL = ChildStatus(signal=signal.SIGKILL)


# -- idle --------------------------------------------------------------------------


def test_idle_has_no_deadline() -> None:
    """While nothing is happening there is no deadline: the loop blocks with no timeout."""
    m = _machine()
    assert m.phase is Phase.RUNNING
    assert m.next_deadline() is None
    assert m.on_deadline(T0 + 1e6) == []
    assert m.next_deadline() is None


def test_forwarding_keeps_the_machine_idle() -> None:
    """Forwarding a non-stop signal sets no deadline (still 0 wake-ups while idle)."""
    m = _machine()
    for sig in (HUP, signal.SIGUSR1, signal.SIGWINCH, signal.SIGCONT):
        m.on_signal(sig, T0 + 1)
    assert m.phase is Phase.RUNNING
    assert m.next_deadline() is None


def test_no_deadline_once_done() -> None:
    """After the child exited on its own with nothing left, supervision is over: no deadline."""
    m = _machine()
    actions = m.on_child_exit(EXITED_0, T0 + 5, others_remain=False)
    assert m.done
    assert m.next_deadline() is None
    assert sends(actions) == [] and kills(actions) == 0
    assert not m.force_killed and not m.stopping


# -- the stop sequence ---------------------------------------------------------------


def test_first_term_sends_term_and_starts_the_grace() -> None:
    """The first TERM sends TERM to the child's group and sets the kill deadline to now+grace."""
    m = _machine()
    actions = m.on_signal(TERM, T0 + 3)
    assert sends(actions) == [Send(TERM, Target.GROUP)]
    assert kills(actions) == 0
    assert m.phase is Phase.STOPPING
    assert m.stopping
    assert m.kill_at == T0 + 3 + GRACE
    assert m.next_deadline() == T0 + 3 + GRACE
    assert (m.stop_received, m.stop_sent) == (TERM, TERM)
    assert "grace_started" in notes(actions)


@pytest.mark.parametrize("sig", [TERM, INT, QUIT])
def test_term_int_quit_all_stop(sig: signal.Signals) -> None:
    """TERM, INT and QUIT alike start the stop sequence, and the same signal is sent on."""
    m = _machine()
    assert sends(m.on_signal(sig, T0)) == [Send(sig, Target.GROUP)]
    assert m.phase is Phase.STOPPING


def test_child_exits_within_the_grace() -> None:
    """A child that exits before the deadline ends supervision, not force-killed."""
    m = _machine()
    m.on_signal(TERM, T0)
    actions = m.on_child_exit(KILLED_BY_TERM, T0 + GRACE - 0.001, others_remain=False)
    assert m.done
    assert not m.force_killed
    assert kills(actions) == 0
    assert m.next_deadline() is None
    assert m.on_deadline(T0 + GRACE + 1) == []


def test_deadline_not_yet_due() -> None:
    """Before the kill deadline, waking up does nothing."""
    m = _machine()
    m.on_signal(TERM, T0)
    assert m.on_deadline(T0 + GRACE - 0.001) == []
    assert m.phase is Phase.STOPPING


def test_grace_runs_out() -> None:
    """At the kill deadline gsup kills everything and the outcome is force-killed."""
    m = _machine()
    m.on_signal(TERM, T0)
    actions = m.on_deadline(T0 + GRACE)
    assert kills(actions) == 1
    assert m.phase is Phase.KILLING
    assert m.force_killed
    assert m.escalation == "grace ran out"
    # Then the child is reaped, killed by gsup's SIGKILL, and nothing is left.
    m.on_child_exit(KILLED_BY_KILL, T0 + GRACE + 0.01, others_remain=False)
    assert m.done
    assert m.force_killed


def test_kill_wait_gives_up() -> None:
    """If nothing is reaped within kill_wait after SIGKILL, supervision ends anyway."""
    m = _machine(kill_wait=2.0)
    m.on_signal(TERM, T0)
    m.on_deadline(T0 + GRACE)
    assert m.next_deadline() == T0 + GRACE + 2.0
    assert m.on_deadline(T0 + GRACE + 1.9) == []
    actions = m.on_deadline(T0 + GRACE + 2.0)
    assert m.done
    assert "gave_up" in notes(actions)
    assert m.next_deadline() is None


def test_second_int_escalates_at_once() -> None:
    """A second INT (the second Ctrl+C) during the grace kills at once."""
    m = _machine()
    m.on_signal(INT, T0)
    actions = m.on_signal(INT, T0 + 0.5)
    assert kills(actions) == 1
    assert sends(actions) == []
    assert m.force_killed
    assert m.escalation == "second SIGINT"


def test_int_after_term_escalates() -> None:
    """An INT after the stop started with TERM also force-kills (Ctrl+C during a stop)."""
    m = _machine()
    m.on_signal(TERM, T0)
    assert kills(m.on_signal(INT, T0 + 1)) == 1


@pytest.mark.parametrize("again", [TERM, QUIT])
def test_repeated_stop_signal_is_ignored(again: signal.Signals) -> None:
    """A repeated TERM (Heroku may send several) or QUIT is logged, not sent, not escalated."""
    m = _machine()
    m.on_signal(TERM, T0)
    actions = m.on_signal(again, T0 + 1)
    assert sends(actions) == []
    assert kills(actions) == 0
    assert "repeat_ignored" in notes(actions)
    assert m.kill_at == T0 + GRACE  # the grace clock is not restarted
    assert m.phase is Phase.STOPPING
    assert not m.force_killed


# -- the drain ------------------------------------------------------------------------


def test_stop_delay_drains_before_signalling() -> None:
    """With --stop-delay, the child gets nothing until the drain ends, then the grace starts."""
    m = _machine(stop_delay=5.0)
    actions = m.on_signal(TERM, T0)
    assert sends(actions) == []
    assert m.phase is Phase.DRAINING
    assert m.next_deadline() == T0 + 5
    assert m.on_deadline(T0 + 4.999) == []
    actions = m.on_deadline(T0 + 5)
    assert sends(actions) == [Send(TERM, Target.GROUP)]
    assert phase(m) is Phase.STOPPING
    assert m.kill_at == T0 + 5 + GRACE


def test_non_stop_signal_is_forwarded_during_the_drain() -> None:
    """During the drain other signals are still forwarded and the drain is not shortened."""
    m = _machine(stop_delay=5.0)
    m.on_signal(TERM, T0)
    assert sends(m.on_signal(HUP, T0 + 1)) == [Send(HUP, Target.GROUP)]
    assert m.next_deadline() == T0 + 5


def test_repeated_term_during_the_drain_is_ignored() -> None:
    """A repeated TERM during the drain neither signals the child nor ends the drain."""
    m = _machine(stop_delay=5.0)
    m.on_signal(TERM, T0)
    assert sends(m.on_signal(TERM, T0 + 1)) == []
    assert m.phase is Phase.DRAINING


def test_second_int_during_the_drain_ends_it() -> None:
    """A second INT during the drain sends the stop signal at once, without killing."""
    m = _machine(stop_delay=5.0)
    m.on_signal(INT, T0)
    actions = m.on_signal(INT, T0 + 1)
    assert sends(actions) == [Send(INT, Target.GROUP)]
    assert kills(actions) == 0
    assert not m.force_killed
    assert m.phase is Phase.STOPPING
    assert m.kill_at == T0 + 1 + GRACE
    # A third INT is now a second INT during the grace: it force-kills.
    assert kills(m.on_signal(INT, T0 + 2)) == 1


def test_child_exit_during_the_drain() -> None:
    """A child that exits on its own during the drain ends supervision without a signal."""
    m = _machine(stop_delay=5.0)
    m.on_signal(TERM, T0)
    actions = m.on_child_exit(EXITED_0, T0 + 1, others_remain=False)
    assert m.done
    assert sends(actions) == [] and kills(actions) == 0


# -- which signal ---------------------------------------------------------------------


def test_stop_signal_option() -> None:
    """--stop-signal QUIT: a TERM from the platform makes gsup send QUIT."""
    m = _machine(stop_signal=QUIT)
    assert sends(m.on_signal(TERM, T0)) == [Send(QUIT, Target.GROUP)]
    assert (m.stop_received, m.stop_sent) == (TERM, QUIT)


def test_rewrite_changes_the_stop_signal() -> None:
    """--rewrite TERM:QUIT (nginx-style): a TERM from the platform is sent on as QUIT."""
    m = _machine(rewrite=((TERM, QUIT),))
    assert sends(m.on_signal(TERM, T0)) == [Send(QUIT, Target.GROUP)]


def test_stop_signal_beats_rewrite() -> None:
    """When both are given, --stop-signal decides what the child gets on stop."""
    m = _machine(stop_signal=INT, rewrite=((TERM, QUIT),))
    assert sends(m.on_signal(TERM, T0)) == [Send(INT, Target.GROUP)]


def test_stop_signal_after_the_drain() -> None:
    """With a drain, the signal sent when it ends is still the --stop-signal."""
    m = _machine(stop_signal=QUIT, stop_delay=1.0)
    m.on_signal(TERM, T0)
    assert sends(m.on_deadline(T0 + 1)) == [Send(QUIT, Target.GROUP)]


# -- forwarding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sig", [HUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM]
)
def test_non_stop_signals_are_forwarded(sig: signal.Signals) -> None:
    """Every non-stop signal gsup receives is sent on to the child's group, once."""
    m = _machine()
    actions = m.on_signal(sig, T0)
    assert sends(actions) == [Send(sig, Target.GROUP)]
    assert m.phase is Phase.RUNNING


def test_forwarded_signals_are_rewritten() -> None:
    """--rewrite HUP:USR1 forwards USR1 when gsup receives HUP, and other signals unchanged."""
    m = _machine(rewrite=((HUP, signal.SIGUSR1),))
    assert sends(m.on_signal(HUP, T0)) == [Send(signal.SIGUSR1, Target.GROUP)]
    assert sends(m.on_signal(signal.SIGUSR2, T0)) == [Send(signal.SIGUSR2, Target.GROUP)]


@pytest.mark.parametrize("sig", [HUP, signal.SIGWINCH, signal.SIGCONT])
def test_delivered_signals_are_not_forwarded(sig: signal.Signals) -> None:
    """A signal the terminal already delivered to the child's group is not sent a second time."""
    m = _machine(terminal=True)
    assert sends(m.on_signal(sig, T0, delivered=True)) == []


def test_ctrl_c_reaches_the_child_once() -> None:
    """A Ctrl+C typed at the terminal starts the grace but gsup does not send INT again."""
    m = _machine(terminal=True, pid1=False, stop_delay=5.0)
    actions = m.on_signal(INT, T0, delivered=True)
    assert sends(actions) == []
    assert m.phase is Phase.STOPPING  # no drain: the child already has the signal
    assert m.kill_at == T0 + GRACE
    assert m.stop_sent == INT
    # The second Ctrl+C force-kills.
    assert kills(m.on_signal(INT, T0 + 1, delivered=True)) == 1


def test_delivered_stop_signal_is_still_rewritten() -> None:
    """With --stop-signal TERM, a Ctrl+C from the terminal still makes gsup send TERM."""
    m = _machine(terminal=True, stop_signal=TERM)
    assert sends(m.on_signal(INT, T0, delivered=True)) == [Send(TERM, Target.GROUP)]


def test_ctrl_z_suspends_gsup_at_a_terminal() -> None:
    """Ctrl+Z at a terminal (not as PID 1) suspends gsup itself after the child."""
    m = _machine(terminal=True, pid1=False)
    actions = m.on_signal(signal.SIGTSTP, T0, delivered=True)
    assert any(isinstance(a, SuspendSelf) for a in actions)
    assert sends(actions) == []
    as_pid1 = _machine(terminal=True, pid1=True).on_signal(signal.SIGTSTP, T0, delivered=True)
    assert not any(isinstance(a, SuspendSelf) for a in as_pid1)


def test_realtime_signals_are_forwarded() -> None:
    """A real-time signal (SIGRTMIN+6, not a signal.Signals member) is forwarded like any other."""
    sig = int(signal.SIGRTMIN) + 6
    m = _machine()
    assert sends(m.on_signal(sig, T0)) == [Send(sig, Target.GROUP)]


# -- leftovers ---------------------------------------------------------------------------


def test_child_exits_leaving_descendants() -> None:
    """A child that exits leaving descendants: they get TERM now and SIGKILL after the grace."""
    m = _machine()
    actions = m.on_child_exit(EXITED_0, T0 + 1, others_remain=True)
    assert m.phase is Phase.LINGERING
    assert not m.done
    assert sends(actions) == [Send(TERM, Target.LEFTOVERS, outside_group_only=False)]
    assert m.next_deadline() == T0 + 1 + GRACE
    assert m.on_deadline(T0 + GRACE) == []
    actions = m.on_deadline(T0 + 1 + GRACE)
    assert kills(actions) == 1
    assert m.leftovers_killed
    assert not m.force_killed  # the child itself was not killed by gsup
    assert not m.done
    m.on_all_gone(T0 + 1 + GRACE + 0.01)
    assert m.done
    assert m.next_deadline() is None


def test_leftovers_that_exit_in_time() -> None:
    """Descendants that exit within the grace end supervision without SIGKILL."""
    m = _machine()
    m.on_child_exit(EXITED_0, T0, others_remain=True)
    assert m.on_all_gone(T0 + 2) == []
    assert m.done
    assert not m.leftovers_killed


def test_leftovers_during_the_stop_keep_the_deadline() -> None:
    """When the child exits during the grace leaving descendants, the kill deadline is kept
    and only processes outside the child's group (already signalled) get the stop signal."""
    m = _machine(stop_signal=QUIT)
    m.on_signal(TERM, T0)
    actions = m.on_child_exit(KILLED_BY_TERM, T0 + 4, others_remain=True)
    assert m.phase is Phase.LINGERING
    assert sends(actions) == [Send(QUIT, Target.LEFTOVERS, outside_group_only=True)]
    assert m.next_deadline() == T0 + GRACE
    assert kills(m.on_deadline(T0 + GRACE)) == 1
    assert not m.force_killed
    assert m.leftovers_killed


def test_second_int_while_lingering_escalates() -> None:
    """A second Ctrl+C while only descendants remain kills them at once."""
    m = _machine()
    m.on_signal(INT, T0)
    m.on_child_exit(ChildStatus(signal=signal.SIGINT), T0 + 1, others_remain=True)
    assert kills(m.on_signal(INT, T0 + 2)) == 1
    assert m.leftovers_killed and not m.force_killed


def test_signals_are_not_forwarded_to_a_dead_child() -> None:
    """Once the child is gone, non-stop signals are logged but sent to no one."""
    m = _machine()
    m.on_child_exit(EXITED_0, T0, others_remain=True)
    assert sends(m.on_signal(HUP, T0 + 1)) == []
    assert sends(m.on_signal(TERM, T0 + 1)) == []


def test_child_reaped_after_sigkill_with_others_left() -> None:
    """After SIGKILL, the child's exit with others still alive waits for their reaping."""
    m = _machine()
    m.on_signal(TERM, T0)
    m.on_deadline(T0 + GRACE)
    actions = m.on_child_exit(KILLED_BY_KILL, T0 + GRACE, others_remain=True)
    assert sends(actions) == [] and kills(actions) == 0
    assert m.phase is Phase.KILLING
    m.on_all_gone(T0 + GRACE + 0.01)
    assert m.done


def test_leftovers_during_the_drain_get_the_rewritten_stop_signal() -> None:
    """Leftovers of a child that exits during the drain get the stop signal after --rewrite."""
    m = _machine(stop_delay=5.0, rewrite=((TERM, QUIT),))
    m.on_signal(TERM, T0)
    actions = m.on_child_exit(EXITED_0, T0 + 1, others_remain=True)
    assert sends(actions) == [Send(QUIT, Target.LEFTOVERS, outside_group_only=False)]


# -- properties -------------------------------------------------------------------------

_events = st.lists(
    st.one_of(
        st.tuples(st.just("signal"), st.sampled_from([TERM, INT, QUIT, HUP]), st.booleans()),
        st.tuples(st.just("tick"), st.floats(min_value=0, max_value=30), st.just(False)),
    ),
    max_size=12,
)


@given(
    _events,
    st.floats(min_value=0, max_value=10),
    st.floats(min_value=0, max_value=20),
    st.booleans(),
)
def test_sigkill_is_never_late(
    events: list[tuple[str, Any, bool]], stop_delay: float, grace: float, terminal: bool
) -> None:
    """Whatever signals arrive, with a loop that wakes at each next_deadline(), SIGKILL comes
    no later than stop request + stop delay + grace, and a deadline exists whenever a stop is
    under way (and none while idle)."""
    m = Lifecycle(
        Plan(program=ProgramSpec(argv=(b"x",)), grace=grace, stop_delay=stop_delay),
        0.0,
        terminal=terminal,
        pid1=not terminal,
    )
    now = 0.0
    killed_at = None

    def act(actions: Sequence[Action]) -> None:
        nonlocal killed_at
        if kills(actions) and killed_at is None:
            killed_at = now

    for kind, value, delivered in events:
        if kind == "signal":
            act(m.on_signal(value, now, delivered=delivered and terminal))
        else:
            target = now + value
            due = m.next_deadline()
            while due is not None and due <= target:  # the loop wakes at each deadline
                now = due
                act(m.on_deadline(now))
                due = m.next_deadline()
            now = target
        deadline = m.next_deadline()
        if m.phase in (Phase.RUNNING, Phase.DONE):
            assert deadline is None
        else:
            assert deadline is not None
    if killed_at is not None:
        assert m.stop_requested_at is not None
        assert killed_at <= m.stop_requested_at + stop_delay + grace + 1e-9
        assert m.force_killed
