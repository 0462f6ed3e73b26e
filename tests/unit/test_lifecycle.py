"""The supervision machine (gsup/lifecycle.py) for a single command, on a fake clock: no processes.

The same machine runs many programs: tests/unit/test_lifecycle_many.py.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gsup.lifecycle import (
    SAME_KEYPRESS,
    Action,
    Kill,
    Lifecycle,
    Note,
    Phase,
    Send,
    SendLeftovers,
    SuspendSelf,
)
from gsup.model import ChildStatus, Plan, ProgramSpec

TERM, INT, QUIT, HUP = signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP
T0 = 1000.0  # monotonic clocks do not start at 0
GRACE = 10.0
PID = 42
NAME = "main"


def _machine(
    *, terminal: bool = False, pid1: bool = True, stop_signal: Any = None, codes: Any = (), **plan: Any
) -> Lifecycle:
    """A machine for ``gsup -- server``, the server started at T0."""
    plan.setdefault("grace", GRACE)
    spec = ProgramSpec(
        argv=(b"server",), stop_signal=stop_signal, success_codes=frozenset(codes), prefix=None
    )
    m = Lifecycle(Plan(programs=(spec,), single=True, **plan), T0, terminal=terminal, pid1=pid1)
    m.begin(T0)
    m.on_started(NAME, PID, T0)
    return m


def phase(m: Lifecycle) -> Phase:
    """The machine's phase (a call, so that type checkers do not pin it between events)."""
    return m.phase


def sends(actions: Sequence[Action]) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def leftover_sends(actions: Sequence[Action]) -> list[SendLeftovers]:
    return [a for a in actions if isinstance(a, SendLeftovers)]


def kills(actions: Sequence[Action]) -> int:
    return sum(isinstance(a, Kill) for a in actions)


def notes(actions: Sequence[Action]) -> list[str]:
    return [a.kind for a in actions if isinstance(a, Note)]


def stop(sig: int) -> Send:
    """The stop signal for the child's group, with SIGCONT for a stopped child."""
    return Send(sig, NAME, True, cont=True)


def forward(sig: int) -> Send:
    return Send(sig, NAME, True)


def exits(m: Lifecycle, status: ChildStatus, now: float, *, others_remain: bool) -> list[Action]:
    return m.on_exit(NAME, status, now, group_left=others_remain, anything_left=others_remain)


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
    actions = exits(m, EXITED_0, T0 + 5, others_remain=False)
    assert m.done
    assert m.next_deadline() is None
    assert sends(actions) == [] and kills(actions) == 0
    assert not m.programs[NAME].force_killed and not m.stopping
    assert m.exit_code() == 0


def test_the_childs_own_status_is_gsups() -> None:
    """A child that exits on its own with 3 (or is killed by HUP) makes gsup exit 3 (or 129)."""
    m = _machine()
    exits(m, ChildStatus(code=3), T0 + 1, others_remain=False)
    assert m.exit_code() == 3
    m = _machine()
    exits(m, ChildStatus(signal=signal.SIGHUP), T0 + 1, others_remain=False)
    assert m.exit_code() == 128 + signal.SIGHUP


# -- the stop sequence ---------------------------------------------------------------


def test_first_term_sends_term_and_starts_the_grace() -> None:
    """The first TERM sends TERM to the child's group and sets the kill deadline to now+grace."""
    m = _machine()
    actions = m.on_signal(TERM, T0 + 3)
    assert sends(actions) == [stop(TERM)]
    assert kills(actions) == 0
    assert m.phase is Phase.STOPPING
    assert m.stopping
    assert m.kill_all_at == T0 + 3 + GRACE
    assert m.next_deadline() == T0 + 3 + GRACE
    assert (m.stop_received, m.programs[NAME].stop_sig) == (TERM, TERM)
    assert "grace_started" in notes(actions)


def test_the_received_note_comes_first_in_the_log() -> None:
    """The log says "received" before it says what was done about it (the loop sends first)."""
    m = _machine()
    assert notes(m.on_signal(TERM, T0))[0] == "signal_received"


@pytest.mark.parametrize("sig", [TERM, INT, QUIT])
def test_term_int_quit_all_stop(sig: signal.Signals) -> None:
    """TERM, INT and QUIT alike start the stop sequence, and the same signal is sent on."""
    m = _machine()
    assert sends(m.on_signal(sig, T0)) == [stop(sig)]
    assert m.phase is Phase.STOPPING


