"""A demo service for gsup: does some 'work', and stops cleanly on SIGTERM/SIGINT.

    gsup -- python3 examples/demo.py

Press Ctrl+C once: the service finishes its current job and exits 0 within
the grace. Press it twice: gsup force-kills it (exit 137).
"""

import signal
import sys
import time

stopping = False


def request_stop(signum: int, _frame: object) -> None:
    global stopping
    stopping = True
    print(f"demo: got {signal.Signals(signum).name}, finishing the current job", flush=True)


signal.signal(signal.SIGTERM, request_stop)
signal.signal(signal.SIGINT, request_stop)

print("demo: ready, working (Ctrl+C to stop)", flush=True)
job = 0
while not stopping:
    job += 1
    time.sleep(0.5)  # one unit of work
    print(f"demo: job {job} done", flush=True)
print("demo: all work saved, bye", flush=True)
sys.exit(0)
