"""A queue worker: takes a job every half second; on SIGTERM finishes the current one."""

import argparse
import signal
import time
import urllib.request

stopping = False


def stop(signum: int, _frame: object) -> None:
    global stopping
    stopping = True
    print(f"worker: {signal.Signals(signum).name}: finishing the current job", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--web", default="http://127.0.0.1:8765/")
    web = parser.parse_args().web
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    job = 0
    while not stopping:
        job += 1
        with urllib.request.urlopen(web + "health", timeout=2) as r:
            print(f"worker: job {job} (web says {r.status})", flush=True)
        time.sleep(0.5)
    print(f"worker: stopped after {job} jobs", flush=True)


if __name__ == "__main__":
    main()
