"""Quantity-skewed partition: power-law client sizes with IID labels."""

from __future__ import annotations

import numpy as np

from fedref_ray.data.partition._common import (
    require_int,
    require_num_clients,
    require_positive,
    split_permutation,
)


def quantity_partition(
    num_samples: int, num_clients: int, rng: np.random.Generator, exponent: float = 1.5
) -> list[np.ndarray]:
    """Give clients Pareto-distributed sizes (tail index `exponent`) over a uniform shuffle.

    Smaller exponents give heavier tails (a few very large clients); every client keeps
    at least one sample, and labels stay IID so only the amount of data differs.
    """
    num_samples = require_int("partition.num_samples", num_samples, 1, None, "an integer >= 1")
    num_clients = require_num_clients(num_clients, num_samples)
    exponent = require_positive("partition.exponent", exponent)
    weights = rng.pareto(exponent, size=num_clients) + 1.0
    sizes = 1 + _largest_remainder(num_samples - num_clients, weights / weights.sum())
    return split_permutation(rng.permutation(num_samples), sizes)


def _largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    """Round `total * shares` to integers that sum exactly to `total` (Hamilton's method)."""
    exact = total * shares
    counts = np.floor(exact).astype(np.int64)
    missing = total - int(counts.sum())
    if missing > 0:
        counts[np.argsort(counts - exact, kind="stable")[:missing]] += 1
    return counts
