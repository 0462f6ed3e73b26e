"""An HTTP service with work in flight after each response: it loses work unless stopped properly.

Every ``GET /`` is answered ``200 accepted`` at once; the work itself (an
``INCR`` of a Redis counter) happens a moment later, in the background, the
way a service sends an e-mail or writes an audit record after replying.

On SIGTERM (or SIGINT) it stops accepting connections, finishes the requests
being served, completes every piece of work already accepted, and exits 0.
Killed with SIGKILL instead, which is what a platform does when its SIGTERM
never reached the service (a shell as PID 1 that does not ``exec``), the
work in flight is lost: the client got its 200, the counter never moves.

    python3 examples/counter_app.py --port 8080 --redis 127.0.0.1:6379
    gsup -- python3 examples/counter_app.py

``GET /healthz`` answers 200 while serving, 503 once stopping (for a
readiness probe). Settings also come from the environment: ``PORT``,
``REDIS_ADDR``, ``COUNTER_KEY``, ``WORK_SECONDS``. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from resp import Redis


def log(message: str) -> None:
    print(f"counter_app: {message}", flush=True)


class Work:
    """The work accepted but not yet done, and the one thread-safe way to do it."""

    def __init__(self, redis: Redis, key: str, delay: float) -> None:
        self.redis, self.key, self.delay = redis, key, delay
        self.redis_lock = threading.Lock()
        self.idle = threading.Condition()
        self.pending = 0
        self.failed = 0

    def submit(self) -> None:
        with self.idle:
            self.pending += 1
        timer = threading.Timer(self.delay, self._run)
        timer.daemon = True  # waited for through `pending`, not through the thread
        timer.start()

    def _run(self) -> None:
        try:
            with self.redis_lock:
                try:
                    self.redis.command("INCR", self.key)
                except OSError:
                    self.redis.command("INCR", self.key)  # one retry on a fresh connection
        except Exception as e:
            self.failed += 1
            print(f"counter_app: work failed: {e}", file=sys.stderr, flush=True)
        finally:
            with self.idle:
                self.pending -= 1
                self.idle.notify_all()

    def wait_idle(self) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.pending == 0)


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the requests being served
    request_queue_size = 128  # a burst of connections must not be dropped
    stopping = False
    work: Work


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(
                503 if self.server.stopping else 200,
                b"stopping\n" if self.server.stopping else b"ok\n",
            )
        elif self.path in ("/", "/work"):
            self.server.work.submit()  # accepted: from now on it must be done
            self._answer(200, b"accepted\n")
        else:
            self._answer(404, b"not found\n")

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would drown the interesting ones


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--redis", default=os.environ.get("REDIS_ADDR", "127.0.0.1:6379"))
    parser.add_argument("--key", default=os.environ.get("COUNTER_KEY", "hits"))
    parser.add_argument("--work-seconds", type=float, default=float(os.environ.get("WORK_SECONDS", "0.3")))
    args = parser.parse_args()

    redis = Redis.from_address(args.redis)
    redis.connect()
    server = Server((args.host, args.port), Handler)
    server.work = Work(redis, args.key, args.work_seconds)

    # Block the stop signals before any thread starts (threads inherit the
    # mask) and take them with sigwait in the main thread. A Python handler
    # would only run when the main thread executes bytecode: blocked in a
    # wait while the kernel hands the signal to another thread, it would
    # never notice the stop.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    log(f"ready pid={os.getpid()} port={server.server_address[1]}")
    received = signal.sigwait(stop_signals)

    server.stopping = True
    log(
        f"got {signal.Signals(received).name}: no new connections; "
        f"finishing {server.work.pending} piece(s) of work in flight"
    )
    server.shutdown()  # the accept loop ends
    serving.join()
    server.server_close()  # closes the listening socket, joins the requests being served
    server.work.wait_idle()  # every accepted request's work is done
    redis.close()
    log(f"stopped cleanly ({server.work.failed} piece(s) of work failed)")
    return 1 if server.work.failed else 0


if __name__ == "__main__":
    sys.exit(main())
