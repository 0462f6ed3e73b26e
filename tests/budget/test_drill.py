"""gsup drill: PASS only for a program that stops cleanly in time; FAIL with the reason otherwise."""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

import pytest
from gsupkit import free_port
from prockit import alive

from .conftest import CHILD, HTTP_SERVER, gsup_once

#: The kubernetes budget scaled down: deadline 2 s, margin 1 s, grace 1 s.
QUICK = ["--platform", "kubernetes", "--platform-timeout", "2"]


def drill(options: list[str], command: list[str]) -> tuple[int, str, str]:
    """``gsup drill OPTIONS -- COMMAND``: exit status, stdout (the verdict and the program's), stderr."""
    r = gsup_once(["drill", *options, "--", *command], timeout=60)
    return r.returncode, r.stdout, r.stderr


def verdict(stdout: str) -> str:
    m = re.search(r"^\s*verdict\s+(PASS|FAIL)$", stdout, re.M)
    assert m, stdout
    return m.group(1)


def reasons(stdout: str) -> list[str]:
    return re.findall(r"^\s+- (.*)$", stdout, re.M)


def field(stdout: str, name: str) -> str:
    m = re.search(rf"^\s*{name}\s+(.*)$", stdout, re.M)
    assert m, (name, stdout)
    return m.group(1)


@pytest.mark.timeout(60)
def test_pass_for_a_program_that_handles_sigterm(tmp_path: Path) -> None:
    """A program that exits 0 on SIGTERM passes: exit 0, PASS, no reasons, nothing left."""
    ready = tmp_path / "ready"
    code, out, err = drill(
        ["--platform", "kubernetes", "--ready", f"file={ready}"],
        [*CHILD, "--ready-file", str(ready), "--on", "TERM=exit:0"],
    )
    assert (code, verdict(out)) == (0, "PASS"), out + err
    assert reasons(out) == []
    assert field(out, "platform").startswith("kubernetes (stop signal SIGTERM, grace 27s)")
    assert field(out, "exit code").startswith("0")
    assert field(out, "force-killed") == "no"
    assert field(out, "processes left") == "0"
    assert "(beat the grace)" in field(out, "time to exit")


@pytest.mark.timeout(60)
def test_drill_sends_the_platforms_first_signal(tmp_path: Path) -> None:
    """On nomad the drill stops the program with SIGINT (nomad's kill_signal), not SIGTERM."""
    ready = tmp_path / "ready"
    code, out, err = drill(
        ["--platform", "nomad", "--ready", f"file={ready}"],
        [*CHILD, "--ready-file", str(ready), "--on", "INT=exit:0", "--on", "TERM=exit:1"],
    )
    assert (code, verdict(out)) == (0, "PASS"), out + err
    assert field(out, "platform").startswith("nomad (stop signal SIGINT, grace 4s)")
    assert re.findall(r"^signal (\w+)", out, re.M) == ["SIGINT"]


@pytest.mark.timeout(60)
def test_fail_for_a_program_that_ignores_sigterm(tmp_path: Path) -> None:
    """A program that ignores SIGTERM fails: force-killed when the 1 s grace ran out."""
    ready = tmp_path / "ready"
    code, out, err = drill(
        [*QUICK, "--ready", f"file={ready}"],
        [*CHILD, "--ready-file", str(ready), "--on", "TERM=log"],
    )
    assert (code, verdict(out)) == (1, "FAIL"), out + err
    assert reasons(out) == ["it did not exit within the 1s grace after SIGTERM and was force-killed"], out
    assert field(out, "force-killed") == "yes"
    took = float(field(out, "time to exit").split("s")[0])
    assert took >= 0.9, out  # not before the grace ran out (the timing itself: test_kill_deadline)


@pytest.mark.timeout(60)
def test_fail_for_a_program_that_leaves_a_grandchild(tmp_path: Path) -> None:
    """A program that exits 0 but leaves a setsid grandchild behind fails; the grandchild is gone after."""
    ready = tmp_path / "ready"
    code, out, err = drill(
        [*QUICK, "--ready", f"file={ready}"],
        [*CHILD, "--ready-file", str(ready), "--setsid-grandchild", "--on", "TERM=exit:0"],
    )
    m = re.search(r"^grandchild pid=(\d+)", out, re.M)
    assert m, out
    grandchild = int(m.group(1))
    try:
        assert (code, verdict(out)) == (1, "FAIL"), out + err
        assert any("outlived the child (left behind)" in r for r in reasons(out)), out
        assert field(out, "exit code").startswith("0")
        assert not field(out, "processes left").startswith("0"), out
        assert not alive(grandchild), "the drill left the grandchild running"
    finally:
        if alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


@pytest.mark.timeout(60)
def test_fail_for_a_program_that_exits_1_on_sigterm(tmp_path: Path) -> None:
    """A program that answers SIGTERM with exit 1 fails, and the reason names the status."""
    ready = tmp_path / "ready"
    code, out, err = drill(
        [*QUICK, "--ready", f"file={ready}"],
        [*CHILD, "--ready-file", str(ready), "--on", "TERM=exit:1"],
    )
    assert (code, verdict(out)) == (1, "FAIL"), out + err
    assert reasons(out) == ["it exited with status 1 (exited with 1)"], out
    assert field(out, "force-killed") == "no"


@pytest.mark.timeout(60)
def test_ready_tcp_waits_for_the_listener() -> None:
    """--ready tcp=HOST:PORT sends the stop only once the server listens (it binds after 1 s)."""
    port = free_port()
    code, out, err = drill(
        ["--platform", "kubernetes", "--ready", f"tcp=127.0.0.1:{port}"],
        [*HTTP_SERVER, "--port", str(port), "--listen-after", "1"],
    )
    assert (code, verdict(out)) == (0, "PASS"), out + err
    m = re.match(r"([\d.]+)s after start \(ready: tcp=127\.0\.0\.1:(\d+)\)", field(out, "stop sent"))
    assert m and int(m.group(2)) == port, out
    assert float(m.group(1)) >= 1.0, out
    assert "listening port=" in out


