"""gsup check: the settings with their origins and the shutdown timeline, as text or as a picture."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time

import pytest
from gsupkit import GSUP, clean_env

from .conftest import gsup_once


def timeline(stdout: str) -> dict[str, str]:
    """``t=...`` rows of the timeline: what happens (first words) -> when."""
    rows = re.findall(r"^\s*t=(\S+)\s+(.*)$", stdout, re.M)
    assert rows, stdout
    return {what: t for t, what in rows}


def at(rows: dict[str, str], start: str) -> str:
    found = [t for what, t in rows.items() if what.startswith(start)]
    assert len(found) == 1, (start, rows)
    return found[0]


@pytest.mark.timeout(30)
def test_kubernetes_detected() -> None:
    """Detected kubernetes: grace 27 s, gsup's SIGKILL at t=27s, the platform's at t=30s, margin 3 s."""
    r = gsup_once(["check"], env=clean_env(KUBERNETES_SERVICE_HOST="10.96.0.1"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("gsup check: configuration is valid")
    assert re.search(r"--grace\s+27s\s+\(platform default\)", out), out
    assert re.search(r"--platform\s+kubernetes\s+\(detected: KUBERNETES_SERVICE_HOST is set\)", out), out
    assert "stop delay 0s + grace 27s + margin 3s <= deadline 30s" in out
    rows = timeline(out)
    assert at(rows, "kubernetes sends SIGTERM") == "0s"
    assert at(rows, "gsup sends the stop signal to the child; the grace of 27s starts") == "0s"
    assert at(rows, "grace ends: gsup sends SIGKILL") == "27s"
    assert at(rows, "kubernetes deadline: the platform sends SIGKILL, 3s after gsup's (margin 3s)") == "30s"
    assert "\x1b[" not in out, "escape sequences on a pipe"


@pytest.mark.timeout(30)
def test_kubernetes_with_a_stop_delay() -> None:
    """--stop-delay 5 on kubernetes: drain ends at t=5s, grace shrinks to 22 s, SIGKILL stays at 27 s."""
    r = gsup_once(["check", "--platform", "kubernetes", "--stop-delay", "5"])
    assert r.returncode == 0, r.stderr
    assert re.search(r"--grace\s+22s\s+\(platform default\)", r.stdout), r.stdout
    assert re.search(r"--stop-delay\s+5s?\s+\(--stop-delay\)", r.stdout), r.stdout
    assert "stop delay 5s + grace 22s + margin 3s <= deadline 30s" in r.stdout
    rows = timeline(r.stdout)
    assert at(rows, "drain starts: the child is not signalled for 5s") == "0s"
    assert at(rows, "drain ends: gsup sends the stop signal to the child; the grace of 22s starts") == "5s"
    assert at(rows, "grace ends") == "27s"
    assert at(rows, "kubernetes deadline") == "30s"


@pytest.mark.timeout(30)
def test_cloudrun() -> None:
    """cloudrun: grace 9 s, SIGKILL at t=9s, the platform's at t=10s, margin 1 s (the minimum)."""
    r = gsup_once(["check", "--platform", "cloudrun", "--", "sleep", "1"])
    assert r.returncode == 0, r.stderr
    assert re.search(r"--grace\s+9s\s+\(platform default\)", r.stdout), r.stdout
    assert "command: sleep 1" in r.stdout
    rows = timeline(r.stdout)
    assert at(rows, "cloudrun sends SIGTERM") == "0s"
    assert at(rows, "grace ends") == "9s"
    assert at(rows, "cloudrun deadline: the platform sends SIGKILL, 1s after gsup's (margin 1s)") == "10s"


@pytest.mark.timeout(30)
def test_no_platform_has_no_deadline() -> None:
    """--platform none: grace 10 s and no platform SIGKILL in the timeline."""
    r = gsup_once(["check", "--platform", "none"])
    assert r.returncode == 0, r.stderr
    assert "grace 10s, no platform deadline" in r.stdout
    rows = timeline(r.stdout)
    assert at(rows, "grace ends") == "10s"
    assert not [w for w in rows if "deadline" in w], rows


