"""Starting a program: fork, set the child up, exec. Never waits for it.

Owns: what the child inherits (process group, signal mask and dispositions,
environment, user, parent-death signal) and the mapping of exec failures to
typed errors (not found 127, not executable 126).

Why fork and not ``subprocess``: ``Popen`` keeps its own idea of the child's
status and polls it (``subprocess._cleanup``), which would make it a second
reaper; and ``posix_spawn`` cannot set a parent-death signal or drop
privileges. Exec errors come back through a close-on-exec pipe: it closes
without data when exec succeeds.

Imports: the standard library, ``gsup.errors``, ``gsup.linux``,
``gsup.signals``, ``gsup.model``, ``gsup.units``.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Mapping
from typing import NamedTuple, Optional

from gsup import linux, signals
from gsup.errors import CommandNotExecutable, CommandNotFound, GsupError, SpawnFailed, UsageError
from gsup.model import ProgramSpec
from gsup.units import quote

#: The largest user or group id: (uid_t)-1 means "no change" to the kernel.
MAX_ID = 2**32 - 2


class Credentials(NamedTuple):
    """The identity a child runs as, resolved before the fork."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str
    #: The account's home directory; None: the uid has no account (numeric, not in passwd).
    home: Optional[str] = None

    def environment(self) -> dict[bytes, bytes]:
        """What the child's environment says about its user, as gosu and su-exec set it.

        ``HOME`` is the account's home (``/`` for a uid with no account);
        ``USER`` and ``LOGNAME`` its name, when there is an account. Otherwise
        a child started as ``nobody`` from a root shell's environment would
        write into ``/root``.
        """
        env = {b"HOME": os.fsencode(self.home or "/")}
        if self.home is not None:
            env[b"USER"] = env[b"LOGNAME"] = os.fsencode(self.name)
        return env


def resolve_user(spec: str, *, where: str = "--user") -> Optional[Credentials]:
    """Resolve ``USER[:GROUP]`` (names or numeric ids) to credentials.

    None when nothing is to change: gsup already runs as that user and group
    (an image with ``GSUP_USER=app`` run as app, e.g. Kubernetes runAsUser).
    *where* names the setting in messages (``--user``, a program's key).
    """
    import grp
    import pwd

    user, _, group = spec.partition(":")
    for name, kind in ((user, "user"), (group, "group")):
        if _numeric(name) and int(name) > MAX_ID:
            raise UsageError(f"{where}: {name} is not a {kind} id (0-{MAX_ID})")
    try:
        pw = pwd.getpwuid(int(user)) if _numeric(user) else pwd.getpwnam(user)
        uid, gid, name, home = pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir
    except KeyError:
        if not _numeric(user):
            raise UsageError(f"{where}: no such user {quote(user)}") from None
        uid, gid, name, home = int(user), int(user), user, None
    if group:
        try:
            gid = int(group) if _numeric(group) else grp.getgrnam(group).gr_gid
        except KeyError:
            raise UsageError(f"{where}: no such group {quote(group)}") from None
    groups = tuple(sorted({gid, *(g.gr_gid for g in grp.getgrall() if name in g.gr_mem)}))
    if os.geteuid() != 0:
        if (uid, gid) != (os.geteuid(), os.getegid()):
            raise UsageError(f"{where} {spec}: switching users needs root (gsup runs as uid {os.geteuid()})")
        return None  # already that user: nothing to switch, and no right to setgroups
    return Credentials(uid, gid, groups, name, home)


def _numeric(name: str) -> bool:
    """An id, not a name: ASCII digits only (``str.isdigit`` also takes ``²``, which ``int`` refuses)."""
    return name.isascii() and name.isdigit()


