"""The final report as text rows and as a JSON event (gsup/report.py, written by gsup/log.py)."""

from __future__ import annotations

import io
import json
import signal

from gsup.log import JsonSink, TextSink
from gsup.model import ChildStatus, Outcome, ProgramSpec, StopCause
from gsup.report import report_fields, report_rows

PROGRAM = ProgramSpec(argv=(b"gunicorn", b"app:wsgi"))

FORCE_KILLED = Outcome(
    exit_code=137,
    cause=StopCause.SIGNAL,
    program=PROGRAM,
    pid=42,
    status=ChildStatus(signal=signal.SIGKILL),
    stop_signal_received=signal.SIGTERM,
    stop_signal_sender=1,
    stop_signal_sent=signal.SIGTERM,
    stop_seconds=27.0123,
    ran_seconds=100.5,
    force_killed=True,
    escalation="grace ran out",
    grace=27.0,
    leftovers_killed=2,
    orphans_reaped=3,
)

CLEAN = Outcome(
    exit_code=0,
    cause=StopCause.SIGNAL,
    program=PROGRAM,
    pid=42,
    status=ChildStatus(code=0),
    stop_signal_received=signal.SIGTERM,
    stop_signal_sent=signal.SIGTERM,
    stop_seconds=0.25,
    ran_seconds=10.0,
    grace=9.0,
)

OWN_EXIT = Outcome(
    exit_code=3, cause=StopCause.CHILD_EXIT, program=PROGRAM, pid=7, status=ChildStatus(code=3)
)


def _text_report(outcome: Outcome) -> list[str]:
    out = io.StringIO()
    TextSink(out).report(outcome)
    return out.getvalue().splitlines()


def _json_report(outcome: Outcome) -> dict[str, object]:
    out = io.StringIO()
    JsonSink(out, clock=lambda: 123.4567891).report(outcome)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert isinstance(record, dict)
    return record


# -- text -------------------------------------------------------------------------


def test_force_killed_rows() -> None:
    """A force-killed outcome's report says who stopped it, that SIGKILL was sent and why."""
    rows = dict(report_rows(FORCE_KILLED))
    assert rows["stopped by"] == "SIGTERM from pid 1"
    assert rows["child"] == "pid 42 (gunicorn app:wsgi) killed by SIGKILL"
    assert rows["stop"].startswith("SIGTERM sent, took 27.012s of a 27s grace")
    assert "force-killed" in rows["stop"]
    assert "grace ran out" in rows["stop"]
    assert rows["leftovers"] == "2 killed"
    assert rows["orphans"] == "3 reaped"
    assert rows["exit"] == "137"


def test_the_drain_and_the_grace_are_reported_apart() -> None:
    """A stop with a 2 s drain that took 5.008 s in all says "drain 2.000s, then ... took 3.008s of a 3s
    grace", not 5.008s of it; JSON has both figures."""
    outcome = CLEAN._replace(stop_seconds=5.008, drain_seconds=2.0, grace=3.0)
    assert dict(report_rows(outcome))["stop"] == (
        "drain 2.000s, then SIGTERM sent, took 3.008s of a 3s grace; exited within the grace"
    )
    record = _json_report(outcome)
    assert (record["stop_seconds"], record["drain_seconds"]) == (5.008, 2.0)


def test_an_exit_during_the_drain_is_said_so() -> None:
    """A child that exits during the drain (no stop signal sent) is reported as that, with no grace used."""
    outcome = CLEAN._replace(stop_seconds=0.4, drain_seconds=0.4, stop_signal_sent=None, grace=3.0)
    assert (
        dict(report_rows(outcome))["stop"]
        == "the child exited during the drain, 0.400s after the stop request"
    )


def test_a_long_command_is_shortened_in_text_and_whole_in_json() -> None:
    """A 1 MB command line is cut to about 200 characters in the text report, and whole in JSON."""
    argv = (b"server", *[b"x" * 100_000 for _ in range(10)])
    outcome = CLEAN._replace(program=ProgramSpec(argv=argv))
    child = dict(report_rows(outcome))["child"]
    assert len(child) < 300 and child.endswith("(11 arguments, 1000016 bytes)) exited with 0")
    assert report_fields(outcome)["command"] == b" ".join(argv).decode()


def test_clean_rows() -> None:
    """A clean stop's report says the child exited within the grace and gsup exits 0."""
    rows = report_rows(CLEAN)
    labels = [label for label, _ in rows]
    assert labels == ["stopped by", "child", "stop", "leftovers", "exit"]
    text = dict(rows)
    assert text["stopped by"] == "SIGTERM"
    assert text["child"] == "pid 42 (gunicorn app:wsgi) exited with 0"
    assert text["stop"] == "SIGTERM sent, took 0.250s of a 9s grace; exited within the grace"
    assert "force" not in text["stop"]
    assert text["leftovers"] == "none"
    assert text["exit"] == "0"


