"""Bad input: every input works or is refused with exit 2 and one line; odd argv reaches the child byte-exact.

Property tests (hypothesis) over durations, signal names, ``--rewrite``
specs, option values, environment variables, TOML configs (generated from a
small grammar, then randomly mutated) and argv. The pure parsers run
in-process with many examples; the real command with a modest number, each
with a command that would leave a marker file if it ran.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from gsupkit import GSUP, PATH, clean_env
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from prockit import carrying

from gsup import config as gconfig
from gsup import units
from gsup.errors import UsageError

from .relkit import one_error_line, prog

REAL = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
PURE = settings(max_examples=1000, deadline=None, derandomize=True)

#: Text that can be an argument or an environment value (no NUL, no lone surrogate).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=16)

DURATIONS = st.sampled_from(
    [
        "0",
        "1",
        "1s",
        "500ms",
        "1m30s",
        "1.5s",
        ".5s",
        "2h",
        "10us",
        "1h1m1s1ms1us",
        "5m",
        "9s",
        "",
        " ",
        "abc",
        "-1s",
        "1x",
        "1s1s",
        "1e3",
        "nan",
        "inf",
        "9" * 30,
        "1s 2s",
        "\n1s",
        "1 s",
        "s",
    ]
)
SIGNALS = st.sampled_from(
    [
        "TERM",
        "sigterm",
        "SIGUSR1",
        "15",
        "9",
        "KILL",
        "STOP",
        "INT",
        "hup",
        " QUIT ",
        "SIGRTMIN",
        "0",
        "65",
        "99",
        "-1",
        "",
        "SIG",
        "SIGSIG",
        "TERM\n",
        "٣",
        "²",
        "1.5",
    ]
)
PLATFORMS = st.sampled_from(
    ["none", "docker", "kubernetes", "cloudrun", "fly", "heroku", "systemd", "KUBERNETES", "mars", ""]
)


def one_line(message: str) -> None:
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"


# -- the pure parsers, in-process --------------------------------------------------------


@PURE
@given(st.one_of(TEXT, DURATIONS, st.from_regex(r"[0-9.]{0,6}(h|m|s|ms|us){0,2}[0-9.]{0,4}", fullmatch=True)))
def test_any_duration_parses_or_is_a_usage_error(text):
    """Any text is a finite, non-negative duration or a UsageError with a one-line message."""
    try:
        value = units.parse_duration(text)
    except UsageError as e:
        one_line(e.message)
        return
    assert math.isfinite(value) and value >= 0


@PURE
@given(
    st.lists(
        st.tuples(st.sampled_from(["h", "m", "s", "ms", "us"]), st.integers(0, 10_000)),
        min_size=1,
        max_size=5,
        unique_by=lambda p: p[0],
    )
)
def test_valid_durations_mean_what_they_say(parts):
    """A duration made of distinct unit parts is the sum of its parts."""
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    text = "".join(f"{n}{unit}" for unit, n in parts)
    total = sum(n * scale[u] for u, n in parts)
    if total > units.MAX_DURATION:  # over 7 days: refused
        with pytest.raises(UsageError, match="at most 168h"):
            units.parse_duration(text)
        return
    assert units.parse_duration(text) == pytest.approx(total)


@PURE
@given(st.one_of(TEXT, SIGNALS))
def test_any_signal_name_parses_or_is_a_usage_error(text):
    """Any text names a signal or is a UsageError with a one-line message."""
    try:
        sig = units.parse_signal(text)
    except UsageError as e:
        one_line(e.message)
        return
    assert isinstance(sig, signal.Signals)


def _resolve(given: dict[str, Any], config_path: str | None = None) -> Any:
    settings_ = {k: gconfig.Setting(v, gconfig.Source.FLAG) for k, v in given.items()}
    return gconfig.resolve(
        settings_, (b"true",), config_path=config_path, environ={}, exists=lambda _p: False
    )


OPTION_VALUES = {
    "grace": DURATIONS | TEXT,
    "stop_delay": DURATIONS | TEXT,
    "platform_timeout": DURATIONS | TEXT,
    "platform": PLATFORMS | TEXT,
    "stop_signal": SIGNALS | TEXT,
    "parent_death_signal": SIGNALS | TEXT,
    "rewrite": st.lists(
        st.builds(lambda a, b, sep: f"{a}{sep}{b}", SIGNALS, SIGNALS, st.sampled_from(":;")) | TEXT,
        max_size=3,
    ),
    "success_code": st.lists(st.sampled_from(["0", "143", "255", "256", "-1", "x", ""]) | TEXT, max_size=3),
    "forward_to": st.sampled_from(["group", "child", "GROUP", "parent", ""]) | TEXT,
    "log_format": st.sampled_from(["text", "json", "xml", ""]) | TEXT,
    "user": st.sampled_from(["root", "0", "nobody"]) | TEXT,
    "success_on_stop": st.booleans(),
    "quiet": st.booleans(),
    "verbose": st.booleans(),
}


@PURE
@given(st.fixed_dictionaries({}, optional=OPTION_VALUES))
def test_any_option_values_resolve_or_are_a_usage_error(given):
    """Any combination of option values (as the command line gives them) makes a plan or one
    UsageError line."""
    try:
        resolved = _resolve(given)
    except UsageError as e:
        one_line(e.message)
        return
    assert resolved.plan.grace >= 0


# -- a grammar of TOML configs, and mutations --------------------------------------------

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if not isinstance(v, float) or math.isfinite(v) else ("inf" if v > 0 else "nan")
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml_text(doc: dict[str, Any]) -> str:
    out = []
    if "gsup" in doc:
        out.append("[gsup]")
        out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc["gsup"].items()]
    for name, table in doc.get("programs", {}).items():
        out.append(f"\n[programs.{toml_key(name)}]")
        out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    for key, value in doc.get("extra", {}).items():
        out.append(f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(out) + "\n"


WRONG = st.sampled_from([5, -1, 1.5, True, "x", [], ["x"], {"a": 1}])
GOOD_NAMES = ["web", "db", "a.b", "x-1", "_y", "W2"]
#: Invalid program names. (A name with a newline is left out: the known bug of
#: test_program_name_with_a_newline_is_one_line would fail every example.)
BAD_NAMES = ["", "a b", "a\tb", "ü", "-x", "a/b"]

#: [gsup] keys: (valid values, invalid values).
GSUP_KEYS: dict[str, tuple[list[Any], list[Any]]] = {
    "grace": (["1s", "5s", 3], ["100h", "x", "-1s", "1e999"]),
    "stop_delay": (["0", "1s"], ["bad", "1x"]),
    "platform": (["none", "docker"], ["mars", ""]),
    "stop_signal": (["TERM", "INT", 15], ["NOPE", "0", 99]),
    "rewrite": ([["TERM:QUIT"], "TERM:QUIT HUP:USR1", []], [["KILL:TERM"], ["TERM"], "TERM:"]),
    "success_code": ([[143], ["143"], "143 0"], [[300], ["x"], "-1"]),
    "log_format": (["text", "json"], ["xml"]),
    "forward_to": (["group", "child"], ["both"]),
    "quiet": ([True, False], ["yes"]),
    "verbose": ([True, False], [1]),
    "success_on_stop": ([True, False], ["no"]),
    "parent_death_signal": (["TERM", "KILL"], ["NOPE"]),
    "user": (["root"], [5]),
}


def program_keys(marker: str, earlier: list[str]) -> dict[str, tuple[list[Any], list[Any]]]:
    """[programs.NAME] keys: (valid values, invalid values)."""
    return {
        "env": ([{"A": "1"}, {"A": 1, "B": "x y"}, {}], [{"A": True}, {"A": ["x"]}, "A=1"]),
        "cwd": (["/", "/tmp"], [5]),
        "user": (["root", "0"], ["nosuchuser-xyz", 0]),
        "stop_signal": (["TERM", "KILL", "USR1"], ["NOPE", 99, True]),
        "grace": (["1s", "500ms"], ["100h", "bad"]),
        "depends_on": ([[n] for n in earlier] + [[]], [["nosuchprogram"], "db"]),
        "oneshot": ([True, False], ["yes"]),
        "ready": (
            [
                {"file": marker, "timeout": "2s", "interval": "10ms"},
                {"tcp": "127.0.0.1:9", "timeout": "200ms"},
                {"command": ["true"], "timeout": "1s"},
            ],
            [
                {"tcp": "nohost"},
                {"tcp": "127.0.0.1:70000"},
                {"tcp": "x" * 64 + ":80"},  # a DNS label over 63 characters
                {"http": "nope"},
                {},
                {"file": marker, "tcp": "127.0.0.1:9"},
                {"bogus": 1},
            ],
        ),
        "restart": (["never", "on-failure"], ["sometimes", ""]),
        "max_restarts": ([0, 3], [-1, "3"]),
        "backoff": (["10ms"], ["bad"]),
        "backoff_max": (["1s"], ["-"]),
        "prefix": (["web", False, True], [5]),
        "timestamps": ([True, False], ["yes"]),
    }


@st.composite
def configs(draw: Any, marker_dir: str, kind: str | None = None) -> tuple[str, str]:
    """(text, kind) of a config file whose programs touch a marker when they run.

    *kind*: ``valid`` (only valid keys and values: it must be accepted),
    ``wrong`` (some invalid key, value, name or dependency) or ``mutated``
    (a valid file with random edits to its text: most break it).
    """
    kind = kind or draw(st.sampled_from(["valid", "valid", "wrong", "mutated"]))
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["gsup"] = {
            k: draw(st.sampled_from(good)) for k, (good, _) in GSUP_KEYS.items() if draw(st.booleans())
        }
        if doc["gsup"].get("quiet") and doc["gsup"].get("verbose"):
            del doc["gsup"]["verbose"]  # together they are a conflict, not a valid file
    names = draw(st.lists(st.sampled_from(GOOD_NAMES), min_size=1, max_size=3, unique=True))
    programs: dict[str, dict[str, Any]] = {}
    for name in names:
        marker = os.path.join(marker_dir, f"ran-{len(programs)}")
        table: dict[str, Any] = {"command": draw(st.sampled_from([["touch", marker], f"touch {marker}"]))}
        if isinstance(table["command"], str) and draw(st.booleans()):
            table["shell"] = True
        for key, (good, _) in program_keys(marker, list(programs)).items():
            if draw(st.integers(0, 3)) == 0:
                table[key] = draw(st.sampled_from(good))
        if table.get("oneshot") and table.get("restart") == "always":
            del table["restart"]
        programs[name] = table
    doc["programs"] = programs
    if kind == "wrong":
        for _ in range(draw(st.integers(1, 2))):
            where = draw(st.sampled_from(["gsup", "program", "name", "stray", "command"]))
            if where == "gsup":
                key = draw(st.sampled_from([*sorted(GSUP_KEYS), "bogus"]))
                bad = GSUP_KEYS.get(key, ([], [1]))[1]
                doc.setdefault("gsup", {})[key] = draw(st.sampled_from(bad) | WRONG)
            elif where in ("program", "command"):
                name = draw(st.sampled_from(sorted(programs)))
                keys = program_keys("/nonexistent", [])
                key = "command" if where == "command" else draw(st.sampled_from([*sorted(keys), "bogus"]))
                if key == "command":  # never a string that could name a real command
                    bad = [[], "", [""], ["touch", 5], "'unclosed", 5, True, {"a": 1}]
                else:
                    bad = [*keys.get(key, ([], [1]))[1], 5, 1.5, True, [], {"a": 1}]
                programs[name][key] = draw(st.sampled_from(bad))
            elif where == "name":
                programs[draw(st.sampled_from(BAD_NAMES))] = {
                    "command": ["touch", os.path.join(marker_dir, "bad")]
                }
            else:
                doc["extra"] = {"stray": 1}
    text = toml_text(doc)
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 3))):
            if not text:
                break
            i = draw(st.integers(0, len(text) - 1))
            edit = draw(st.sampled_from(["delete", "insert", "duplicate", "truncate"]))
            if edit == "delete":
                text = text[:i] + text[i + 1 :]
            elif edit == "insert":
                text = text[:i] + draw(st.sampled_from(list("[]{}=\"'\n#,.x\\"))) + text[i:]
            elif edit == "duplicate":
                lines = text.splitlines(keepends=True)
                j = i % len(lines)
                text = "".join(lines[: j + 1] + lines[j:])
            else:
                text = text[:i]
    return text, kind


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.data())
def test_any_config_resolves_or_is_a_usage_error(data):
    """Any config text makes a plan or one UsageError line, nothing else is raised, and a valid one makes a
    plan."""
    with tempfile.TemporaryDirectory() as d:
        text, kind = data.draw(configs(d))
        event(kind)
        refused = resolve_file(d, text.encode())
        assert refused is None or kind != "valid", f"a valid config refused: {refused}\n{text}"


def resolve_file(d: str, content: bytes) -> str | None:
    """Resolve *content* as the config file ``d/gsup.toml``: None for a plan, else the one-line refusal."""
    path = os.path.join(d, "gsup.toml")
    with open(path, "wb") as f:
        f.write(content)
    try:
        gconfig.resolve({}, (), config_path=path, environ={}, exists=lambda _p: False)
    except UsageError as e:
        one_line(e.message)
        return e.message
    return None


def test_program_name_with_a_newline_is_one_line(tmp_path):
    """An invalid program name with a newline in it is reported on one line."""
    path = tmp_path / "gsup.toml"
    path.write_text('[programs."a\\nb"]\ncommand = ["true"]\n')
    with pytest.raises(UsageError) as e:
        gconfig.resolve({}, (), config_path=str(path), environ={}, exists=lambda _p: False)
    one_line(e.value.message)


# -- the real command ----------------------------------------------------------------------


def run_gsup(argv: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [GSUP, *argv], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
    )


def check_outcome(r: subprocess.CompletedProcess[bytes], marker_dir: str, argv: Any) -> None:
    """Refused: exit 2, one line, nothing ran. Accepted: it ran. Never a traceback."""
    err = r.stderr.decode(errors="replace")
    ran = bool(os.listdir(marker_dir))
    event(f"exit {r.returncode}")
    assert "Traceback" not in err, (argv, err)
    if r.returncode == 2:
        one_error_line(err)
        assert not ran, f"refused with exit 2 but a child ran: {argv!r}"
    else:
        assert ran, f"exit {r.returncode} but nothing ran: {argv!r}\n{err}"


def _configs_for_cli(d: str) -> list[str]:
    paths = {
        "empty": "",
        "settings": '[gsup]\ngrace = "1s"\nquiet = true\n',
        "programs": '[programs.x]\ncommand = ["true"]\n',
        "broken": "[gsup\ngrace = 1s\n",
        "unknown": "[gsup]\nnope = 1\n",
    }
    out = []
    for name, text in paths.items():
        p = os.path.join(d, f"{name}.toml")
        with open(p, "w") as f:
            f.write(text)
        out.append(p)
    return [*out, os.path.join(d, "missing.toml"), d]


OPTION_ARGS = {
    "--grace": DURATIONS | TEXT,
    "--stop-delay": DURATIONS,
    "--platform-timeout": DURATIONS,
    "--platform": PLATFORMS | TEXT,
    "--stop-signal": SIGNALS | TEXT,
    "--parent-death-signal": SIGNALS,
    "--rewrite": st.builds(lambda a, b: f"{a}:{b}", SIGNALS, SIGNALS) | TEXT,
    "--forward-to": st.sampled_from(["group", "child", "nope"]),
    "--success-code": st.sampled_from(["0", "143", "256", "x"]),
    "--log-format": st.sampled_from(["text", "json", "xml"]),
    "--user": st.sampled_from(
        ["root", "0", "0:0", "root:root", "nosuchuser-xyz", "root:nosuchgroup-xyz", "", ":"]
    ),
}
FLAGS = ["--quiet", "-q", "--verbose", "-v", "--success-on-stop"]
HELPISH = re.compile(r"^(--help|--version)|^-[^-]*h")


@st.composite
def cli_options(draw: Any, config_paths: list[str]) -> list[str]:
    argv: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 9))
        if kind <= 5:
            name = draw(st.sampled_from(sorted(OPTION_ARGS)))
            argv += [name, draw(OPTION_ARGS[name])]
        elif kind == 6:
            argv.append(draw(st.sampled_from(FLAGS)))
        elif kind == 7:
            argv += ["--config", draw(st.sampled_from(config_paths))]
        else:  # an unknown option, or option-like garbage
            token = draw(
                st.from_regex(r"--?[a-z][a-z-]{0,8}(=[a-z0-9]{0,3})?", fullmatch=True)
                | TEXT.map(lambda t: "-" + t)
            )
            assume(not HELPISH.search(token) and token not in ("-", "--"))  # "-" is a command
            argv.append(token)
    return argv


@pytest.mark.timeout(300)
@REAL
@given(st.data())
def test_any_command_line_works_or_exits_2(data):
    """Any mix of options and values before ``-- CMD`` either runs CMD or exits 2 with one line and runs
    nothing."""
    with tempfile.TemporaryDirectory() as d:
        markers = os.path.join(d, "markers")
        os.mkdir(markers)
        options = data.draw(cli_options(_configs_for_cli(d)))
        argv = [*options, "--", "touch", os.path.join(markers, "ran")]
        check_outcome(run_gsup(argv, clean_env()), markers, argv)


ENV_VALUES = {
    "GSUP_GRACE": DURATIONS | TEXT,
    "GSUP_STOP_DELAY": DURATIONS,
    "GSUP_PLATFORM": PLATFORMS,
    "GSUP_PLATFORM_TIMEOUT": DURATIONS,
    "GSUP_STOP_SIGNAL": SIGNALS | TEXT,
    "GSUP_REWRITE": st.sampled_from(["TERM:QUIT", "TERM:QUIT HUP:USR1", "KILL:TERM", "TERM", ""]) | TEXT,
    "GSUP_FORWARD_TO": st.sampled_from(["group", "child", "nope", ""]),
    "GSUP_SUCCESS_CODE": st.sampled_from(["143", "143 0", "300", "x", ""]),
    "GSUP_SUCCESS_ON_STOP": st.sampled_from(["1", "0", "true", "false", "yes", "maybe", ""]),
    "GSUP_PARENT_DEATH_SIGNAL": SIGNALS,
    "GSUP_LOG_FORMAT": st.sampled_from(["text", "json", "xml", ""]),
    "GSUP_QUIET": st.sampled_from(["1", "0", "true", "maybe", ""]),
    "GSUP_VERBOSE": st.sampled_from(["1", "0", "no", "2"]),
    "GSUP_USER": st.sampled_from(["root", "0", "nosuchuser-xyz"]),
}


@pytest.mark.timeout(300)
@REAL
@given(st.fixed_dictionaries({}, optional=ENV_VALUES))
def test_any_environment_works_or_exits_2(env):
    """Any GSUP_* environment either runs CMD or exits 2 with one line and runs nothing."""
    with tempfile.TemporaryDirectory() as d:
        argv = ["--", "touch", os.path.join(d, "ran")]
        check_outcome(run_gsup(argv, clean_env(**env)), d, env)


@pytest.mark.timeout(300)
@REAL
@given(st.data())
def test_any_config_file_works_or_exits_2(data):
    """Any config file, well-formed or mutated, either runs its programs or exits 2 with one line and starts
    none."""
    with tempfile.TemporaryDirectory() as d:
        markers = os.path.join(d, "markers")
        os.mkdir(markers)
        text, kind = data.draw(configs(markers))
        event(kind)
        path = os.path.join(d, "gsup.toml")
        with open(path, "w") as f:
            f.write(text)
        r = run_gsup(["--config", path], clean_env())
        check_outcome(r, markers, text)
        assert kind != "valid" or r.returncode != 2, r.stderr


# -- odd argv reaches the child byte-exact -----------------------------------------------------

ODD_ARGV: list[list[bytes]] = [
    [b"-x", b"--grace", b"--", b"-", b"--config"],
    [b"", b"", b"a b", b" "],
    [b"line\nbreak", b"\n", b"tab\there", b"cr\r"],
    [b"\xff\xfe", b"caf\xc3\xa9", b"\xc3\x28", b"\x80abc", b"\xed\xa0\x80"],
    [b"$HOME", b"*", b"'quoted'", b'"dq"', b"\\", b";", b"|", b"&"],
    [b"check", b"drill", b"--help", b"--version", b"-h"],
]


def read_dump(path: Path) -> list[bytes]:
    """The arguments progs/argv_dump.py wrote (length-prefixed, byte-exact)."""
    data, got = path.read_bytes(), []
    while data:
        n = int.from_bytes(data[:8], "big")
        got.append(data[8 : 8 + n])
        data = data[8 + n :]
    return got


def dump_and_compare(gsup: Any, tmp_path: Path, args: list[bytes]) -> None:
    out = tmp_path / "argv.bin"
    run = gsup(["--grace", "5s", "--", *[os.fsencode(a) for a in prog("argv_dump", str(out))], *args])
    assert run.finish(60) == 0, run.err.text()[-2000:]
    assert read_dump(out) == args


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", ODD_ARGV, ids=["dashes", "empty", "newlines", "non-utf8", "shell", "modes"])
def test_odd_argv_reaches_the_child_byte_exact(gsup, tmp_path, args):
    """Arguments with leading dashes, empty strings, newlines, non-UTF-8 bytes or gsup's own words reach the
    child byte for byte."""
    dump_and_compare(gsup, tmp_path, args)


@pytest.mark.timeout(60)
def test_odd_argv_in_a_config_reaches_the_program_exact(gsup, tmp_path):
    """Many programs: a command list with leading dashes, empty strings, newlines and non-ASCII text
    reaches the program exactly."""
    args = ["-x", "--", "", " ", "line\nbreak", "tab\t", "caf\u00e9 \u2603", "$HOME", "--config"]
    out = tmp_path / "argv.bin"
    config = tmp_path / "gsup.toml"
    command = [*prog("argv_dump", str(out)), *args]
    config.write_text(
        f'[gsup]\ngrace = "5s"\n\n[programs.p]\ncommand = {json.dumps(command)}\noneshot = true\n'
    )
    run = gsup(["--config", str(config)])
    assert run.finish(60) == 0, run.err.text()[-2000:]
    assert read_dump(out) == [a.encode() for a in args]


@pytest.mark.timeout(60)
def test_100_kib_of_arguments_reach_the_child_byte_exact(gsup, tmp_path):
    """A 100 KiB argument list (1,000 arguments of every byte value but NUL) reaches the child
    byte for byte."""
    alphabet = bytes(range(1, 256))
    args = [(alphabet * 2)[i % 255 : i % 255 + 105] for i in range(1000)]
    assert sum(map(len, args)) >= 100 * 1024
    dump_and_compare(gsup, tmp_path, args)


@pytest.mark.timeout(300)
@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\0" not in b), max_size=8))
def test_random_argv_reaches_the_child_byte_exact(args):
    """Any argv without NUL bytes reaches the child byte for byte (subreaper mode)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "argv.bin")
        cmd = [os.fsencode(a) for a in prog("argv_dump", out)]
        r = subprocess.run(
            [GSUP.encode(), b"--grace", b"5s", b"--", *cmd, *args],
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        assert read_dump(Path(out)) == args


# -- hostile bytes and edge values: the real command never ends in a traceback ----------------
#
# Each property has a reduced form (runs in CI) and a full one (marked slow). Every
# run's command is `sh -c 'touch "$0"' MARKER` in a directory unique to the example,
# so the test can tell whether anything ran and find any process it left by that
# directory's name in its command line.

EXAMPLES = [pytest.param(25, id="reduced"), pytest.param(250, id="full", marks=pytest.mark.slow)]

#: Durations at the edges: zero, negative, huge, the limit, exponents, odd numerals.
EDGE_DURATIONS = (
    st.sampled_from(
        [
            "0",
            "0s",
            "0.0",
            "-0",
            "-1",
            "-1s",
            "168h",
            "168h1us",
            "604800",
            "604800.000001",
            "720h",
            str(2**64),
            "9" * 400,
            "1e3",
            "1e309",
            "1E-9",
            "inf",
            "nan",
            "0x10",
            "1_000",
            "\uff11s",  # a fullwidth digit one
            "1.s",
            ".0s",
            "1." + "0" * 50 + "1s",
        ]
    )
    | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.integers(-(2**70), 2**70).map(str)
)


def _bytes(draw: Any, size: int = 24) -> bytes:
    """Arbitrary bytes but NUL (argv and environment cannot carry it), often with a non-UTF-8 byte."""
    raw = draw(st.binary(max_size=size).filter(lambda b: b"\0" not in b))
    return raw + draw(st.sampled_from([b"", b"\xff", b"\xc3", b"\xed\xa0\x80"]))


def run_bytes(argv: list[bytes], env: dict[bytes, bytes]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [GSUP.encode(), *argv], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )


def check_hostile(
    r: subprocess.CompletedProcess[bytes],
    d: str,
    what: Any,
    *,
    ran: bool | None = None,
    ok: tuple[int, ...] = (0,),
) -> None:
    """Exit 0 (it ran), 2 (refused, nothing ran) or 126/127 (the command could not be started); every
    message one line; no traceback; no process left with the example's directory in its command line.

    *ok*: the statuses of a run that went ahead (a config's readiness timeout is 1)."""
    err = r.stderr.decode(errors="replace")
    event(f"exit {r.returncode}")
    assert "Traceback" not in err and "internal error" not in err, (what, err)
    assert r.returncode in (*ok, 2, 126, 127), (r.returncode, what, err)
    lines = [line for line in err.splitlines() if not line.startswith("gsup: warning: ")]
    ran = os.path.exists(os.path.join(d, "ran")) if ran is None else ran
    if r.returncode in ok:
        assert ran, (what, err)
    else:
        assert len(lines) == 1 and lines[0].startswith("gsup: error: "), (what, err)
        assert not ran, f"exit {r.returncode} but the command ran: {what!r}"
    assert carrying(d) == [], f"left running: {carrying(d)}"


def _touch(d: str) -> list[bytes]:
    return [b"sh", b"-c", b'touch "$0"', os.fsencode(os.path.join(d, "ran"))]


OPTION_NAMES = [o.encode() for o in OPTION_ARGS] + [b"--after", b"--ready", b"--config", b"--user"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_argv_of_arbitrary_bytes_works_or_exits_2(examples: int) -> None:
    """Options whose values (and names) are arbitrary bytes, durations at their edges, and commands of
    arbitrary bytes: exit 0, 2, 126 or 127, one line, no traceback, nothing left."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.data())
    def prop(data: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="gsup-hostile-") as d:
            argv: list[bytes] = []
            for _ in range(data.draw(st.integers(0, 4))):
                kind = data.draw(st.integers(0, 3))
                if kind == 0:
                    name = data.draw(st.sampled_from([b"--grace", b"--stop-delay", b"--platform-timeout"]))
                    argv += [name, data.draw(EDGE_DURATIONS).encode()]
                elif kind == 1:
                    argv += [data.draw(st.sampled_from(OPTION_NAMES)), _bytes(data.draw)]
                elif kind == 2:
                    argv.append(b"--" + _bytes(data.draw, 12))
                else:
                    argv.append(data.draw(st.sampled_from([b"-q", b"-v", b"--success-on-stop"])))
            # Now and then a command of arbitrary bytes: not found, or empty.
            command = [_bytes(data.draw)] if data.draw(st.integers(0, 4)) == 0 else _touch(d)
            argv += [b"--", *command]
            check_hostile(run_bytes(argv, {b"PATH": PATH.encode(), b"GSUP_PLATFORM": b"none"}), d, argv)

    prop()


ENV_NAMES = [n.encode() for n in ENV_VALUES] + [b"GSUP_CONFIG", b"GSUP_GRAC", b"GSUP_", b"GSUP_\xff"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_an_environment_of_arbitrary_bytes_works_or_exits_2(examples: int) -> None:
    """GSUP_* variables (known, misspelt, undecodable) with arbitrary bytes or edge durations as values:
    exit 0 or 2, one line (and a warning line per unknown name), no traceback, nothing left."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.data())
    def prop(data: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="gsup-hostile-") as d:
            env = {b"PATH": PATH.encode(), b"GSUP_PLATFORM": b"none"}
            for _ in range(data.draw(st.integers(1, 4))):
                name = data.draw(
                    st.sampled_from(ENV_NAMES) | st.builds(lambda b: b"GSUP_" + b, st.binary(max_size=6))
                )
                if b"\0" in name or b"=" in name:
                    continue
                edge = name in (b"GSUP_GRACE", b"GSUP_STOP_DELAY", b"GSUP_PLATFORM_TIMEOUT")
                env[name] = (
                    data.draw(EDGE_DURATIONS).encode()
                    if edge and data.draw(st.booleans())
                    else _bytes(data.draw)
                )
            check_hostile(run_bytes([b"--", *_touch(d)], env), d, env)

    prop()


@st.composite
def toml_bytes(draw: Any, marker_dir: str) -> bytes:
    """A config file as bytes: a generated one with random byte edits, an encoding that is not UTF-8
    (Latin-1, UTF-16, a BOM), or plain binary."""
    kind = draw(st.sampled_from(["edited", "latin-1", "utf-16", "bom", "binary", "edge-durations"]))
    event(kind)
    text, _ = draw(configs(marker_dir, "valid"))
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "latin-1":
        return (text + "# caf\u00e9\n").encode("latin-1", errors="replace")
    if kind == "utf-16":
        return text.encode("utf-16")
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if kind == "edge-durations":
        key = draw(st.sampled_from(["grace", "stop_delay", "platform_timeout"]))
        marker = os.path.join(marker_dir, "ran-0")
        edge = draw(EDGE_DURATIONS)
        return f'[gsup]\n{key} = "{edge}"\n\n[programs.p]\ncommand = ["touch", "{marker}"]\n'.encode()
    data = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(0, len(data) - 1)))
        data[i:i] = draw(st.binary(min_size=1, max_size=3))
    return bytes(data)


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_config_bytes_resolve_or_are_a_usage_error(data):
    """Any config file as bytes (edited, not UTF-8, binary, edge durations) makes a plan or one UsageError
    line; nothing else is raised."""
    with tempfile.TemporaryDirectory() as d:
        resolve_file(d, data.draw(toml_bytes(d)))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_a_config_file_of_any_bytes_works_or_exits_2(examples: int) -> None:
    """The real command with any config file as bytes: its programs run, or exit 2 with one line naming the
    file; no traceback, nothing left."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.data())
    def prop(data: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="gsup-hostile-") as d:
            markers = os.path.join(d, "markers")
            os.mkdir(markers)
            raw = data.draw(toml_bytes(markers))
            path = os.path.join(d, "gsup.toml")
            with open(path, "wb") as f:
                f.write(raw)
            r = run_bytes([b"--config", path.encode()], {b"PATH": PATH.encode(), b"GSUP_PLATFORM": b"none"})
            # Many programs: a program that cannot start (126/127) or become ready (1) is an outcome with a
            # report, not a refusal; a refusal (2) names the file, unless there was nothing to run.
            err = r.stderr.decode(errors="replace")
            check_hostile(r, d, raw, ran=r.returncode != 2 or bool(os.listdir(markers)), ok=(0, 1, 126, 127))
            if r.returncode == 2:
                assert path in err or err.startswith("gsup: error: missing command"), err

    prop()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_edge_durations_are_refused_or_survive_a_stop(examples: int) -> None:
    """--grace and --platform-timeout at their edges (0, negative, huge, exponents), then a real SIGTERM
    (the child sends it to gsup, and exits 0.2 s after the forwarded copy): exit 0 (137 for a shorter
    grace) or 2, one line, no traceback. (A grace past what poll can wait, 2**31 ms, made 720h end in an
    OverflowError.)"""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(
        st.lists(st.tuples(st.sampled_from([b"--grace", b"--platform-timeout"]), EDGE_DURATIONS), max_size=2)
    )
    def prop(options: list[tuple[bytes, str]]) -> None:
        with tempfile.TemporaryDirectory(prefix="gsup-hostile-") as d:
            argv = [part for name, value in options for part in (name, value.encode())]
            # It outlives the stop signal by 0.2 s: gsup waits in poll with the grace as its timeout.
            script = b'touch "$0"; trap "sleep 0.2; exit 0" TERM; kill -TERM $PPID; sleep 30 & wait'
            stop = [b"sh", b"-c", script, os.fsencode(os.path.join(d, "ran"))]
            r = run_bytes([*argv, b"--", *stop], {b"PATH": PATH.encode(), b"GSUP_PLATFORM": b"none"})
            check_hostile(r, d, options, ok=(0, 137))  # 137: a grace shorter than its 0.2 s

    prop()