def test_child_exits_within_the_grace() -> None:
    """A child that exits before the deadline ends supervision, not force-killed."""
    m = _machine()
    m.on_signal(TERM, T0)
    actions = exits(m, KILLED_BY_TERM, T0 + GRACE - 0.001, others_remain=False)
    assert m.done
    assert not m.programs[NAME].force_killed
    assert kills(actions) == 0
    assert m.next_deadline() is None
    assert m.on_deadline(T0 + GRACE + 1) == []
    assert m.exit_code() == 143


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
    assert m.programs[NAME].force_killed
    assert m.escalation == "grace ran out"
    # Then the child is reaped, killed by gsup's SIGKILL, and nothing is left.
    exits(m, KILLED_BY_KILL, T0 + GRACE + 0.01, others_remain=False)
    assert m.done
    assert m.programs[NAME].force_killed
    assert m.exit_code() == 137


def test_kill_wait_gives_up() -> None:
    """If nothing is reaped within kill_wait after SIGKILL, supervision ends anyway (137)."""
    m = _machine(kill_wait=2.0)
    m.on_signal(TERM, T0)
    m.on_deadline(T0 + GRACE)
    assert m.next_deadline() == T0 + GRACE + 2.0
    assert m.on_deadline(T0 + GRACE + 1.9) == []
    actions = m.on_deadline(T0 + GRACE + 2.0)
    assert m.done
    assert "gave_up" in notes(actions)
    assert m.next_deadline() is None
    assert m.exit_code() == 137


def test_second_int_escalates_at_once() -> None:
    """A second INT (the second Ctrl+C) during the grace kills at once."""
    m = _machine()
    m.on_signal(INT, T0)
    actions = m.on_signal(INT, T0 + 0.5)
    assert kills(actions) == 1
    assert sends(actions) == []
    assert m.programs[NAME].force_killed
    assert m.escalation == "second SIGINT"


def test_two_ints_a_few_milliseconds_apart_are_one_ctrl_c() -> None:
    """The kernel's SIGINT and a wrapper's copy 3 ms later (timeout --foreground) are one Ctrl+C: the copy
    is neither forwarded nor an escalation; a real second Ctrl+C 300 ms later still force-kills."""
    m = _machine(terminal=True)
    m.on_signal(INT, T0, delivered=True)
    copy = m.on_signal(INT, T0 + 0.003, sender=77)
    assert kills(copy) == 0 and sends(copy) == []
    assert [
        n.fields.get("same_keypress") for n in copy if isinstance(n, Note) and n.kind == "repeat_ignored"
    ] == [True]
    assert not m.programs[NAME].force_killed and m.kill_all_at == T0 + GRACE
    assert kills(m.on_signal(INT, T0 + 0.3, delivered=True)) == 1


def test_a_second_int_past_the_same_keypress_window_escalates() -> None:
    """A second SIGINT just past SAME_KEYPRESS is a second Ctrl+C: it force-kills."""
    m = _machine(terminal=True)
    m.on_signal(INT, T0, delivered=True)
    assert kills(m.on_signal(INT, T0 + SAME_KEYPRESS + 0.001)) == 1


def test_two_ints_from_kill_a_few_milliseconds_apart_are_two() -> None:
    """Two SIGINTs sent with kill (no terminal's key), 3 ms apart, are a second INT: it force-kills."""
    m = _machine()
    m.on_signal(INT, T0, sender=5)
    assert kills(m.on_signal(INT, T0 + 0.003, sender=5)) == 1


def test_a_copy_of_the_ctrl_c_does_not_end_the_drain() -> None:
    """In the drain, a SIGINT 2 ms after the Ctrl+C is the same Ctrl+C: the drain goes on."""
    m = _machine(stop_delay=5.0, terminal=True, stop_signal=TERM)  # TERM: the drain is not skipped
    m.on_signal(INT, T0, delivered=True)
    assert sends(m.on_signal(INT, T0 + 0.002)) == []
    assert m.phase is Phase.DRAINING and m.drain_end == T0 + 5.0


