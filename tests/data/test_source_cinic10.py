"""Tests for CINIC-10 read from a tiny ImageFolder tree of real PNG files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fedref_ray.data.sources.cinic10 import CINIC10_CLASSES, load_cinic10
from fedref_ray.errors import UserError


def _write_cinic(root: Path, rng: np.random.Generator) -> dict[tuple[str, str], list[np.ndarray]]:
    """Write train/, test/ and valid/ class folders; 'cat' gets two train PNGs, 'ship' one greyscale test PNG."""
    written: dict[tuple[str, str], list[np.ndarray]] = {}
    for split in ("train", "test", "valid"):
        for name in CINIC10_CLASSES:
            (root / split / name).mkdir(parents=True)
    filled = (("train", "cat", 2), ("train", "airplane", 1), ("test", "truck", 1), ("valid", "dog", 1))
    for split, name, count in filled:
        images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(count)]
        for index, pixels in enumerate(images):
            Image.fromarray(pixels, mode="RGB").save(root / split / name / f"cifar10-{split}-{index}.png")
        written[(split, name)] = images
    grey = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(root / "test" / "ship" / "n02981792_1.png")
    written[("test", "ship")] = [np.repeat(grey[:, :, None], 3, axis=2)]
    return written


def test_cinic10_pngs_round_trip_with_class_labels(tmp_path: Path) -> None:
    # Prepare
    written = _write_cinic(tmp_path, np.random.default_rng(0))

    # Execute
    data = load_cinic10(tmp_path)

    # Assert: classes in CINIC-10 order (airplane=0, cat=3, ship=8, truck=9), files sorted within a class.
    assert data.x_train.shape == (3, 3, 32, 32) and data.x_test.shape == (2, 3, 32, 32)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.y_train, [0, 3, 3])
    np.testing.assert_array_equal(data.y_test, [8, 9])
    np.testing.assert_array_equal(data.x_train[0], written[("train", "airplane")][0].transpose(2, 0, 1))
    np.testing.assert_array_equal(data.x_train[2], written[("train", "cat")][1].transpose(2, 0, 1))
    np.testing.assert_array_equal(data.x_test[0], written[("test", "ship")][0].transpose(2, 0, 1))
    np.testing.assert_array_equal(data.x_test[1], written[("test", "truck")][0].transpose(2, 0, 1))
    assert data.num_classes == 10


def test_cinic10_missing_root_raises_user_error_saying_what_is_expected(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(UserError, match=r"data\.root.*train/<class>/\*\.png") as caught:
        load_cinic10(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(caught.value)


def test_cinic10_missing_test_split_is_named(tmp_path: Path) -> None:
    # Prepare
    _write_cinic(tmp_path, np.random.default_rng(4))
    shutil.rmtree(tmp_path / "test")

    # Execute / Assert
    with pytest.raises(UserError, match="is missing") as caught:
        load_cinic10(tmp_path)
    assert str(tmp_path / "test") in str(caught.value)


def test_cinic10_wrong_class_folders_are_listed(tmp_path: Path) -> None:
    # Prepare
    _write_cinic(tmp_path, np.random.default_rng(1))
    (tmp_path / "train" / "frog").rename(tmp_path / "train" / "toad")

    # Execute / Assert
    with pytest.raises(UserError, match="toad.*expects exactly airplane") as caught:
        load_cinic10(tmp_path)
    assert str(tmp_path / "train") in str(caught.value)


def test_cinic10_corrupt_png_raises_user_error_with_its_path(tmp_path: Path) -> None:
    # Prepare
    _write_cinic(tmp_path, np.random.default_rng(2))
    broken = tmp_path / "train" / "cat" / "cifar10-train-0.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing useful")

    # Execute / Assert
    with pytest.raises(UserError, match="not a readable image") as caught:
        load_cinic10(tmp_path)
    assert str(broken) in str(caught.value)


def test_cinic10_wrong_image_size_raises_user_error_with_its_path(tmp_path: Path) -> None:
    # Prepare
    _write_cinic(tmp_path, np.random.default_rng(3))
    wrong = tmp_path / "test" / "truck" / "cifar10-test-0.png"
    Image.fromarray(np.zeros((28, 28, 3), dtype=np.uint8), mode="RGB").save(wrong)

    # Execute / Assert
    with pytest.raises(UserError, match="28x28 pixels, want 32x32") as caught:
        load_cinic10(tmp_path)
    assert str(wrong) in str(caught.value)
