"""Tests for the McMahan et al. shard partitioner."""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.data.partition import shards_partition
from fedref_ray.errors import UserError


def assert_exact_cover(parts: list[np.ndarray], num_samples: int) -> None:
    """Every sample in exactly one client, each client non-empty, sorted int64."""
    assert all(part.dtype == np.int64 and len(part) > 0 for part in parts)
    assert all(np.all(np.diff(part) > 0) for part in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(num_samples))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("num_samples", "num_classes", "num_clients", "classes_per_client"),
    [(10, 3, 5, 2), (1000, 10, 10, 2), (997, 7, 13, 3), (50, 5, 50, 1)],
)
def test_shards_cover_every_sample_once_with_near_equal_sizes(
    seed: int,
    num_samples: int,
    num_classes: int,
    num_clients: int,
    classes_per_client: int,
) -> None:
    # Prepare
    labels = np.random.default_rng(seed + 100).integers(0, num_classes, num_samples)

    # Execute
    parts = shards_partition(labels, num_clients, classes_per_client, np.random.default_rng(seed))

    # Assert: each client holds classes_per_client shards whose sizes differ by at most 1
    assert len(parts) == num_clients
    assert_exact_cover(parts, num_samples)
    shard_size = num_samples // (num_clients * classes_per_client)
    sizes = np.array([len(part) for part in parts])
    assert sizes.min() >= classes_per_client * shard_size
    assert sizes.max() <= classes_per_client * (shard_size + 1)


def test_aligned_shards_give_each_client_at_most_classes_per_client_labels() -> None:
    # Prepare: 10 classes x 100 samples, 20 shards of 50, so every shard holds one label
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 100))

    # Execute
    parts = shards_partition(labels, 10, 2, np.random.default_rng(0))

    # Assert
    label_counts = [len(np.unique(labels[part])) for part in parts]
    assert max(label_counts) <= 2
    assert all(len(part) == 100 for part in parts)


def test_shards_same_seed_same_split_and_other_seed_differs() -> None:
    # Prepare
    labels = np.repeat(np.arange(10), 60)

    # Execute
    first = shards_partition(labels, 15, 2, np.random.default_rng(1))
    again = shards_partition(labels, 15, 2, np.random.default_rng(1))
    other = shards_partition(labels, 15, 2, np.random.default_rng(2))

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize(
    ("num_clients", "classes_per_client", "field"),
    [
        (21, 1, "partition.num_clients"),
        (0, 1, "partition.num_clients"),
        (5, 5, "partition.classes_per_client"),
        (5, 0, "partition.classes_per_client"),
    ],
)
def test_shards_reject_impossible_parameters(num_clients: int, classes_per_client: int, field: str) -> None:
    # Prepare: 20 samples, so num_clients * classes_per_client must be <= 20
    labels = np.repeat(np.arange(4), 5)

    # Execute / Assert
    with pytest.raises(UserError, match=field.replace(".", r"\.")) as caught:
        shards_partition(labels, num_clients, classes_per_client, np.random.default_rng(0))
    assert "\n" not in str(caught.value)
