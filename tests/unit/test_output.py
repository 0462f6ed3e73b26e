"""Line splitting, prefixes and JSON lines of many-programs output (gsup.output), without processes."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re

from hypothesis import given
from hypothesis import strategies as st

from gsup.output import JsonLines, Line, LineBuffer, Prefixer, Writer


def _split_all(chunks: list[bytes], limit: int) -> list[Line]:
    buf = LineBuffer(limit)
    out: list[Line] = []
    for c in chunks:
        out += buf.feed(c)
    rest = buf.flush()
    return out + ([rest] if rest is not None else [])


def test_lines_come_out_whole_whatever_the_chunking() -> None:
    """A line split across reads is handed out once, whole."""
    assert _split_all([b"he", b"llo\nwor", b"ld\n"], 100) == [Line(b"hello"), Line(b"world")]


def test_last_line_without_newline_is_flushed_and_says_so() -> None:
    """The final unterminated line is not lost: flush gives it, marked as having no newline."""
    buf = LineBuffer(100)
    assert buf.feed(b"a\nlast") == [Line(b"a")]
    assert buf.flush() == Line(b"last", newline=False)
    assert buf.flush() is None


def test_long_line_goes_out_in_pieces_of_the_limit() -> None:
    """A line longer than the limit is passed in limit-sized pieces, not held; each piece but the
    last is marked continued."""
    buf = LineBuffer(4)
    assert buf.feed(b"abcdefghij") == [Line(b"abcd", False, True), Line(b"efgh", False, True)]
    assert buf.feed(b"k\n") == [Line(b"ijk")]


@given(st.lists(st.binary(max_size=50), max_size=20), st.integers(min_value=1, max_value=16))
def test_no_byte_lost_or_reordered(chunks: list[bytes], limit: int) -> None:
    """Whatever the chunks and limit, the pieces and their newlines rebuild the input exactly."""
    data = b"".join(chunks)
    pieces = _split_all(chunks, limit)
    assert all(len(p.data) <= limit for p in pieces)
    assert all(not (p.continued and p.newline) for p in pieces)
    assert b"".join(p.data + (b"\n" if p.newline else b"") for p in pieces) == data


def test_every_text_line_ends_with_a_newline() -> None:
    """A piece of a long line and a last line without newline still end with one in text output,
    so no line is glued to another program's."""
    plain = Prefixer("web", 3, 0, colour=False, timestamps=False)
    assert plain(Line(b"piece", False, True)) == b"web | piece\n"
    assert plain(Line(b"last", newline=False)) == b"web | last\n"


def test_prefix_is_padded_and_coloured_only_when_asked() -> None:
    """The prefix pads the name to the width; colour codes only on a terminal."""
    plain = Prefixer("web", 6, 0, colour=False, timestamps=False)
    assert plain(Line(b"hi")) == b"web    | hi\n"
    coloured = Prefixer("web", 3, 0, colour=True, timestamps=False)
    assert coloured(Line(b"hi")).startswith(b"\x1b[") and coloured(Line(b"hi")).endswith(b"| \x1b[0mhi\n")


def test_an_empty_label_leaves_the_line_as_written() -> None:
    """prefix = false: no label, no bar, no padding (not even in colour)."""
    assert Prefixer("", 10, 0, colour=True, timestamps=False)(Line(b"raw \xff")) == b"raw \xff\n"


def test_timestamps_prefix_the_prefix_in_iso_8601() -> None:
    """With timestamps each line starts with an ISO-8601 UTC time to the millisecond."""
    line = Prefixer("w", 1, 0, colour=False, timestamps=True)(Line(b"x"))
    stamp, rest = line.split(b" ", 1)
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
    assert rest == b"w | x\n"


@given(st.binary(max_size=200), st.booleans(), st.booleans())
def test_json_lines_keep_every_byte(data: bytes, newline: bool, continued: bool) -> None:
    """A line as JSON: one object, one line, naming the program and stream; its bytes come back
    exactly, from "line" when UTF-8, else from "base64"."""
    line = Line(data.replace(b"\n", b""), newline and not continued, continued)
    out = JsonLines("web", "stderr", clock=lambda: 12.5)(line)
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    record = json.loads(out)
    assert (record["ts"], record["program"], record["stream"]) == (12.5, "web", "stderr")
    got = base64.b64decode(record["base64"]) if "base64" in record else record["line"].encode("utf-8")
    assert got == line.data
    assert record.get("continued", False) is line.continued
    assert record.get("newline", True) is (line.newline or line.continued)


