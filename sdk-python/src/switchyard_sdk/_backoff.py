"""Reconnect delays with full jitter, the same in every SDK.

Invariant: the n-th consecutive failed connection attempt (n ≥ 1) waits a delay drawn
uniformly from [0, min(5000, 100 × 2^(n−1))] ms, so workers that lost the same engine do
not all come back at the same instant. The caller resets n after a successful connection.
The random source is injectable (``random.Random``), so tests check bounds and spread
without waiting.
"""

from __future__ import annotations

import random

BASE_MS = 100
CAP_MS = 5000


def ceiling_ms(attempt: int) -> int:
    """The upper bound of the `attempt`-th delay (attempt ≥ 1)."""
    if attempt < 1:
        raise ValueError("attempt must be >= 1")
    # 2**(attempt-1) overflows nothing in Python, but stop doubling once past the cap.
    return CAP_MS if attempt > 16 else min(CAP_MS, BASE_MS * 2 ** (attempt - 1))


def delay_ms(attempt: int, rng: random.Random) -> int:
    """The wait before retrying after the `attempt`-th consecutive failure, in ms."""
    return round(rng.uniform(0, ceiling_ms(attempt)))
