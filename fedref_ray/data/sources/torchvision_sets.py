"""MNIST, Fashion-MNIST and CIFAR-10 from the files torchvision keeps on disk (never downloaded).

MNIST and Fashion-MNIST are read here from the uncompressed IDX files in root/MNIST/raw and
root/FashionMNIST/raw, checked and then taken as raw bytes. (torchvision's dataset classes would
prefer a legacy root/<set>/processed/*.pt over those files and unpickle it.) CIFAR-10's python
pickle batches are read with an unpickler that builds only plain values and numpy arrays
(`safe_pickle`), so a crafted batch cannot run code; torchvision's CIFAR10 class would unpickle
them freely, and it insists on the official MD5 sums, which rejects subsets and test fixtures.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.data.sources._files import malformed, require_files, require_root
from fedref_ray.data.sources.safe_pickle import ForbiddenGlobal, load_arrays_pickle
from fedref_ray.errors import UserError

IDX_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST = ["test_batch"]
_IDX_UBYTE = 0x08


def _read_idx(path: Path, source: str, item_shape: tuple[int, ...]) -> np.ndarray:
    """Read an IDX file (ubyte, N x item_shape, big-endian header) as an (N, *item_shape) uint8 array.

    The header and the length are checked first, so that a bad file is named in the error.
    """
    with path.open("rb") as handle:
        header = handle.read(4 * (2 + len(item_shape)))
    magic = bytes([0, 0, _IDX_UBYTE, 1 + len(item_shape)])
    if len(header) != 4 * (2 + len(item_shape)) or header[:4] != magic:
        raise malformed(path, source, f"want an uncompressed IDX ubyte file with {1 + len(item_shape)} dimensions")
    dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(1 + len(item_shape)))
    count = dims[0]
    if dims[1:] != item_shape:
        raise malformed(path, source, f"items of shape {dims[1:]}, want {item_shape}")
    expected_bytes = len(header) + count * int(np.prod(item_shape, dtype=np.int64))
    if path.stat().st_size != expected_bytes:
        raise malformed(path, source, f"{path.stat().st_size} bytes, want {expected_bytes} for {count} items")
    return np.fromfile(path, dtype=np.uint8, offset=len(header)).reshape(count, *item_shape)


def _load_idx_pair(root: Path, folder: str, source: str) -> DatasetArrays:
    """Read train and test splits of an MNIST-format set from root/<folder>/raw's IDX files."""
    raw = root / folder / "raw"
    require_files(raw, IDX_FILES, source)
    splits = {}
    for prefix in ("train", "t10k"):
        images_file, labels_file = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
        images = _read_idx(images_file, source, (28, 28))
        labels = _read_idx(labels_file, source, ()).astype(np.int64)
        if len(labels) != len(images):
            raise malformed(labels_file, source, f"label count differs from the {len(images)} images in {images_file}")
        if labels.size and not 0 <= labels.min() <= labels.max() <= 9:
            raise malformed(labels_file, source, "labels must lie in 0..9")
        splits[prefix] = (images[:, None, :, :], labels)
    return DatasetArrays(
        name=source,
        x_train=splits["train"][0],
        y_train=splits["train"][1],
        x_test=splits["t10k"][0],
        y_test=splits["t10k"][1],
        num_classes=10,
    )


def load_mnist(root: str | os.PathLike[str]) -> DatasetArrays:
    """Load MNIST (60k/10k, (N, 1, 28, 28) uint8) from root/MNIST/raw's uncompressed IDX files."""
    path = require_root(root, "mnist", f"MNIST/raw/ with {', '.join(IDX_FILES)}")
    return _load_idx_pair(path, "MNIST", "mnist")


def load_fashion_mnist(root: str | os.PathLike[str]) -> DatasetArrays:
    """Load Fashion-MNIST (60k/10k, (N, 1, 28, 28) uint8) from root/FashionMNIST/raw's IDX files."""
    path = require_root(root, "fashion_mnist", f"FashionMNIST/raw/ with {', '.join(IDX_FILES)}")
    return _load_idx_pair(path, "FashionMNIST", "fashion_mnist")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 pickle batch ({'data': (N, 3072) uint8, 'labels': [int]}) as (N, 3, 32, 32) and labels."""
    try:
        with path.open("rb") as handle:
            entry = load_arrays_pickle(handle, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["labels"], dtype=np.int64)
    except ForbiddenGlobal as error:
        problem = f"it asks to build {error.name!r} when read, and only plain values and numpy arrays are allowed"
        raise malformed(path, "cifar10", f"{problem}; it was not loaded") from None
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise malformed(path, "cifar10", f"want a pickled dict with 'data' and 'labels' ({error!r})") from error
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise malformed(path, "cifar10", f"'data' {data.shape} with {len(labels)} labels, want (N, 3072) and N labels")
    if labels.size and not 0 <= labels.min() <= labels.max() <= 9:
        raise malformed(path, "cifar10", "labels must lie in 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: str | os.PathLike[str]) -> DatasetArrays:
    """Load CIFAR-10 (50k/10k, (N, 3, 32, 32) uint8) from root/cifar-10-batches-py's pickle batches."""
    expected = f"{CIFAR10_FOLDER}/ with {', '.join(CIFAR10_TRAIN + CIFAR10_TEST)}"
    folder = require_root(root, "cifar10", expected) / CIFAR10_FOLDER
    require_files(folder, CIFAR10_TRAIN + CIFAR10_TEST, "cifar10")
    train = [_read_cifar_batch(folder / name) for name in CIFAR10_TRAIN]
    x_test, y_test = _read_cifar_batch(folder / CIFAR10_TEST[0])
    if sum(len(labels) for _, labels in train) == 0:
        raise UserError(f"data.root: {str(folder)!r} holds no CIFAR-10 training images")
    return DatasetArrays(
        name="cifar10",
        x_train=np.concatenate([images for images, _ in train]),
        y_train=np.concatenate([labels for _, labels in train]),
        x_test=x_test,
        y_test=y_test,
        num_classes=10,
    )
