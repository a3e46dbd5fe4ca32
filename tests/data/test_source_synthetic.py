"""Tests for the FedProx Synthetic(alpha, beta) generator."""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.data.sources.synthetic import load_synthetic
from fedref_ray.errors import UserError


def _label_distributions(ids: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Row u is user u's label distribution."""
    counts = np.zeros((ids.max() + 1, num_classes))
    np.add.at(counts, (ids, labels), 1)
    return counts / counts.sum(axis=1, keepdims=True)


def _mean_label_entropy(ids: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Mean over users of the entropy (nats) of their label distribution; lower = more skewed users."""
    p = _label_distributions(ids, labels, num_classes)
    safe = np.where(p > 0, p, 1.0)
    return float(-(p * np.log(safe)).sum(axis=1).mean())


def test_same_seed_gives_identical_data_and_other_seed_differs() -> None:
    # Prepare / Execute
    first = load_synthetic(0.5, 0.5, num_users=20, seed=7)
    second = load_synthetic(0.5, 0.5, num_users=20, seed=7)
    other = load_synthetic(0.5, 0.5, num_users=20, seed=8)

    # Assert
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_train, second.y_train)
    np.testing.assert_array_equal(first.x_test, second.x_test)
    np.testing.assert_array_equal(first.train_client_ids, second.train_client_ids)
    assert first.x_train.shape != other.x_train.shape or not np.array_equal(first.x_train, other.x_train)


def test_shapes_dtypes_and_label_range() -> None:
    # Prepare / Execute
    data = load_synthetic(1.0, 1.0, num_users=10, seed=0, num_features=12, num_classes=5)

    # Assert
    assert data.name == "synthetic"
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.input_shape == (12,) and data.x_test.shape[1] == 12
    assert data.num_classes == 5
    assert 0 <= data.y_train.min() and data.y_train.max() < 5
    assert data.train_client_ids.dtype == np.int64


def test_user_sizes_follow_min_and_max_and_every_user_has_samples() -> None:
    # Prepare / Execute: test_fraction=0 keeps all of a user's samples in train.
    data = load_synthetic(0.0, 0.0, num_users=300, seed=1, min_samples=7, max_samples=40, test_fraction=0.0)

    # Assert
    sizes = np.bincount(data.train_client_ids, minlength=300)
    assert sizes.min() >= 7 and sizes.max() <= 40
    assert (sizes == 40).any() and (sizes < 40).any()  # lognormal(4, 2) both hits and misses the cap
    assert len(data.y_test) == 0
    assert np.all(np.diff(data.train_client_ids) >= 0)  # samples grouped by user, users in order


def test_each_user_splits_by_test_fraction_and_keeps_a_train_sample() -> None:
    # Prepare: sizes are drawn first, so the same seed gives the same samples at any test_fraction.
    whole = load_synthetic(0.5, 0.5, num_users=50, seed=3, min_samples=1, max_samples=9, test_fraction=0.0)
    sizes = np.bincount(whole.train_client_ids, minlength=50)

    # Execute
    split = load_synthetic(0.5, 0.5, num_users=50, seed=3, min_samples=1, max_samples=9, test_fraction=0.5)

    # Assert: n_test = min(floor(0.5 n), n - 1), and each user's first samples are its train samples.
    expected_test = np.minimum(np.floor(sizes * 0.5).astype(int), sizes - 1)
    np.testing.assert_array_equal(np.bincount(split.train_client_ids, minlength=50), sizes - expected_test)
    assert len(split.y_test) == expected_test.sum()
    position = np.arange(len(whole.y_train)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    is_train = position < np.repeat(sizes - expected_test, sizes)
    np.testing.assert_array_equal(split.x_train, whole.x_train[is_train])
    np.testing.assert_array_equal(split.y_test, whole.y_train[~is_train])


def test_max_samples_below_min_samples_gives_every_user_max_samples() -> None:
    # Prepare / Execute
    data = load_synthetic(1.0, 1.0, num_users=30, seed=0, max_samples=4, test_fraction=0.0)

    # Assert: the default min_samples=50 is capped down to 4.
    np.testing.assert_array_equal(np.bincount(data.train_client_ids), np.full(30, 4))


def test_label_skew_grows_across_the_papers_settings() -> None:
    # Prepare / Execute: the paper's Synthetic(0,0), (0.5,0.5), (1,1), plus (2,2).
    entropies = [
        _mean_label_entropy(d.train_client_ids, d.y_train, 10)
        for d in (load_synthetic(a, a, num_users=1000, seed=11, max_samples=100) for a in (0.0, 0.5, 1.0, 2.0))
    ]

    # Assert: per-user label distributions get more concentrated (less entropy) as beta grows.
    assert entropies[0] > entropies[1] > entropies[2] > entropies[3]
    assert entropies[0] - entropies[2] > 0.05 and entropies[0] - entropies[3] > 0.1


def test_beta_sets_the_spread_of_user_input_means() -> None:
    # Prepare / Execute
    spreads = {}
    for beta in (0.0, 1.0, 2.0):
        data = load_synthetic(0.0, beta, num_users=400, seed=5, max_samples=100, test_fraction=0.0)
        counts = np.bincount(data.train_client_ids)
        user_means = np.zeros(len(counts))
        np.add.at(user_means, data.train_client_ids, data.x_train.mean(axis=1))
        spreads[beta] = (user_means / counts).std()

    # Assert: a user's mean feature is B_k + mean of 60 N(0,1) draws (+ noise), so its std is ~sqrt(beta^2 + 1/60).
    assert spreads[0.0] < 0.25
    assert spreads[1.0] == pytest.approx(1.0, rel=0.15)
    assert spreads[2.0] == pytest.approx(2.0, rel=0.15)


def test_alpha_shifts_every_logit_equally_so_labels_do_not_change() -> None:
    # Prepare / Execute: u_k adds u_k * (sum(x) + 1) to all classes' logits alike (FedProx's generator).
    low = load_synthetic(0.0, 0.5, num_users=40, seed=2)
    high = load_synthetic(3.0, 0.5, num_users=40, seed=2)

    # Assert
    np.testing.assert_array_equal(low.x_train, high.x_train)
    np.testing.assert_array_equal(low.y_train, high.y_train)


def test_iid_users_share_one_label_distribution() -> None:
    # Prepare / Execute
    iid = load_synthetic(1.0, 1.0, num_users=100, seed=4, iid=True, max_samples=200)
    skewed = load_synthetic(1.0, 1.0, num_users=100, seed=4, iid=False, max_samples=200)

    # Assert: mean total-variation distance of each user's labels from the pooled labels.
    def distance(d):
        per_user = _label_distributions(d.train_client_ids, d.y_train, 10)
        pooled = np.bincount(d.y_train, minlength=10) / len(d.y_train)
        return 0.5 * np.abs(per_user - pooled).sum(axis=1).mean()

    assert distance(iid) < 0.25
    assert distance(skewed) > 0.6


def test_hundred_thousand_users_are_generated_with_every_user_present() -> None:
    # Prepare / Execute
    data = load_synthetic(0.5, 0.5, num_users=100_000, seed=0, min_samples=1, max_samples=4, test_fraction=0.0)

    # Assert
    sizes = np.bincount(data.train_client_ids, minlength=100_000)
    assert len(sizes) == 100_000 and sizes.min() >= 1 and sizes.max() <= 4
    assert data.x_train.shape == (sizes.sum(), 60)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"alpha": -1.0}, "data.alpha"),
        ({"beta": -0.1}, "data.beta"),
        ({"num_users": 0}, "data.num_users"),
        ({"num_classes": 1}, "data.num_classes"),
        ({"min_samples": 0}, "data.min_samples"),
        ({"max_samples": 0}, "data.max_samples"),
        ({"test_fraction": 1.0}, "data.test_fraction"),
    ],
)
def test_invalid_settings_raise_user_error_naming_the_field(overrides: dict, field: str) -> None:
    # Prepare
    settings = {"alpha": 0.5, "beta": 0.5, "num_users": 5, "seed": 0} | overrides

    # Execute / Assert
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        load_synthetic(**settings)
