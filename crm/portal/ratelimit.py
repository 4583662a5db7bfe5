"""A small fixed-window limiter for the patient pages, per client address.

It lives in each worker's memory, so with N gunicorn workers the effective limit is up
to N times the setting; it is there to blunt token guessing and scraping, which the
256-bit signed tokens already make hopeless. A shared store (Redis) would make it exact.
"""

from __future__ import annotations

import threading
import time


class FixedWindowLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        window = int((now or time.time()) // 60)
        with self._lock:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            seen_window, count = self._counts.get(key, (window, 0))
            count = count + 1 if seen_window == window else 1
            self._counts[key] = (window, count)
            return count <= self.per_minute
