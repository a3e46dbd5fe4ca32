"""Tests for the natural (writer/device id) partitioner."""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.data.partition import natural_partition
from fedref_ray.errors import UserError


def assert_exact_cover(parts: list[np.ndarray], num_samples: int) -> None:
    """Every sample in exactly one client, each client non-empty, sorted int64."""
    assert all(part.dtype == np.int64 and len(part) > 0 for part in parts)
    assert all(np.all(np.diff(part) > 0) for part in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(num_samples))


def writer_ids(num_writers: int, num_samples: int, seed: int) -> np.ndarray:
    """Shuffled writer ids in which every writer appears at least once."""
    rng = np.random.default_rng(seed)
    ids = np.concatenate(
        [
            np.arange(num_writers),
            rng.integers(0, num_writers, num_samples - num_writers),
        ]
    )
    return rng.permutation(ids) * 3 + 1000  # ids need not be 0..W-1


def test_all_natural_clients_by_default_one_writer_each() -> None:
    # Prepare
    ids = np.array(["f0b", "a12", "f0b", "zz", "a12", "a12"])

    # Execute
    parts = natural_partition(ids, None, np.random.default_rng(0))

    # Assert: clients follow sorted writer id order a12, f0b, zz
    assert [part.tolist() for part in parts] == [[1, 4, 5], [0, 2], [3]]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("num_writers", "num_samples", "num_clients"),
    [(5, 5, 5), (40, 1000, 7), (40, 1000, 1), (300, 3000, 299)],
)
def test_natural_covers_every_sample_once_and_keeps_writers_whole(
    seed: int, num_writers: int, num_samples: int, num_clients: int
) -> None:
    # Prepare
    ids = writer_ids(num_writers, num_samples, seed)

    # Execute
    parts = natural_partition(ids, num_clients, np.random.default_rng(seed))

    # Assert: no writer is split across two clients
    assert len(parts) == num_clients
    assert_exact_cover(parts, num_samples)
    client_of_sample = np.empty(num_samples, dtype=np.int64)
    for client, part in enumerate(parts):
        client_of_sample[part] = client
    for writer in np.unique(ids):
        assert len(np.unique(client_of_sample[ids == writer])) == 1


def test_fewer_clients_merge_unchosen_writers_into_chosen_ones() -> None:
    # Prepare: 20 writers of 10 samples each, merged into 5 clients
    ids = np.repeat(np.arange(20), 10)

    # Execute
    parts = natural_partition(ids, 5, np.random.default_rng(0))

    # Assert: sizes are whole multiples of a writer and some client got merged writers
    sizes = [len(part) for part in parts]
    assert sum(sizes) == 200
    assert all(size % 10 == 0 for size in sizes)
    assert max(sizes) > 10


def test_natural_same_seed_same_split_and_other_seed_differs() -> None:
    # Prepare
    ids = writer_ids(30, 600, 0)

    # Execute
    first = natural_partition(ids, 6, np.random.default_rng(9))
    again = natural_partition(ids, 6, np.random.default_rng(9))
    other = natural_partition(ids, 6, np.random.default_rng(10))

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("num_clients", [4, 0, -2])
def test_natural_rejects_client_counts_outside_the_writers(num_clients: int) -> None:
    # Prepare: 3 writers
    ids = np.array([1, 1, 2, 3, 3, 3])

    # Execute / Assert
    with pytest.raises(UserError, match=r"partition\.num_clients") as caught:
        natural_partition(ids, num_clients, np.random.default_rng(0))
    assert str(num_clients) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_natural_rejects_empty_client_ids() -> None:
    # Execute / Assert
    with pytest.raises(UserError, match="client_ids"):
        natural_partition(np.array([], dtype=np.int64), None, np.random.default_rng(0))