def test_json_lines_mark_bytes_that_are_not_utf8() -> None:
    """Bytes that are not UTF-8 show with U+FFFD in "line" and exactly in "base64"."""
    record = json.loads(JsonLines("w", "stdout")(Line(b"ok \xff\xfe")))
    assert record["line"] == "ok \ufffd\ufffd"
    assert base64.b64decode(record["base64"]) == b"ok \xff\xfe"
    assert "base64" not in json.loads(JsonLines("w", "stdout")(Line("é".encode())))


def _by_lines(chunks: list[bytes], limit: int, prefix: Prefixer) -> bytes:
    buf = LineBuffer(limit)
    out = b"".join(prefix(line) for chunk in chunks for line in buf.feed(chunk))
    rest = buf.flush()
    return out + (prefix(rest) if rest else b"")


def _by_blocks(chunks: list[bytes], limit: int, prefix: Prefixer) -> bytes:
    """As the loop reads: a block when it can, the lines one by one when a long one is in it."""
    buf = LineBuffer(limit)
    out = b""
    for chunk in chunks:
        block = buf.feed_block(chunk)
        if block is None:
            out += b"".join(prefix(line) for line in buf.feed(chunk))
        else:
            out += prefix.block(block) if block else b""
    rest = buf.flush()
    return out + (prefix(rest) if rest else b"")


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"x", b"\n")), max_size=20),
    st.integers(min_value=1, max_value=16),
    st.sampled_from(["", "web"]),
)
def test_a_block_is_prefixed_as_its_lines_would_be(chunks: list[bytes], limit: int, label: str) -> None:
    prefix = Prefixer(label, 5, 0, colour=False, timestamps=False)
    assert _by_blocks(chunks, limit, prefix) == _by_lines(chunks, limit, prefix)


def test_a_block_of_lines_shares_one_timestamp() -> None:
    block = Prefixer("web", 3, 0, colour=False, timestamps=True).block(b"a\nb\n")
    first, second = block.splitlines()
    assert re.fullmatch(rb"\S+Z web \| a", first) and second == first[:-1] + b"b"


def test_json_block_is_one_object_a_line() -> None:
    block = JsonLines("web", "stdout", lambda: 1.0).block(b"a\n\xff\n")
    assert [json.loads(x)["line"] for x in block.splitlines()] == ["a", "\ufffd"]


def test_writes_to_a_pipe_end_at_line_ends_and_leave_it_blocking() -> None:
    """Another writer of the same pipe (gsup's report, another process) never lands inside a line."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)  # one page: many small writes
        writer = Writer(w)
        numbered = [b"%05d " % i + b"y" * 50 for i in range(500)]  # 56 bytes: no line ends at 4096
        writer.push(b"".join(line + b"\n" for line in numbered))
        got = b""
        for _ in range(10_000):
            if not writer.wants_write:
                break
            writer.write_some()
            got += os.read(r, 65536)
            os.write(w, b"FOREIGN\n")
        got += os.read(r, 65536)
        assert not writer.wants_write
        lines = got.splitlines()
        assert [x for x in lines if x != b"FOREIGN"] == numbered
        assert lines.count(b"FOREIGN") > 1
        assert os.get_blocking(w)  # gsup's non-blocking writes went through a description of its own
        writer.close()
    finally:
        os.close(r)
        os.close(w)


def test_a_socket_as_stdout_is_written_after_poll_whole_lines_in_order() -> None:
    """A socket cannot be reopened through /proc: the writer falls back to poll, then write."""
    import socket

    a, b = socket.socketpair()
    try:
        writer = Writer(a.fileno())
        lines = [b"%05d " % i + b"z" * 100 for i in range(2000)]  # 212 KB: more than the buffers
        writer.push(b"".join(line + b"\n" for line in lines))
        got = b""
        b.setblocking(False)
        for _ in range(100_000):
            if not writer.wants_write:
                break
            writer.write_some()
            try:
                got += b.recv(1 << 16)
            except BlockingIOError:
                pass
        b.setblocking(True)
        b.settimeout(5)
        while len(got) < 2000 * 107:
            got += b.recv(1 << 16)
        assert got.splitlines() == lines
        assert a.getblocking()
    finally:
        a.close()
        b.close()