def inherited_environment() -> dict[bytes, bytes]:
    """The environment gsup was started with, byte-exact.

    Not ``os.environ``: CPython's locale coercion (PEP 538) adds ``LC_CTYPE``
    to its own environment when no locale is set, and that must not leak into
    the child. /proc/self/environ still holds the block the kernel gave us.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
    except OSError:
        return dict(os.environb)
    env: dict[bytes, bytes] = {}
    for entry in block.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep and key:
            env.setdefault(key, value)
    return env


def spawn(
    spec: ProgramSpec,
    *,
    own_group: bool,
    env: Mapping[bytes, bytes],
    credentials: Optional[Credentials] = None,
    parent_death_signal: Optional[int] = None,
    stdio: Optional[tuple[int, int, int]] = None,
) -> int:
    """Start *spec* and return its pid.

    The child gets its own process group when *own_group* (so that a signal
    to the group reaches its whole job and never gsup), default signal
    dispositions and an empty mask, and the inherited stdio untouched (or
    *stdio*: the descriptors to become its stdin, stdout and stderr).
    Raises CommandNotFound / CommandNotExecutable / SpawnFailed when exec
    fails; the failed child has then already exited and must still be reaped.
    """
    if credentials is not None:  # the account's HOME, USER, LOGNAME; a program's own env wins
        env = {**env, **{k: v for k, v in credentials.environment().items() if k not in (spec.env or {})}}
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()  # else the child would inherit and repeat buffered text
    read_end, write_end = os.pipe()  # both close-on-exec (PEP 446)
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: only async-signal-safe-minded work from here to exec
        stage = "setup"
        try:
            os.close(read_end)
            if own_group:
                os.setpgid(0, 0)
            if stdio is not None:
                for target, fd in enumerate(stdio):
                    if fd != target:
                        os.dup2(fd, target)  # the copy is inheritable; the original closes on exec
            if parent_death_signal is not None:
                linux.prctl(linux.PR_SET_PDEATHSIG, parent_death_signal)
                if os.getppid() != parent_pid:  # gsup died before prctl took effect
                    os._exit(128 + parent_death_signal)
            if credentials is not None:
                stage = "user"
                os.setgroups(list(credentials.groups))
                os.setgid(credentials.gid)
                os.setuid(credentials.uid)
            if spec.cwd is not None:
                stage = "cwd"
                os.chdir(spec.cwd)
            signals.reset_for_child()
            stage = "exec"
            os.execvpe(spec.argv[0], list(spec.argv), dict(env))
        except OSError as e:
            os.write(write_end, f"{stage}:{e.errno}".encode())
            os._exit(127 if e.errno == errno.ENOENT and stage == "exec" else 126)
        except BaseException:
            os.write(write_end, f"{stage}:0".encode())
        os._exit(125)
    os.close(write_end)
    try:
        failure = b""
        while chunk := os.read(read_end, 64):
            failure += chunk
    finally:
        os.close(read_end)
    if failure:
        stage, _, code = failure.decode().partition(":")
        error = _spawn_error(spec, stage, int(code or 0), env)
        error.pid = pid
        raise error
    return pid


def _spawn_error(spec: ProgramSpec, stage: str, err: int, env: Mapping[bytes, bytes]) -> GsupError:
    path = os.fsdecode(spec.argv[0])
    reason = os.strerror(err) if err else "unexpected error"
    if stage == "exec":
        interpreter = _missing_interpreter(spec.argv[0], env) if err == errno.ENOENT else None
        if interpreter is not None:  # the file is there; what its #! names is not (as shells say)
            return CommandNotFound(f"{path}: bad interpreter {interpreter} (no such file)")
        if err in (errno.ENOENT, errno.ENOTDIR):
            where = "" if "/" in path else " (searched PATH)"
            return CommandNotFound(f"{path}: command not found{where}")
        return CommandNotExecutable(f"{path}: cannot execute: {reason}")
    if stage == "cwd":
        return SpawnFailed(f"{path}: cannot change directory to {spec.cwd}: {reason}")
    if stage == "user":
        return SpawnFailed(f"{path}: cannot switch to user {spec.user}: {reason}")
    return SpawnFailed(f"{path}: cannot set up the child: {reason}")


def _missing_interpreter(command: bytes, env: Mapping[bytes, bytes]) -> Optional[str]:
    """The interpreter a script's ``#!`` line names, if exec found the script but not it (ENOENT)."""
    if b"/" in command:
        candidates = [command]
    else:  # where execvpe looked
        path = env.get(b"PATH", os.fsencode(os.defpath))
        candidates = [os.path.join(d or b".", command) for d in path.split(b":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            try:
                with open(candidate, "rb") as f:
                    head = f.readline(4096)
            except OSError:
                return None
            words = head[2:].split() if head.startswith(b"#!") else []
            if words and not os.path.exists(words[0]):
                return os.fsdecode(words[0])
            return None
    return None
