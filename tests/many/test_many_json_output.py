"""Output as data: with --log-format json each program line is a JSON object (SPEC §6), and a
gone stdout stops nothing (EPIPE).

Each test runs twice: gsup as a subreaper and as PID 1 of a PID namespace.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from typing import Any

import pytest
from manykit import Fleet, prog, program_record

NONE = {"platform": "none"}


def records(lines: list[bytes], program: str) -> list[dict[str, Any]]:
    return [r for r in map(program_record, lines) if r is not None and r["program"] == program]


def rebuilt(recs: list[dict[str, Any]]) -> bytes:
    """The bytes a program wrote, from its JSON lines: lossless by design."""
    out = b""
    for r in recs:
        out += base64.b64decode(r["base64"]) if "base64" in r else r["line"].encode()
        if not r.get("continued") and r.get("newline", True):
            out += b"\n"
    return out


@pytest.mark.timeout(60)
def test_json_lines_give_back_every_byte_the_programs_wrote(fleet: Fleet) -> None:
    """A 1 MB line (in 64 KiB pieces marked continued), bytes that are not UTF-8 and a last line
    without a newline all come back byte-exact from the JSON objects, on the stream they came from;
    every line of gsup's stdout and stderr is a JSON object."""
    size = 1024 * 1024
    run = fleet.start(
        {
            "long": {"command": fleet.prog("long", "--long", size)},
            "bin": {
                "command": fleet.prog(
                    "bin", "--binary", "--stderr-lines", 2, "--tail", "no newline", "--exit-after", 0
                ),
                "oneshot": True,
            },
        },
        NONE,
    )
    run.log("wrote", "long", timeout=30)
    run.event("program_exited", "bin")
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert run.out is not None
    out = list(run.out.lines)
    long = [r for r in records(out, "long") if not r["line"].startswith("@")]
    assert len(long) == size // (64 * 1024)  # 15 pieces continued, the 16th ends the line
    assert rebuilt(long) == prog.long_line(size) + b"\n"
    assert all(r["continued"] for r in long[:-1]) and "continued" not in long[-1]
    assert all(len(r["line"]) <= 64 * 1024 for r in long)
    binary = [r for r in records(out, "bin") if not r["line"].startswith("@")]
    payload = b"bin:" + bytes(range(256)) + b"\n" + b"\xff\xfe\xc3\x28 not utf-8\n" + b"no newline"
    assert rebuilt(binary) == payload and binary[-1]["newline"] is False
    # bytes(range(256)) holds a newline: "bin:\x00..\x09" is ASCII, the rest of it and the
    # next line are not UTF-8, the last is.
    assert [("base64" in r) for r in binary] == [False, True, True, False]
    assert {r["stream"] for r in records(out, "bin")} == {"stdout"}
    err = records(list(run.err.lines), "bin")
    assert [r["line"] for r in err] == ["err-bin-0", "err-bin-1"] and {r["stream"] for r in err} == {"stderr"}
    for line in [*out, *run.err.lines]:
        assert isinstance(json.loads(line), dict), line[:100]


@pytest.mark.timeout(30)
def test_a_gone_stdout_is_said_once_and_supervision_goes_on(fleet: Fleet) -> None:
    """``gsup --config x | head -2``: once nobody reads stdout, gsup says so once on stderr, drops
    the programs' stdout lines and goes on supervising: a SIGTERM still stops everything, exit 0."""
    run = fleet.start(
        {"ticker": {"command": fleet.prog("ticker", "--tick", 0.01)}},
        NONE,
        read_stdout=False,
    )
    got = b""
    while got.count(b"\n") < 2:  # what head -2 reads
        got += os.read(run.stdout_fd, 1 << 16)
    assert run.proc.stdout is not None
    run.proc.stdout.close()  # head exits
    gone = run.event("output_gone", timeout=10)
    assert gone["stream"] == "stdout"
    started = len(run.events("started"))
    run.send(signal.SIGTERM)
    assert run.finish() == 0
    assert len(run.events("output_gone")) == 1
    assert len(run.events("started")) == started
    assert run.program_report("ticker")["stop_signal"] == "SIGTERM"
    assert run.leftovers() == []
