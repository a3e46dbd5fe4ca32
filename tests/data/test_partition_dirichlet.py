"""Tests for the Dirichlet label-skew partitioner."""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.data.partition import dirichlet_partition
from fedref_ray.errors import UserError


def assert_exact_cover(parts: list[np.ndarray], num_samples: int) -> None:
    """Every sample in exactly one client, each client non-empty, sorted int64."""
    assert all(part.dtype == np.int64 and len(part) > 0 for part in parts)
    assert all(np.all(np.diff(part) > 0) for part in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(num_samples))


def balanced_labels(num_classes: int, per_class: int, seed: int = 0) -> np.ndarray:
    """Shuffled labels with exactly per_class samples of each class."""
    labels = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(labels)


def mean_label_entropy(parts: list[np.ndarray], labels: np.ndarray, num_classes: int) -> float:
    """Mean over clients of the entropy (nats) of the client's label distribution."""
    entropies = []
    for part in parts:
        share = np.bincount(labels[part], minlength=num_classes) / len(part)
        share = share[share > 0]
        entropies.append(float(-(share * np.log(share)).sum()))
    return float(np.mean(entropies))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("num_classes", "per_class", "num_clients", "alpha"),
    [(2, 5, 10, 0.5), (10, 100, 20, 0.1), (10, 100, 20, 100.0), (5, 400, 300, 0.3)],
)
def test_dirichlet_covers_every_sample_once_and_no_client_is_empty(
    seed: int, num_classes: int, per_class: int, num_clients: int, alpha: float
) -> None:
    # Prepare
    labels = balanced_labels(num_classes, per_class, seed)

    # Execute
    parts = dirichlet_partition(labels, num_clients, alpha, np.random.default_rng(seed))

    # Assert
    assert len(parts) == num_clients
    assert_exact_cover(parts, len(labels))


def test_dirichlet_accepts_arbitrary_label_values() -> None:
    # Prepare: labels need not be 0..C-1
    labels = np.array([7, 7, 7, -3, -3, 42, 42, 42, 42, 7] * 20)

    # Execute
    parts = dirichlet_partition(labels, 6, 0.5, np.random.default_rng(0))

    # Assert
    assert_exact_cover(parts, len(labels))


def test_dirichlet_same_seed_same_split_and_other_seed_differs() -> None:
    # Prepare
    labels = balanced_labels(10, 50)

    # Execute
    first = dirichlet_partition(labels, 10, 0.5, np.random.default_rng(3))
    again = dirichlet_partition(labels, 10, 0.5, np.random.default_rng(3))
    other = dirichlet_partition(labels, 10, 0.5, np.random.default_rng(4))

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_small_alpha_skews_labels_much_more_than_large_alpha() -> None:
    # Prepare: 10 balanced classes; IID clients would have entropy close to log(10) = 2.30
    labels = balanced_labels(10, 300)

    # Execute
    skewed = dirichlet_partition(labels, 20, 0.1, np.random.default_rng(0))
    uniform = dirichlet_partition(labels, 20, 100.0, np.random.default_rng(0))

    # Assert
    skewed_entropy = mean_label_entropy(skewed, labels, 10)
    uniform_entropy = mean_label_entropy(uniform, labels, 10)
    assert uniform_entropy > 2.1
    assert skewed_entropy < 1.2
    assert uniform_entropy - skewed_entropy > 1.0


def test_min_size_is_met_when_draws_can_succeed() -> None:
    # Prepare
    labels = balanced_labels(10, 100)

    # Execute
    parts = dirichlet_partition(labels, 10, 1.0, np.random.default_rng(0), min_size=20)

    # Assert
    assert_exact_cover(parts, len(labels))
    assert min(len(part) for part in parts) >= 20


def test_fallback_fills_short_clients_when_retries_run_out() -> None:
    # Prepare: 200 clients over 400 samples with alpha 0.05 leaves many clients empty per draw
    labels = balanced_labels(4, 100)

    # Execute
    parts = dirichlet_partition(labels, 200, 0.05, np.random.default_rng(0), max_retries=1)
    again = dirichlet_partition(labels, 200, 0.05, np.random.default_rng(0), max_retries=1)

    # Assert
    assert_exact_cover(parts, len(labels))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_fallback_meets_min_size_exactly_at_the_limit() -> None:
    # Prepare: num_clients * min_size == N forces every client to exactly min_size
    labels = balanced_labels(3, 40)

    # Execute
    parts = dirichlet_partition(labels, 24, 0.1, np.random.default_rng(5), min_size=5)

    # Assert
    assert_exact_cover(parts, len(labels))
    assert [len(part) for part in parts] == [5] * 24


def test_ten_thousand_clients_over_forty_thousand_samples() -> None:
    # Prepare
    labels = balanced_labels(10, 4000)

    # Execute
    parts = dirichlet_partition(labels, 10_000, 0.1, np.random.default_rng(0))

    # Assert
    assert len(parts) == 10_000
    assert_exact_cover(parts, len(labels))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_clients": 11}, "partition.num_clients"),
        ({"num_clients": 0}, "partition.num_clients"),
        ({"num_clients": 4, "min_size": 3}, "partition.num_clients"),
        ({"alpha": 0.0}, "partition.alpha"),
        ({"alpha": -1.0}, "partition.alpha"),
        ({"alpha": float("nan")}, "partition.alpha"),
        ({"min_size": 0}, "partition.min_size"),
        ({"max_retries": 0}, "partition.max_retries"),
    ],
)
def test_dirichlet_rejects_impossible_parameters(kwargs: dict[str, object], field: str) -> None:
    # Prepare
    labels = balanced_labels(2, 5)
    arguments: dict[str, object] = {"num_clients": 2, "alpha": 0.5} | kwargs

    # Execute / Assert
    with pytest.raises(UserError, match=field.replace(".", r"\.")) as caught:
        dirichlet_partition(labels, rng=np.random.default_rng(0), **arguments)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_dirichlet_rejects_labels_that_are_not_one_dimensional() -> None:
    # Execute / Assert
    with pytest.raises(UserError, match="1-D"):
        dirichlet_partition(np.zeros((4, 2), dtype=np.int64), 2, 0.5, np.random.default_rng(0))
