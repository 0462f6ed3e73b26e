"""The child's stdio is gsup's own: output byte-exact and complete, input delivered."""

from __future__ import annotations

import hashlib
import signal
import subprocess

import pytest

SIZE = 5 * 1024 * 1024


@pytest.mark.timeout(60)
@pytest.mark.parametrize("term_midway", [False, True], ids=["whole", "sigterm-midway"])
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_binary_output_is_byte_exact(gsup, stream, term_midway):
    """5 MB of binary output ending in a line without newline arrive byte-exact, even past a TERM."""
    log_to = "stderr" if stream == "stdout" else "stdout"
    child = ["--write-bytes", str(SIZE), "--write-to", stream, "--log-to", log_to]
    if term_midway:  # half the payload, then SIGTERM, which the child answers by finishing
        child.append("--pause-midway")
    run = gsup(["--quiet"], child=child)
    log, data = (run.err, run.out) if stream == "stdout" else (run.out, run.err)
    if term_midway:
        log.expect(r"^midway bytes=\d+$", timeout=30)
        run.send(signal.SIGTERM)
    wrote = log.expect(r"^wrote bytes=(\d+) sha256=([0-9a-f]{64})$", timeout=30)
    assert run.finish(30) == 0
    assert int(wrote[1]) == SIZE
    received = bytes(data.data)
    if stream == "stderr":  # gsup's report follows, after the child's unterminated last line
        received, report = received[:SIZE], received[SIZE:]
        assert report.startswith(b"gsup: "), report[:200]
    assert len(received) == SIZE
    assert hashlib.sha256(received).hexdigest() == wrote[2]
    assert received.endswith(b"\nthe last line has no newline")


@pytest.mark.timeout(30)
def test_stdin_reaches_the_child(gsup):
    """What is written to gsup's stdin reaches the child, and closing it gives the child EOF."""
    run = gsup([], child=["--echo-stdin", "--code", "6"], stdin=subprocess.PIPE)
    run.out.expect(r"^ready pid=")
    stdin = run.proc.stdin
    for text in ("hello", "second line ünïcode"):
        stdin.write(text.encode() + b"\n")
        stdin.flush()
        run.out.expect(rf"^echo: {text}$")
    stdin.close()
    run.out.expect(r"^stdin eof$")
    assert run.finish() == 6
