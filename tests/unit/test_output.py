"""Line splitting and prefixes of many-programs output (gsup.output), without processes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gsup.output import LineBuffer, Prefixer


def _split_all(chunks: list[bytes], limit: int) -> list[bytes]:
    buf = LineBuffer(limit)
    out: list[bytes] = []
    for c in chunks:
        out += buf.feed(c)
    rest = buf.flush()
    return out + ([rest] if rest is not None else [])


def test_lines_come_out_whole_whatever_the_chunking() -> None:
    """A line split across reads is handed out once, whole."""
    assert _split_all([b"he", b"llo\nwor", b"ld\n"], 100) == [b"hello\n", b"world\n"]


def test_last_line_without_newline_is_flushed_with_one() -> None:
    """The final unterminated line is not lost: flush gives it, with a newline."""
    buf = LineBuffer(100)
    assert buf.feed(b"a\nlast") == [b"a\n"]
    assert buf.flush() == b"last\n"
    assert buf.flush() is None


def test_long_line_goes_out_in_pieces_of_the_limit() -> None:
    """A line longer than the limit is passed in limit-sized pieces, not held."""
    buf = LineBuffer(4)
    assert buf.feed(b"abcdefghij") == [b"abcd\n", b"efgh\n"]
    assert buf.feed(b"k\n") == [b"ijk\n"]


@given(st.lists(st.binary(max_size=50), max_size=20), st.integers(min_value=1, max_value=16))
def test_no_byte_lost_or_reordered(chunks: list[bytes], limit: int) -> None:
    """Whatever the chunks and limit, the pieces (less the added newlines) are the input."""
    data = b"".join(chunks)
    pieces = _split_all(chunks, limit)
    assert all(p.endswith(b"\n") for p in pieces)
    assert all(len(p) <= limit + 1 for p in pieces)
    rebuilt = b""
    for p in pieces:
        body = p[:-1]
        rebuilt += body
        # A real newline of the input is kept; the added ones are not in the data.
        if len(rebuilt) < len(data) and data[len(rebuilt) : len(rebuilt) + 1] == b"\n":
            rebuilt += b"\n"
    assert rebuilt == data


def test_prefix_is_padded_and_coloured_only_when_asked() -> None:
    """The prefix pads the name to the width; colour codes only on a terminal."""
    plain = Prefixer("web", 6, 0, colour=False, timestamps=False)
    assert plain(b"hi\n") == b"web    | hi\n"
    coloured = Prefixer("web", 3, 0, colour=True, timestamps=False)
    assert coloured(b"hi\n").startswith(b"\x1b[") and coloured(b"hi\n").endswith(b"| \x1b[0mhi\n")


def test_timestamps_prefix_the_prefix() -> None:
    """With timestamps each line starts HH:MM:SS.mmm."""
    line = Prefixer("w", 1, 0, colour=False, timestamps=True)(b"x\n")
    stamp, rest = line.split(b" ", 1)
    assert len(stamp) == 12 and stamp[2:3] == b":" and stamp[8:9] == b"."
    assert rest == b"w | x\n"
