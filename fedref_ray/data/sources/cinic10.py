"""CINIC-10 (Darlow et al. 2018) from its ImageFolder layout of 32x32 PNGs, read with PIL."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.data.sources._files import malformed, require_root
from fedref_ray.errors import UserError

# CINIC-10's classes, in the (alphabetical) order that gives their label ids, as in CIFAR-10.
CINIC10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
SPLITS = ("train", "test")
_EXPECTED = f"train/<class>/*.png and test/<class>/*.png for the classes {', '.join(CINIC10_CLASSES)}"


def _read_png(path: Path) -> np.ndarray:
    """Read one PNG as (3, 32, 32) uint8; CINIC-10 holds a few greyscale images, converted to RGB.

    Only PIL's PNG decoder is admitted (a file named .png could otherwise be any format PIL opens,
    EPS among them, which PIL hands to Ghostscript), and the size is checked before any pixel is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=["PNG"]) as image:
            if image.size != (32, 32):
                raise malformed(path, "cinic10", f"image of {image.size[0]}x{image.size[1]} pixels, want 32x32")
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise malformed(path, "cinic10", f"not a readable image, want a PNG ({error!r})") from error
    return pixels.transpose(2, 0, 1)


def _read_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read every folder/<class>/*.png, labelled by the class's index in CINIC10_CLASSES."""
    if not folder.is_dir():
        raise UserError(f"data.root: {str(folder)!r} is missing; source 'cinic10' expects {_EXPECTED}")
    found = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if found != sorted(CINIC10_CLASSES):
        raise UserError(
            f"data.root: {str(folder)!r} has the class folders [{', '.join(found)}]; "
            f"source 'cinic10' expects exactly {', '.join(CINIC10_CLASSES)}"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(CINIC10_CLASSES):
        class_paths = sorted(path for path in (folder / name).iterdir() if path.suffix.lower() == ".png")
        paths.extend(class_paths)
        labels.extend([label] * len(class_paths))
    if not paths:
        raise UserError(f"data.root: {str(folder)!r} holds no .png images; source 'cinic10' expects {_EXPECTED}")
    images = np.empty((len(paths), 3, 32, 32), dtype=np.uint8)
    for index, path in enumerate(paths):
        images[index] = _read_png(path)
    return images, np.asarray(labels, dtype=np.int64)


def load_cinic10(root: str | os.PathLike[str]) -> DatasetArrays:
    """Load CINIC-10's train and test splits as (N, 3, 32, 32) uint8; the 'valid' split is ignored."""
    path = require_root(root, "cinic10", _EXPECTED)
    x_train, y_train = _read_split(path / "train")
    x_test, y_test = _read_split(path / "test")
    return DatasetArrays(
        name="cinic10",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=10,
    )
