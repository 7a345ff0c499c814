"""Traffic split: which live variant answers a request.

Live variants (``ab`` and ``canary`` with weight > 0) split traffic by their shares. Without a key the
choice is random; with a sticky key (header ``x-shipyard-key`` or the body field the deployment names)
the key is hashed with BLAKE2b into [0, 1) and placed against the cumulative shares, so the same key
always lands on the same variant while the weights stay the same (and when a weight changes, only the
keys in the moved slice of [0, 1) change variant).
"""

from __future__ import annotations

import bisect
import hashlib
import random

from shipyard.errors import InvalidInput

__all__ = ["Router", "key_point"]

_SCALE = float(1 << 64)


def key_point(key: str) -> float:
    """A stable point in [0, 1) for ``key`` (the same in every process and Python version).

    Example:
        >>> key_point("customer-42") == key_point("customer-42")
        True
    """
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Router:
    """Chooses a variant by share: at random, or by a sticky key.

    Example:
        >>> router = Router({"main": 0.9, "canary": 0.1})
        >>> router.choose("customer-42") == router.choose("customer-42")
        True
    """

    def __init__(self, shares: dict[str, float], rng: random.Random | None = None) -> None:
        if not shares or any(s < 0 for s in shares.values()) or sum(shares.values()) <= 0:
            raise InvalidInput(
                f"Traffic shares {shares} cannot split traffic: every share must be >= 0 and at least one "
                "> 0; give an ab or canary variant a weight > 0"
            )
        total = sum(shares.values())
        self.names = list(shares)
        self.shares = {name: share / total for name, share in shares.items()}
        self._bounds: list[float] = []
        running = 0.0
        for name in self.names:
            running += self.shares[name]
            self._bounds.append(running)
        self._bounds[-1] = 1.0  # no gap at the top from rounding
        self._rng = rng or random.Random()

    def choose(self, key: str | None = None) -> str:
        """The variant for this request (``key``: the sticky key, if any)."""
        if len(self.names) == 1:
            return self.names[0]
        point = key_point(key) if key is not None else self._rng.random()
        return self.names[min(bisect.bisect_right(self._bounds, point), len(self.names) - 1)]
