"""Tests for the power-law quantity-skew partitioner."""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.data.partition import quantity_partition
from fedref_ray.errors import UserError


def assert_exact_cover(parts: list[np.ndarray], num_samples: int) -> None:
    """Every sample in exactly one client, each client non-empty, sorted int64."""
    assert all(part.dtype == np.int64 and len(part) > 0 for part in parts)
    assert all(np.all(np.diff(part) > 0) for part in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(num_samples))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("num_samples", "num_clients"), [(1, 1), (10, 10), (11, 10), (10_000, 100)])
def test_quantity_covers_every_sample_once_and_no_client_is_empty(
    seed: int, num_samples: int, num_clients: int
) -> None:
    # Execute
    parts = quantity_partition(num_samples, num_clients, np.random.default_rng(seed))

    # Assert
    assert len(parts) == num_clients
    assert_exact_cover(parts, num_samples)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_quantity_sizes_are_heavily_skewed(seed: int) -> None:
    # Execute: an IID split would give every client 200 samples (max/min = 1)
    parts = quantity_partition(10_000, 50, np.random.default_rng(seed))

    # Assert
    sizes = np.array([len(part) for part in parts])
    assert sizes.max() / sizes.min() > 5
    assert sizes.max() > 3 * np.median(sizes)


def test_smaller_exponent_gives_heavier_tail() -> None:
    # Prepare: share of the data held by the largest 10% of clients, averaged over seeds
    def top_share(exponent: float) -> float:
        shares = []
        for seed in range(10):
            parts = quantity_partition(20_000, 100, np.random.default_rng(seed), exponent)
            sizes = np.sort([len(part) for part in parts])
            shares.append(sizes[-10:].sum() / 20_000)
        return float(np.mean(shares))

    # Execute
    heavy, light = top_share(0.8), top_share(4.0)

    # Assert
    assert heavy > light + 0.1


def test_quantity_same_seed_same_split_and_other_seed_differs() -> None:
    # Execute
    first = quantity_partition(800, 12, np.random.default_rng(5))
    again = quantity_partition(800, 12, np.random.default_rng(5))
    other = quantity_partition(800, 12, np.random.default_rng(6))

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize(
    ("num_samples", "num_clients", "exponent", "field"),
    [
        (10, 11, 1.5, "partition.num_clients"),
        (10, 0, 1.5, "partition.num_clients"),
        (10, 2, 0.0, "partition.exponent"),
        (10, 2, float("inf"), "partition.exponent"),
        (0, 1, 1.5, "partition.num_samples"),
    ],
)
def test_quantity_rejects_impossible_parameters(
    num_samples: int, num_clients: int, exponent: float, field: str
) -> None:
    # Execute / Assert
    with pytest.raises(UserError, match=field.replace(".", r"\.")) as caught:
        quantity_partition(num_samples, num_clients, np.random.default_rng(0), exponent)
    assert "\n" not in str(caught.value)
