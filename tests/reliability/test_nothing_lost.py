"""Nothing lost: every byte written before the end is delivered, under a stop, an escalation and a flood.

The writers (progs/flood.py) number their records per writer and
descriptor and derive each payload from the numbers, so a lost, repeated,
torn or mixed-up record shows. Each test runs as PID 1 and as a subreaper.
"""

from __future__ import annotations

import json
import re
import signal
from collections import defaultdict
from pathlib import Path

import pytest

from .relkit import prog, tagged

RECORD = re.compile(rb"^(\d+) ([12]) (\d+) ([0-9a-f]+)$")
END = re.compile(rb"^(\d+) ([12]) end count=(\d+)$")
HEAD = re.compile(rb"^(\d+) ([12]) (\d+) $")


def payload(writer: int, fd: int, seq: int) -> bytes:
    import hashlib

    return hashlib.sha256(f"{writer}/{fd}/{seq}".encode()).hexdigest().encode() * 2


class Tally:
    """The records of one stream of writers, checked as they are added."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seqs: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.ends: dict[tuple[int, int], int] = {}
        self.partial: dict[tuple[int, int], int] = {}

    def add(self, line: bytes, fd: int, *, last: bool) -> None:
        m = RECORD.match(line)
        if m:
            key = (int(m[1]), int(m[2]))
            assert key[1] == fd, f"{self.name}: a record for fd {key[1]} on fd {fd}: {line!r}"
            assert key not in self.ends and key not in self.partial, f"{self.name}: after the end: {line!r}"
            assert m[4] == payload(key[0], key[1], int(m[3])), f"{self.name}: torn record {line!r}"
            self.seqs[key].append(int(m[3]))
            return
        m = END.match(line)
        if m:
            self.ends[(int(m[1]), int(m[2]))] = int(m[3])
            return
        m = HEAD.match(line)
        if m and last:  # a kill between the two writes of a --split record
            self.partial[(int(m[1]), int(m[2]))] = int(m[3])
            return
        raise AssertionError(f"{self.name}: not a whole record: {line!r}")

    def check(self, writers: int, *, finished: bool) -> None:
        keys = {(w, fd) for w in range(writers) for fd in (1, 2)}
        assert set(self.seqs) == keys, f"{self.name}: writers seen {sorted(self.seqs)}"
        for key, seqs in self.seqs.items():
            assert seqs == list(range(len(seqs))), f"{self.name} {key}: gap or repeat near {_gap(seqs)}"
            if key in self.partial:
                assert self.partial[key] == len(seqs)
        if finished:
            assert self.ends == {k: len(v) for k, v in self.seqs.items()}, self.name
        else:
            assert self.ends == {}, self.name


def _gap(seqs: list[int]) -> int:
    return next((i for i, s in enumerate(seqs) if s != i), len(seqs))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("on_term, status", [("finish", 0), ("ignore", 137)])
def test_single_command_every_byte_arrives(gsup, tag, on_term, status):
    """Single command: every record the child and its descendants (one in its own session) wrote to the
    inherited stdout and stderr before the end arrives whole, whether they finish at TERM or are force-
    killed mid-flood."""
    writers = 3
    run = gsup(
        [
            "--grace",
            "1s",
            "--",
            *prog("flood", "--writers", str(writers), "--on-term", on_term, "--tag", tag),
        ]
    )
    run.out.expect(r"^flood ready$")
    run.out.expect(r"^0 1 2000 ", timeout=30)  # in full flood
    run.send(signal.SIGTERM)
    assert run.finish(60) == status, run.err.text()[-2000:]
    assert tagged(tag) == []
    tally = Tally("single")
    for fd, stream in ((1, run.out), (2, run.err)):
        data = bytes(stream.data)
        assert data.endswith(b"\n"), f"fd {fd}: a torn last record {data[-200:]!r}"
        for line in data[:-1].split(b"\n"):
            if line == b"flood ready" or line.startswith(b"gsup: "):
                continue
            tally.add(line, fd, last=False)
    tally.check(writers, finished=on_term == "finish")


def _config(tmp_path: Path, tag: str, on_term: str) -> str:
    if on_term == "finish":
        a = prog("flood", "--on-term", "finish", "--tail", "last words of a", "--tag", tag)
        b = prog("flood", "--on-term", "finish", "--split", "--tail", "last words of b", "--tag", tag)
    else:
        a = prog("flood", "--on-term", "ignore", "--writers", "3", "--tag", tag)
        b = prog("flood", "--on-term", "ignore", "--split", "--tag", tag)
    path = tmp_path / "gsup.toml"
    path.write_text(
        f'[gsup]\ngrace = "1s"\n\n[programs.a]\ncommand = {json.dumps(a)}\n\n'
        f"[programs.b]\ncommand = {json.dumps(b)}\n"
    )
    return str(path)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("on_term, status", [("finish", 0), ("ignore", 137)])
def test_many_programs_every_line_arrives(gsup, tag, tmp_path, on_term, status):
    """Many programs: every line two flooding programs wrote arrives once, whole and prefixed, the last line
    without a newline included, whether they finish at TERM or are force-killed mid-flood (then a record
    cut between two writes arrives as its first part)."""
    run = gsup(["--config", _config(tmp_path, tag, on_term)])
    run.out.expect(r"^a \| 0 1 2000 ", timeout=30)
    run.out.expect(r"^b \| 0 1 \d+ ", timeout=30)  # both in full flood
    run.send(signal.SIGTERM)
    assert run.finish(60) == status, run.err.text()[-2000:]
    assert tagged(tag) == []
    tallies = {name: Tally(name) for name in ("a", "b")}
    for fd, stream in ((1, run.out), (2, run.err)):
        data = bytes(stream.data)
        assert data.endswith(b"\n"), f"fd {fd}: gsup's output ends mid-line"
        lines = data[:-1].split(b"\n")
        last = {}
        for i, line in enumerate(lines):
            if line.startswith(b"gsup: ") or line == b"a | flood ready" or line == b"b | flood ready":
                continue
            name, sep, rest = line.partition(b" | ")
            assert sep and name in (b"a", b"b"), f"fd {fd}: a line without its prefix: {line[:200]!r}"
            last[name] = (i, rest)
        for i, line in enumerate(lines):
            name, sep, rest = line.partition(b" | ")
            if line.startswith(b"gsup: ") or not sep or rest == b"flood ready":
                continue
            if on_term == "finish" and fd == 1 and last[name][0] == i:
                assert rest == b"last words of " + name  # the unterminated last line, given its newline
                continue
            tallies[name.decode()].add(rest, fd, last=last[name][0] == i)
    tallies["a"].check(1 if on_term == "finish" else 3, finished=on_term == "finish")
    tallies["b"].check(1, finished=on_term == "finish")
