"""The loop: turns syscalls into lifecycle events and actions into syscalls.

Owns: the one blocking wait (``poll`` on the signal inbox with the next
deadline as the timeout, ``None`` when there is none, so an idle gsup never
wakes up), who gets a forwarded signal, and who sends SIGKILL: ``kill_all``
is the only place gsup kills. Policy lives in ``lifecycle``; statuses come
from ``reaper``; exit codes from ``status``.

Two error regimes: before the child runs, typed errors (``gsup.errors``)
propagate with their exit codes. Once it runs, anything unexpected unwinds
through ``_cleanup_after_failure``, which SIGKILLs every process gsup
started and reaps them before the error reaches the CLI (exit 125).

Imports: the standard library, and gsup's core modules; psutil only where
the kernel cannot list a process's children.
"""

from __future__ import annotations

import math
import os
import select
import signal
import time
from typing import Callable, NamedTuple, Optional, Sequence

from gsup import reaper, spawn, status
from gsup.errors import GsupError
from gsup.lifecycle import Action, KillAll, Lifecycle, Note, Phase, Send, SuspendSelf, Target
from gsup.model import ChildStatus, ForwardTo, Outcome, Plan, Sink, StopCause
from gsup.signals import SignalInbox, block_signals

Clock = Callable[[], float]

#: A test-only fault: with GSUP_TEST_FAULT=signal the loop raises when a signal
#: (other than SIGCHLD) arrives, so tests can check the internal-failure path
#: (kill everything, reap, exit 125) with real processes and no mocks.
FAULT_ON_SIGNAL = os.environ.get("GSUP_TEST_FAULT") == "signal"


def injected_fault() -> None:
    if FAULT_ON_SIGNAL:
        raise RuntimeError("fault injected by GSUP_TEST_FAULT=signal")


def foreground_terminal() -> bool:
    """gsup runs in the foreground of the terminal on its stdin.

    Then the child stays in gsup's process group, the terminal's foreground
    job: it can read the terminal, and a key typed there (Ctrl+C, Ctrl+\\,
    Ctrl+Z) reaches it once, from the kernel, while gsup sees the same signal
    and runs the stop sequence. Anywhere else the child gets a group of its own.
    """
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


class _Tally:
    """What the loop counts for the report."""

    def __init__(self) -> None:
        self.orphans_reaped = 0
        self.leftovers_signalled = 0
        self.leftovers_killed = 0
        self.leftovers_surviving = 0


class Spawned(NamedTuple):
    """A started child, handed from the start to the loop (maybe across exec)."""

    pid: int
    terminal: bool
    started: float


def supervise(plan: Plan, sink: Sink, clock: Clock = time.monotonic) -> Outcome:
    """Run the plan to the end and say what happened.

    Raises a ``GsupError`` when the program cannot be started; any other
    exception means gsup failed, after everything it started was killed.
    The signal mask is as before when it returns.
    """
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        if plan.programs:
            return supervise_many(plan, sink, clock)
        return supervise_spawned(plan, sink, start(plan, clock), clock)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def start(plan: Plan, clock: Clock = time.monotonic) -> Spawned:
    """Start the one program of *plan*, with every catchable signal blocked.

    The mask stays: a signal that arrives from now on waits, pending, for the
    loop (in this process, or in the lean one it execs into: a blocked mask
    and pending signals survive execve).
    """
    spec = plan.program
    credentials = spawn.resolve_user(spec.user) if spec.user else None
    env = spawn.inherited_environment()
    env.update(spec.env or {})
    block_signals()
    reaper.become_subreaper()
    terminal = foreground_terminal()
    started = clock()
    try:
        pid = spawn.spawn(
            spec,
            own_group=not terminal,
            env=env,
            credentials=credentials,
            parent_death_signal=plan.parent_death_signal,
        )
    except GsupError as e:
        if e.pid is not None:
            reaper.collect(e.pid)  # the failed child exits right after reporting
        raise
    return Spawned(pid, terminal, started)


def supervise_spawned(plan: Plan, sink: Sink, spawned: Spawned, clock: Clock = time.monotonic) -> Outcome:
    """Supervise the child ``start`` started, to the end."""
    with SignalInbox() as inbox:
        run = _Run(plan, sink, clock, inbox, spawned.pid, terminal=spawned.terminal, started=spawned.started)
        try:
            return run.loop()
        except BaseException:
            run.kill_all()
            reap_remaining(inbox, plan.kill_wait)
            raise


