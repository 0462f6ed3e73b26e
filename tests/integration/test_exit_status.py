"""Exit statuses through the real command: the child's code, 128+S, gsup's own errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest
from gsupkit import run_to_end

#: Codes run through the installed command itself (the sweep covers all 256).
SAMPLE = [0, 1, 2, 3, 42, 100, 125, 126, 127, 128, 129, 137, 143, 254, 255]
#: Signals a child commonly dies by.
FATAL = ["HUP", "INT", "QUIT", "ABRT", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM"]


def exit_row(stderr: str) -> int:
    rows = re.findall(r"^gsup: exit\s+(\d+)$", stderr, re.M)
    assert len(rows) == 1, stderr
    return int(rows[0])


@pytest.mark.timeout(60)
def test_every_exit_code_passes_through(mode, helper):
    """Every exit code 0-255 of the child is gsup's exit status and the report's exit row."""
    # One warm interpreter forks the installed command's entry point per code:
    # 512 cold starts would take minutes (see tests/helpers/exit_sweep.py).
    cmd = [sys.executable, helper("exit_sweep.py"), *(["--pid1"] if mode.pid1 else [])]
    r = subprocess.run(
        [*cmd, *map(str, range(256))],
        capture_output=True,
        text=True,
        timeout=50,
        env=mode.env,
    )
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["code"] for x in results] == list(range(256))
    assert [x["code"] for x in results if x["status"] != x["code"]] == []
    assert [x["code"] for x in results if exit_row(x["stderr"]) != x["code"]] == []
    if mode.pid1:  # gsup was PID 1: its first child is pid 2
        assert all(re.search(r"^gsup: child\s+pid 2 ", x["stderr"], re.M) for x in results)


@pytest.mark.timeout(60)
def test_exit_codes_through_the_command(gsup):
    """A sample of exit codes, through the installed command itself, pass through unchanged."""
    runs = {code: gsup(["--", "sh", "-c", f"exit {code}"]) for code in SAMPLE}
    for code, run in runs.items():
        assert run.finish(50) == code
        assert exit_row(run.err.text()) == code
        assert "force-killed" not in run.err.text()


@pytest.mark.timeout(60)
def test_child_killed_by_a_signal_gives_128_plus_n(gsup):
    """A child that dies by signal S makes gsup exit 128+S, and it is not reported force-killed."""
    runs = {name: gsup([], child=["--kill-self", name]) for name in FATAL}
    for name, run in runs.items():
        sig = signal.Signals["SIG" + name]
        assert run.finish(50) == 128 + sig, run.err.text()
        err = run.err.text()
        assert re.search(rf"^gsup: child\s+pid \d+ \(.*\) killed by SIG{name}$", err, re.M), err
        assert exit_row(err) == 128 + sig
        assert "force-killed" not in err


def assert_one_error_line(stderr: str, *, mentions: str = "") -> None:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("gsup: error: "), stderr
    assert mentions in lines[0]


@pytest.mark.timeout(40)
@pytest.mark.parametrize("command", ["/nonexistent/gsup-test-command", "gsup-test-no-such-command"])
def test_command_not_found_is_127(mode, command):
    """A command that does not exist gives exit 127 and one error line naming it."""
    r = mode.run("--", command)
    assert r.returncode == 127
    assert_one_error_line(r.stderr, mentions=command)


@pytest.mark.timeout(40)
def test_command_not_executable_is_126(mode, tmp_path):
    """A command that exists but is not executable gives exit 126 and one error line naming it."""
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    r = mode.run("--", str(script))
    assert r.returncode == 126
    assert_one_error_line(r.stderr, mentions=str(script))


@pytest.mark.timeout(40)
@pytest.mark.parametrize("on_path", [False, True], ids=["by-path", "on-path"])
def test_script_with_a_missing_interpreter_is_127_bad_interpreter(mode, tmp_path, on_path):
    """A script whose #! names a missing interpreter gives 127 and one line saying "bad interpreter", as
    shells do, not "command not found"."""
    script = tmp_path / "gsup-test-script"
    script.write_text("#!/nonexistent/interp -x\nexit 0\n")
    script.chmod(0o755)
    if on_path:
        env = {**mode.env, "PATH": f"{tmp_path}:{mode.env.get('PATH', '')}"}
        r = run_to_end(mode.command("--", script.name), env=env)
    else:
        r = mode.run("--", str(script))
    assert r.returncode == 127
    assert_one_error_line(r.stderr, mentions="bad interpreter /nonexistent/interp")


@pytest.mark.timeout(40)
@pytest.mark.parametrize(
    "args",
    [
        ["--grace", "abc", "--", "true"],
        ["--stop-signal", "NOPE", "--", "true"],
        ["--gsup-test-unknown-option", "--", "true"],
        [],
        ["--"],
    ],
    ids=["bad-duration", "bad-signal", "unknown-option", "no-command", "empty-command"],
)
def test_usage_errors_are_2(mode, args):
    """Invalid options or a missing command give exit 2 and one error line, no traceback."""
    r = mode.run(*args)
    assert r.returncode == 2
    assert_one_error_line(r.stderr)