@pytest.mark.parametrize("delivered", [False, True], ids=["from-kill", "from-the-terminal"])
def test_the_ctrl_c_hint_only_for_signals_from_a_terminal(delivered: bool) -> None:
    """A repeated stop signal is logged with "(Ctrl+C twice force-kills)" only when it came from a terminal's
    key (QUIT: Ctrl+\\), not from kill."""
    m = _machine(terminal=True)
    m.on_signal(QUIT, T0, delivered=delivered)
    note = next(
        n
        for n in m.on_signal(QUIT, T0 + 1, delivered=delivered)
        if isinstance(n, Note) and n.kind == "repeat_ignored"
    )
    assert ("Ctrl+C twice" in note.message) is delivered


@pytest.mark.parametrize(
    ("first", "stop_delay", "hint"),
    [(INT, 0.0, "Ctrl+C again to force"), (INT, 5.0, "Ctrl+C again to end the drain"), (TERM, 0.0, "")],
)
def test_the_countdown_hint_says_what_a_ctrl_c_would_do(first: int, stop_delay: float, hint: str) -> None:
    """After an INT a Ctrl+C would force (or end the drain); after a TERM it is only forwarded: no hint."""
    m = _machine(stop_delay=stop_delay)
    m.on_signal(first, T0)
    assert m.ctrl_c_hint == hint


def test_int_after_term_is_forwarded_not_an_escalation() -> None:
    """An INT after the stop began with TERM reaches the child; nothing is killed, the clock stays."""
    m = _machine()
    m.on_signal(TERM, T0)
    actions = m.on_signal(INT, T0 + 1)
    assert sends(actions) == [forward(INT)]
    assert kills(actions) == 0
    assert m.kill_all_at == T0 + GRACE
    assert not m.programs[NAME].killed


@pytest.mark.parametrize(("first", "then"), [(INT, TERM), (TERM, QUIT), (QUIT, TERM), (INT, QUIT)])
def test_another_stop_signal_during_the_stop_is_forwarded(
    first: signal.Signals, then: signal.Signals
) -> None:
    """A stop signal other than the one that began the stop is forwarded at once (a JVM gets its
    QUIT thread dump, a child that ignores INT learns that the engine sent TERM)."""
    m = _machine()
    m.on_signal(first, T0)
    actions = m.on_signal(then, T0 + 1)
    assert sends(actions) == [forward(then)]
    assert kills(actions) == 0
    assert "repeat_ignored" not in notes(actions)
    assert m.kill_all_at == T0 + GRACE  # the grace clock is not restarted
    assert m.stop_received == first


def test_int_then_term_then_the_childs_exit_is_not_a_force_kill() -> None:
    """INT then TERM, and the child exits on the TERM: exit 143, not force-killed."""
    m = _machine()
    m.on_signal(INT, T0)
    m.on_signal(TERM, T0 + 1)
    exits(m, KILLED_BY_TERM, T0 + 1.1, others_remain=False)
    assert m.done
    assert not m.programs[NAME].force_killed
    assert m.exit_code() == 143


@pytest.mark.parametrize("sig", [TERM, QUIT])
def test_an_exact_repeat_of_the_stop_signal_is_not_forwarded(sig: signal.Signals) -> None:
    """A repeated TERM (Heroku may send several) or QUIT is logged, not sent, not escalated."""
    m = _machine()
    m.on_signal(sig, T0)
    actions = m.on_signal(sig, T0 + 1)
    assert sends(actions) == []
    assert kills(actions) == 0
    assert "repeat_ignored" in notes(actions)
    assert m.kill_all_at == T0 + GRACE  # the grace clock is not restarted
    assert m.phase is Phase.STOPPING
    assert not m.programs[NAME].force_killed


def test_non_stop_signals_are_forwarded_during_the_grace() -> None:
    """During the grace other signals reach the child, in the order they came."""
    m = _machine()
    m.on_signal(INT, T0)
    order = [signal.SIGUSR2, QUIT, signal.SIGWINCH, signal.SIGCONT, signal.SIGUSR1, HUP, TERM]
    got = [s.sig for sig in order for s in sends(m.on_signal(sig, T0 + 1))]
    assert got == order


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
    assert sends(actions) == [stop(TERM)]
    assert phase(m) is Phase.STOPPING
    assert m.kill_all_at == T0 + 5 + GRACE


