"""The loop: turns syscalls into lifecycle events and actions into syscalls.

Owns: the one blocking wait, for one program or many. ``poll`` waits on the
signal inbox, the programs' output pipes and gsup's own stdout and stderr
when they are full, with the next deadline as the timeout (``None`` when
there is none, so an idle gsup never wakes up). It starts programs and
readiness attempts, routes every reaped status (a program's, an attempt's,
an orphan's), sends what the machine asks to whom, and counts what the
report says. Policy lives in ``lifecycle``; statuses come from ``reaper``;
signals and SIGKILL go out through ``procs``; exit codes from ``status``.

The loop carries out a batch of actions in two passes: first every signal,
kill and start, then the log lines about them, so a forwarded signal never
waits for gsup's own writing.

Two error regimes: before a program runs, typed errors (``gsup.errors``)
propagate with their exit codes. Once one runs, anything unexpected unwinds
through ``run``'s handler, which SIGKILLs every process gsup started and
reaps them before the error reaches the CLI (exit 125).

Imports: the standard library and gsup's core modules.
"""

from __future__ import annotations

import math
import os
import re
import select
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional, Union

from gsup import procs, reaper, spawn
from gsup.errors import GsupError
from gsup.lifecycle import (
    Action,
    Kill,
    KillLeftovers,
    KillPreStops,
    Lifecycle,
    Note,
    Phase,
    PreStop,
    Probe,
    Send,
    SendLeftovers,
    Start,
    SuspendSelf,
)
from gsup.model import ChildStatus, Outcome, Plan, ProgramOutcome, ProgramSpec, Sink, StopCause
from gsup.output import HIGH_WATER, LOW_WATER, JsonLines, LineBuffer, Prefixer, QueuedText, Writer
from gsup.signals import SignalInbox, block_signals, open_inbox

if TYPE_CHECKING:
    from gsup.health import Endpoint
    from gsup.readiness import Attempt

Clock = Callable[[], float]
_POLL_MAX_MS = 2**31 - 1


def foreground_terminal() -> bool:
    """gsup runs in the foreground of the terminal on its stdin.

    Then a single command stays in gsup's process group, the terminal's
    foreground job: it can read the terminal, and a key typed there (Ctrl+C,
    Ctrl+\\, Ctrl+Z) reaches it once, from the kernel, while gsup sees the
    same signal and runs the stop sequence. Anywhere else, and for many
    programs always, each program gets a group of its own.
    """
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


class Started(NamedTuple):
    """A program started before the loop (the single command, maybe across exec)."""

    name: str
    pid: int
    at: float


class Prepared(NamedTuple):
    """What ``prepare`` did, handed to the loop (maybe across exec)."""

    #: The identity each program runs as, by name (absent: gsup's own).
    credentials: Mapping[str, spawn.Credentials]
    terminal: bool
    started: Optional[Started]
    #: The health endpoint's listening socket, bound before anything started.
    health_fd: Optional[int] = None
    #: A single command with ``--ready log=``: the read ends of its stdout and stderr.
    pipes: tuple[int, ...] = ()
    #: The signalfd the loop reads, made before an exec into the lean process.
    inbox_fd: Optional[int] = None

    def descriptors(self) -> tuple[int, ...]:
        """What must survive the exec into the lean process."""
        fds = (self.health_fd, *self.pipes, self.inbox_fd)
        return tuple(fd for fd in fds if fd is not None)


