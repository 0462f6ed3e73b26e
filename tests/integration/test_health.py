"""The health endpoint (--health): /readyz turns 503 at the stop request, /livez stays 200 to the
end, the drain, the pre-stop command, bad requests and hostile clients; gsup status.

Each test runs twice: gsup as a subreaper and as PID 1 of a PID namespace
(which shares the host's network: the endpoint is on 127.0.0.1).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from typing import Any, Optional

import pytest
from gsupkit import GSUP, free_port, quiet_platform, run_to_end


def get(port: int, path: str = "/readyz", method: str = "GET", timeout: float = 2.0) -> tuple[int, Any]:
    """One request to the endpoint (http.client: no proxy): status and the JSON body (None for HEAD)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(data) if data else None


def wait_ready(port: int, timeout: float = 10.0) -> dict[str, Any]:
    """Poll /readyz until it answers 200 (the endpoint is up and the program ready)."""
    deadline = time.monotonic() + timeout
    last: Optional[str] = None
    while time.monotonic() < deadline:
        try:
            code, body = get(port)
            if code == 200:
                return body  # type: ignore[no-any-return]
            last = f"HTTP {code}"
        except OSError as e:
            last = str(e)
        time.sleep(0.01)
    raise AssertionError(f"/readyz not 200 within {timeout}s: {last}")


class Poller:
    """A load balancer's health check: GET /readyz every *interval*, each answer kept with its time."""

    def __init__(self, port: int, interval: float = 0.02) -> None:
        self.port, self.interval = port, interval
        self.answers: list[tuple[float, Any]] = []  # (time sent, status or the error)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                code: Any = get(self.port, timeout=1.0)[0]
            except OSError as e:
                code = type(e).__name__
            self.answers.append((t, code))
            self._stop.wait(self.interval)

    def close(self) -> list[tuple[float, Any]]:
        self._stop.set()
        self._thread.join(5)
        return self.answers


@pytest.mark.timeout(30)
def test_readyz_turns_503_at_the_stop_request_and_livez_stays_200(gsup):
    """/readyz is 200 while the child runs, 503 from the SIGTERM on (no 200 after it), through the
    1 s drain; /livez is 200 the whole time; the child gets SIGTERM after the drain."""
    port = free_port()
    run = gsup(["--health", f"127.0.0.1:{port}", "--stop-delay", "1s"], child=["--stop-code", "0"])
    run.out.expect(r"^ready pid=")
    body = wait_ready(port)
    assert [p["state"] for p in body["programs"]] == ["ready"]
    poller = Poller(port)
    poller.answers.clear()
    sent = run.send(signal.SIGTERM)
    live = []
    while not run.exited():
        try:
            live.append(get(port, "/livez", timeout=1.0)[0])
        except OSError:
            break  # gsup has closed the endpoint: its end
        time.sleep(0.05)
    term = run.out.expect(r"^signal SIGTERM$")
    assert run.finish() == 0
    answers = poller.close()
    after = [code for t, code in answers if t > sent + 0.005]
    assert after and all(code == 503 for code in after if isinstance(code, int)), answers
    assert 503 in after
    assert live and set(live) == {200}, live
    assert 0.95 <= term.t - sent < 2.0, "the drain did not last 1 s"


@pytest.mark.timeout(30)
def test_a_request_sent_with_the_sigterm_already_gets_503(gsup):
    """A /readyz answered right after the SIGTERM was sent is 503 (the signal is acted on first)."""
    port = free_port()
    run = gsup(["--health", f"127.0.0.1:{port}", "--stop-delay", "2s"], child=["--stop-code", "0"])
    run.out.expect(r"^ready pid=")
    wait_ready(port)
    run.send(signal.SIGTERM)
    code, body = get(port)
    assert code == 503 and body["stopping"] is True, body
    assert body["sigkill_in"] is None or body["sigkill_in"] > 0
    run.send(signal.SIGINT)  # Ctrl+C twice: do not wait for the drain
    run.send(signal.SIGINT)
    run.finish()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [("GET", "/nope", 404), ("POST", "/readyz", 405), ("DELETE", "/livez", 405), ("HEAD", "/readyz", 200)],
)
def test_bad_requests_get_4xx(gsup, method, path, expected):
    """Only GET and HEAD of /livez and /readyz: another path is 404, another method 405; HEAD has no body."""
    port = free_port()
    run = gsup(["--health", f"127.0.0.1:{port}"], child=["--stop-code", "0"])
    run.out.expect(r"^ready pid=")
    wait_ready(port)
    code, body = get(port, path, method)
    assert code == expected
    if method == "HEAD":
        assert body is None
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400 ")
    run.send(signal.SIGTERM)
    assert run.finish() == 0


@pytest.mark.timeout(30)
def test_hostile_clients_delay_neither_the_stop_nor_the_sigkill(gsup):
    """200 connections that send nothing and a client that sends a byte at a time cannot delay
    the SIGKILL at the grace: a child ignoring SIGTERM is killed at 1 s, exit 137, and a new
    request is still answered meanwhile."""
    port = free_port()
    run = gsup(["--health", f"127.0.0.1:{port}", "--grace", "1s"], child=["--ignore", "TERM"])
    run.out.expect(r"^ready pid=")
    wait_ready(port)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(200)]
    slow = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        slow.sendall(b"G")
        sent = run.send(signal.SIGTERM)
        run.out.expect(r"^signal SIGTERM$")
        answered = None
        for _ in range(50):  # the endpoint still serves a well-behaved poller, through the flood
            try:
                answered = get(port, timeout=1.0)[0]
                break
            except OSError:
                time.sleep(0.05)
        assert run.wait(10) == 137
        assert run.exited_at is not None and run.exited_at - sent < 1.5, "the clients delayed the SIGKILL"
        assert answered == 503
    finally:
        for s in [*idle, slow]:
            s.close()
    run.finish()


