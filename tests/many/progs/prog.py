"""A program for gsup's many-programs tests (standard library only).

It reports what happens to it as event lines on its stdout, each written
with one ``os.write`` and stamped with ``time.monotonic()`` (the same clock
as gsup's JSON events and the test's)::

    @start name=NAME t=T pid=PID run=N     started (after its signal setup)
    @grandchild name=NAME pid=PID          --grandchild is set up
    @helper name=NAME pid=PID where=W      --daemon (W=session) or --group-child (W=group) is set up
    @helper_term name=NAME t=T sig=SIG     that helper got a stop signal; it exits 0 at once
    @ready name=NAME t=T                   --tcp/--http/--touch is in place (T: just before)
    @wrote name=NAME t=T                   every output action is done
    @tick name=NAME t=T n=N                every --tick seconds, until stopped
    @term name=NAME t=T sig=SIGTERM        a stop signal arrived
    @stopped name=NAME t=T code=N          about to exit after it
    @exit name=NAME t=T code=N             about to exit on its own (or signal=SIG)

The order of what it does: start (or fail at once, ``--fail-runs``), the
grandchild, ``--ready-after`` then readiness, the output actions, then
ticks (``--tick``), exit (``--exit-after``) or a wait for a stop signal.
TERM, INT and QUIT make it log ``@term``, wait ``--term-delay`` and exit
with ``--term-code``, unless ``--ignore-term``. Every argument list carries
``--token``, so the test can find every process of its run (grandchildren
too) in /proc.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time

NAME = "?"


def emit(data: bytes, fd: int = 1) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def log(event: str, **fields: object) -> None:
    parts = [f"@{event}", f"name={NAME}"] + [f"{k}={v}" for k, v in fields.items()]
    emit((" ".join(parts) + "\n").encode())


def now() -> str:
    return f"{time.monotonic():.6f}"


def data_line(name: str, seq: int) -> bytes:
    """Line *seq* of --lines: its content can be checked from the line alone."""
    return f"{name}-{seq}-{'abcdefghijklmnopqrstuvwxyz'[: seq % 27]}\n".encode()


def block(seq: int, size: int) -> bytes:
    """Line *seq* of --bytes: *size* bytes, newline included."""
    head = f"{seq:010d}:".encode()
    return head + bytes([97 + seq % 26]) * (size - len(head) - 1) + b"\n"


def long_line(size: int) -> bytes:
    """A line of *size* bytes (newline excluded) whose every 8-byte cell names its offset."""
    cells = b"".join(f"{i:07x}.".encode() for i in range(0, size + 8, 8))
    return cells[:size]


def on_stop(delay: float, code: int):
    def handler(sig: int, _frame: object) -> None:
        log("term", t=now(), sig=signal.Signals(sig).name)
        if delay:
            time.sleep(delay)
        log("stopped", t=now(), code=code)
        os._exit(code)

    return handler


def next_run(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        run = int(os.read(fd, 32) or b"0") + 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(run).encode())
    finally:
        os.close(fd)
    return run


def fork_waiter(*, setsid: bool, on_stop: object) -> int:
    """Fork a process that waits for signals (*on_stop*: the handler of TERM, INT and QUIT,
    or SIG_IGN), in a session of its own with *setsid*; return its pid once it is set up."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
                signal.signal(sig, on_stop)  # type: ignore[arg-type]
            if setsid:
                os.setsid()
            os.write(w, b"x")
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(w)
    os.read(r, 1)
    os.close(r)
    return pid


def grandchild() -> None:
    """Fork a grandchild in a session of its own that ignores TERM; log its pid."""
    log("grandchild", pid=fork_waiter(setsid=True, on_stop=signal.SIG_IGN))


def helper(*, setsid: bool) -> None:
    """Fork a helper that stays after this program exits: in a session of its own
    (``--daemon``, as a daemon that called setsid) or in this program's process
    group (``--group-child``). It logs a stop signal and exits 0 at once."""

    def stop(sig: int, _frame: object) -> None:
        log("helper_term", t=now(), sig=signal.Signals(sig).name)
        os._exit(0)

    pid = fork_waiter(setsid=setsid, on_stop=stop)
    log("helper", pid=pid, where="session" if setsid else "group")


