"""Program output in many-programs mode: bytes -> whole lines -> prefixed (or JSON), written.

Owns: line splitting (a line is never split, except a line longer than
``LINE_LIMIT``, passed in pieces instead of held in memory; the last line
without a newline is flushed at the end), the prefix (``web | ``, coloured
on a terminal, optional ISO-8601 timestamps) or the JSON object of each
line (``--log-format json``), and writing to gsup's own stdout and
stderr without ever blocking the loop: the loop writes only what the
descriptor can take now, and stops reading programs while too much is
pending, so back-pressure reaches the programs and memory stays bounded.

The lines of one read are prefixed as one block (a ``bytes.replace``, not a
Python step per line), and go out in writes of up to PIPE_BUF that end at a
line end, through a non-blocking description of gsup's own (``Writer``).

Imports: the standard library only.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time
from collections import deque
from typing import Callable, NamedTuple, Optional

#: Longest line held in memory; longer lines go out in pieces of this size.
LINE_LIMIT = 64 * 1024
#: Stop reading programs above this many pending bytes; resume below LOW_WATER.
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
_PIPE_BUF = 4096
_COLOURS = (36, 33, 32, 35, 34, 31, 96, 93, 92, 95, 94, 91)


class Line(NamedTuple):
    """One line of a program's output, or a piece of a long one.

    *data* has no newline. *newline*: the program wrote one after it (false
    for a piece of a long line and for a last line that had none);
    *continued*: a piece, the rest of the same line follows.
    """

    data: bytes
    newline: bool = True
    continued: bool = False


class LineBuffer:
    """Accumulates one stream's bytes and hands out complete lines."""

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self.limit = limit
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[Line]:
        """The complete lines in *data* (with what came before), and the pieces of long ones."""
        self._partial += data
        lines: list[Line] = []
        start = 0
        buf = self._partial
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            while nl - start > self.limit:  # a long line: its pieces first
                lines.append(Line(bytes(buf[start : start + self.limit]), False, True))
                start += self.limit
            lines.append(Line(bytes(buf[start:nl])))
            start = nl + 1
        # Hold at most `limit` bytes: a line of exactly `limit` may still get
        # its newline and go out whole.
        while len(buf) - start > self.limit:
            lines.append(Line(bytes(buf[start : start + self.limit]), False, True))
            start += self.limit
        del buf[:start]
        return lines

    def feed_block(self, data: bytes) -> Optional[bytes]:
        """The complete lines in *data* (with what came before) as one block, newlines kept.

        The fast path of ``feed``: ``None`` when a line in it is longer than
        ``limit`` (call ``feed`` with the same *data* then: nothing was taken),
        and ``b""`` when no line is complete yet.
        """
        buf = self._partial
        cut = data.rfind(b"\n") + 1
        if not cut:
            if len(buf) + len(data) > self.limit:
                return None
            buf += data
            return b""
        block = bytes(buf) + data[:cut] if buf else data[:cut]
        # A window of limit + 1 bytes without a newline holds a long line.
        start, end = 0, len(block)
        while end - start > self.limit:
            nl = block.rfind(b"\n", start, start + self.limit + 1)
            if nl < 0:
                return None
            start = nl + 1
        if len(data) - cut > self.limit:
            return None
        buf[:] = data[cut:]
        return block

    def flush(self) -> Optional[Line]:
        """The last line, written without a newline, if any."""
        if not self._partial:
            return None
        rest = Line(bytes(self._partial), newline=False)
        self._partial.clear()
        return rest


