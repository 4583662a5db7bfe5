"""The pump's claimed-but-not-yet-sent deliveries, shared with its worker threads.

A worker that finishes a POST takes the next job itself, from the endpoint with the fewest
POSTs in flight (the oldest job first among equals): a slow endpoint ends up holding the
slots no other endpoint's work wants, every freed slot goes first to an endpoint that has
fewer, and no endpoint ever holds more than `most_per_endpoint` (all but one of the
slots), so another endpoint's work always finds one free. The pump's own thread only
claims (when the backlog runs low) and records the answers workers leave here; workers
never wait for it, and it never touches the network.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque

from crm.webhooks.delivery import Job, Outcome


class WorkQueue:
    def __init__(self, most_per_endpoint: int) -> None:
        self.most_per_endpoint = most_per_endpoint
        self._cond = threading.Condition()
        self._ready: dict[int, deque[Job]] = defaultdict(deque)
        self._running: Counter[int] = Counter()
        self._done: list[Outcome] = []
        self._closed = False

    def add(self, jobs: list[Job]) -> None:
        with self._cond:
            for job in jobs:
                self._ready[job.endpoint_id].append(job)
            self._cond.notify_all()

    def take(self) -> Job | None:
        """The next job for a worker; None once the queue is closed."""
        with self._cond:
            while not self._closed:
                waiting = [
                    endpoint
                    for endpoint, jobs in self._ready.items()
                    if jobs and self._running[endpoint] < self.most_per_endpoint
                ]
                if waiting:
                    endpoint = min(
                        waiting, key=lambda e: (self._running[e], self._ready[e][0].delivery_id)
                    )
                    self._running[endpoint] += 1
                    return self._ready[endpoint].popleft()
                self._cond.wait()
            return None

    def finish(self, outcome: Outcome) -> None:
        with self._cond:
            self._running[outcome.job.endpoint_id] -= 1
            self._done.append(outcome)
            self._cond.notify_all()

    def collect(self, timeout: float, enough: int = 1, linger: float = 0.0) -> list[Outcome]:
        """The answers so far: waits up to `timeout` for a first one, then up to `linger`
        more while fewer than `enough` have come (one commit records them all)."""
        with self._cond:
            if not self._done and (self.ready() or sum(self._running.values())):
                self._cond.wait(timeout)
            until = time.monotonic() + linger
            while self._done and len(self._done) < enough and sum(self._running.values()):
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            done, self._done = self._done, []
            return done

    def ready(self) -> int:
        return sum(len(jobs) for jobs in self._ready.values())

    def load(self) -> Counter[int]:
        """Claimed per endpoint: waiting here or in flight."""
        with self._cond:
            load = Counter({e: len(jobs) for e, jobs in self._ready.items() if jobs})
            load.update(+self._running)
            return load

    def idle(self) -> bool:
        with self._cond:
            return not self._done and not self.ready() and not sum(self._running.values())

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