def supervise(plan: Plan, sink: Sink, clock: Clock = time.monotonic) -> Outcome:
    """Run the plan to the end and say what happened.

    Raises a ``GsupError`` when the program cannot be started; any other
    exception means gsup failed, after everything it started was killed.
    The signal mask is as before when it returns.
    """
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        return run(plan, sink, prepare(plan, clock), clock)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def prepare(plan: Plan, clock: Clock = time.monotonic) -> Prepared:
    """Everything before the loop: users resolved, every catchable signal
    blocked, a subreaper; and a single command started at once.

    The mask stays: a signal that arrives from now on waits, pending, for the
    loop (in this process, or in the lean one it execs into: a blocked mask
    and pending signals survive execve).
    """
    credentials = {}
    for p in plan.programs:
        if p.user is not None:
            resolved = spawn.resolve_user(
                p.user, where="--user" if plan.single else f"[programs.{p.name}] user"
            )
            if resolved is not None:
                credentials[p.name] = resolved
    health_fd = None
    if plan.health is not None:  # bound now: an address in use is an error before anything runs
        from gsup import health

        health_fd = health.listen(health.Address.parse(plan.health)).detach()
    block_signals()
    reaper.become_subreaper()
    terminal = foreground_terminal()
    if not plan.single:
        return Prepared(credentials, terminal, None, health_fd)
    spec = plan.program
    env = spawn.inherited_environment()
    env.update(spec.env or {})
    # --ready log=: the one case where a single command's output passes through
    # gsup (byte for byte), so that its lines can be read.
    pipes: tuple[int, ...] = ()
    stdio = None
    ends: list[int] = []
    if spec.ready is not None and spec.ready.kind == "log":
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pipes, ends, stdio = (out_r, err_r), [out_w, err_w], (0, out_w, err_w)
    at = clock()
    try:
        pid = spawn.spawn(
            spec,
            own_group=not terminal,
            env=env,
            credentials=credentials.get(spec.name),
            parent_death_signal=plan.parent_death_signal,
            stdio=stdio,
        )
    except GsupError as e:
        if e.pid is not None:
            reaper.collect(e.pid)  # the failed child exits right after reporting
        raise
    finally:
        for fd in ends:
            os.close(fd)  # the child has its copies
    return Prepared(credentials, terminal, Started(spec.name, pid, at), health_fd, pipes)


def run(plan: Plan, sink: Sink, prepared: Prepared, clock: Clock = time.monotonic) -> Outcome:
    """Supervise *plan* from what ``prepare`` did, to the end."""
    with open_inbox(prepared.inbox_fd) as inbox:
        loop = Loop(plan, sink, clock, inbox, prepared)
        try:
            return loop.run()
        except BaseException:
            loop.kill_everything()
            reap_remaining(inbox, plan.kill_wait)
            raise


def reap_remaining(inbox: SignalInbox, seconds: float) -> None:
    """After SIGKILL: reap until no child is left, or *seconds* have passed."""
    deadline = time.monotonic() + seconds
    poller = select.poll()
    poller.register(inbox.fd, select.POLLIN)
    while time.monotonic() < deadline:
        _, remain = reaper.reap()
        if not remain:
            return
        poller.poll(math.ceil(min(0.05, max(0.0, deadline - time.monotonic())) * 1000))
        inbox.read()


class _Pipe(NamedTuple):
    """One output pipe of a program (or of a pre-stop command), read by the loop."""

    name: str
    writer: Writer
    lines: LineBuffer
    prefix: Union[Prefixer, JsonLines]
    #: Passed on byte for byte, lines read only to be matched (a single command's).
    raw: bool = False
    #: ``ready = { log = ... }``: what a line must match for the program to be ready.
    ready: Optional[re.Pattern[bytes]] = None


class _Attempt(NamedTuple):
    name: str
    number: int
    attempt: Attempt