def test_non_stop_signal_is_forwarded_during_the_drain() -> None:
    """During the drain other signals are still forwarded and the drain is not shortened."""
    m = _machine(stop_delay=5.0)
    m.on_signal(TERM, T0)
    assert sends(m.on_signal(HUP, T0 + 1)) == [forward(HUP)]
    assert m.next_deadline() == T0 + 5


def test_another_stop_signal_during_the_drain_is_forwarded() -> None:
    """A TERM during a drain that INT began reaches the child at once; the drain goes on."""
    m = _machine(stop_delay=5.0)
    m.on_signal(INT, T0)
    assert sends(m.on_signal(TERM, T0 + 1)) == [forward(TERM)]
    assert m.phase is Phase.DRAINING
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
    assert sends(actions) == [stop(INT)]
    assert kills(actions) == 0
    assert not m.programs[NAME].force_killed
    assert m.phase is Phase.STOPPING
    assert m.kill_all_at == T0 + 1 + GRACE
    # A third INT is now a second INT during the grace: it force-kills.
    assert kills(m.on_signal(INT, T0 + 2)) == 1


def test_child_exit_during_the_drain() -> None:
    """A child that exits on its own during the drain ends supervision without a signal."""
    m = _machine(stop_delay=5.0)
    m.on_signal(TERM, T0)
    actions = exits(m, EXITED_0, T0 + 1, others_remain=False)
    assert m.done
    assert sends(actions) == [] and kills(actions) == 0


# -- which signal ---------------------------------------------------------------------


def test_stop_signal_option() -> None:
    """--stop-signal QUIT: a TERM from the platform makes gsup send QUIT."""
    m = _machine(stop_signal=QUIT)
    assert sends(m.on_signal(TERM, T0)) == [stop(QUIT)]
    assert (m.stop_received, m.programs[NAME].stop_sig) == (TERM, QUIT)


def test_rewrite_changes_the_stop_signal() -> None:
    """--rewrite TERM:QUIT (nginx-style): a TERM from the platform is sent on as QUIT."""
    m = _machine(rewrite=((TERM, QUIT),))
    assert sends(m.on_signal(TERM, T0)) == [stop(QUIT)]


def test_stop_signal_beats_rewrite() -> None:
    """When both are given, --stop-signal decides what the child gets on stop."""
    m = _machine(stop_signal=INT, rewrite=((TERM, QUIT),))
    assert sends(m.on_signal(TERM, T0)) == [stop(INT)]


def test_stop_signal_after_the_drain() -> None:
    """With a drain, the signal sent when it ends is still the --stop-signal."""
    m = _machine(stop_signal=QUIT, stop_delay=1.0)
    m.on_signal(TERM, T0)
    assert sends(m.on_deadline(T0 + 1)) == [stop(QUIT)]


def test_a_stop_signal_of_cont_is_not_followed_by_another_cont() -> None:
    """The SIGCONT after the stop signal is left out when the stop signal is SIGCONT itself."""
    m = _machine(stop_signal=signal.SIGCONT)
    assert sends(m.on_signal(TERM, T0)) == [Send(signal.SIGCONT, NAME, True, cont=False)]


# -- forwarding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sig", [HUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM]
)
def test_non_stop_signals_are_forwarded(sig: signal.Signals) -> None:
    """Every non-stop signal gsup receives is sent on to the child's group, once."""
    m = _machine()
    actions = m.on_signal(sig, T0)
    assert sends(actions) == [forward(sig)]
    assert m.phase is Phase.RUNNING


def test_forward_to_child_sends_to_the_process() -> None:
    """--forward-to child: forwarded signals and the stop signal go to the child's process only."""
    from gsup.model import ForwardTo

    m = _machine(forward_to=ForwardTo.CHILD)
    assert sends(m.on_signal(HUP, T0)) == [Send(HUP, NAME, False)]
    assert sends(m.on_signal(TERM, T0)) == [Send(TERM, NAME, False, cont=True)]
    assert not m.programs[NAME].group_signalled


def test_forwarded_signals_are_rewritten() -> None:
    """--rewrite HUP:USR1 forwards USR1 when gsup receives HUP, and other signals unchanged."""
    m = _machine(rewrite=((HUP, signal.SIGUSR1),))
    assert sends(m.on_signal(HUP, T0)) == [forward(signal.SIGUSR1)]
    assert sends(m.on_signal(signal.SIGUSR2, T0)) == [forward(signal.SIGUSR2)]


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
    assert m.kill_all_at == T0 + GRACE
    assert m.programs[NAME].stop_sig == INT
    assert m.programs[NAME].group_signalled  # the kernel sent it to the whole foreground group
    # The second Ctrl+C force-kills.
    assert kills(m.on_signal(INT, T0 + 1, delivered=True)) == 1


