"""Tests for MNIST, Fashion-MNIST and CIFAR-10 read from tiny files in their real on-disk formats."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from fedref_ray.data.sources.torchvision_sets import load_cifar10, load_fashion_mnist, load_mnist
from fedref_ray.errors import UserError


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Write a ubyte array as an IDX file: magic 0x00 0x00 0x08 ndim, big-endian int32 dims, raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist_format(root: Path, folder: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Write the four uncompressed IDX files torchvision reads from root/folder/raw; return what was written."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    written = {
        "train_x": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train_y": np.array([0, 9, 3, 3, 7, 1], dtype=np.uint8),
        "test_x": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "test_y": np.array([5, 2, 8, 0], dtype=np.uint8),
    }
    _write_idx(raw / "train-images-idx3-ubyte", written["train_x"])
    _write_idx(raw / "train-labels-idx1-ubyte", written["train_y"])
    _write_idx(raw / "t10k-images-idx3-ubyte", written["test_x"])
    _write_idx(raw / "t10k-labels-idx1-ubyte", written["test_y"])
    return written


@pytest.mark.parametrize(("loader", "folder"), [(load_mnist, "MNIST"), (load_fashion_mnist, "FashionMNIST")])
def test_idx_files_round_trip(tmp_path: Path, loader, folder: str) -> None:
    # Prepare
    written = _write_mnist_format(tmp_path, folder, np.random.default_rng(0))

    # Execute
    data = loader(tmp_path)

    # Assert
    assert data.x_train.shape == (6, 1, 28, 28) and data.x_test.shape == (4, 1, 28, 28)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.x_train[:, 0], written["train_x"])
    np.testing.assert_array_equal(data.x_test[:, 0], written["test_x"])
    np.testing.assert_array_equal(data.y_train, written["train_y"])
    np.testing.assert_array_equal(data.y_test, written["test_y"])
    assert data.num_classes == 10 and data.train_client_ids is None


def test_missing_root_names_data_root_and_the_path(tmp_path: Path) -> None:
    # Prepare
    missing = tmp_path / "nowhere"

    # Execute / Assert
    with pytest.raises(UserError, match=r"data\.root") as caught:
        load_mnist(missing)
    assert str(missing) in str(caught.value) and "train-images-idx3-ubyte" in str(caught.value)


def test_missing_idx_file_is_named(tmp_path: Path) -> None:
    # Prepare
    _write_mnist_format(tmp_path, "FashionMNIST", np.random.default_rng(1))
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()

    # Execute / Assert
    with pytest.raises(UserError, match=r"lacks t10k-labels-idx1-ubyte") as caught:
        load_fashion_mnist(tmp_path)
    assert str(tmp_path / "FashionMNIST" / "raw") in str(caught.value)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda data: data[:-5], "bytes"),  # truncated
        (lambda data: b"\x1f\x8b" + data[2:], "uncompressed IDX"),  # looks gzipped
        (lambda data: data[:8] + struct.pack(">I", 27) + data[12:], "items of shape"),  # 27 rows, not 28
    ],
)
def test_malformed_idx_file_raises_user_error_with_its_path(tmp_path: Path, damage, problem: str) -> None:
    # Prepare
    _write_mnist_format(tmp_path, "MNIST", np.random.default_rng(2))
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(damage(images.read_bytes()))

    # Execute / Assert
    with pytest.raises(UserError, match=problem) as caught:
        load_mnist(tmp_path)
    assert str(images) in str(caught.value)


def test_label_count_differing_from_image_count_is_rejected(tmp_path: Path) -> None:
    # Prepare
    _write_mnist_format(tmp_path, "MNIST", np.random.default_rng(3))
    labels = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    _write_idx(labels, np.array([1, 2, 3], dtype=np.uint8))

    # Execute / Assert
    with pytest.raises(UserError, match="label count") as caught:
        load_mnist(tmp_path)
    assert str(labels) in str(caught.value)


def _write_cifar10(root: Path, rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Write data_batch_1..5, test_batch and batches.meta as CIFAR-10's python pickles; return the batches."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = []
    for index, size in enumerate([2, 3, 1, 2, 2], start=1):
        batch = {
            "batch_label": f"training batch {index} of 5",
            "labels": rng.integers(0, 10, size).tolist(),
            "data": rng.integers(0, 256, (size, 3072), dtype=np.uint8),
            "filenames": [f"img_{index}_{i}.png" for i in range(size)],
        }
        (folder / f"data_batch_{index}").write_bytes(pickle.dumps(batch, protocol=2))
        batches.append(batch)
    test = {"batch_label": "testing batch 1 of 1", "labels": [4, 0, 9], "data": rng.integers(0, 256, (3, 3072))}
    test["data"] = test["data"].astype(np.uint8)
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta | {"num_cases_per_batch": 10000, "num_vis": 3072}))
    return batches, test


def test_cifar10_batches_round_trip_as_channel_first_images(tmp_path: Path) -> None:
    # Prepare
    batches, test = _write_cifar10(tmp_path, np.random.default_rng(4))

    # Execute
    data = load_cifar10(tmp_path)

    # Assert: a row holds 1024 red, 1024 green, then 1024 blue values, each plane row-major 32x32.
    assert data.x_train.shape == (10, 3, 32, 32) and data.x_test.shape == (3, 3, 32, 32)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    first_row = batches[0]["data"][0]
    np.testing.assert_array_equal(data.x_train[0, 1], first_row[1024:2048].reshape(32, 32))
    np.testing.assert_array_equal(data.x_train.reshape(10, -1), np.concatenate([b["data"] for b in batches]))
    np.testing.assert_array_equal(data.y_train, sum((b["labels"] for b in batches), []))
    np.testing.assert_array_equal(data.x_test.reshape(3, -1), test["data"])
    np.testing.assert_array_equal(data.y_test, [4, 0, 9])


def test_cifar10_missing_batch_is_named(tmp_path: Path) -> None:
    # Prepare
    _write_cifar10(tmp_path, np.random.default_rng(5))
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()

    # Execute / Assert
    with pytest.raises(UserError, match=r"data\.root.*lacks data_batch_3") as caught:
        load_cifar10(tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in str(caught.value)


def test_cifar10_missing_root_raises_user_error(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(UserError, match=r"data\.root") as caught:
        load_cifar10(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(caught.value) and "cifar-10-batches-py" in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [b"not a pickle at all", pickle.dumps({"data": np.zeros((2, 100), dtype=np.uint8), "labels": [0, 1]})],
)
def test_cifar10_malformed_batch_raises_user_error_with_its_path(tmp_path: Path, content: bytes) -> None:
    # Prepare
    _write_cifar10(tmp_path, np.random.default_rng(6))
    broken = tmp_path / "cifar-10-batches-py" / "test_batch"
    broken.write_bytes(content)

    # Execute / Assert
    with pytest.raises(UserError, match="malformed") as caught:
        load_cifar10(tmp_path)
    assert str(broken) in str(caught.value)