def test_own_exit_rows() -> None:
    """A child that exits on its own is reported as such, with no stop row."""
    rows = dict(report_rows(OWN_EXIT))
    assert rows["stopped by"] == "the child's own exit"
    assert "stop" not in rows
    assert rows["exit"] == "3"


def test_failure_row_comes_first() -> None:
    """An outcome with an error starts its report with the failure."""
    failed = Outcome(exit_code=127, cause=StopCause.SPAWN_FAILED, program=PROGRAM, error="nope: not found")
    rows = report_rows(failed)
    assert rows[0] == ("failed", "nope: not found")
    assert rows[-1] == ("exit", "127")


def test_text_report_lines_are_aligned() -> None:
    """The text report is one 'gsup: label  text' line per row, labels padded to one width."""
    lines = _text_report(FORCE_KILLED)
    rows = report_rows(FORCE_KILLED)
    assert len(lines) == len(rows)
    width = max(len(label) for label, _ in rows)
    for line, (label, text) in zip(lines, rows):
        assert line == f"gsup: {label.ljust(width)}  {text}"
    assert "\x1b" not in "".join(lines)


# -- json --------------------------------------------------------------------------


def test_json_force_killed() -> None:
    """The JSON exit event of a force-killed outcome carries every report field."""
    record = _json_report(FORCE_KILLED)
    assert record["event"] == "exit"
    assert record["ts"] == 123.456789
    assert isinstance(record["gsup_pid"], int)
    expected = {
        "exit_code": 137,
        "cause": "stop signal received",
        "program": "main",
        "command": "gunicorn app:wsgi",
        "pid": 42,
        "status": "killed by SIGKILL",
        "stop_signal_received": "SIGTERM",
        "stop_signal_sender": 1,
        "stop_signal_sent": "SIGTERM",
        "stop_seconds": 27.0123,
        "ran_seconds": 100.5,
        "grace": 27.0,
        "force_killed": True,
        "escalation": "grace ran out",
        "leftovers_signalled": 0,
        "leftovers_killed": 2,
        "leftovers_surviving": 0,
        "orphans_reaped": 3,
        "error": None,
    }
    assert {k: record[k] for k in expected} == expected


def test_json_clean() -> None:
    """The JSON exit event of a clean stop says exit 0, not force-killed, no escalation."""
    record = _json_report(CLEAN)
    assert record["exit_code"] == 0
    assert record["force_killed"] is False
    assert record["escalation"] is None
    assert record["status"] == "exited with 0"
    assert record["stop_seconds"] == 0.25
    assert record["stop_signal_sender"] is None


def test_json_fields_match_report_fields() -> None:
    """The JSON exit event is report_fields() plus ts, gsup_pid and event, nothing else."""
    record = _json_report(CLEAN)
    assert set(record) == set(report_fields(CLEAN)) | {"ts", "gsup_pid", "event"}


def test_json_own_exit_has_no_stop_fields() -> None:
    """A child that exited on its own has null stop fields in JSON."""
    record = _json_report(OWN_EXIT)
    assert record["stop_seconds"] is None
    assert record["stop_signal_received"] is None
    assert record["cause"] == "child exited"
    assert record["exit_code"] == 3


# -- events, quiet, verbose ---------------------------------------------------------


def test_quiet_and_verbose_events() -> None:
    """--quiet drops event lines; orphan_reaped lines appear only with --verbose."""
    out = io.StringIO()
    TextSink(out, quiet=True).event("grace_started", "waiting")
    assert out.getvalue() == ""
    TextSink(out).event("orphan_reaped", "reaped pid 9")
    assert out.getvalue() == ""
    TextSink(out, verbose=True).event("orphan_reaped", "reaped pid 9")
    assert out.getvalue() == "gsup: reaped pid 9\n"


def test_json_event_line() -> None:
    """A JSON event is one line with its kind, message and fields."""
    out = io.StringIO()
    JsonSink(out, clock=lambda: 1.0).event("signal_received", "received SIGTERM", signal="SIGTERM")
    record = json.loads(out.getvalue())
    assert record["event"] == "signal_received"
    assert record["message"] == "received SIGTERM"
    assert record["signal"] == "SIGTERM"


def test_closed_stream_does_not_raise() -> None:
    """A closed stderr does not stop supervision: writes to it are dropped silently."""
    out = io.StringIO()
    sink = TextSink(out)
    out.close()
    sink.event("grace_started", "waiting")
    sink.report(CLEAN)
    sink.error("oops")