def serve_http(port: int) -> None:
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    global NAME
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--token", default="")
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--term-delay", type=float, default=0.0)
    p.add_argument("--term-code", type=int, default=0)
    p.add_argument("--runs", help="a counter file: which start this is")
    p.add_argument("--fail-runs", type=int, default=0, help="runs up to this one exit at once")
    p.add_argument("--code", type=int, default=0)
    p.add_argument("--grandchild", action="store_true")
    p.add_argument("--daemon", action="store_true", help="a helper in a session of its own")
    p.add_argument("--group-child", action="store_true", help="a helper in this program's group")
    p.add_argument("--ready-after", type=float, default=0.0)
    p.add_argument("--tcp", type=int)
    p.add_argument("--http", type=int)
    p.add_argument("--touch")
    p.add_argument("--lines", type=int, default=0)
    p.add_argument("--stderr-lines", type=int, default=0)
    p.add_argument("--flood-stderr", action="store_true", help="err-NAME-SEQ lines until stopped")
    p.add_argument("--long", type=int, default=0, help="one line of this many bytes")
    p.add_argument("--binary", action="store_true")
    p.add_argument("--bytes", type=int, default=0, help="this many bytes of lines of --line-size")
    p.add_argument("--line-size", type=int, default=1024)
    p.add_argument("--tail", help="a last line without its newline")
    p.add_argument("--tick", type=float, default=0.0, help="log @tick every this many seconds")
    p.add_argument("--exit-after", type=float)
    p.add_argument("--die-by", help="after --exit-after, die by this signal (e.g. USR1)")
    a = p.parse_args()
    NAME = a.name

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN if a.ignore_term else on_stop(a.term_delay, a.term_code))
    run = next_run(a.runs) if a.runs else 1
    log("start", t=now(), pid=os.getpid(), run=run)
    if run <= a.fail_runs:
        log("exit", t=now(), code=a.code)
        os._exit(a.code)
    if a.grandchild:
        grandchild()
    if a.daemon:
        helper(setsid=True)
    if a.group_child:
        helper(setsid=False)

    if a.ready_after:
        time.sleep(a.ready_after)
    ready_at = now()  # just before: a probe may see it ready before it logs
    listener = None
    if a.tcp is not None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", a.tcp))
        listener.listen(16)
    if a.http is not None:
        serve_http(a.http)
    if a.touch:
        with open(a.touch, "w"):
            pass
    if a.tcp is not None or a.http is not None or a.touch:
        log("ready", t=ready_at)

    out = bytearray()
    for seq in range(a.lines):
        out += data_line(NAME, seq)
        if len(out) >= 1 << 16:
            emit(bytes(out))
            out.clear()
    emit(bytes(out))
    for seq in range(a.stderr_lines):
        emit(f"err-{NAME}-{seq}\n".encode(), 2)
    if a.long:
        emit(long_line(a.long) + b"\n")
    if a.binary:
        emit(b"bin:" + bytes(range(256)) + b"\n" + b"\xff\xfe\xc3\x28 not utf-8\n")
    if a.bytes:
        batch = bytearray()
        for seq in range(a.bytes // a.line_size):
            batch += block(seq, a.line_size)
            if len(batch) >= 1 << 20:
                emit(bytes(batch))
                batch.clear()
        emit(bytes(batch))
    if a.lines or a.stderr_lines or a.long or a.binary or a.bytes:
        log("wrote", t=now())
    if a.tail is not None:
        emit(a.tail.encode())
    seq = 0
    while a.flood_stderr:
        emit(b"".join(b"err-%s-%d\n" % (NAME.encode(), seq + i) for i in range(16)), 2)
        seq += 16
    ticks = 0
    while a.tick:
        time.sleep(a.tick)
        ticks += 1
        log("tick", t=now(), n=ticks)

    if a.exit_after is not None:
        time.sleep(a.exit_after)
        if a.die_by:
            sig = signal.Signals["SIG" + a.die_by]
            log("exit", t=now(), signal=sig.name)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        if a.tail is None:
            log("exit", t=now(), code=a.code)
        os._exit(a.code)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
