"""The loop for many programs: the fleet's actions as syscalls, output as lines.

Owns: starting each program with pipes for its output (or its stdio
inherited with ``prefix = false``), running readiness probes beside the
loop (``command`` as processes, the others in threads), moving output
from the programs' pipes to gsup's stdout and stderr as whole prefixed lines
with back-pressure, and the final sweep: when every program has ended, any
process left behind is killed and counted. Policy lives in ``fleet``; the
single-command loop, the reaper and the kills it shares with
``supervisor``.

Like the single-command loop it blocks in one ``poll`` with the fleet's next
deadline: no tick. It must not die once programs run: anything unexpected
unwinds through a cleanup that kills every process it started.

Imports: the standard library and gsup's core modules.
"""

from __future__ import annotations

import math
import os
import select
import signal
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

from gsup import fleet as fl
from gsup import reaper, spawn
from gsup.errors import GsupError
from gsup.model import ChildStatus, Outcome, Plan, ProgramOutcome, ProgramSpec, Sink, StopCause
from gsup.output import HIGH_WATER, LOW_WATER, LineBuffer, Prefixer, QueuedText, Writer
from gsup.readiness import Background, Probe
from gsup.signals import SignalInbox
from gsup.supervisor import Clock, injected_fault, kill_descendants, reap_remaining


@dataclass
class _Pipe:
    name: str
    writer: Writer
    lines: LineBuffer
    prefix: Prefixer