def test_a_terminal_stop_by_kill_goes_to_the_process() -> None:
    """At a terminal the child shares gsup's group: a TERM from kill is sent to its process."""
    m = _machine(terminal=True, pid1=False)
    assert sends(m.on_signal(TERM, T0)) == [Send(TERM, NAME, False, cont=True)]
    assert not m.programs[NAME].group_signalled


def test_delivered_stop_signal_is_still_rewritten() -> None:
    """With --stop-signal TERM, a Ctrl+C from the terminal still makes gsup send TERM."""
    m = _machine(terminal=True, stop_signal=TERM)
    assert sends(m.on_signal(INT, T0, delivered=True)) == [Send(TERM, NAME, False, cont=True)]


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
    assert sends(m.on_signal(sig, T0)) == [forward(sig)]


# -- exit status after a stop ---------------------------------------------------------------


def test_success_codes_count_only_after_a_stop() -> None:
    """--success-code 143 makes a stopped child's 143 a 0; the same status without a stop stays."""
    m = _machine(codes=[143])
    m.on_signal(TERM, T0)
    exits(m, ChildStatus(code=143), T0 + 1, others_remain=False)
    assert m.exit_code() == 0
    m = _machine(codes=[143])
    exits(m, ChildStatus(code=143), T0 + 1, others_remain=False)
    assert m.exit_code() == 143


def test_success_on_stop_counts_the_signal_received_and_the_one_sent() -> None:
    """--success-on-stop with --stop-signal QUIT: death by QUIT (sent) and by TERM (received) are 0."""
    for status in (ChildStatus(signal=signal.SIGQUIT), ChildStatus(code=128 + TERM)):
        m = _machine(stop_signal=QUIT, success_on_stop=True)
        m.on_signal(TERM, T0)
        exits(m, status, T0 + 1, others_remain=False)
        assert m.exit_code() == 0, status
    m = _machine(stop_signal=QUIT, success_on_stop=True)
    m.on_signal(TERM, T0)
    exits(m, ChildStatus(code=1), T0 + 1, others_remain=False)
    assert m.exit_code() == 1


# -- leftovers ---------------------------------------------------------------------------


def test_child_exits_leaving_descendants() -> None:
    """A child that exits leaving descendants: they get TERM now and SIGKILL after the grace."""
    m = _machine()
    actions = exits(m, EXITED_0, T0 + 1, others_remain=True)
    assert m.phase is Phase.LINGERING
    assert not m.done
    assert leftover_sends(actions) == [SendLeftovers(TERM, None, ())]
    assert m.next_deadline() == T0 + 1 + GRACE
    assert m.on_deadline(T0 + GRACE) == []
    actions = m.on_deadline(T0 + 1 + GRACE)
    assert kills(actions) == 1
    assert m.leftovers_killed
    assert not m.programs[NAME].force_killed  # the child itself was not killed by gsup
    assert not m.done
    m.on_all_gone(T0 + 1 + GRACE + 0.01)
    assert m.done
    assert m.next_deadline() is None
    assert m.exit_code() == 0


def test_leftovers_that_exit_in_time() -> None:
    """Descendants that exit within the grace end supervision without SIGKILL."""
    m = _machine()
    exits(m, EXITED_0, T0, others_remain=True)
    assert m.on_all_gone(T0 + 2) == []
    assert m.done
    assert not m.leftovers_killed


def test_leftovers_during_the_stop_keep_the_deadline() -> None:
    """When the child exits during the grace leaving descendants, the kill deadline is kept
    and only processes outside the child's group (already signalled) get the stop signal."""
    m = _machine(stop_signal=QUIT)
    m.on_signal(TERM, T0)
    actions = exits(m, KILLED_BY_TERM, T0 + 4, others_remain=True)
    assert m.phase is Phase.LINGERING
    assert leftover_sends(actions) == [SendLeftovers(QUIT, None, (PID,))]
    assert m.next_deadline() == T0 + GRACE
    assert kills(m.on_deadline(T0 + GRACE)) == 1
    assert not m.programs[NAME].force_killed
    assert m.leftovers_killed


