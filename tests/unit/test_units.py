"""What a user may type for a duration or a signal (gsup/units.py)."""

from __future__ import annotations

import math
import signal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gsup.errors import UsageError
from gsup.units import (
    MAX_DURATION,
    UNCATCHABLE,
    format_duration,
    parse_duration,
    parse_signal,
    parse_stop_signal,
    quote,
    signal_name,
)

# -- durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("25", 25.0),
        ("25s", 25.0),
        ("1m30s", 90.0),
        ("1.5s", 1.5),
        ("0", 0.0),
        ("0s", 0.0),
        ("2h", 7200.0),
        ("1h1m1s", 3661.0),
        ("250us", 0.00025),
        (".5s", 0.5),
        ("0.25", 0.25),
        (" 10s ", 10.0),
        ("10S", 10.0),
        ("1M30S", 90.0),
    ],
)
def test_valid_durations(text: str, seconds: float) -> None:
    """Each documented spelling of a duration parses to its number of seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", " ", "abc", "-1", "-1s", "1x", "s", "ms", "1s1s", "inf", "nan", "1e3", "1 s", "1."],
)
def test_invalid_durations(text: str) -> None:
    """Anything else is a UsageError (exit 2) whose message quotes the input."""
    with pytest.raises(UsageError) as err:
        parse_duration(text)
    assert err.value.exit_code == 2
    assert repr(text) in err.value.message


def test_too_large_duration() -> None:
    """A duration too large for a float is refused, not turned into infinity."""
    with pytest.raises(UsageError, match="at most 168h"):
        parse_duration("9" * 400)


_UNIT_SECONDS = {"h": Decimal(3600), "m": Decimal(60), "s": Decimal(1), "ms": Decimal("0.001")}
_UNIT_SECONDS["us"] = Decimal("0.000001")

_number = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6)).map(
        lambda p: f"{p[0]}.{p[1]}"
    ),
)


@st.composite
def _durations(draw: st.DrawFn) -> tuple[str, Decimal]:
    """A valid duration string and its exact value in seconds."""
    if draw(st.booleans()):
        n = draw(_number)
        return n, Decimal(n)
    units = draw(st.lists(st.sampled_from(sorted(_UNIT_SECONDS)), min_size=1, unique=True))
    parts = [(draw(_number), u) for u in units]
    text = "".join(n + u for n, u in parts)
    return text, sum((Decimal(n) * _UNIT_SECONDS[u] for n, u in parts), Decimal(0))


@given(_durations())
def test_generated_durations_parse_to_their_value(case: tuple[str, Decimal]) -> None:
    """Every well-formed duration (numbers with distinct units, any order) parses to its value, or is
    refused past 7 days."""
    text, expected = case
    if expected > MAX_DURATION:
        with pytest.raises(UsageError, match="at most 168h"):
            parse_duration(text)
        return
    assert parse_duration(text) == pytest.approx(float(expected), rel=1e-12, abs=1e-12)


_duration_alphabet = "0123456789.hmsu -+eEinfaxMS\t"


@given(st.one_of(st.text(), st.text(alphabet=_duration_alphabet)))
def test_any_text_parses_or_is_a_usage_error(text: str) -> None:
    """Arbitrary text either parses to a finite, non-negative duration or raises UsageError."""
    try:
        value = parse_duration(text)
    except UsageError:
        return
    assert math.isfinite(value)
    assert value >= 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(27, "27s"), (27.0, "27s"), (1.5, "1.5s"), (0.25, "250ms"), (0, "0s"), (90, "90s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    """Messages show durations compactly, as a user would type them."""
    assert format_duration(seconds) == text


@given(st.floats(min_value=0, max_value=MAX_DURATION * 0.99, allow_nan=False))
def test_formatted_durations_parse_back(seconds: float) -> None:
    """What format_duration shows parses back to the value, within its rounding."""
    again = parse_duration(format_duration(seconds))
    assert again == pytest.approx(seconds, rel=0.005, abs=0.0005)


# -- signals ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["TERM", "SIGTERM", "sigterm", "term", "15", " 15 ", "SigTerm"])
def test_spellings_of_sigterm(text: str) -> None:
    """TERM, SIGTERM, lower case and the number all name SIGTERM."""
    assert parse_signal(text) is signal.SIGTERM


@pytest.mark.parametrize("text", ["0", "999", "FOO", "", "SIG", "-15", "15.0", "SIG_DFL", "TERM,"])
def test_invalid_signals(text: str) -> None:
    """Unknown names and numbers are a UsageError (exit 2) quoting the input."""
    with pytest.raises(UsageError) as err:
        parse_signal(text)
    assert err.value.exit_code == 2
    assert repr(text) in err.value.message


@pytest.mark.parametrize("sig", list(signal.Signals), ids=lambda s: s.name)
def test_every_signal_round_trips(sig: signal.Signals) -> None:
    """Every signal parses back from its name, its name without SIG, lower case and number."""
    assert parse_signal(sig.name) is sig
    assert parse_signal(sig.name[3:]) is sig
    assert parse_signal(sig.name.lower()) is sig
    assert parse_signal(str(int(sig))) is sig


@given(st.sampled_from(list(signal.Signals)), st.sampled_from(["", "SIG", "sig", "Sig"]))
def test_every_signal_round_trips_in_any_case(sig: signal.Signals, prefix: str) -> None:
    """A signal name in any mix of cases, with or without the SIG prefix, names that signal."""
    short = sig.name[3:]
    mixed = "".join(c.lower() if i % 2 else c for i, c in enumerate(short))
    assert parse_signal(prefix + mixed) is sig


@given(st.one_of(st.text(), st.text(alphabet="0123456789SIGTERMKLHUPsigterm -+")))
def test_any_text_is_a_signal_or_a_usage_error(text: str) -> None:
    """Arbitrary text either names a signal or raises UsageError, never another exception."""
    try:
        sig = parse_signal(text)
    except UsageError:
        return
    assert isinstance(sig, signal.Signals)


def test_signal_name() -> None:
    """signal_name gives the SIG name, or the number for a signal Python cannot name."""
    assert signal_name(15) == "SIGTERM"
    assert signal_name(signal.SIGKILL) == "SIGKILL"
    assert signal_name(signal.SIGRTMIN + 1) == str(int(signal.SIGRTMIN) + 1)


def test_uncatchable_signals() -> None:
    """KILL and STOP, and only they, are marked as impossible to forward."""
    assert frozenset({signal.SIGKILL, signal.SIGSTOP}) == UNCATCHABLE


# -- the edges: huge, exponents, the stop signal, how a value is shown -----------------


@pytest.mark.parametrize("text", ["169h", "720h", "9999999999s", "9" * 30, "604801", "10081m"])
def test_a_duration_over_seven_days_is_refused(text: str) -> None:
    """A duration longer than 7 days is refused at parse time, naming the limit."""
    with pytest.raises(UsageError, match=r"at most 168h"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1e3", "1e-3s", "1E2", "-1s", "-0", "+5s", "0x10"])
def test_exponents_signs_and_hex_are_not_durations(text: str) -> None:
    """Exponents, signs and hex numbers are refused, not read as some number."""
    with pytest.raises(UsageError, match=r"invalid duration"):
        parse_duration(text)


def test_seven_days_is_still_a_duration() -> None:
    """Exactly 168h is accepted (the limit is inclusive)."""
    assert parse_duration("168h") == MAX_DURATION


@pytest.mark.parametrize(
    "name", ["STOP", "TSTP", "TTIN", "TTOU", "CHLD", "CONT", "WINCH", "URG", "sigstop", "20"]
)
def test_signals_that_cannot_stop_a_process_are_no_stop_signal(name: str) -> None:
    """A signal that suspends a process or is ignored by default is refused as a stop signal, with why."""
    with pytest.raises(UsageError, match=r"cannot be a stop signal: it (suspends|is ignored)"):
        parse_stop_signal(name)


@pytest.mark.parametrize("name", ["TERM", "INT", "QUIT", "HUP", "USR1", "KILL", "ALRM"])
def test_signals_that_end_a_process_are_stop_signals(name: str) -> None:
    """TERM, INT, QUIT, HUP, USR1, KILL, ALRM can be stop signals."""
    assert parse_stop_signal(name).name == "SIG" + name


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\udcff", r"'\xff'"),
        ("a\udc80b", r"'a\x80b'"),
        ("café", "'café'"),
        ("a'b", r"'a\'b'"),
        ("\n", r"'\n'"),
    ],
)
def test_a_value_is_quoted_as_the_user_typed_it(text: str, shown: str) -> None:
    """A byte that was not UTF-8 shows as \\xNN (not \\udcNN), text as itself, control characters escaped."""
    assert quote(text) == shown


def test_an_undecodable_duration_is_shown_as_its_bytes() -> None:
    """The message for a duration of the byte 0xff shows '\\xff'."""
    with pytest.raises(UsageError) as e:
        parse_duration("\udcff")
    assert r"'\xff'" in e.value.message and "udc" not in e.value.message
