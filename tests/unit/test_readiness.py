"""Readiness attempts (gsup.readiness): real sockets, real HTTP servers, real child processes."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gsup.config import programs_from
from gsup.errors import UsageError
from gsup.model import ReadySpec
from gsup.readiness import Attempt, Probe, finish_attempt, http_check, refuse_self_connection, start_attempt


def collect(attempt: Attempt, timeout: float = 5.0) -> tuple[bool, str]:
    """Wait for an attempt's child like the loop's reaper would, then read its result."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status = os.waitpid(attempt.pid, os.WNOHANG)
        if pid:
            break
        assert time.monotonic() < deadline, "the attempt did not exit"
        time.sleep(0.005)
    return finish_attempt(attempt, os.waitstatus_to_exitcode(status), f"exit status {status}")


class _Server(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(params=[200, 503])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A local HTTP server answering every GET with the parametrized status: (URL, status)."""
    handler = type("Handler", (_Server,), {"status": request.param})
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/health", request.param
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.timeout(10)
def test_a_file_attempt_reports_through_its_child_process(tmp_path: Path) -> None:
    """A file attempt runs in a child process of its own group and says what it saw."""
    there = tmp_path / "ready"
    there.touch()
    found = start_attempt(ReadySpec("file", str(there)), {}, time.monotonic())
    missing = start_attempt(ReadySpec("file", str(tmp_path / "missing")), {}, time.monotonic())
    assert found.pid != os.getpid() and found.fd >= 0
    assert collect(found) == (True, "the file exists")
    assert collect(missing) == (False, "no such file")
    for fd in (found.fd, missing.fd):  # finish_attempt closed the pipes
        with pytest.raises(OSError):
            os.fstat(fd)


@pytest.mark.timeout(10)
def test_an_attempt_has_a_deadline_within_its_timeout_and_a_margin() -> None:
    """The loop kills an attempt at its deadline: the attempt's timeout (at most 1 s) plus 0.5 s."""
    now = time.monotonic()
    attempt = start_attempt(ReadySpec("file", "/", interval=0.2), {}, now)
    assert attempt.deadline == pytest.approx(now + 0.2 + 0.5)
    collect(attempt)
    slow = start_attempt(ReadySpec("file", "/", interval=5.0), {}, now)
    assert slow.deadline == pytest.approx(now + 1.0 + 0.5)
    collect(slow)


@pytest.mark.timeout(10)
def test_an_attempt_killed_at_its_deadline_reads_as_timed_out() -> None:
    """An attempt the loop had to kill counts as not ready, "timed out"."""
    attempt = start_attempt(ReadySpec("file", "/"), {}, time.monotonic())
    os.waitpid(attempt.pid, 0)
    assert finish_attempt(attempt, None, "killed by SIGKILL") == (False, "timed out")


@pytest.mark.timeout(10)
def test_a_command_attempt_is_the_command_and_its_status() -> None:
    """A command probe is the command itself: exit 0 is ready, anything else says its status."""
    ok = start_attempt(ReadySpec("command", "true", (b"true",)), dict(os.environb), time.monotonic())
    assert ok.fd == -1
    assert collect(ok)[0] is True
    bad = start_attempt(ReadySpec("command", "false", (b"false",)), dict(os.environb), time.monotonic())
    assert collect(bad)[0] is False


@pytest.mark.timeout(10)
def test_an_unexpected_error_in_the_attempt_is_raised_by_the_loop() -> None:
    """An attempt child that ended with status 2 (an error it did not expect) makes gsup fail loudly."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os._exit(2)
    os.close(write_end)
    with pytest.raises(RuntimeError, match="unexpectedly"):
        collect(Attempt(pid, read_end, time.monotonic() + 5))


@pytest.mark.timeout(10)
def test_tcp_attempts_see_a_listener_and_a_refusal() -> None:
    """A tcp attempt is ready when something accepts, and says "connection refused" when nothing listens."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert Probe("tcp", f"127.0.0.1:{port}").attempt(1.0) == (True, "connected")
    assert Probe("tcp", f"127.0.0.1:{port}").attempt(1.0) == (False, "connection refused")


@pytest.mark.timeout(10)
def test_a_socket_connected_to_itself_is_not_ready() -> None:
    """A connect that reached its own socket (TCP simultaneous open on a free port) is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.connect(s.getsockname())  # the kernel allows it: the same address at both ends
        with pytest.raises(ConnectionRefusedError, match="itself"):
            refuse_self_connection(s)
    with socket.socket() as listener, socket.socket() as client:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client.connect(listener.getsockname())
        refuse_self_connection(client)  # a real peer: no error


@pytest.mark.timeout(10)
def test_http_attempts_say_the_status_and_never_go_through_a_proxy(
    server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An http attempt talks to the URL directly whatever http_proxy says, and reports the
    status it got: ready on 200, not ready on 503 ("HTTP 503")."""
    url, status = server
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing there: a proxied request fails
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert http_check(url, 2.0) == (status == 200, f"HTTP {status}")


def test_an_http_attempt_on_a_port_where_nothing_listens() -> None:
    """No server: not ready, and the reason is the refusal."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert http_check(f"http://127.0.0.1:{port}/", 1.0) == (False, "connection refused")


@pytest.mark.parametrize(
    "text", ["tcp=127.0.0.1:0", "tcp=127.0.0.1:70000", "tcp=" + "x" * 64 + ":80", "tcp=nohost", "http=nope"]
)
def test_a_probe_that_could_never_answer_is_refused_when_parsed(text: str) -> None:
    """A port outside 1-65535 or a host name no resolver takes is refused, not probed in vain."""
    with pytest.raises(UsageError):
        Probe.parse(text)


def test_a_name_the_resolver_refuses_is_a_failed_attempt_not_an_error() -> None:
    """An attempt whose host the resolver rejects (not an OSError) counts as not ready."""
    assert Probe("tcp", "x" * 64 + ":80").attempt(0.1)[0] is False
    assert http_check("http://" + "x" * 64 + "/", 0.1)[0] is False


@pytest.mark.parametrize("interval", ["0", "0s", "1ms", "9ms"])
def test_an_interval_that_would_spin_is_refused(interval: str) -> None:
    """A readiness interval under 10 ms is refused when the file is read: a probe never spins."""
    data = {
        "programs": {"web": {"command": ["true"], "ready": {"tcp": "127.0.0.1:80", "interval": interval}}}
    }
    with pytest.raises(UsageError, match="interval"):
        programs_from("gsup.toml", data, 10.0)
