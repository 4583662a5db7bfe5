"""Durations kept as a histogram, and percentiles read from it.

Bucket b holds durations d (seconds) with floor(4 * log2(d)) == b: quarter-octave buckets,
so a bucket's upper edge is 2^(1/4) (about 19%) above its lower edge. A percentile is the
nearest-rank bucket's geometric midpoint: within 2^(1/8) - 1, about 9%, of the exact
nearest-rank value. Durations under a second count as one second. The histogram's size is
bounded (a 10-year visit is bucket 114) whatever the number of visits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

STEPS_PER_OCTAVE = 4


def bucket_of(seconds: float) -> int:
    return math.floor(STEPS_PER_OCTAVE * math.log2(max(seconds, 1.0)))


def bucket_value(bucket: int) -> float:
    """The geometric midpoint of a bucket, in seconds."""
    return 2 ** ((bucket + 0.5) / STEPS_PER_OCTAVE)


def percentile(histogram: Iterable[tuple[int, int]], fraction: float) -> float | None:
    """Nearest-rank percentile of (bucket, count) pairs, in seconds; None when empty."""
    pairs = sorted((b, n) for b, n in histogram if n > 0)
    total = sum(n for _, n in pairs)
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket, count in pairs:
        seen += count
        if seen >= rank:
            return bucket_value(bucket)
    return bucket_value(pairs[-1][0])  # pragma: no cover - rank <= total