class ManyRun:
    """One supervision of a plan of many programs."""

    def __init__(self, plan: Plan, sink: Sink, clock: Clock, inbox: SignalInbox) -> None:
        self.plan, self.sink, self.clock, self.inbox = plan, sink, clock, inbox
        self.started = clock()
        self.fleet = fl.Fleet(plan, self.started)
        self.env = spawn.inherited_environment()
        self.credentials = {p.name: spawn.resolve_user(p.user) for p in plan.programs if p.user is not None}
        self.writers = {1: Writer(1), 2: Writer(2)}
        # gsup's own messages queue behind the programs' stderr lines.
        sink.use_stream(QueuedText(self.writers[2]))
        self.width = max(len(p.prefix or "") for p in plan.programs)
        self.pipes: dict[int, _Pipe] = {}
        self.pids: dict[int, str] = {}
        self.probes: dict[int, tuple[str, int]] = {}  # command probe pid -> program, attempt
        self.background: Optional[Background] = None  # tcp/http/file attempts, made at the first
        self.attempting: dict[int, str] = {}  # attempt running in the background -> program
        self.poller = select.poll()
        self.poller.register(inbox.fd, select.POLLIN)
        self.reading = True
        self.orphans_reaped = 0
        self.leftovers_killed = 0
        self.killed: set[int] = set()  # every non-program pid gsup SIGKILLed

    # -- the loop ------------------------------------------------------------

    def loop(self) -> Outcome:
        self._act(self.fleet.begin(self.clock()))
        while not self.fleet.done:
            self._set_interest()
            probed = False
            for fd, _ in self.poller.poll(self._timeout_ms()):
                if fd in self.pipes:
                    self._read(fd)
                elif self.background is not None and fd == self.background.fd:
                    probed = True
                elif fd in (1, 2) and fd != self.inbox.fd:
                    self.writers[fd].write_some()
            self._wake(probed)
        return self._finish()

    def _timeout_ms(self) -> Optional[int]:
        due = self.fleet.next_deadline()
        if due is None:
            return None
        return max(0, math.ceil((due - self.clock()) * 1000))

    def _set_interest(self) -> None:
        pending = sum(w.pending for w in self.writers.values())
        want_read = pending < (LOW_WATER if not self.reading else HIGH_WATER)
        if want_read != self.reading:
            self.reading = want_read
            for fd in self.pipes:
                self.poller.modify(fd, select.POLLIN if want_read else 0)
        for fd, w in self.writers.items():
            if fd == self.inbox.fd:
                continue
            try:
                if w.wants_write:
                    self.poller.register(fd, select.POLLOUT)
                else:
                    self.poller.unregister(fd)
            except (KeyError, OSError):
                pass

    def _wake(self, probed: bool) -> None:
        now = self.clock()
        for rec in self.inbox.read():
            if rec.signo != signal.SIGCHLD:
                injected_fault()
                self._act(self.fleet.on_signal(rec.signo, now, rec.sender))
        exited, remain = reaper.reap()
        now = self.clock()
        for pid, wait_status in exited:
            status = ChildStatus.from_wait(wait_status)
            if pid in self.pids:
                self._act(self.fleet.on_exit(self.pids.pop(pid), status, now))
            elif pid in self.probes:
                name, attempt = self.probes.pop(pid)
                self._act(self.fleet.on_probe(name, status.shell_code == 0, now, attempt=attempt))
            else:
                self.orphans_reaped += 1
                self.sink.event("orphan_reaped", f"reaped pid {pid}: {status.describe()}", pid=pid)
        if remain and self.fleet.killing:
            self._sweep()  # something forked past the kill: again, until nothing is left
        if not remain:
            self.fleet.on_all_gone(now)
        if probed and self.background is not None:  # after signals and exits: a stop makes them moot
            for attempt, ok in self.background.results():
                name = self.attempting.pop(attempt)
                self._act(self.fleet.on_probe(name, ok, self.clock(), attempt=attempt))
        self._act(self.fleet.on_deadline(self.clock()))

    # -- actions -------------------------------------------------------------

    def _act(self, actions: Sequence[fl.Action]) -> None:
        for a in actions:
            if isinstance(a, fl.Note):
                self.sink.event(a.kind, a.message, **a.fields)
            elif isinstance(a, fl.Start):
                self._start(a.name)
            elif isinstance(a, fl.Probe):
                self._probe(a.name, a.attempt)
            elif isinstance(a, fl.Signal):
                self._signal_group(a.name, a.sig)
            elif isinstance(a, fl.Kill):
                self._kill(a.name)

    def _start(self, name: str) -> None:
        spec = self.fleet.programs[name].spec
        env = dict(self.env)
        env.update(spec.env or {})
        ends: list[int] = []
        stdio = None
        if spec.prefix is not None:
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            index = list(self.fleet.programs).index(name)
            stdio_list = [devnull]
            ends.append(devnull)
            for target in (1, 2):
                r, w = os.pipe()
                os.set_blocking(r, False)
                colour = os.isatty(target)
                prefix = Prefixer(spec.prefix, self.width, index, colour=colour, timestamps=spec.timestamps)
                self.pipes[r] = _Pipe(name, self.writers[target], LineBuffer(), prefix)
                self.poller.register(r, select.POLLIN if self.reading else 0)
                stdio_list.append(w)
                ends.append(w)
            stdio = (stdio_list[0], stdio_list[1], stdio_list[2])
        try:
            pid = spawn.spawn(
                spec,
                own_group=True,
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
            self._act(self.fleet.on_spawn_failed(name, f"{name}: {e.message}", e.exit_code, self.clock()))
            return
        for fd in ends:
            os.close(fd)  # the child has its copies; EOF comes when it (and its children) close them
        self.pids[pid] = name
        self._act(self.fleet.on_started(name, pid, self.clock()))

    def _probe(self, name: str, attempt: int) -> None:
        ready = self.fleet.programs[name].spec.ready
        assert ready is not None  # the fleet probes only programs with a ready table
        if ready.kind != "command":
            # In a thread: a connect to a host that drops packets, or an
            # endpoint that accepts and answers slowly, blocks for the whole
            # timeout, and this loop forwards signals and moves output.
            if self.background is None:
                self.background = Background()
                self.poller.register(self.background.fd, select.POLLIN)
            timeout = min(1.0, max(0.05, ready.interval))
            try:
                self.background.start(attempt, Probe(ready.kind, ready.target), timeout)
            except RuntimeError:  # no thread to be had (a pids limit): this attempt failed, the next may not
                self._act(self.fleet.on_probe(name, False, self.clock(), attempt=attempt))
                return
            self.attempting[attempt] = name
            return
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            pid = spawn.spawn(
                ProgramSpec(argv=ready.argv, name=f"{name}-ready"),
                own_group=True,
                env=self.env,
                stdio=(devnull, devnull, 2),
            )
        except GsupError as e:
            if e.pid is not None:
                reaper.collect(e.pid)
            self._act(self.fleet.on_probe(name, False, self.clock(), attempt=attempt))
            return
        finally:
            os.close(devnull)
        self.probes[pid] = (name, attempt)

    def _signal_group(self, name: str, sig: int) -> None:
        p = self.fleet.programs[name]
        if p.pid is not None and p.running:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass

    def _kill(self, name: Optional[str]) -> None:
        targets = [self.fleet.programs[name]] if name else list(self.fleet.programs.values())
        for p in targets:
            if p.pid is not None and p.running:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if name is None:
            self._sweep()
            return
        p = self.fleet.programs[name]
        if p.pid is not None:
            kill_descendants(p.pid)

    def _sweep(self) -> int:
        """SIGKILL every descendant still there; return how many were not programs."""
        program_pids = {p.pid for p in self.fleet.programs.values() if p.pid is not None}
        fresh = kill_descendants() - program_pids - set(self.probes) - self.killed
        self.killed |= fresh
        self.leftovers_killed = len(self.killed)
        if fresh:
            self.sink.event("leftovers_killed", f"killed {len(fresh)} leftover process(es)", count=len(fresh))
        return len(fresh)

    # -- output --------------------------------------------------------------

    def _read(self, fd: int) -> None:
        pipe = self.pipes[fd]
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            for line in pipe.lines.feed(data):
                pipe.writer.push(pipe.prefix(line))
            return
        rest = pipe.lines.flush()  # EOF: the last line, even without its newline
        if rest is not None:
            pipe.writer.push(pipe.prefix(rest))
        self.poller.unregister(fd)
        os.close(fd)
        del self.pipes[fd]

    def _drain_output(self, seconds: float) -> None:
        """At the end: everything already written by the programs goes out."""
        end = self.clock() + seconds
        for fd in list(self.pipes):
            while fd in self.pipes:
                if self._readable(fd):
                    self._read(fd)
                else:  # nothing more now: a descendant may hold it open, but the programs are done
                    self._close_pipe(fd)
        for w in self.writers.values():
            while w.wants_write and self.clock() < end:
                ready = select.select([], [w.fd], [], max(0.0, end - self.clock()))[1]
                if ready:
                    w.write_some()

    @staticmethod
    def _readable(fd: int) -> bool:
        return bool(select.select([fd], [], [], 0)[0])

    def _close_pipe(self, fd: int) -> None:
        pipe = self.pipes.pop(fd)
        rest = pipe.lines.flush()
        if rest is not None:
            pipe.writer.push(pipe.prefix(rest))
        self.poller.unregister(fd)
        os.close(fd)

    # -- the end ---------------------------------------------------------------

    def _finish(self) -> Outcome:
        if self.background is not None:
            self.background.close()  # a supervision in a longer-lived process must not leak it
        self._sweep()  # nothing outlives gsup
        reap_remaining(self.inbox, self.plan.kill_wait)
        # Pending program output gets at most half the smallest margin (1 s),
        # the report a quarter (log.FINAL_WAIT): a stdout nobody reads must not
        # push gsup past the platform's deadline.
        self._drain_output(0.5)
        self.sink.use_stream(sys.stderr)  # the report: written whole, after everything else
        f = self.fleet
        programs = tuple(
            ProgramOutcome(
                name=p.spec.name,
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
            )
            for p in f.programs.values()
        )
        first = self.plan.programs[0]
        return Outcome(
            exit_code=f.exit_code(),
            cause=StopCause.SIGNAL if f.stop_received else StopCause.CHILD_EXIT,
            program=first,
            stop_signal_received=f.stop_received,
            stop_signal_sender=f.stop_sender,
            stop_seconds=None if f.stopping_since is None else self.clock() - f.stopping_since,
            ran_seconds=self.clock() - self.started,
            force_killed=any(p.force_killed for p in programs),
            grace=self.plan.grace,
            leftovers_killed=self.leftovers_killed,
            orphans_reaped=self.orphans_reaped,
            programs=programs,
            reason=f.stop_reason,
        )

    def kill_everything(self) -> None:
        """gsup itself failed: SIGKILL every process it started."""
        self._kill(None)
