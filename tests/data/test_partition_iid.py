"""Tests for the IID partitioner."""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.data.partition import PARTITION_NAMES, iid_partition
from fedref_ray.errors import UserError


def assert_exact_cover(parts: list[np.ndarray], num_samples: int) -> None:
    """Every sample in exactly one client, each client non-empty, sorted int64."""
    assert all(part.dtype == np.int64 and len(part) > 0 for part in parts)
    assert all(np.all(np.diff(part) > 0) for part in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(num_samples))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("num_samples", "num_clients"), [(1, 1), (10, 10), (103, 7), (5000, 64)])
def test_iid_covers_every_sample_once_with_near_equal_sizes(seed: int, num_samples: int, num_clients: int) -> None:
    # Prepare
    rng = np.random.default_rng(seed)

    # Execute
    parts = iid_partition(num_samples, num_clients, rng)

    # Assert
    assert len(parts) == num_clients
    assert_exact_cover(parts, num_samples)
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1


def test_iid_is_shuffled_not_contiguous() -> None:
    # Prepare
    rng = np.random.default_rng(0)

    # Execute
    parts = iid_partition(1000, 10, rng)

    # Assert: a contiguous split would give client 0 exactly 0..99
    assert not np.array_equal(parts[0], np.arange(100))
    assert parts[0].max() - parts[0].min() > 500


def test_iid_same_seed_same_split_and_other_seed_differs() -> None:
    # Execute
    first = iid_partition(500, 8, np.random.default_rng(7))
    again = iid_partition(500, 8, np.random.default_rng(7))
    other = iid_partition(500, 8, np.random.default_rng(8))

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("num_clients", [0, -1, 11, 2.5, True])
def test_iid_rejects_impossible_client_counts(num_clients: object) -> None:
    # Execute / Assert
    with pytest.raises(UserError, match=r"partition\.num_clients") as caught:
        iid_partition(10, num_clients, np.random.default_rng(0))  # type: ignore[arg-type]
    assert repr(num_clients) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_partition_names_match_exported_functions() -> None:
    # Prepare
    from fedref_ray.data import partition

    # Execute
    functions = [getattr(partition, f"{name}_partition", None) for name in PARTITION_NAMES]

    # Assert
    assert PARTITION_NAMES == ("iid", "dirichlet", "shards", "quantity", "natural")
    assert all(callable(function) for function in functions)
