"""Readiness attempts beside a loop (gsup.readiness.Background): real threads, a real pipe."""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path

import pytest

from gsup.errors import UsageError
from gsup.readiness import Background, Probe


def wait_results(bg: Background, want: int) -> list[tuple[int, bool]]:
    """Poll the fd like the loop does until *want* results are in."""
    got: list[tuple[int, bool]] = []
    while len(got) < want:
        assert select.select([bg.fd], [], [], 5.0)[0], "no result within 5 s"
        got += bg.results()
    return got


@pytest.mark.timeout(10)
def test_results_come_back_through_the_fd_with_their_tokens(tmp_path: Path) -> None:
    """Each attempt's result wakes the fd and comes back once, with the token it was started with."""
    there = tmp_path / "ready"
    there.touch()
    bg = Background()
    bg.start(7, Probe("file", str(there)), 0.1)
    bg.start(8, Probe("file", str(tmp_path / "missing")), 0.1)
    assert sorted(wait_results(bg, 2)) == [(7, True), (8, False)]
    assert bg.results() == []


@pytest.mark.timeout(10)
def test_an_unexpected_error_is_raised_by_the_loop_not_printed_by_the_thread() -> None:
    """An error the attempt does not handle reaches the caller of results(), as if it had run inline."""

    class Broken(Probe):
        def attempt(self, timeout: float = 1.0) -> bool:
            raise RuntimeError("a bug in the attempt")

    bg = Background()
    bg.start(1, Broken("tcp", "127.0.0.1:9"), 0.1)
    assert select.select([bg.fd], [], [], 5.0)[0]
    with pytest.raises(RuntimeError, match="a bug in the attempt"):
        bg.results()


@pytest.mark.parametrize(
    "text", ["tcp=127.0.0.1:0", "tcp=127.0.0.1:70000", "tcp=" + "x" * 64 + ":80", "tcp=nohost", "http=nope"]
)
def test_a_probe_that_could_never_answer_is_refused_when_parsed(text: str) -> None:
    """A port outside 1-65535 or a host name no resolver takes is refused, not probed in vain."""
    with pytest.raises(UsageError):
        Probe.parse(text)


def test_a_name_the_resolver_refuses_is_a_failed_attempt_not_an_error() -> None:
    """An attempt whose host the resolver rejects (not an OSError) counts as not ready."""
    assert Probe("tcp", "x" * 64 + ":80").attempt(0.1) is False


@pytest.mark.timeout(10)
def test_close_frees_the_pipe_and_a_late_attempt_ends_unheard() -> None:
    """After close() both ends of the pipe are closed, and an attempt finishing later writes nowhere."""
    release = threading.Event()

    class Slow(Probe):
        def attempt(self, timeout: float = 1.0) -> bool:
            release.wait(5)
            return True

    bg = Background()
    ends = (bg.fd, bg._wake)
    bg.start(1, Slow("file", "/"), 0.1)
    bg.close()
    for fd in ends:
        with pytest.raises(OSError):
            os.fstat(fd)
    reused = os.open(
        os.devnull, os.O_RDONLY
    )  # may take a freed number: the late attempt must not write there
    try:
        release.set()
        for t in threading.enumerate():
            if t.name == "probe-1":
                t.join(5)
        assert not any(t.name == "probe-1" for t in threading.enumerate())
        assert list(bg._done) == []
    finally:
        os.close(reused)
