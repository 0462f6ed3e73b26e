"""Bad input is refused before anything starts: exit 2 and one line naming the option, variable or key.

Each case runs the real command with a command (or programs) that would
leave a marker file if it ran; none may. ``gsup check`` must refuse what the
start refuses, with the same line.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import NamedTuple, Optional

import pytest
from gsupkit import GSUP, clean_env, run_to_end


class Case(NamedTuple):
    args: tuple[str, ...]  # before "-- touch MARKER" (unless a config is given)
    message: str  # a regex the one error line must match (after "gsup: error: ")
    env: tuple[tuple[str, str], ...] = ()
    config: Optional[bytes] = None  # a config file of programs; {marker} is replaced


PROGRAM = b'[programs.p]\ncommand = ["touch", "{marker}"]\n'
CASES = {
    "grace-720h": Case(("--grace", "720h"), r"^--grace: invalid duration '720h': at most 168h$"),
    "grace-huge-number": Case(("--grace", "9" * 30), r"^--grace: invalid duration '9{30}': at most 168h$"),
    "stop-delay-from-env": Case(
        (), r"^GSUP_STOP_DELAY: invalid duration '200h'", env=(("GSUP_STOP_DELAY", "200h"),)
    ),
    "ready-timeout-720h": Case(
        (),
        r"\[programs\.p\.ready\] timeout: invalid duration '720h': at most 168h$",
        config=PROGRAM + b'ready = { file = "/nonexistent", timeout = "720h" }\n',
    ),
    "backoff-huge": Case(
        (),
        r"\[programs\.p\] backoff: invalid duration '9999999999s': at most 168h$",
        config=PROGRAM + b'restart = "always"\nbackoff = "9999999999s"\n',
    ),
    "latin-1-file": Case(
        (),
        r": not UTF-8 text \(TOML is\): byte 0xe9 at offset \d+ \(line 3, column 3\)$",
        config=PROGRAM + b"# \xe9\n",
    ),
    "binary-file": Case(
        (),
        r": not UTF-8 text \(TOML is\): byte 0xff at offset 0 \(line 1, column 1\)$",
        config=b"\xff\xfe\x00\x01",
    ),
    "empty-command": Case(("--", ""), r"^empty command"),
    "user-over-uid-range": Case(("--user", "4294967296"), r"^--user: 4294967296 is not a user id"),
    "group-over-gid-range": Case(("--user", "0:4294967295"), r"^--user: 4294967295 is not a group id"),
    "user-unicode-digit": Case(("--user", "²"), r"^--user: no such user '²'$"),
    "rewrite-twice": Case(
        ("--rewrite", "TERM:HUP", "--rewrite", "TERM:USR2"),
        r"^--rewrite: SIGTERM is rewritten twice, to SIGHUP and to SIGUSR2",
    ),
    "quiet-and-verbose": Case(("-q", "-v"), r"^--quiet and --verbose cannot both be on$"),
    "quiet-from-env-and-verbose": Case(
        ("-v",), r"^GSUP_QUIET and --verbose cannot both be on$", env=(("GSUP_QUIET", "1"),)
    ),
    "unknown-option": Case(("--bogus",), r"^unknown option --bogus; see gsup (check )?--help$"),
    "option-typo": Case(("--grac", "1s"), r"^unknown option --grac: did you mean --grace\?$"),
    "bad-boolean-in-env": Case(
        (),
        r"^GSUP_QUIET: 'maybe' is not true or false \(use 1, 0, true, false, yes, no\)$",
        env=(("GSUP_QUIET", "maybe"),),
    ),
    "undecodable-byte": Case(("--grace", "\udcff"), r"^--grace: invalid duration '\\xff'"),
    "drill-after-negative": Case(("drill", "--after", "-1s"), r"^--after: invalid duration '-1s'"),
    "env-key-with-equals": Case(
        (), r"\[programs\.p\] env: 'A=B' is not a variable name", config=PROGRAM + b'env = { "A=B" = "x" }\n'
    ),
    "nul-in-env-value": Case(
        (),
        r"\[programs\.p\] env: A: the value holds a NUL character",
        config=PROGRAM + b'env = { A = "x\\u0000y" }\n',
    ),
    "nul-in-command": Case(
        (),
        r"\[programs\.p\] command: an argument holds a NUL character",
        config=b'[programs.p]\ncommand = ["touch", "{marker}", "a\\u0000b"]\n',
    ),
    "no-such-user-of-a-program": Case(
        (),
        r"\[programs\.p\] user: no such user 'nosuch-gsup-user'$",
        config=PROGRAM + b'user = "nosuch-gsup-user"\n',
    ),
    "no-such-user-for-every-program": Case(
        ("--user", "nosuch-gsup-user"), r"^--user: no such user 'nosuch-gsup-user'$", config=PROGRAM
    ),
    "no-grace-left-by-the-files-timeout": Case(
        (),
        r"^the deadline of 0s \(\S+: \[gsup\] platform_timeout\) leaves no grace",
        config=b'[gsup]\nplatform_timeout = "0"\n\n' + PROGRAM,
    ),
}
for _name in ("STOP", "TSTP", "TTIN", "TTOU", "CHLD", "CONT", "WINCH", "URG"):
    CASES[f"stop-signal-{_name}"] = Case(
        ("--stop-signal", _name.lower()), rf"^--stop-signal: SIG{_name} cannot be a stop signal: it \w+"
    )
CASES["stop-signal-of-a-program"] = Case(
    (),
    r"\[programs\.p\] stop_signal: SIGTSTP cannot be a stop signal",
    config=PROGRAM + b'stop_signal = "TSTP"\n',
)


def _argv(case: Case, tmp_path: Path, marker: Path, check: bool) -> list[object]:
    args: list[object] = list(case.args)
    drill = args[:1] == ["drill"]
    head = ["check"] if check and not drill else []
    if case.config is not None:
        path = tmp_path / "gsup.toml"
        path.write_bytes(case.config.replace(b"{marker}", os.fsencode(marker)))
        args += ["--config", str(path)]
    elif "--" not in args:
        args += ["--", "touch", str(marker)]
    return [GSUP, *head, *(os.fsencode(a) if isinstance(a, str) else a for a in args)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("check", [False, True], ids=["start", "check"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_refused_with_one_line_and_exit_2(case: Case, check: bool, tmp_path: Path) -> None:
    """The start, and gsup check, refuse the input with exit 2 and one line saying what and where;
    nothing runs."""
    marker = tmp_path / "ran"
    r = subprocess.run(
        _argv(case, tmp_path, marker, check),  # type: ignore[arg-type]
        env=clean_env(GSUP_PLATFORM="none", **dict(case.env)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    err = r.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("gsup: error: "), (r.returncode, err)
    assert re.search(case.message, lines[0][len("gsup: error: ") :]), lines[0]
    assert not marker.exists(), "refused, yet the command ran"


@pytest.mark.timeout(30)
def test_an_unknown_gsup_variable_gets_a_warning_naming_the_closest() -> None:
    """GSUP_GRAC=1s (a typo) is not an option: one warning line names GSUP_GRACE, and the command runs."""
    r = run_to_end([GSUP, "--", "true"], env=clean_env(GSUP_PLATFORM="none", GSUP_GRAC="1s"))
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "gsup: warning: GSUP_GRAC is not a gsup variable and is ignored: did you mean GSUP_GRACE?"
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["check", "drill"])
def test_each_subcommand_has_its_own_help(mode: str) -> None:
    """gsup check --help and gsup drill --help describe that subcommand, not the main command."""
    main = run_to_end([GSUP, "--help"], env=clean_env())
    r = run_to_end([GSUP, mode, "--help"], env=clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Usage: gsup {mode} ")
    assert r.stdout != main.stdout
    assert "Supervise CMD as PID 1" not in r.stdout
    assert {"check": "Validate the options", "drill": "stop it the way the platform would"}[mode] in r.stdout


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["\v", "\f", "a\x1cb", "\u2028"])
def test_a_command_named_by_a_line_break_is_one_line(name: str) -> None:
    """A command whose name holds a character that splits lines (vertical tab, form feed, U+2028) is
    "not found" in one line (escaped), exit 127."""
    r = subprocess.run(
        [GSUP, "--", name], env=clean_env(GSUP_PLATFORM="none"), capture_output=True, timeout=30
    )
    err = r.stderr.decode()
    assert r.returncode == 127 and len(err.splitlines()) == 1 and "command not found" in err, err
