"""FEMNIST from LEAF's JSON files (Caldas et al. 2018), keeping the natural split by writer.

Each file root/{train,test}/*.json holds {"users": [...], "num_samples": [...], "user_data":
{user: {"x": [[784 floats in 0..1]], "y": [int]}}}. LEAF writes pixels as 1.0 for the white
background and lower values for ink (the inverse of MNIST); they are kept as written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.data.sources._files import malformed, require_root
from fedref_ray.errors import UserError

NUM_CLASSES = 62
IMAGE_SIDE = 28
_EXPECTED = 'LEAF JSON files train/*.json and test/*.json, each {"users", "num_samples", "user_data"}'


def _user_arrays(path: Path, user: str, record: Any) -> tuple[np.ndarray, np.ndarray]:
    """Convert one writer's {"x", "y"} record to (n, 1, 28, 28) uint8 images and int64 labels."""
    try:
        pixels = np.asarray(record["x"], dtype=np.float64)
        labels = np.asarray(record["y"], dtype=np.int64)
        if pixels.size == 0:
            pixels = pixels.reshape(0, IMAGE_SIDE * IMAGE_SIDE)
    except (KeyError, TypeError, ValueError) as error:
        problem = f"user {user!r} needs 'x' (lists of 784 floats) and 'y' ({error!r})"
        raise malformed(path, "femnist", problem) from error
    if pixels.ndim != 2 or pixels.shape[1] != IMAGE_SIDE * IMAGE_SIDE or labels.shape != (len(pixels),):
        problem = f"user {user!r} has x {pixels.shape} and y {labels.shape}, want (n, 784) and (n,)"
        raise malformed(path, "femnist", problem)
    if pixels.size and not (0.0 <= pixels.min() and pixels.max() <= 1.0):
        raise malformed(path, "femnist", f"user {user!r} has pixel values outside 0..1")
    if labels.size and not (0 <= labels.min() and labels.max() < NUM_CLASSES):
        raise malformed(path, "femnist", f"user {user!r} has labels outside 0..{NUM_CLASSES - 1}")
    images = np.rint(pixels * 255.0).astype(np.uint8).reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
    return images, labels


def _read_file(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Read one LEAF JSON file as (user, images, labels) triples in the file's user order."""
    try:
        with path.open("r", encoding="utf-8") as handle:
            content = json.load(handle)
        users, user_data = content["users"], content["user_data"]
        records = [(str(user), user_data[user]) for user in users]
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise malformed(path, "femnist", f"not valid JSON ({error})") from error
    except (KeyError, TypeError) as error:
        raise malformed(path, "femnist", f"want {_EXPECTED}; missing or wrong key {error}") from error
    return [(user, *_user_arrays(path, user, record)) for user, record in records]


def _read_split(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read every folder/*.json (sorted by name) into images, labels and each sample's writer."""
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise UserError(f"data.root: {str(folder)!r} holds no .json files; source 'femnist' expects {_EXPECTED}")
    images = [np.empty((0, 1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)]
    labels = [np.empty(0, dtype=np.int64)]
    writers: list[str] = []
    for path in files:
        for user, user_images, user_labels in _read_file(path):
            images.append(user_images)
            labels.append(user_labels)
            writers.extend([user] * len(user_labels))
    return np.concatenate(images), np.concatenate(labels), writers


def load_femnist(root: str | os.PathLike[str]) -> DatasetArrays:
    """Load FEMNIST (62 classes, (N, 1, 28, 28) uint8) with writer ids numbered by first appearance in train."""
    path = require_root(root, "femnist", _EXPECTED)
    x_train, y_train, writers = _read_split(path / "train")
    x_test, y_test, _ = _read_split(path / "test")
    if len(y_train) == 0:
        raise UserError(f"data.root: {str(path / 'train')!r} holds no FEMNIST samples")
    ids: dict[str, int] = {}
    first_seen = (ids.setdefault(writer, len(ids)) for writer in writers)
    client_ids = np.fromiter(first_seen, dtype=np.int64, count=len(writers))
    return DatasetArrays(
        name="femnist",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=NUM_CLASSES,
        train_client_ids=client_ids,
    )
