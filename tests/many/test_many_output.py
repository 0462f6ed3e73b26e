"""Output: whole prefixed lines, nothing lost or mixed, back-pressure, raw passthrough (SPEC §5).

Each test runs twice: gsup as a subreaper and as PID 1 of a PID namespace.
Every line a program writes can be checked from the line alone (its
content is derived from its sequence number, see ``progs/prog.py``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time

import pytest
from manykit import Fleet, parse_event_line, prog, rss_kib, split_prefixed

LINES = 100_000
#: These tests read the text form of the programs' lines (prefix, padding, pieces):
#: gsup's own events are then text too. JSON lines: test_many_json_output.py.
TEXT = ("--log-format", "text")


@pytest.mark.timeout(90)
def test_three_programs_of_100000_lines_each_give_300000_whole_lines(fleet: Fleet) -> None:
    """3 programs writing 100,000 lines at once: exactly 300,000 whole prefixed lines, none lost or mixed."""
    names = ["x", "yy", "zzzz"]  # the prefixes are padded to the longest name
    run = fleet.start({n: {"command": fleet.prog(n, "--lines", LINES)} for n in names}, args=TEXT)
    for n in names:
        run.log("wrote", n, timeout=60)
    run.send(signal.SIGTERM)
    assert run.finish(timeout=60) == 0

    assert run.out is not None
    seq = dict.fromkeys(names, 0)
    for line in run.out.lines:
        name, body = split_prefixed(line)
        assert line.startswith(f"{name:<4} | ".encode()), line[:80]
        if body.startswith(b"@"):
            continue
        assert body == prog.data_line(name, seq[name])[:-1], f"{name} line {seq[name]}: {line[:120]!r}"
        seq[name] += 1
    assert seq == dict.fromkeys(names, LINES)
    assert sum(seq.values()) == 300_000
    assert run.out.data.endswith(b"\n")
    assert b"-0-" not in run.err.data, "program stdout went to gsup's stderr"


@pytest.mark.timeout(30)
def test_stderr_goes_to_stderr_and_a_last_line_without_newline_is_shown(fleet: Fleet) -> None:
    """A program's stderr lines reach gsup's stderr prefixed, and its last unterminated line is flushed."""
    run = fleet.start(
        {
            "talk": {
                "command": fleet.prog(
                    "talk", "--stderr-lines", 3, "--tail", "the end, no newline", "--exit-after", 0.2
                )
            },
            "quiet": {"command": fleet.prog("quiet")},
        },
        args=TEXT,
    )
    assert run.finish() == 0
    assert run.out is not None
    talk = [body for name, body in map(split_prefixed, run.out.lines) if name == "talk"]
    assert talk[-1] == b"the end, no newline"
    assert b"talk  | the end, no newline\n" in run.out.data
    assert b"err-" not in run.out.data
    err_lines = [line for line in run.err.lines if not line.startswith(b"{")]
    assert [line for line in err_lines if b"err-" in line] == [b"talk  | err-talk-%d" % i for i in range(3)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("size", [200 * 1024, 3 * 64 * 1024 + 1])
def test_very_long_line_arrives_in_pieces_of_at_most_64_kib(fleet: Fleet, size: int) -> None:
    """A line longer than 64 KiB arrives as prefixed pieces of at most 64 KiB that concatenate to it."""
    run = fleet.start({"long": {"command": fleet.prog("long", "--long", size)}}, args=TEXT)
    run.log("wrote", "long")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.out is not None
    pieces = [body for _, body in map(split_prefixed, run.out.lines) if not body.startswith(b"@")]
    assert all(len(p) <= 64 * 1024 for p in pieces), [len(p) for p in pieces]
    assert len(pieces) == -(-size // (64 * 1024))
    assert b"".join(pieces) == prog.long_line(size)


@pytest.mark.timeout(30)
def test_line_of_exactly_64_kib_adds_no_empty_line(fleet: Fleet) -> None:
    """A line of exactly 64 KiB is one piece: no empty line follows it."""
    run = fleet.start({"long": {"command": fleet.prog("long", "--long", 64 * 1024)}}, args=TEXT)
    run.log("wrote", "long")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.out is not None
    pieces = [body for _, body in map(split_prefixed, run.out.lines) if not body.startswith(b"@")]
    assert pieces == [prog.long_line(64 * 1024)]


@pytest.mark.timeout(30)
def test_binary_output_passes_byte_exact_and_crashes_nothing(fleet: Fleet) -> None:
    """Non-UTF-8 bytes pass through byte-exact, line by line, and gsup goes on supervising."""
    run = fleet.start(
        {
            "bin": {"command": fleet.prog("bin", "--binary")},
            "text": {"command": fleet.prog("text", "--lines", 3)},
        },
        args=TEXT,
    )
    run.log("wrote", "bin")
    run.log("wrote", "text")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.out is not None
    payload = b"bin:" + bytes(range(256)) + b"\n" + b"\xff\xfe\xc3\x28 not utf-8\n"
    expected = b"".join(b"bin  | " + line + b"\n" for line in payload.split(b"\n")[:-1])
    assert expected in run.out.data


@pytest.mark.timeout(90)
def test_slow_reader_gets_every_byte_of_50_mb_and_gsup_memory_stays_bounded(fleet: Fleet) -> None:
    """50 MB written while gsup's stdout is read slowly: every byte arrives and gsup's RSS stays < 100 MB."""
    size, line_size = 50 * 1024 * 1024, 1024
    run = fleet.start(
        {
            "flood": {
                "command": fleet.prog("flood", "--bytes", size, "--line-size", line_size, "--exit-after", 0)
            }
        },
        read_stdout=False,
        args=TEXT,
    )
    fd = run.stdout_fd
    gsup_pid = run.gsup.pid
    prefix = b"flood | "
    seq = received = 0
    rss = [rss_kib(gsup_pid)]
    next_pause, next_sample, partial = 8 << 20, 1 << 20, b""
    events: dict[str, float] = {}
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        received += len(chunk)
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        for line in lines:
            assert line.startswith(prefix), line[:80]
            body = line[len(prefix) :]
            if body.startswith(b"@"):
                e = parse_event_line(body)
                assert e is not None, body
                events[e["event"]] = float(e["t"])
                continue
            assert body == prog.block(seq, line_size)[:-1], f"line {seq}: {line[:80]!r}"
            seq += 1
        if received >= next_pause:  # stop reading a while: the program must be held back
            next_pause += 8 << 20
            time.sleep(0.3)
            rss.append(rss_kib(gsup_pid))
        else:
            time.sleep(0.0005)
        if received >= next_sample:
            next_sample += 1 << 20
            rss.append(rss_kib(gsup_pid))
    assert partial == b""
    assert run.finish() == 0
    assert seq * line_size == size, f"{seq} of {size // line_size} lines arrived"
    assert max(rss) < 100 * 1024, f"gsup's RSS peaked at {max(rss) // 1024} MiB"
    assert len(rss) > 50
    took = events["wrote"] - events["start"]
    assert took > 5 * 0.3, f"the writer was not held back while nobody read ({took:.2f}s)"
    assert run.leftovers() == []


@pytest.mark.timeout(30)
def test_prefix_false_passes_stdout_through_raw(fleet: Fleet) -> None:
    """prefix = false: the program's lines come unprefixed, byte for byte; the others stay prefixed."""
    run = fleet.start(
        {
            "raw": {"command": fleet.prog("raw", "--lines", 50, "--binary"), "prefix": False},
            "cooked": {"command": fleet.prog("cooked", "--lines", 5)},
        },
        args=TEXT,
    )
    run.log("wrote", "cooked")
    assert run.out is not None
    run.out.wait_for(lambda: b"@wrote name=raw" in run.out.data, 15, "raw's @wrote")  # type: ignore[union-attr]
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    data = bytes(run.out.data)
    raw_lines = b"".join(prog.data_line("raw", i) for i in range(50))
    assert raw_lines in data
    assert b"bin:" + bytes(range(256)) + b"\n\xff\xfe\xc3\x28 not utf-8\n" in data
    assert b"| raw-" not in data
    assert b"cooked | cooked-4-abcd\n" in data