@pytest.mark.parametrize("how", ["forward-to child", "terminal, stopped by kill"])
def test_leftovers_in_the_group_get_the_signal_the_group_never_got(how: str) -> None:
    """With --forward-to child, or at a terminal stopped by kill, the stop signal went to the
    child's process only: its leftovers, in its group or not, all get it before any SIGKILL."""
    from gsup.model import ForwardTo

    if how == "forward-to child":
        m = _machine(forward_to=ForwardTo.CHILD)
    else:
        m = _machine(terminal=True, pid1=False)
    m.on_signal(TERM, T0)
    actions = exits(m, KILLED_BY_TERM, T0 + 1, others_remain=True)
    assert leftover_sends(actions) == [SendLeftovers(TERM, None, ())]
    assert kills(actions) == 0


def test_second_int_while_lingering_escalates() -> None:
    """A second Ctrl+C while only descendants remain kills them at once."""
    m = _machine()
    m.on_signal(INT, T0)
    exits(m, ChildStatus(signal=signal.SIGINT), T0 + 1, others_remain=True)
    assert kills(m.on_signal(INT, T0 + 2)) == 1
    assert m.leftovers_killed and not m.programs[NAME].force_killed


def test_signals_are_not_forwarded_to_a_dead_child() -> None:
    """Once the child is gone, non-stop signals are logged but sent to no one."""
    m = _machine()
    exits(m, EXITED_0, T0, others_remain=True)
    assert sends(m.on_signal(HUP, T0 + 1)) == []
    assert sends(m.on_signal(TERM, T0 + 1)) == []


def test_child_reaped_after_sigkill_with_others_left() -> None:
    """After SIGKILL, the child's exit with others still alive waits for their reaping."""
    m = _machine()
    m.on_signal(TERM, T0)
    m.on_deadline(T0 + GRACE)
    actions = exits(m, KILLED_BY_KILL, T0 + GRACE, others_remain=True)
    assert sends(actions) == [] and kills(actions) == 0 and leftover_sends(actions) == []
    assert m.phase is Phase.KILLING
    m.on_all_gone(T0 + GRACE + 0.01)
    assert m.done


def test_leftovers_during_the_drain_get_the_rewritten_stop_signal() -> None:
    """Leftovers of a child that exits during the drain get the stop signal after --rewrite."""
    m = _machine(stop_delay=5.0, rewrite=((TERM, QUIT),))
    m.on_signal(TERM, T0)
    actions = exits(m, EXITED_0, T0 + 1, others_remain=True)
    assert leftover_sends(actions) == [SendLeftovers(QUIT, None, ())]


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
    spec = ProgramSpec(argv=(b"x",), prefix=None)
    m = Lifecycle(
        Plan(programs=(spec,), single=True, grace=grace, stop_delay=stop_delay),
        0.0,
        terminal=terminal,
        pid1=not terminal,
    )
    m.begin(0.0)
    m.on_started(NAME, PID, 0.0)
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
        assert m.stopping_since is not None
        assert killed_at <= m.stopping_since + stop_delay + grace + 1e-9
        assert m.programs[NAME].force_killed


@given(st.lists(st.sampled_from([TERM, INT, QUIT, HUP, signal.SIGUSR1, signal.SIGWINCH]), max_size=20))
def test_every_signal_but_the_exceptions_is_forwarded_once(signals: list[int]) -> None:
    """Over any sequence of signals, each one is sent on exactly once, except the one that began
    the stop (sent as the stop signal), its exact repeats, and a second INT (which kills)."""
    m = _machine()
    sent: list[int] = []
    expected: list[int] = []
    first = None
    for i, sig in enumerate(signals):
        if m.phase is not Phase.RUNNING and m.phase is not Phase.STOPPING:
            break
        actions = m.on_signal(sig, T0 + 0.1 * i)  # apart: two INTs at once are one Ctrl+C
        sent += [a.sig for a in sends(actions)]
        if sig in (TERM, INT, QUIT) and first is None:
            first = sig
            expected.append(sig)
        elif sig == first and sig == INT:
            assert kills(actions) == 1
            break
        elif sig != first:
            expected.append(sig)
    assert sent == expected
