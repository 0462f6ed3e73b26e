"""A real load balancer for the rolling-update scenario: haproxy, driven through its runtime API.

- ``Haproxy``: ``haproxy -db`` on a free loopback port with one backend and
  no server at first. Servers are added, enabled and put in maintenance
  through its admin stats socket, the way a platform's controller registers
  and deregisters targets. Every server is health-checked every 100 ms; one
  failed check marks it DOWN, one passed check UP. ``retries 0`` and no
  ``option redispatch``: a request sent to a server that is going away
  fails, and the client sees it (503 when the connection is refused, 502
  when it is cut), instead of haproxy hiding it by trying another server.

Server states are read from the stats socket (``show stat``); every wait
polls it with a deadline, and ``watch`` keeps a timeline of each server's
changes (to tell how long after an instance's SIGTERM haproxy stopped
routing to it). haproxy is stopped by pid.
"""

from __future__ import annotations

import csv
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from lostwork import Lines, _end, free_port, select_wait, terminate

BACKEND = "app"
CHECK = "check inter 100ms fall 1 rise 1"  # fast, so that a test's rolling update takes seconds
CHECK_INTERVAL = 0.1  # the `inter` above, in seconds

CONFIG = """\
global
    stats socket {socket} level admin

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    # A check fails at once on a refused connection or a 503; a slow answer
    # (a busy machine) gets a second before it counts as a failure.
    timeout check 1s
    # A failed connection is not tried again, on this server or another one.
    retries 0

frontend web
    bind 127.0.0.1:{port}
    default_backend {backend}

backend {backend}
    balance roundrobin
    option httpchk GET {check_path}
    http-check expect status 200
    # Each request on its own connection to a server, as the clients do.
    http-reuse never
"""


class Haproxy:
    """haproxy on a free loopback port; its backend's servers checked at *check_path*."""

    def __init__(self, workdir: Path, *, check_path: str) -> None:
        self.socket_path = workdir / "haproxy.sock"
        self.config_path = workdir / "haproxy.cfg"
        for _attempt in range(3):  # another process may take the free port first
            self.port = free_port()
            self.config_path.write_text(
                CONFIG.format(socket=self.socket_path, port=self.port, backend=BACKEND, check_path=check_path)
            )
            self.proc = subprocess.Popen(
                ["haproxy", "-f", str(self.config_path), "-db"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            assert self.proc.stdout is not None
            self.log = Lines(self.proc.stdout)
            self.changes: list[tuple[float, str, str]] = []  # (monotonic time, server, new status)
            self._watching = threading.Event()
            self._watcher: Optional[threading.Thread] = None
            if self._wait_answering(timeout=10):
                return
            _end(self.proc)
            self.log.join()
        raise AssertionError("haproxy did not start:\n" + self.log.text())

    def _wait_answering(self, timeout: float) -> bool:
        """Until the stats socket answers (the listeners are bound by then), or haproxy exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if "Name: HAProxy" in self.command("show info"):
                    return True
            except OSError:
                pass
            select_wait(0.02)
        return False

    def command(self, line: str, timeout: float = 5.0) -> str:
        """One runtime API command on a connection of its own: haproxy answers and closes."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.socket_path))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the backend's servers, by server name (columns by their names)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(line for line in text.splitlines() if line)
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def state(self, name: str) -> tuple[str, str]:
        """(status, last check) of server *name*: ("UP", "L7OK"), ("DOWN", "L4CON"), ("MAINT", ...)."""
        row = self.stats()[name]
        return row["status"], row["check_status"].lstrip("* ")  # "* " while a check runs

    def wait_state(self, name: str, status: str, check: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen = self.state(name)
        while seen != (status, check):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"haproxy: server {name} is {seen}, not {(status, check)} after {timeout}s\n"
                    + self.log.text()
                )
            select_wait(0.01)
            seen = self.state(name)

    def add(self, name: str, port: int, *, check_port: int, timeout: float = 10.0) -> None:
        """Register 127.0.0.1:*port* as server *name* and return once haproxy routes to it.

        A server added at run time starts in maintenance, with checks off.
        Checks run in maintenance too: the server is enabled only after one
        has passed, so that no request reaches it before its health path
        said yes (an enabled server counts as UP until its first check).
        """
        answer = self.command(f"add server {BACKEND}/{name} 127.0.0.1:{port} {CHECK} port {check_port}")
        assert "New server registered" in answer, answer
        self.command(f"enable health {BACKEND}/{name}")
        self.wait_state(name, "MAINT", "L7OK", timeout)
        self.command(f"enable server {BACKEND}/{name}")
        self.wait_state(name, "UP", "L7OK", timeout)

    def watch(self, every: float = 0.01) -> None:
        """From now on, note each server's status changes in ``changes`` (polled every *every* s)."""

        def run() -> None:
            last: dict[str, str] = {}
            while not self._watching.wait(every):
                try:
                    stats = self.stats()
                except OSError:
                    return  # haproxy is gone
                now = time.monotonic()
                for name, row in stats.items():
                    if last.get(name) != row["status"]:
                        last[name] = row["status"]
                        self.changes.append((now, name, row["status"]))

        self._watcher = threading.Thread(target=run, daemon=True)
        self._watcher.start()

    def left_rotation(self, name: str, since: float) -> Optional[float]:
        """Seconds from *since* until server *name* was seen not UP (None: it never was)."""
        for when, server, status in list(self.changes):
            if server == name and when >= since and status != "UP":
                return when - since
        return None

    def retire(self, name: str) -> None:
        """Take server *name* out of the rotation for good (the platform deregisters it)."""
        self.command(f"set server {BACKEND}/{name} state maint")

    def stop(self) -> None:
        self._watching.set()
        if self._watcher is not None:
            self._watcher.join(5)
        terminate(self.proc, self.log)  # with -db, SIGTERM stops haproxy at once