@pytest.mark.timeout(30)
def test_custom_prefix_and_timestamps(fleet: Fleet) -> None:
    """prefix = "LABEL" replaces the name (padded like names); timestamps = true puts an ISO-8601 time
    first."""
    run = fleet.start(
        {
            "clock": {"command": fleet.prog("clock", "--lines", 3), "timestamps": True},
            "database": {"command": fleet.prog("database", "--lines", 2), "prefix": "db"},
        },
        args=TEXT,
    )
    run.log("wrote", "clock")
    run.log("wrote", "database")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.out is not None
    lines = [line for line in run.out.lines if b"clock-" in line]
    assert len(lines) == 3
    for line in lines:
        assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z clock \| clock-\d-[a-z]*", line), line
    assert [line for line in run.out.lines if b"database-" in line] == [
        b"db    | database-0-",
        b"db    | database-1-a",
    ]


FLOOD = (
    "import os, signal\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "while True: os.write(1, b'y' * 999 + b'\\n')"
)


def _blocked_in_pipe_write(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "pipe_write" in f.read()
    except OSError:
        return False


@pytest.mark.timeout(30)
def test_stalled_stdout_does_not_delay_the_stop_or_the_deadline(fleet: Fleet) -> None:
    """While nobody reads gsup's stdout, a SIGTERM still stops the programs, SIGKILL at the grace end."""
    run = fleet.start(
        {"flood": {"command": [sys.executable, "-c", FLOOD, fleet.token]}},
        {"grace": "1s"},
        read_stdout=False,
        args=TEXT,
    )
    got = len(os.read(run.stdout_fd, 1000))  # the flood has begun
    gsup = run.gsup.pid
    [flood] = run.processes()
    # Read unevenly, like a lagging log shipper, until gsup is caught writing
    # (or for 1 s: a gsup that never blocks in write() is what this test wants).
    until = time.monotonic() + 1.0
    while time.monotonic() < until:
        got += len(os.read(run.stdout_fd, 1000 + got % 7000))
        time.sleep(0.0005)
        if _blocked_in_pipe_write(gsup):
            break
    sent = run.send(signal.SIGTERM)  # and from now on nobody reads
    deadline = sent + 1.0 + 0.5
    while flood.running and time.monotonic() < deadline:
        time.sleep(0.01)  # nothing to wait on: the process is not ours
    gone = not flood.running
    drain = threading.Thread(target=lambda: all(iter(lambda: os.read(run.stdout_fd, 1 << 16), b"")))
    drain.start()  # read again, so that gsup can finish either way
    assert gone, "the program outlived the grace while gsup's stdout was not read"
    assert run.finish() == 137


@pytest.mark.timeout(60)
def test_gsup_events_never_land_inside_a_program_line(fleet: Fleet) -> None:
    """With stderr read slowly, gsup's own event lines and a program's stderr lines (JSON objects
    both, with --log-format json) stay whole lines."""
    run = fleet.start(
        {
            "noisy": {"command": fleet.prog("noisy", "--flood-stderr")},
            "blinker": {  # restarts all the time: events on gsup's stderr
                "command": ["true"],
                "restart": "always",
                "backoff": "20ms",
                "backoff_max": "20ms",
                "max_restarts": 100_000,
            },
        },
        slow_stderr=True,
    )
    run.event("started", "blinker", n=6, timeout=40)
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    lines = run.err.lines
    bad, seqs = [], []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if record.get("program") == "noisy" and "line" in record:
            assert record["stream"] == "stderr"
            m = re.fullmatch(r"err-noisy-(\d+)", record["line"])
            assert m, record
            seqs.append(int(m[1]))
    if bad and bad[-1] is lines[-1] and not run.err.data.endswith(b"\n"):
        bad.pop()  # the line it was writing when it was stopped
    assert len(seqs) > 1000
    assert bad == [], f"{len(bad)} mixed lines, e.g. {bad[0][:200]!r}"
    assert seqs == list(range(len(seqs))), "program lines lost"