def iso_time(now: float) -> str:
    """*now* (time.time()) as ISO-8601 in UTC, to the millisecond: ``2026-12-02T18:16:21.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class Prefixer:
    """Each line of one program as text: ``name | line``, padded, maybe coloured and timed.

    Every line ends with a newline, the pieces of a long line and a last
    line that had none too, so no line is ever glued to another program's.
    An empty label (``prefix = false``) leaves the line as the program wrote it.
    """

    def __init__(self, label: str, width: int, index: int, *, colour: bool, timestamps: bool) -> None:
        text = f"{label:<{width}} | ".encode() if label else b""
        if colour and label:
            code = _COLOURS[index % len(_COLOURS)]
            text = f"\x1b[{code}m".encode() + text + b"\x1b[0m"
        self.text = text
        self.timestamps = timestamps

    def __call__(self, line: Line) -> bytes:
        if self.timestamps:
            return f"{iso_time(time.time())} ".encode() + self.text + line.data + b"\n"
        return self.text + line.data + b"\n"

    def block(self, block: bytes) -> bytes:
        """Whole lines (each ending with a newline) prefixed at once, as ``__call__`` would one by
        one: the lines of one read share its moment, so their timestamp too."""
        head = self.text
        if self.timestamps:
            head = f"{iso_time(time.time())} ".encode() + head
        if not head:
            return block
        return head + block[:-1].replace(b"\n", b"\n" + head) + b"\n"


class JsonLines:
    """Each line of one program as one JSON object (``--log-format json``).

    ``{"ts": …, "program": "web", "stream": "stdout", "line": "…"}``, with
    ``ts`` on the clock of gsup's own events (monotonic, as theirs). Bytes
    that are not UTF-8 cannot be a JSON string: "line" then holds them
    decoded with U+FFFD in their place, and "base64" the exact bytes. A
    piece of a long line has ``"continued": true``; a last line written
    without a newline ``"newline": false``.
    """

    def __init__(self, program: str, stream: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.head = {"program": program, "stream": stream}
        self.clock = clock

    def __call__(self, line: Line) -> bytes:
        import json

        record: dict[str, object] = {"ts": round(self.clock(), 6), **self.head}
        try:
            record["line"] = line.data.decode("utf-8")
        except UnicodeDecodeError:
            import base64

            record["line"] = line.data.decode("utf-8", "replace")
            record["base64"] = base64.b64encode(line.data).decode("ascii")
        if line.continued:
            record["continued"] = True
        elif not line.newline:
            record["newline"] = False
        return json.dumps(record).encode() + b"\n"

    def block(self, block: bytes) -> bytes:
        """Whole lines (each ending with a newline), one object each."""
        return b"".join(self(Line(data)) for data in block[:-1].split(b"\n"))


class Writer:
    """Pending output for one of gsup's descriptors (1 or 2)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = 0
        self.broken = False
        self._queue: deque[bytes] = deque()
        self._offset = 0  # what of the first chunk is written already
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            self.broken = True
            mode = 0
        self._regular = stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and fd_is_null(fd))
        #: Where the bytes go: for a pipe or a terminal, a description of its own.
        self._out = fd if self._regular or self.broken else _own_description(fd)
        self._nonblocking = self._out != fd

    def push(self, data: bytes) -> None:
        if self.broken:
            return  # nobody can read it any more: supervision goes on
        self._queue.append(data)
        self.pending += len(data)

    @property
    def wants_write(self) -> bool:
        return self.pending > 0 and not self.broken

    def _writable_now(self) -> bool:
        poller = select.poll()  # not select(): the descriptor's number may pass FD_SETSIZE
        poller.register(self.fd, select.POLLOUT)
        return bool(poller.poll(0))

    def write_some(self) -> None:
        """Write what fits now (call after poll reported POLLOUT); never block.

        A regular file takes everything. Anything else gets writes of at most
        PIPE_BUF bytes that end at a line end (a longer line goes in pieces of
        PIPE_BUF): such a write to a pipe is atomic, all of it or nothing, so
        whatever else writes to the same pipe (gsup's report at the end,
        another writer of the container's log) never lands inside a line.
        They go to a non-blocking description of gsup's own, written until
        the pipe is full; where there is none, each write waits for ``poll``
        to say the pipe has a free page (a write of PIPE_BUF or less then
        never blocks; its free bytes are no guide, since partly read pages
        still take a slot).
        """
        for _ in range(256):  # at most 1 MiB per wake-up: the loop has other work
            if not self._queue or self.broken:
                return
            if not self._nonblocking and not self._regular and not self._writable_now():
                return
            chunk, start = self._queue[0], self._offset
            end = len(chunk)
            if not self._regular and end - start > _PIPE_BUF:
                end = chunk.rfind(b"\n", start, start + _PIPE_BUF) + 1 or start + _PIPE_BUF
            try:
                n = os.write(self._out, memoryview(chunk)[start:end])
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.EBADF, errno.EIO, errno.ENOSPC):
                    self._drop()
                    return
                raise
            self.pending -= n
            if start + n == len(chunk):
                self._queue.popleft()
                self._offset = 0
            else:
                self._offset = start + n

    def write_text(self, text: str) -> None:
        """gsup's own message: after what is queued, so it never splits a line."""
        self.push(text.encode(errors="replace"))
        self.write_some()

    def close(self) -> None:
        """Release gsup's own description (the descriptor itself stays open)."""
        if self._nonblocking:
            os.close(self._out)
            self._out, self._nonblocking = self.fd, False

    def _drop(self) -> None:
        self.broken = True
        self._queue.clear()
        self._offset = 0
        self.pending = 0


def _own_description(fd: int) -> int:
    """A non-blocking description of the pipe or terminal on *fd*, or *fd* itself.

    O_NONBLOCK belongs to the file description, and gsup's stdout is usually
    shared (a terminal, the container's log pipe): set on it, the others
    would start seeing EAGAIN. Opening /proc/self/fd/N makes a new
    description of the same pipe or terminal, which only gsup uses. A socket
    cannot be opened that way; it stays blocking, written after ``poll``.
    """
    try:
        own = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return fd
    try:
        same = os.path.samestat(os.fstat(own), os.fstat(fd))
    except OSError:
        same = False
    if not same:
        os.close(own)
        return fd
    return own


def fd_is_null(fd: int) -> bool:
    try:
        st, null = os.fstat(fd), os.stat(os.devnull)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (null.st_dev, null.st_ino)


class QueuedText:
    """A text stream for gsup's own messages that goes through a ``Writer``.

    In many-programs mode gsup's stderr also carries the programs' stderr
    lines, written in pieces when the reader is slow; a message written
    straight to the descriptor could land inside one of them.
    """

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def write(self, text: str) -> int:
        self.writer.write_text(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return os.isatty(self.writer.fd)
