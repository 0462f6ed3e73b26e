"""A small HTTP service that does or does not drain on SIGTERM (standard library only).

    http_server.py --port N [--drain SECONDS] [--listen-after SECONDS]

Answers every GET with 200. On SIGTERM or SIGINT:
  --drain S > 0: keeps serving for S seconds (a load balancer is still
                 routing to it), then closes the socket and exits 0;
  --drain 0:     closes the socket and exits 0 at once (requests still
                 arriving are refused: what a service without a drain does).
--listen-after delays the bind, to test readiness waits. Lines on stdout:
``listening port=N``, ``stopping drain=S``, ``exiting code=0``.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def log(text: str) -> None:
    os.write(1, (text + "\n").encode())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would drown the test output


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--drain", type=float, default=0.0)
    p.add_argument("--listen-after", type=float, default=0.0)
    args = p.parse_args()

    # Blocked here, so every thread inherits the mask and sigwait gets them.
    stops = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    if args.listen_after:
        time.sleep(args.listen_after)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    log(f"listening port={server.server_address[1]}")
    signal.sigwait(stops)
    log(f"stopping drain={args.drain:g}")
    if args.drain > 0:
        time.sleep(args.drain)  # still serving: the accept thread runs on
    server.shutdown()
    server.server_close()
    thread.join()
    log("exiting code=0")
    os._exit(0)


if __name__ == "__main__":
    main()
