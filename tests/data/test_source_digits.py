"""Tests for scikit-learn's bundled 8x8 digits source."""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.data.sources.digits import load_digits
from fedref_ray.errors import UserError


def test_digits_shapes_scaling_and_stratified_split() -> None:
    # Prepare / Execute
    data = load_digits(seed=0, test_fraction=0.2)

    # Assert
    assert data.x_train.shape[1:] == (1, 8, 8) and data.x_test.shape[1:] == (1, 8, 8)
    assert len(data.y_train) + len(data.y_test) == 1797
    assert len(data.y_test) == 360  # ceil(0.2 * 1797)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.x_train.max() == 255 and data.x_train.min() == 0  # 16 -> 255, 0 -> 0
    assert data.num_classes == 10
    test_counts = np.bincount(data.y_test, minlength=10)
    assert test_counts.min() >= 35 and test_counts.max() <= 37  # stratified: ~20% of ~180 per class


def test_digits_pixels_are_sklearn_values_scaled_by_255_over_16() -> None:
    # Prepare
    from sklearn.datasets import load_digits as sklearn_digits

    allowed = set(np.rint(np.arange(17) * 255 / 16).astype(int).tolist())

    # Execute
    data = load_digits(seed=1)

    # Assert: every pixel is one of the 17 scaled levels, and the pixel sums match sklearn's.
    assert set(np.unique(data.x_train).tolist()) <= allowed
    total = int(data.x_train.astype(np.int64).sum() + data.x_test.astype(np.int64).sum())
    expected = int(np.rint(sklearn_digits().images * 255 / 16).sum())
    assert total == expected


def test_digits_split_depends_on_the_seed_only() -> None:
    # Prepare / Execute
    first, again, other = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)

    # Assert
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.x_train, other.x_train)


def test_digits_rejects_a_test_fraction_outside_0_1() -> None:
    # Execute / Assert
    with pytest.raises(UserError, match=r"data\.test_fraction"):
        load_digits(seed=0, test_fraction=1.5)