@pytest.mark.timeout(30)
def test_refused_configuration_exits_2() -> None:
    """gsup check refuses grace 28 s + stop delay 1 s on kubernetes with exit 2, the sum, and no timeline."""
    r = gsup_once(["check", "--platform", "kubernetes", "--grace", "28", "--stop-delay", "1"])
    assert r.returncode == 2
    assert "1s + grace 28s + margin 3s = 32s exceeds the kubernetes deadline of 30s" in r.stderr, r.stderr
    assert "t=" not in r.stdout


def setting(stdout: str, option: str) -> tuple[str, str]:
    """(value, origin) of one row of the settings."""
    m = re.search(rf"^\s*{option}\s+(.*?)\s+\((.*)\)\s*$", stdout, re.M)
    assert m, (option, stdout)
    return m.group(1), m.group(2)


@pytest.mark.timeout(30)
def test_check_shows_the_resolved_signals() -> None:
    """Signals are shown as gsup resolved them (SIGTERM, SIGKILL, SIGHUP:SIGQUIT), not as typed (Term,
    sigkill)."""
    r = gsup_once(
        ["check", "--stop-signal", "Term", "--parent-death-signal", "sigkill"],
        env=clean_env(GSUP_REWRITE="hup:quit 10:12"),
    )
    assert r.returncode == 0, r.stderr
    assert setting(r.stdout, "--stop-signal") == ("SIGTERM", "--stop-signal")
    assert setting(r.stdout, "--parent-death-signal") == ("SIGKILL", "--parent-death-signal")
    assert setting(r.stdout, "--rewrite") == ("SIGHUP:SIGQUIT SIGUSR1:SIGUSR2", "GSUP_REWRITE")


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("platform", "shown", "origin"),
    [
        ("ecs", "30s", "platform default"),
        ("fly", "5s", "platform default"),
        ("none", "no deadline", "default"),
    ],
)
def test_check_shows_the_deadline_in_force(platform: str, shown: str, origin: str) -> None:
    """Without --platform-timeout the row shows the deadline in force (the platform's), not a dash."""
    r = gsup_once(["check", "--platform", platform])
    assert r.returncode == 0, r.stderr
    assert setting(r.stdout, "--platform-timeout") == (shown, origin)


@pytest.mark.timeout(30)
def test_a_timeout_without_a_platform_is_no_platforms_deadline() -> None:
    """--platform none --platform-timeout 20: the last step is the deadline of whatever stops gsup, not a
    "none deadline" of "the platform"."""
    r = gsup_once(["check", "--platform", "none", "--platform-timeout", "20"])
    assert r.returncode == 0, r.stderr
    assert "none deadline" not in r.stdout and "the platform" not in r.stdout
    assert at(timeline(r.stdout), "deadline: whatever stops gsup sends SIGKILL, 2s after gsup's") == "20s"


@pytest.mark.timeout(30)
def test_the_refusal_shows_the_digits_that_exceed() -> None:
    """--grace 27001ms on kubernetes is refused with a sum whose digits show that it exceeds (30.001s, not
    30.0s)."""
    r = gsup_once(["check", "--platform", "kubernetes", "--grace", "27001ms"])
    assert r.returncode == 2
    assert "grace 27.001s + margin 3s = 30.001s exceeds the kubernetes deadline of 30s" in r.stderr, r.stderr


def check_on_a_terminal(args: list[str], columns: int = 110) -> str:
    """Run ``gsup check ARGS`` with a pty as stdout; everything it wrote."""
    master, slave = os.openpty()
    env = clean_env(TERM="xterm-256color", COLUMNS=str(columns), LINES="40")
    try:
        proc = subprocess.Popen([GSUP, "check", *args], stdin=slave, stdout=slave, stderr=slave, env=env)
    finally:
        os.close(slave)
    data = b""
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last holder of the terminal closed it
                break
            if not chunk:
                break
            data += chunk
        assert proc.wait(timeout=10) == 0, data.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return data.decode(errors="replace")