@pytest.mark.timeout(30)
def test_a_pre_stop_command_runs_before_the_stop_signal_and_its_output_is_shown(gsup, tmp_path):
    """--pre-stop runs at the stop request, its output on gsup's stdout, and only after it ended
    does the child get SIGTERM; its end is in the report."""
    port = free_port()
    script = "echo pre-stop-says-goodbye; sleep 0.3"
    run = gsup(
        ["--health", f"127.0.0.1:{port}", "--pre-stop", f"sh -c '{script}'", "--log-format", "json"],
        child=["--stop-code", "0"],
    )
    run.out.expect(r"^ready pid=")
    wait_ready(port)
    sent = run.send(signal.SIGTERM)
    said = run.out.expect(r"^pre-stop-says-goodbye$")
    term = run.out.expect(r"^signal SIGTERM$")
    assert run.finish() == 0
    assert said.t < term.t and term.t - sent >= 0.3
    report = json.loads(run.err.text().splitlines()[-1])
    assert report["pre_stops"] == [{"program": None, "ended": "exited with 0"}]


@pytest.mark.timeout(30)
def test_a_pre_stop_that_hangs_is_killed_at_its_slot_and_the_child_still_gets_its_grace(gsup):
    """A pre-stop that never ends is SIGKILLed when its 0.5 s slot ends; the stop goes on and the
    child gets SIGTERM and its whole 1 s grace (it exits by itself after 0.6 s: not force-killed)."""
    run = gsup(
        ["--pre-stop", "sleep 30", "--pre-stop-timeout", "500ms", "--grace", "1s", "--log-format", "json"],
        child=["--stop-after", "0.6", "--stop-code", "0"],
    )
    run.out.expect(r"^ready pid=")
    sent = run.send(signal.SIGTERM)
    term = run.out.expect(r"^signal SIGTERM$")
    assert run.finish() == 0
    assert 0.45 <= term.t - sent < 1.0
    report = json.loads(run.err.text().splitlines()[-1])
    assert report["pre_stops"] == [{"program": None, "ended": "killed at the end of its slot"}]
    assert report["force_killed"] is False


@pytest.mark.timeout(30)
def test_stop_delay_auto_ends_the_drain_once_the_endpoint_was_polled(gsup):
    """--stop-delay auto with a health check every 100 ms: the child gets SIGTERM about one interval
    after the first poll that saw 503 (well before the drain's 10 s longest), and no 200 after the stop."""
    port = free_port()
    run = gsup(["--health", f"127.0.0.1:{port}", "--stop-delay", "auto"], child=["--stop-code", "0"])
    run.out.expect(r"^ready pid=")
    wait_ready(port)
    poller = Poller(port, interval=0.1)
    time.sleep(0.35)  # a few polls before the stop: the interval gsup sees
    sent = run.send(signal.SIGTERM)
    term = run.out.expect(r"^signal SIGTERM$")
    assert run.finish() == 0
    answers = poller.close()
    seen_503 = [t for t, code in answers if code == 503]
    assert seen_503, answers
    assert term.t - seen_503[0] < 0.5, "the drain went on long after the poller had seen 503"
    assert term.t - sent < 1.0
    assert all(code != 200 for t, code in answers if t > sent + 0.005)


@pytest.mark.timeout(30)
def test_ready_log_waits_for_a_line_and_passes_the_output_through_byte_for_byte(gsup):
    """--ready log=REGEX: /readyz is 503 until the child writes a matching line, then 200; the
    child's output reaches gsup's stdout unchanged (its last line without a newline too)."""
    port = free_port()
    script = "echo warming; sleep 0.5; printf 'listening on 8000\\n'; printf 'tail'; sleep 30"
    run = gsup(
        ["--health", f"127.0.0.1:{port}", "--ready", "log=listening on \\d+", "--", "sh", "-c", script]
    )
    run.out.expect(r"^warming$")
    code, body = get(port)
    assert code == 503 and body["programs"][0]["state"] == "starting"
    run.out.expect(r"^listening on 8000$")
    wait_ready(port, timeout=5)
    run.send(signal.SIGTERM)
    run.finish()
    assert bytes(run.out.data) == b"warming\nlistening on 8000\ntail"


@pytest.mark.timeout(30)
def test_gsup_status_reads_a_running_a_stopping_and_no_gsup(gsup):
    """gsup status: exit 0 and each program's state for a running gsup, 1 for a stopping one,
    2 when nothing listens."""
    port = free_port()
    run = gsup(["--health", f"127.0.0.1:{port}", "--stop-delay", "3s"], child=["--stop-code", "0"])
    run.out.expect(r"^ready pid=")
    wait_ready(port)
    env = {**quiet_platform(), "GSUP_HEALTH": f"127.0.0.1:{port}"}
    up = run_to_end([GSUP, "status"], env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "gsup status: ready" in up.stdout and "main  ready" in up.stdout
    run.send(signal.SIGTERM)
    stopping = run_to_end([GSUP, "status", "--json"], env=env)
    assert stopping.returncode == 1, stopping.stdout
    assert json.loads(stopping.stdout)["stopping"] is True
    run.send(signal.SIGINT)  # not the first stop signal: forwarded, and the child stops with it
    run.finish()
    gone = run_to_end([GSUP, "status", "--health", f"127.0.0.1:{port}"], env=quiet_platform())
    assert gone.returncode == 2 and "unreachable" in gone.stdout
