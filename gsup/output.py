"""Program output in many-programs mode: bytes -> whole lines -> prefixed, written.

Owns: line splitting (a line is never split, except a line longer than
``LINE_LIMIT``, passed in pieces instead of held in memory; the last line
without a newline is flushed at the end), the prefix (``web | ``, coloured
on a terminal, optional timestamps), and writing to gsup's own stdout and
stderr without ever blocking the loop for long: the loop writes only what
the descriptor can take now, and stops reading programs while too much is
pending, so back-pressure reaches the programs and memory stays bounded.

Why not O_NONBLOCK on stdout: gsup's stdout is usually shared (a terminal,
the container's log pipe, programs with ``prefix = false``), and the flag
belongs to the shared file description: others would start seeing EAGAIN.
So writes stay blocking, sized to what ``poll`` says fits.

Imports: the standard library only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import termios
import time
from collections import deque
from typing import Optional

#: Longest line held in memory; longer lines go out in pieces of this size.
LINE_LIMIT = 64 * 1024
#: Stop reading programs above this many pending bytes; resume below LOW_WATER.
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
_F_GETPIPE_SZ = 1032
_COLOURS = (36, 33, 32, 35, 34, 31, 96, 93, 92, 95, 94, 91)


class LineBuffer:
    """Accumulates one stream's bytes and hands out complete lines."""

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self.limit = limit
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The complete lines in *data* (with what came before), each ending in b"\\n"."""
        self._partial += data
        lines: list[bytes] = []
        start = 0
        buf = self._partial
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            while nl + 1 - start > self.limit:  # a long line: its pieces, each marked as continued
                lines.append(bytes(buf[start : start + self.limit]) + b"\n")
                start += self.limit
            lines.append(bytes(buf[start : nl + 1]))
            start = nl + 1
        while len(buf) - start >= self.limit:
            lines.append(bytes(buf[start : start + self.limit]) + b"\n")
            start += self.limit
        del buf[:start]
        return lines

    def flush(self) -> Optional[bytes]:
        """The last line without a newline, if any (given one)."""
        if not self._partial:
            return None
        rest = bytes(self._partial) + b"\n"
        self._partial.clear()
        return rest


class Prefixer:
    """The prefix of each line of one program: ``name | ``, padded, maybe coloured."""

    def __init__(self, label: str, width: int, index: int, *, colour: bool, timestamps: bool) -> None:
        text = f"{label:<{width}} | ".encode()
        if colour:
            code = _COLOURS[index % len(_COLOURS)]
            text = f"\x1b[{code}m".encode() + text + b"\x1b[0m"
        self.text = text
        self.timestamps = timestamps

    def __call__(self, line: bytes) -> bytes:
        if self.timestamps:
            now = time.time()
            stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d} "
            return stamp.encode() + self.text + line
        return self.text + line


class Writer:
    """Pending output for one of gsup's descriptors (1 or 2)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = 0
        self.broken = False
        self._queue: deque[bytes] = deque()
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            self.broken = True
            mode = 0
        self._regular = stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and fd_is_null(fd))
        self._pipe = stat.S_ISFIFO(mode)

    def push(self, data: bytes) -> None:
        if self.broken:
            return  # nobody can read it any more: supervision goes on
        self._queue.append(data)
        self.pending += len(data)

    @property
    def wants_write(self) -> bool:
        return self.pending > 0 and not self.broken

    def _room(self) -> int:
        """Bytes a blocking write can take now without waiting (poll said POLLOUT)."""
        if self._regular:
            return self.pending
        if self._pipe:
            try:
                size = fcntl.fcntl(self.fd, _F_GETPIPE_SZ)
                used = int.from_bytes(fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0"), "little")
                return max(1, size - used)
            except OSError:
                return 4096
        return 4096  # a terminal or a socket: PIPE_BUF is always safe after POLLOUT

    def write_some(self) -> None:
        """Write what fits now (call after poll reported POLLOUT)."""
        budget = self._room()
        while self._queue and budget > 0 and not self.broken:
            chunk = self._queue[0]
            piece = chunk[:budget]
            try:
                n = os.write(self.fd, piece)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.EBADF, errno.EIO, errno.ENOSPC):
                    self._drop()
                    return
                raise
            self.pending -= n
            budget -= n
            if n == len(chunk):
                self._queue.popleft()
            else:
                self._queue[0] = chunk[n:]
                return

    def _drop(self) -> None:
        self.broken = True
        self._queue.clear()
        self.pending = 0


def fd_is_null(fd: int) -> bool:
    try:
        st, null = os.fstat(fd), os.stat(os.devnull)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (null.st_dev, null.st_ino)
