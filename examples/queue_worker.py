"""A queue worker: jobs from a Redis list, each takes a moment; a clean stop loses none.

``--workers`` threads each loop: take a job (``LPOP`` from the queue list),
work on it for ``--work-seconds``, then record it done (``RPUSH`` to the done
list). On SIGTERM (or SIGINT) no thread takes a new job; each finishes the
one in hand, and the process exits 0: every job taken is done, exactly once.
Killed with SIGKILL mid-stream (the platform's answer when its SIGTERM never
reached the worker), the jobs in hand are lost: taken from the queue, never
done.

    python3 examples/queue_worker.py --redis 127.0.0.1:6379 --queue jobs --done done
    gsup -- python3 examples/queue_worker.py

A production worker would also move each job to a "processing" list
(``LMOVE``) to recover it after a crash; a clean stop is what keeps that
recovery path for crashes only. Settings also come from the environment:
``REDIS_ADDR``, ``QUEUE``, ``DONE``, ``WORKERS``, ``WORK_SECONDS``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from resp import Redis

_print_lock = threading.Lock()


def log(message: str) -> None:
    with _print_lock:
        print(f"queue_worker: {message}", flush=True)


def work_loop(args: argparse.Namespace, stop: threading.Event, errors: list[str]) -> None:
    redis = Redis.from_address(args.redis)
    try:
        while not stop.is_set():  # checked before taking a job, never while holding one
            job = redis.command("LPOP", args.queue)
            if job is None:
                stop.wait(0.05)  # queue empty: look again soon (or stop)
                continue
            name = job.decode() if isinstance(job, bytes) else str(job)
            # From here on the job is ours: a stop request lets it finish.
            time.sleep(args.work_seconds)  # the work itself
            redis.command("RPUSH", args.done, name)
            log(f"done {name}")
    except Exception as e:
        errors.append(f"{type(e).__name__}: {e}")
        log(f"error: {type(e).__name__}: {e}")
    finally:
        redis.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("REDIS_ADDR", "127.0.0.1:6379"))
    parser.add_argument("--queue", default=os.environ.get("QUEUE", "jobs"))
    parser.add_argument("--done", default=os.environ.get("DONE", "done"))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "4")))
    parser.add_argument("--work-seconds", type=float, default=float(os.environ.get("WORK_SECONDS", "0.2")))
    args = parser.parse_args()

    # The stop signals are blocked before any thread starts (threads inherit
    # the mask) and taken with sigwait by the main thread, which then tells
    # the workers. (A Python handler runs only when the main thread executes
    # bytecode, which a thread blocked in a wait does not.)
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    stop = threading.Event()

    errors: list[str] = []
    threads = [
        threading.Thread(target=work_loop, args=(args, stop, errors), name=f"worker-{i}")
        for i in range(args.workers)
    ]
    for t in threads:
        t.start()
    log(f"ready pid={os.getpid()} workers={args.workers}")
    received = signal.sigwait(stop_signals)
    stop.set()
    log(f"got {signal.Signals(received).name}: finishing the jobs in hand, taking no new one")
    for t in threads:
        t.join()
    log("stopped cleanly" if not errors else f"stopped with {len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
