"""The floor of any Python signal forwarder, for the benchmark to measure beside gsup.

    python3 -I -S floor.py -- CMD ARGS...

Blocks every catchable signal, reads them from a signalfd(2), forks and execs
CMD (with an empty signal mask and default dispositions), then loops: poll,
read the signalfd, ``os.kill`` the child with each signal; on SIGCHLD, if the
child has exited, exit with its status (128 + the signal if it was killed).

What it costs is what any forwarder written in Python must pay: the
interpreter waking up, one read, one kill. It is not a supervisor: no
logging, no subreaper, no reaping of other processes, no escalation, no
error handling beyond dying. Standard library only.
"""

import ctypes
import os
import select
import signal
import struct
import sys

_SIGINFO = 128  # sizeof(struct signalfd_siginfo); ssi_signo is its first u32


def signalfd(signals: set[signal.Signals]) -> int:
    """A new non-blocking, close-on-exec signalfd for *signals* (already blocked)."""
    bits = 8 * ctypes.sizeof(ctypes.c_ulong)
    mask = (ctypes.c_ulong * (1024 // bits))()  # a glibc sigset_t
    for sig in signals:
        mask[(sig - 1) // bits] |= 1 << ((sig - 1) % bits)
    libc = ctypes.CDLL(None, use_errno=True)
    fd: int = libc.signalfd(-1, ctypes.byref(mask), os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def main(argv: list[str]) -> None:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    sigs = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    fd = signalfd(sigs)
    child = os.fork()
    if child == 0:
        for sig in sigs:  # exec keeps ignored signals ignored (Python ignores SIGPIPE, SIGXFSZ)
            if signal.getsignal(sig) == signal.SIG_IGN:
                signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.execvp(argv[0], argv)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        poller.poll()
        try:
            data = os.read(fd, 16 * _SIGINFO)
        except BlockingIOError:
            continue
        for off in range(0, len(data), _SIGINFO):
            (signo,) = struct.unpack_from("I", data, off)
            if signo == signal.SIGCHLD:
                pid, status = os.waitpid(child, os.WNOHANG)
                if pid:
                    code = os.waitstatus_to_exitcode(status)
                    os._exit(128 - code if code < 0 else code)
            else:
                os.kill(child, signo)


if __name__ == "__main__":
    main(sys.argv[1:])