class Loop:
    """One supervision: the state the pure machine does not own (pids, pipes, tallies)."""

    def __init__(self, plan: Plan, sink: Sink, clock: Clock, inbox: SignalInbox, prepared: Prepared) -> None:
        self.plan, self.sink, self.clock, self.inbox = plan, sink, clock, inbox
        self.credentials = prepared.credentials
        self.prestarted = prepared.started
        self.started = prepared.started.at if prepared.started else clock()
        self.machine = Lifecycle(plan, self.started, terminal=prepared.terminal, pid1=os.getpid() == 1)
        self.env = spawn.inherited_environment()
        self.names: dict[int, str] = {}  # pid of a running program -> its name
        self.ran_as: dict[int, str] = {}  # pid any program ran as -> its name
        self.groups: dict[int, int] = {}  # pid any program ran as -> its process group
        self.attempts: dict[int, _Attempt] = {}  # pid of a readiness attempt -> what it is
        self.expired: set[int] = set()  # attempts killed at their deadline
        self.poller = select.poll()
        self.poller.register(inbox.fd, select.POLLIN)
        self.notes: list[Note] = []
        self.deferring = False
        self.pre_stops: dict[int, str] = {}  # pid of a pre-stop command -> its key ("": the plan's)
        self.pre_stop_ends: list[tuple[str, str]] = []  # (whose, how it ended), for the report
        self.pre_stops_killed: set[int] = set()  # still running when their slot ended
        self.health: Optional[Endpoint] = None
        if prepared.health_fd is not None and plan.health is not None:
            import socket

            from gsup import health

            os.set_inheritable(prepared.health_fd, False)  # no program may hold it
            listener = socket.socket(fileno=prepared.health_fd)
            self.health = health.Endpoint(health.Address.parse(plan.health), listener)
            self.poller.register(self.health.listener.fileno(), select.POLLIN)
        self.health_polled: set[int] = set()  # connection fds registered with the poller
        # Output: pipes for programs with a prefix (and a single command read for
        # its log readiness); gsup's own messages then queue behind their lines.
        self.copies = any(p.prefix is not None for p in plan.programs) or bool(prepared.pipes)
        self.writers: dict[int, Writer] = {}
        if self.copies:
            self.writers = {1: Writer(1), 2: Writer(2)}
            sink.use_stream(QueuedText(self.writers[2]))
        self.width = max(len(p.prefix or "") for p in plan.programs)
        self.pipes: dict[int, _Pipe] = {}
        self.reading = True
        self.gone: set[int] = set()  # gsup's stdout or stderr, broken for good (reported)
        # What the report counts.
        self.orphans_reaped = 0
        self.signalled: dict[Optional[str], int] = {}  # leftovers signalled, by program (None: the job)
        self.killed: set[int] = set()  # every pid gsup SIGKILLed that was no program
        self.killed_of: dict[str, int] = {}
        self.surviving = 0
        self.redraw_at: Optional[float] = None
        self.countdown_on = not self.copies  # a live line would land among the programs' lines
        if prepared.pipes and prepared.started is not None:
            for fd, target in zip(prepared.pipes, (1, 2)):
                os.set_inheritable(fd, False)
                self._watch_pipe(fd, prepared.started.name, target, raw=True)

    # -- the loop ------------------------------------------------------------

    def run(self) -> Outcome:
        self._act(self.machine.begin(self.clock()))
        self._wake()  # the single command may have died before the first wait
        while not self.machine.done:
            self._set_interest()
            due = self._next_due()
            events = self.poller.poll(self._timeout_ms(due))
            signalled = any(fd == self.inbox.fd for fd, _ in events)
            if self.health is not None and signalled:
                self._signals()
            for fd, _ in events:
                if fd in self.pipes:
                    self._read(fd)
                elif self.health is not None and fd != self.inbox.fd and fd not in self.writers:
                    self._serve(fd)
            for w in self.writers.values():  # what is left when the pipe was full
                if w.wants_write:
                    self._write(w)
            # Output alone changes nothing the machine knows of, so it skips the
            # rest of a wake-up (a log match or a health request acts by itself).
            if signalled or (due is not None and (not events or self.clock() >= due)):
                self._wake()
        return self._finish()

    def _next_due(self) -> Optional[float]:
        """The earliest deadline of the machine, the countdown, the attempts and the endpoint."""
        due = [d for d in (self.machine.next_deadline(), self.redraw_at) if d is not None]
        due += [a.attempt.deadline for pid, a in self.attempts.items() if pid not in self.expired]
        if self.health is not None:
            due += [d for d in (self.health.deadline(),) if d is not None]
        return min(due) if due else None

    def _timeout_ms(self, due: Optional[float]) -> Optional[int]:
        if due is None:
            return None  # idle: block until something happens, however long
        # Round up: waking a millisecond early would only mean a second wake-up.
        # At most what poll takes (a C int of ms): a later deadline is met by waking again.
        return min(_POLL_MAX_MS, max(0, math.ceil((due - self.clock()) * 1000)))

    def _wake(self) -> None:
        self._signals()
        self._reap()
        self._expire_attempts()
        if self.health is not None:
            self.health.expire(self.clock())
        self._act(self.machine.on_deadline(self.clock()))
        self._cancel_stale_attempts()
        self._flush_notes()
        self._countdown()

    def _signals(self) -> None:
        """Every pending signal, acted on (before anything else a wake-up brings: a request
        to the health endpoint that came with a SIGTERM already gets 503)."""
        now = self.clock()
        shared = self.machine.shares_group
        self.deferring = True  # every signal of the batch goes out before a word about any
        for rec in self.inbox.read():
            if rec.signo != signal.SIGCHLD:  # exits are collected by _reap, on every wake-up
                self._act(
                    self.machine.on_signal(
                        rec.signo, now, delivered=shared and rec.from_kernel, sender=rec.sender
                    )
                )
        self.deferring = False
        self._flush_notes()

    def _reap(self) -> None:
        exited, remain = reaper.reap()
        if not exited and remain:
            return
        now = self.clock()
        left: Optional[bool] = None  # whether a process of the job is left: asked once, when needed
        for pid, wait_status in exited:
            status = ChildStatus.from_wait(wait_status)
            if pid in self.names:
                name = self.names.pop(pid)
                if left is None:
                    left = self._anything_left(remain)
                group = self.groups[pid]
                group_left = group == pid and procs.group_alive(group)
                self._act(self.machine.on_exit(name, status, now, group_left=group_left, anything_left=left))
            elif pid in self.pre_stops:
                key = self.pre_stops.pop(pid)
                ended = "killed at the end of its slot" if pid in self.pre_stops_killed else status.describe()
                self.pre_stop_ends.append((key, ended))
                self._act(self.machine.on_pre_stop_exit(key, status, now))
            elif pid in self.attempts:
                from gsup import readiness

                a = self.attempts.pop(pid)
                code = None if pid in self.expired else status.code
                self.expired.discard(pid)
                ok, saw = readiness.finish_attempt(a.attempt, code, status.describe())
                self._act(self.machine.on_probe(a.name, ok, now, attempt=a.number, detail=saw))
            else:
                self.orphans_reaped += 1
                self._note(Note("orphan_reaped", f"reaped pid {pid}: {status.describe()}", {"pid": pid}))
        if remain and self.machine.killing:
            # Something forked past the kill (a fork loop in a session of its
            # own): kill again at each exit until nothing is left.
            self.kill_everything()
        for of in list(self.machine.lingering):
            if not procs.group_alive(self.groups[of]):
                self._act(self.machine.on_group_gone(of, now))
        if not remain:
            self._act(self.machine.on_all_gone(now))

    def _anything_left(self, remain: bool) -> bool:
        """A process of the job (no attempt, no pre-stop command: gsup's own) is still alive."""
        if not remain:
            return False
        if not self.attempts and not self.pre_stops:
            return True
        return bool(self._job_processes())

    # -- actions -------------------------------------------------------------

    def _act(self, actions: Sequence[Action]) -> None:
        """Carry out *actions*: first the signals and kills, in their order, then the rest.

        So a signal never waits for a log line about it. While ``deferring``
        (a batch of signals being read), the notes wait for ``_flush_notes``.
        """
        for action in actions:
            if isinstance(action, Send):
                self._send(action)
            elif isinstance(action, SendLeftovers):
                self._send_leftovers(action)
            elif isinstance(action, Kill):
                self._kill(action.name)
            elif isinstance(action, KillLeftovers):
                self._kill_leftovers(action.of)
            elif isinstance(action, KillPreStops):
                procs.kill(groups=list(self.pre_stops), pids=list(self.pre_stops))
                self.pre_stops_killed |= set(self.pre_stops)
        for action in actions:
            if isinstance(action, Note):
                self._note(action)
            elif isinstance(action, Start):
                self._start(action.name)
            elif isinstance(action, Probe):
                self._probe(action.name, action.attempt, live=action.live)
            elif isinstance(action, PreStop):
                self._pre_stop(action.key)
            elif isinstance(action, SuspendSelf):
                self._flush_notes()
                procs.send(os.getpid(), signal.SIGSTOP)

    def _note(self, note: Note) -> None:
        self.notes.append(note)
        if not self.deferring:
            self._flush_notes()

    def _flush_notes(self) -> None:
        notes, self.notes = self.notes, []
        for note in notes:
            self.sink.event(note.kind, note.text, **note.fields)

    def _send(self, action: Send) -> None:
        pid = self.machine.programs[action.name].pid
        if pid is None or pid not in self.names:
            return  # gone meanwhile
        if action.group:
            group = self.groups[pid]
            procs.send(group, action.sig, group=True)
            if action.cont and any(
                procs.stopped(p) for p in [pid, *procs.descendants(pid)] if procs.group_of(p) == group
            ):
                procs.send(group, signal.SIGCONT, group=True)
        else:
            procs.send(pid, action.sig)
            if action.cont and procs.stopped(pid):
                procs.send(pid, signal.SIGCONT)

    def _send_leftovers(self, action: SendLeftovers) -> None:
        if action.of is not None:
            group = self.groups[action.of]
            targets = [pid for pid in self._job_processes() if procs.group_of(pid) == group]
            who: Optional[str] = self.ran_as.get(action.of)
        else:
            skip = {self.groups[of] for of in action.skip if of in self.groups}
            targets = [pid for pid in self._job_processes() if procs.group_of(pid) not in skip]
            who = None
        sent = 0
        for pid in targets:
            if procs.send(pid, action.sig):
                sent += 1
                if action.sig != signal.SIGCONT and procs.stopped(pid):
                    procs.send(pid, signal.SIGCONT)  # a stopped one must be able to handle it
        self.signalled[who] = self.signalled.get(who, 0) + sent

    def _job_processes(self) -> list[int]:
        """gsup's descendants but its own helpers (readiness attempts, pre-stop commands)."""
        own = set(self.attempts) | set(self.pre_stops)
        return [
            pid
            for pid in procs.descendants()
            if pid not in own and (not own or procs.group_of(pid) not in own)
        ]

    def _kill(self, name: Optional[str]) -> None:
        if name is None:
            self.kill_everything()
            return
        p = self.machine.programs[name]
        if p.pid is None or p.pid not in self.names:
            return
        group = self.groups[p.pid]
        own = group == p.pid
        fresh = procs.kill(groups=[group] if own else [], pids=[p.pid], below=[p.pid])
        self._count_killed(fresh, name)

    def _kill_leftovers(self, of: int) -> None:
        group = self.groups[of]
        members = [pid for pid in self._job_processes() if procs.group_of(pid) == group]
        fresh = procs.kill(groups=[group], pids=members)
        self._count_killed(fresh, self.ran_as.get(of))

    def kill_everything(self) -> None:
        """SIGKILL every process gsup started, however detached (grace ran out, or gsup failed)."""
        groups = {self.groups[pid] for pid in self.names if self.groups[pid] == pid}
        groups |= {self.groups[of] for of in self.machine.lingering}
        groups |= set(self.attempts) | set(self.pre_stops)
        pids = [pid for pid in self.names if self.groups[pid] != pid]  # sharing gsup's group
        fresh = procs.kill(groups=groups, pids=pids, below=[0])
        self._count_killed(fresh, None)

    def _count_killed(self, fresh: set[int], name: Optional[str]) -> None:
        fresh = fresh - set(self.groups) - set(self.attempts) - set(self.pre_stops) - self.killed
        if not fresh:
            return
        self.killed |= fresh
        if name is not None:
            self.killed_of[name] = self.killed_of.get(name, 0) + len(fresh)
        self._note(
            Note("leftovers_killed", f"killed {len(fresh)} leftover process(es)", {"count": len(fresh)})
        )

    def _start(self, name: str) -> None:
        spec = self.machine.programs[name].spec
        if self.prestarted is not None and self.prestarted.name == name:
            pid, at, self.prestarted = self.prestarted.pid, self.prestarted.at, None
            self._running(name, pid, os.getpgrp() if self.machine.shares_group else pid)
            self._act(self.machine.on_started(name, pid, at))
            return
        env = dict(self.env)
        env.update(spec.env or {})
        ends: list[int] = []
        stdio = None
        if spec.prefix is not None:
            stdio = self._piped(name, ends)
        own_group = not self.machine.shares_group
        try:
            pid = spawn.spawn(
                spec,
                own_group=own_group,
                env=env,
                credentials=self.credentials.get(name),
                parent_death_signal=self.plan.parent_death_signal,
                stdio=stdio,
            )
        except GsupError as e:
            if e.pid is not None:
                reaper.collect(e.pid)
            for fd in ends:
                os.close(fd)
            message = f"{name}: {e.message}"
            left = bool(self._job_processes())
            self._act(
                self.machine.on_spawn_failed(name, message, e.exit_code, self.clock(), anything_left=left)
            )
            return
        for fd in ends:
            os.close(fd)  # the child has its copies; EOF comes when it (and its children) close them
        self._running(name, pid, pid if own_group else os.getpgrp())
        self._act(self.machine.on_started(name, pid, self.clock()))

    def _piped(self, name: str, ends: list[int], *, label: Optional[str] = None) -> tuple[int, int, int]:
        """/dev/null and two new pipes for the stdio of program *name*'s process (or of its
        pre-stop command, shown as *label*); the ends the child gets are put in *ends*."""
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        fds = [devnull]
        ends.append(devnull)
        for target in (1, 2):
            r, w = os.pipe()
            self._watch_pipe(r, name, target, label=label)
            fds.append(w)
            ends.append(w)
        return fds[0], fds[1], fds[2]

    def _watch_pipe(
        self, fd: int, name: str, target: int, *, raw: bool = False, label: Optional[str] = None
    ) -> None:
        """Read pipe *fd* of program *name* into gsup's stdout (*target* 1) or stderr (2)."""
        os.set_blocking(fd, False)
        spec = self.machine.programs[name].spec if name in self.machine.programs else None
        prefix: Union[Prefixer, JsonLines]
        if self.plan.json_lines:
            prefix = JsonLines(label or name, "stdout" if target == 1 else "stderr", self.clock)
        else:
            index = list(self.machine.programs).index(name) if name in self.machine.programs else 0
            text = label if label is not None else (spec.prefix if spec is not None else name) or ""
            timestamps = spec.timestamps if spec is not None else False
            prefix = Prefixer(text, self.width, index, colour=os.isatty(target), timestamps=timestamps)
        ready = None
        if label is None and spec is not None and spec.ready is not None and spec.ready.kind == "log":
            ready = re.compile(spec.ready.target.encode(errors="surrogateescape"))
        self.pipes[fd] = _Pipe(name, self.writers[target], LineBuffer(), prefix, raw, ready)
        self.poller.register(fd, select.POLLIN if self.reading else 0)

    def _pre_stop(self, key: str) -> None:
        """Start a pre-stop command: the plan's (*key* "") or program *key*'s; shown like a program."""
        program = self.machine.programs.get(key)
        argv = self.plan.pre_stop if not key else program.spec.pre_stop if program else ()
        env = dict(self.env)
        if program is not None:
            env.update(program.spec.env or {})
        label = f"{key}:pre-stop" if key else "pre-stop"
        ends: list[int] = []
        stdio = self._piped(key or self.plan.program.name, ends, label=label) if self.writers else None
        try:
            pid = spawn.spawn(
                ProgramSpec(argv=argv, name=label),
                own_group=True,
                env=env,
                credentials=self.credentials.get(key) if key else None,
                stdio=stdio,
            )
        except GsupError as e:
            if e.pid is not None:
                reaper.collect(e.pid)
            status = ChildStatus(code=e.exit_code)
            self.pre_stop_ends.append((key, f"could not start: {e.message}"))
            self._act(self.machine.on_pre_stop_exit(key, status, self.clock()))
            return
        finally:
            for fd in ends:
                os.close(fd)
        self.pre_stops[pid] = key

    def _serve(self, fd: int) -> None:
        """The health endpoint: a new connection, or one that can be read or written."""
        assert self.health is not None  # called only with an endpoint
        now = self.clock()
        if fd == self.health.listener.fileno():
            self.health.accept(now)
        elif self.health.handle(fd, now, lambda: self.machine.health(self.clock())):
            self._act(self.machine.on_polled(now))

    def _running(self, name: str, pid: int, group: int) -> None:
        self.names[pid] = self.ran_as[pid] = name
        self.groups[pid] = group

    def _probe(self, name: str, number: int, *, live: bool) -> None:
        # Imported at the first attempt: a single command never pays for socket.
        from gsup import readiness

        spec = self.machine.programs[name].spec
        check = spec.liveness if live else spec.ready
        assert check is not None  # the machine probes only programs with such a table
        try:
            attempt = readiness.start_attempt(check, self.env, self.clock())
        except GsupError as e:  # a command probe that cannot be started: this attempt failed
            if e.pid is not None:
                reaper.collect(e.pid)
            self._act(self.machine.on_probe(name, False, self.clock(), attempt=number, detail=e.message))
            return
        self.attempts[attempt.pid] = _Attempt(name, number, attempt)

    def _expire_attempts(self) -> None:
        """An attempt past its time is killed; its reaping reports it as timed out."""
        now = self.clock()
        for pid, a in self.attempts.items():
            if pid not in self.expired and now >= a.attempt.deadline:
                self.expired.add(pid)
                procs.kill(groups=[pid], pids=[pid])

    def _cancel_stale_attempts(self) -> None:
        """An attempt whose result nobody waits for any more (a stop, an exit) ends now."""
        for pid, a in self.attempts.items():
            if pid not in self.expired and self.machine.programs[a.name].probing != a.number:
                self.expired.add(pid)
                procs.kill(groups=[pid], pids=[pid])

    # -- output --------------------------------------------------------------

    def _set_interest(self) -> None:
        if self.health is not None:
            wants = self.health.wants()
            for fd in self.health_polled - set(wants):
                self.poller.unregister(fd)
            for fd, write in wants.items():
                events = select.POLLOUT if write else select.POLLIN
                if fd in self.health_polled:
                    self.poller.modify(fd, events)
                else:
                    self.poller.register(fd, events)
            self.health_polled = set(wants)
        if not self.copies:
            return
        pending = sum(w.pending for w in self.writers.values())
        want_read = pending < (LOW_WATER if not self.reading else HIGH_WATER)
        if want_read != self.reading:
            self.reading = want_read
            for fd in self.pipes:
                self.poller.modify(fd, select.POLLIN if want_read else 0)
        for fd, w in self.writers.items():
            try:
                if w.wants_write:
                    self.poller.register(fd, select.POLLOUT)
                else:
                    self.poller.unregister(fd)
            except (KeyError, OSError):
                pass

    def _read(self, fd: int) -> None:
        pipe = self.pipes[fd]
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            if not pipe.raw and pipe.ready is None:  # the usual case: the lines, prefixed at once
                block = pipe.lines.feed_block(data)
                if block is not None:
                    if block:
                        pipe.writer.push(pipe.prefix.block(block))
                        self._write(pipe.writer)
                    return
            lines = pipe.lines.feed(data)
            if pipe.raw:
                pipe.writer.push(data)  # byte for byte: the lines are only read
            else:
                for line in lines:
                    pipe.writer.push(pipe.prefix(line))
            if pipe.ready is not None and any(pipe.ready.search(line.data) for line in lines):
                self._ready_by_log(pipe.name)
            return
        self._close_pipe(fd)  # EOF: the last line, even without its newline

    def _write(self, writer: Writer) -> None:
        """Out now, as far as the descriptor takes it (it never blocks), not one poll later:
        the reader gets the lines sooner, and the pipes they came from are read again sooner."""
        writer.write_some()
        if writer.broken:
            self._output_gone(writer.fd)

    def _ready_by_log(self, name: str) -> None:
        """A line of *name* matched its log readiness: stop matching its lines."""
        for fd, pipe in list(self.pipes.items()):
            if pipe.name == name and pipe.ready is not None:
                self.pipes[fd] = pipe._replace(ready=None)
        self._act(self.machine.on_log_match(name, self.clock()))

    def _close_pipe(self, fd: int) -> None:
        pipe = self.pipes.pop(fd)
        rest = pipe.lines.flush()
        if rest is not None:
            if pipe.ready is not None and pipe.ready.search(rest.data):
                self._ready_by_log(pipe.name)
            if not pipe.raw:
                pipe.writer.push(pipe.prefix(rest))
        self.poller.unregister(fd)
        os.close(fd)

    def _output_gone(self, fd: int) -> None:
        """gsup's stdout or stderr is gone for good (EPIPE: ``gsup --config x | head``): say so
        once, on the other one, and go on supervising without it."""
        if fd in self.gone:
            return
        self.gone.add(fd)
        lost = "stdout" if fd == 1 else "stderr"
        message = f"{lost} is gone: the programs' {lost} lines are dropped from now on; supervision goes on"
        if fd == 1:
            self._note(Note("output_gone", message, {"stream": lost}))
        else:  # gsup's own messages went there too: the line goes to stdout
            self.writers[1].write_text(f"gsup: {message}\n")

    def _drain_output(self, seconds: float) -> None:
        """At the end: everything already written by the programs goes out."""
        end = self.clock() + seconds
        for fd in list(self.pipes):
            while fd in self.pipes:
                if _readable(fd, 0):
                    self._read(fd)
                else:  # nothing more now: a descendant may hold it open, but the programs are done
                    self._close_pipe(fd)
        for w in self.writers.values():
            while w.wants_write and self.clock() < end:
                if _writable(w.fd, end - self.clock()):
                    w.write_some()

    def _countdown(self) -> None:
        m = self.machine
        if not self.countdown_on or m.phase not in (Phase.DRAINING, Phase.STOPPING, Phase.LINGERING):
            return
        now = self.clock()
        if self.redraw_at is not None and now < self.redraw_at:
            return
        if m.phase is Phase.DRAINING and m.drain_end is not None:
            remaining, total, label = m.drain_end - now, self.plan.stop_delay, "draining"
        else:
            end = m.linger_until if m.phase is Phase.LINGERING else m.kill_all_at
            assert end is not None  # set whenever the phase is STOPPING/LINGERING
            remaining, total, label = end - now, self.plan.grace, "SIGKILL in"
        again = self.sink.countdown(max(0.0, remaining), total, label, m.ctrl_c_hint)
        self.redraw_at = None if again is None else now + again
        self.countdown_on = again is not None

    # -- the end ---------------------------------------------------------------

    def _finish(self) -> Outcome:
        if self.health is not None:
            self.health.close()  # answered to the end: nothing listens once gsup is done
        if self.attempts:  # gave up after SIGKILL with an attempt still there: it is gsup's own
            procs.kill(groups=list(self.attempts), pids=list(self.attempts))
        if self.machine.escalation is not None and self.machine.kill_wait_end is not None:
            _, remain = reaper.reap()
            if remain:
                self.surviving = len(self._job_processes())
        if self.copies:
            # Pending program output gets at most half the smallest margin (1 s),
            # the report a quarter (log.FINAL_WAIT): a stdout nobody reads must
            # not push gsup past the platform's deadline.
            self._drain_output(0.5)
            self.sink.use_stream(sys.stderr)  # the report: written whole, after everything else
            for w in self.writers.values():
                w.close()
        self._flush_notes()
        return self._outcome()

    def _outcome(self) -> Outcome:
        m = self.machine
        end = self.clock()
        # The grace began when the drain ended (kill_all_at is its end); a child that exited
        # in the drain ended it.
        grace_from = m.grace_started_at
        outcome = Outcome(
            exit_code=m.exit_code(),
            cause=StopCause.SIGNAL if m.stop_received is not None else StopCause.CHILD_EXIT,
            program=self.plan.program,
            stop_signal_received=m.stop_received,
            stop_signal_sender=m.stop_sender if m.stop_received is not None else None,
            escalation=m.escalation,
            grace=self.plan.grace,
            leftovers_signalled=sum(self.signalled.values()),
            leftovers_killed=len(self.killed),
            leftovers_surviving=self.surviving,
            orphans_reaped=self.orphans_reaped,
            pre_stops=tuple(self.pre_stop_ends),
        )
        if self.plan.single:  # the child's own figures: its pid, its status, its stop
            p = m.programs[self.plan.program.name]
            child_end = p.exited_at if p.exited_at is not None else end
            return outcome._replace(
                drain_seconds=None
                if m.stopping_since is None
                else min(child_end, grace_from if grace_from is not None else child_end) - m.stopping_since,
                pid=p.pid,
                status=p.status if p.status is not None else ChildStatus(signal=signal.SIGKILL),
                stop_signal_sent=p.stop_sig,
                stop_seconds=None if m.stopping_since is None else child_end - m.stopping_since,
                ran_seconds=child_end - self.started,
                force_killed=p.force_killed,
            )
        programs = tuple(
            ProgramOutcome(
                name=p.name,
                pid=p.pid,
                status=p.status,
                stop_signal=p.stop_sig,
                stop_seconds=None
                if p.signalled_at is None or p.exited_at is None
                else p.exited_at - p.signalled_at,
                force_killed=p.force_killed,
                escalation=p.kill_reason if p.force_killed else None,
                restarts=p.restarts,
                failure=p.failure,
                started=p.pid is not None,
                exit_code=m.program_code(p.name),
                leftovers_signalled=self.signalled.get(p.name, 0),
                leftovers_killed=self.killed_of.get(p.name, 0),
            )
            for p in m.programs.values()
        )
        return outcome._replace(
            stop_seconds=None if m.stopping_since is None else end - m.stopping_since,
            drain_seconds=None
            if m.stopping_since is None
            else min(end, grace_from if grace_from is not None else end) - m.stopping_since,
            ran_seconds=end - self.started,
            force_killed=any(p.force_killed for p in programs),
            programs=programs,
            reason=m.stop_reason,
        )


def _readable(fd: int, timeout: float) -> bool:
    poller = select.poll()  # not select(): the descriptor's number may pass FD_SETSIZE
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(math.ceil(timeout * 1000)))


def _writable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return bool(poller.poll(math.ceil(max(0.0, timeout) * 1000)))