def supervise_many(plan: Plan, sink: Sink, clock: Clock = time.monotonic) -> Outcome:
    """Supervise the programs of a TOML plan, to the end."""
    from gsup.many import ManyRun

    with SignalInbox() as inbox:
        reaper.become_subreaper()
        run = ManyRun(plan, sink, clock, inbox)
        try:
            return run.loop()
        except BaseException:
            run.kill_everything()
            reap_remaining(inbox, plan.kill_wait)
            raise


def reap_remaining(inbox: SignalInbox, seconds: float) -> None:
    """After SIGKILL: reap until no child is left, or *seconds* have passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _, remain = reaper.reap()
        if not remain:
            return
        select.select([inbox.fd], [], [], min(0.05, max(0.0, deadline - time.monotonic())))
        inbox.read()


class _Run:
    """The state of one supervision that the pure lifecycle does not own."""

    def __init__(
        self,
        plan: Plan,
        sink: Sink,
        clock: Clock,
        inbox: SignalInbox,
        pid: int,
        *,
        terminal: bool,
        started: float,
    ) -> None:
        self.plan, self.sink, self.clock, self.inbox = plan, sink, clock, inbox
        self.pid = pid
        self.pgid = os.getpgrp() if terminal else pid
        self.terminal = terminal
        self.started = started
        self.machine = Lifecycle(plan, started, terminal=terminal, pid1=os.getpid() == 1)
        self.child_alive = True
        self.tally = _Tally()
        self.killed: set[int] = set()  # every pid gsup SIGKILLed, but the child
        self.redraw_at: Optional[float] = None
        self.countdown_on = True
        sink.event(
            "started",
            f"started pid {pid}: {plan.program.display}",
            pid=pid,
            command=plan.program.display,
            grace=plan.grace,
            terminal=terminal,
        )

    # -- the loop ------------------------------------------------------------

    def loop(self) -> Outcome:
        poller = select.poll()
        poller.register(self.inbox.fd, select.POLLIN)
        self._wake()  # the child may have died before the first wait
        while not self.machine.done:
            poller.poll(self._timeout_ms())
            self._wake()
        return self._outcome()

    def _timeout_ms(self) -> Optional[int]:
        due = [d for d in (self.machine.next_deadline(), self.redraw_at) if d is not None]
        if not due:
            return None  # idle: block until a signal arrives, however long
        # Round up: waking a millisecond early would only mean a second wake-up.
        return max(0, math.ceil((min(due) - self.clock()) * 1000))

    def _wake(self) -> None:
        now = self.clock()
        for rec in self.inbox.read():
            if rec.signo == signal.SIGCHLD:
                continue  # statuses are collected below, on every wake-up
            injected_fault()
            self._act(
                self.machine.on_signal(
                    rec.signo, now, delivered=self.terminal and rec.from_kernel, sender=rec.sender
                )
            )
        exited, remain = reaper.reap()
        now = self.clock()
        for pid, wait_status in exited:
            if pid == self.pid:
                self.child_alive = False
                self._act(
                    self.machine.on_child_exit(ChildStatus.from_wait(wait_status), now, others_remain=remain)
                )
            else:
                self.tally.orphans_reaped += 1
                self.sink.event(
                    "orphan_reaped",
                    f"reaped pid {pid}: {ChildStatus.from_wait(wait_status).describe()}",
                    pid=pid,
                )
        if remain and self.machine.phase is Phase.KILLING:
            # Something forked past the kill (a fork loop in a session of its
            # own): kill again at each exit until nothing is left.
            self.kill_all()
        if not remain and not self.child_alive:
            self._act(self.machine.on_all_gone(now))
        self._act(self.machine.on_deadline(self.clock()))
        self._countdown()

    def _countdown(self) -> None:
        m = self.machine
        if not self.countdown_on or m.phase not in (
            Phase.DRAINING,
            Phase.STOPPING,
            Phase.LINGERING,
        ):
            return
        now = self.clock()
        if self.redraw_at is not None and now < self.redraw_at:
            return
        if m.phase is Phase.DRAINING and m.drain_end is not None:
            remaining, total, label = m.drain_end - now, self.plan.stop_delay, "draining"
        else:
            assert m.kill_at is not None  # set whenever the phase is STOPPING/LINGERING
            remaining, total, label = m.kill_at - now, self.plan.grace, "SIGKILL in"
        again = self.sink.countdown(max(0.0, remaining), total, label)
        self.redraw_at = None if again is None else now + again
        self.countdown_on = again is not None

    # -- actions -------------------------------------------------------------

    def _act(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Note):
                self.sink.event(action.kind, action.message, **action.fields)
            elif isinstance(action, Send):
                self._send(action)
            elif isinstance(action, KillAll):
                self.kill_all()
            elif isinstance(action, SuspendSelf):
                os.kill(os.getpid(), signal.SIGSTOP)

    def _send(self, action: Send) -> None:
        if action.target is Target.LEFTOVERS:
            for pid in descendants():
                if action.outside_group_only and _pgid(pid) == self.pgid:
                    continue
                if signal_pid(pid, action.sig):
                    self.tally.leftovers_signalled += 1
            return
        if self.plan.forward_to is ForwardTo.CHILD or self.terminal or action.target is Target.CHILD:
            if self.child_alive:
                signal_pid(self.pid, action.sig)
            return
        try:
            os.killpg(self.pgid, action.sig)
        except ProcessLookupError:
            pass  # the whole group is gone already

    def kill_all(self) -> None:
        """SIGKILL the child's group and every descendant, however detached.

        The group first: one syscall, at the deadline, that reaches every
        member at once, so a forking job cannot outrun it and the timing does
        not depend on how long a /proc scan takes. Then every descendant
        still found (those that left the group with setsid); rounds
        repeat while new ones appear, since a process may fork between the
        scan and the kill. Processes already dead but not yet reaped count as
        killed: the group kill got them.
        """
        if not self.terminal:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        elif self.child_alive:
            signal_pid(self.pid, signal.SIGKILL)
        fresh = kill_descendants() - self.killed - {self.pid}
        self.killed |= fresh
        self.tally.leftovers_killed = len(self.killed)
        if fresh:
            self.sink.event("leftovers_killed", f"killed {len(fresh)} leftover process(es)", count=len(fresh))

    # -- the result ------------------------------------------------------------

    def _outcome(self) -> Outcome:
        m = self.machine
        child = m.child_status
        if child is None:  # gave up waiting after SIGKILL: the child is unkillable
            child = ChildStatus(signal=signal.SIGKILL)
        if m.phase is Phase.DONE and self.machine.kill_wait_end is not None:
            _, remain = reaper.reap()
            if remain:
                self.tally.leftovers_surviving = len(descendants())
        code = status.exit_status(
            child,
            force_killed=m.force_killed,
            stop_requested=m.stopping,
            stop_signals=[s for s in (m.stop_received, m.stop_sent) if s is not None],
            success_codes=self.plan.success_codes,
            success_on_stop=self.plan.success_on_stop,
        )
        end = m.child_exited_at if m.child_exited_at is not None else self.clock()
        return Outcome(
            exit_code=code,
            cause=StopCause.SIGNAL if m.stopping else StopCause.CHILD_EXIT,
            program=self.plan.program,
            pid=self.pid,
            status=child,
            stop_signal_received=m.stop_received,
            stop_signal_sender=m.stop_sender,
            stop_signal_sent=m.stop_sent,
            stop_seconds=None if m.stop_requested_at is None else end - m.stop_requested_at,
            ran_seconds=end - self.started,
            force_killed=m.force_killed,
            escalation=m.escalation,
            grace=self.plan.grace,
            leftovers_signalled=self.tally.leftovers_signalled,
            leftovers_killed=self.tally.leftovers_killed,
            leftovers_surviving=self.tally.leftovers_surviving,
            orphans_reaped=self.tally.orphans_reaped,
        )


# -- process helpers (psutil is imported only when there is a process to find) --


def kill_descendants(root: Optional[int] = None) -> set[int]:
    """SIGKILL every descendant of *root* (default: gsup); return their pids.

    Rounds repeat while new ones appear: a process may fork between the scan
    and the kill. Processes dead but not yet reaped are counted too.
    """
    seen: set[int] = set()
    for _ in range(100):
        fresh = [pid for pid in descendants(root) if pid not in seen]
        if not fresh:
            break
        for pid in fresh:
            seen.add(pid)
            signal_pid(pid, signal.SIGKILL)
    return seen


def descendants(root: Optional[int] = None) -> list[int]:
    """The pids of every live or unreaped descendant of *root* (default: gsup).

    Walks /proc/PID/task/TID/children from *root* down: it reads only the
    tree, so its cost does not grow with the other processes on the host (a
    scan of every process, as psutil's ``children()`` does, took 0.76 s with
    10,000 of them, all of it after the deadline). It is complete for gsup:
    as PID 1 or a subreaper every orphan of the tree is reparented to gsup.
    Where the kernel lacks that file, psutil finds them instead.
    """
    if not _PROC_CHILDREN:
        return _descendants_psutil(root)
    found: list[int] = []
    stack = [os.getpid() if root is None else root]
    while stack:
        pid = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone meanwhile
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            stack += kids
    return found


_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _descendants_psutil(root: Optional[int]) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return []


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


def signal_pid(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
