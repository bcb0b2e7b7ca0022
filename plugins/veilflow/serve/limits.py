"""Per-token request rates: a token bucket per token, per service process.

A token's ``rate_per_second`` is the rate of the whole service: each of its ``processes``
worker processes allows its share (at least one request per second), with a burst of one
second's worth. A request over the rate gets 429 and a ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, processes: int = 1) -> None:
        self._processes = max(1, processes)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def share(self, rate_per_second: int) -> float:
        """This process's share of a token's rate."""
        return max(1.0, rate_per_second / self._processes)

    def take(self, name: str, rate_per_second: int, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        rate = self.share(rate_per_second)
        t = time.monotonic() if now is None else now
        with self._lock:
            b = self._buckets.get(name)
            if b is None:
                b = self._buckets[name] = _Bucket(tokens=rate, at=t)
            b.tokens = min(rate, b.tokens + (t - b.at) * rate)
            b.at = t
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / rate


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(seconds)))
