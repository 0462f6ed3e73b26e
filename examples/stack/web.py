"""A small HTTP service: /health answers 200 once the migration's state exists.

On SIGTERM it stops accepting and finishes the requests in flight.
"""

import argparse
import http.server
import os
import signal
import tempfile
import threading

STATE = os.path.join(tempfile.gettempdir(), "gsup-stack-example.state")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = os.path.exists(STATE)
        body = b"ok\n" if ok else b"not migrated\n"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"web: {self.command} {self.path}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    port = parser.parse_args().port
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = False  # finish requests in flight on shutdown

    def stop(signum: int, _frame: object) -> None:
        print(f"web: {signal.Signals(signum).name}: finishing requests in flight", flush=True)
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"web: listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()
    server.server_close()
    print("web: stopped", flush=True)


if __name__ == "__main__":
    main()