@pytest.mark.timeout(30)
def test_terminal_draws_the_timeline() -> None:
    """On a terminal gsup check draws the timeline as a coloured bar: drain, grace and margin parts."""
    out = check_on_a_terminal(["--platform", "kubernetes", "--stop-delay", "5"])
    assert "\x1b[" in out, "no colours on a terminal"
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    bar = re.search(r"0s (▒+)(█+)(░+) 30s", plain)
    assert bar, plain
    drain, grace, margin = (len(part) for part in bar.groups())
    total = drain + grace + margin
    # The parts are proportional: 5 s, 22 s and 3 s of 30 s (to a column).
    assert abs(drain - total * 5 / 30) <= 1 and abs(margin - total * 3 / 30) <= 1, bar.groups()
    assert "drain 5s" in plain and "grace 22s" in plain and "margin 3s" in plain
    assert re.search(r"t=\s*27s\s+grace ends", plain), plain


@pytest.mark.timeout(30)
def test_check_shows_the_health_endpoint_the_pre_stop_and_the_drain_on_the_timeline() -> None:
    """check with --health, --pre-stop and --stop-delay: /readyz turns 503 at t=0, the pre-stop slot,
    then the drain, then the stop signal, in that order, inside the kubernetes budget."""
    r = gsup_once(
        [
            "check",
            "--platform",
            "kubernetes",
            "--health",
            ":8081",
            "--pre-stop",
            "nginx -s quit",
            "--stop-delay",
            "5",
        ]
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "pre-stop 5s + stop delay 5s + grace 17s + margin 3s <= deadline 30s" in out, out
    assert re.search(r"t=0s\s+/readyz on 0\.0\.0\.0:8081 answers 503", out), out
    assert re.search(r"t=0s\s+pre-stop commands run, for at most 5s", out), out
    assert re.search(r"t=5s\s+drain starts", out), out
    assert re.search(r"t=10s\s+drain ends: gsup sends the stop signal", out), out
    assert re.search(r"t=27s\s+grace ends", out), out


@pytest.mark.timeout(30)
def test_an_over_long_pre_stop_or_drain_is_refused_with_the_arithmetic() -> None:
    """A pre-stop slot and a drain that leave the grace no room are refused, exit 2, the sum shown."""
    r = gsup_once(
        [
            "check",
            "--platform",
            "kubernetes",
            "--pre-stop",
            "true",
            "--pre-stop-timeout",
            "20s",
            "--stop-delay",
            "10",
        ]
    )
    assert r.returncode == 2
    assert "pre-stop 20s - stop delay 10s - margin 3s = -3s" in r.stderr, r.stderr
    r = gsup_once(
        ["check", "--platform", "kubernetes", "--pre-stop", "true", "--stop-delay", "5", "--grace", "20"]
    )
    assert r.returncode == 2
    assert "pre-stop 5s + stop delay 5s + grace 20s + margin 3s = 33s exceeds" in r.stderr, r.stderr


@pytest.mark.timeout(30)
def test_stop_delay_auto_needs_the_health_endpoint() -> None:
    """--stop-delay auto without --health is refused: nothing would ever end the drain early."""
    r = gsup_once(["check", "--platform", "kubernetes", "--stop-delay", "auto"])
    assert r.returncode == 2 and "needs --health" in r.stderr, r.stderr
    ok = gsup_once(["check", "--platform", "kubernetes", "--stop-delay", "auto", "--health", ":8081"])
    assert ok.returncode == 0, ok.stderr
    assert "stop delay at most 9s + grace 18s" in ok.stdout, ok.stdout  # a third of 30s - 3s