@pytest.mark.timeout(60)
def test_probe_a_draining_server_passes() -> None:
    """A server that serves 1.5 s more after SIGTERM, then exits 0, passes --probe with no failed request."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    code, out, err = drill(
        ["--platform", "kubernetes", "--ready", f"http={url}", "--probe", url],
        [*HTTP_SERVER, "--port", str(port), "--drain", "1.5"],
    )
    m = re.match(r"(\d+) of (\d+) requests failed", field(out, "probe"))
    assert m, out
    assert int(m.group(2)) > 0, "no request was sent"
    assert int(m.group(1)) == 0, out
    assert (code, verdict(out)) == (0, "PASS"), out + err


@pytest.mark.timeout(60)
def test_probe_a_server_without_drain_fails() -> None:
    """A server that exits 0 at once on SIGTERM fails --probe: the refused requests are counted."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    code, out, err = drill(
        ["--platform", "kubernetes", "--ready", f"http={url}", "--probe", url],
        [*HTTP_SERVER, "--port", str(port), "--drain", "0"],
    )
    assert (code, verdict(out)) == (1, "FAIL"), out + err
    m = re.match(r"(\d+) of (\d+) requests failed", field(out, "probe"))
    assert m and int(m.group(1)) > 0, out
    assert field(out, "exit code").startswith("0"), "the only fault should be the lost requests"
    assert reasons(out) == [f"{m.group(1)} of {m.group(2)} probe requests failed during the stop"], out


def grace_of(stdout: str) -> float:
    m = re.search(r"grace (\d+(?:\.\d+)?)s\)", field(stdout, "platform"))
    assert m, stdout
    return float(m.group(1))


def assert_verdict_agrees_with_its_numbers(stdout: str) -> None:
    """ "beat the grace" only with a time within the grace; "grace ran out" only when force-killed."""
    took = float(field(stdout, "time to exit").split("s")[0])
    if "(beat the grace)" in field(stdout, "time to exit"):
        assert took <= grace_of(stdout), stdout
        assert field(stdout, "force-killed") == "no", stdout
    if "grace ran out" in field(stdout, "time to exit"):
        assert field(stdout, "force-killed") == "yes", stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("after", ["0", "50ms"])
def test_a_short_after_still_stops_a_started_program(after: str) -> None:
    """--after 0 or 50ms: the drill waits until the inner gsup can take a stop, so gsup reports how the
    program ended (a program still starting may well die of the SIGTERM: that is its verdict)."""
    _, out, err = drill([*QUICK, "--after", after], [*CHILD, "--on", "TERM=exit:0"])
    assert "gave no report" not in out, out + err
    assert re.match(r"(0 \(exited with 0\)|143 \(killed by SIGTERM\))$", field(out, "exit code")), out
    assert float(field(out, "stop sent").split("s")[0]) >= float(after.rstrip("ms") or 0) / 1000


@pytest.mark.timeout(60)
def test_ready_on_a_port_that_is_already_open() -> None:
    """--ready on a port already open when the drill starts: the stop waits for the inner gsup, which
    reports."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        _, out, err = drill([*QUICK, "--ready", f"tcp=127.0.0.1:{port}"], [*CHILD, "--on", "TERM=exit:0"])
    assert "gave no report" not in out, out + err
    assert re.match(r"(0 \(exited with 0\)|143 \(killed by SIGTERM\))$", field(out, "exit code")), out


@pytest.mark.timeout(60)
def test_time_to_exit_is_the_childs_not_the_probes_window() -> None:
    """With --probe, a server that exits at once on SIGTERM shows its own time to exit (well under the 1 s
    the probe goes on sending), not the probe's window."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    _, out, err = drill(
        ["--platform", "kubernetes", "--ready", f"http={url}", "--probe", url],
        [*HTTP_SERVER, "--port", str(port), "--drain", "0"],
    )
    took = float(field(out, "time to exit").split("s")[0])
    assert took < 0.5, out + err
    assert_verdict_agrees_with_its_numbers(out)


@pytest.mark.timeout(60)
def test_each_process_left_is_counted_once() -> None:
    """Two setsid leftovers that ignore SIGTERM, so that gsup signals them and then kills them: "processes
    left 2", not 4."""
    script = (
        'setsid sh -c "trap \\"\\" TERM; exec sleep 300" & setsid sh -c "trap \\"\\" TERM; exec sleep 300" & '
        'trap "exit 0" TERM; sleep 300 & wait'
    )
    code, out, err = drill([*QUICK, "--after", "0.5s"], ["sh", "-c", script])
    assert (code, verdict(out)) == (1, "FAIL"), out + err
    assert field(out, "processes left").startswith("2 "), out
    assert reasons(out) == ["2 process(es) outlived the child (left behind)"], out


@pytest.mark.timeout(60)
def test_a_program_that_exits_just_inside_the_grace_beats_it_by_its_numbers() -> None:
    """A program that exits 0.95 s after SIGTERM with a 1 s grace: the verdict agrees with the printed time
    (a time over the grace never reads "beat the grace")."""
    script = 'trap "sleep 0.95; exit 0" TERM; sleep 300 & wait'
    code, out, err = drill([*QUICK, "--after", "0.3s"], ["sh", "-c", script])
    assert_verdict_agrees_with_its_numbers(out)
    if field(out, "force-killed") == "no":
        assert (code, verdict(out)) == (0, "PASS"), out + err
